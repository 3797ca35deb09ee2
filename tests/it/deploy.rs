//! The deployable artefacts start the real binary as they say they do, and the binary stops
//! cleanly on SIGTERM (what the stop does is tested in `shutdown`).
//!
//! The systemd unit (`contrib/tgwatch.service`) and the container image (`Dockerfile`) are read
//! as text: their environment, working directory and commands are run on this machine with their
//! fixed paths moved into a temporary directory (no systemd or container engine runs here).

use crate::common;

use std::{path::PathBuf, process::Stdio, time::Duration};

use sea_orm::ConnectionTrait;
use tokio::process::{Child, Command};

use common::TOKEN;
const STATE_DIR: &str = "/var/lib/tgwatch";
const CONFIG_DIR: &str = "/etc/tgwatch";
const INSTALLED_BINARY: &str = "/usr/local/bin/tgwatch";

/// How an artefact runs the binary: environment, working directory, commands before the start
/// (each must succeed) and the start command.
#[derive(Debug, Default)]
struct Launch {
    env: Vec<(String, String)>,
    workdir: Option<String>,
    before: Vec<Vec<String>>,
    start: Vec<String>,
}

/// The `[Service]` directives of a systemd unit that say how the binary runs.
fn systemd_launch(unit: &str) -> Launch {
    let mut launch = Launch::default();
    for line in unit.lines().map(str::trim) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "Environment" => {
                let (name, value) = value.split_once('=').expect("Environment=NAME=VALUE");
                launch.env.push((name.to_owned(), value.to_owned()));
            }
            "WorkingDirectory" => launch.workdir = Some(value.to_owned()),
            "ExecStartPre" => launch.before.push(words(value)),
            "ExecStart" => launch.start = words(value),
            _ => {}
        }
    }
    launch
}

/// The final stage of a Dockerfile: `ENV`, `WORKDIR`, `ENTRYPOINT` and `CMD` (exec form).
fn docker_launch(dockerfile: &str) -> Launch {
    let joined = dockerfile.replace("\\\n", " ");
    let final_stage = joined
        .rsplit_once("\nFROM ")
        .map_or(joined.as_str(), |(_, stage)| stage);
    let mut launch = Launch::default();
    let (mut entrypoint, mut cmd) = (Vec::new(), Vec::new());
    for line in final_stage.lines().map(str::trim) {
        let Some((instruction, rest)) = line.split_once(' ') else {
            continue;
        };
        match instruction {
            "ENV" => {
                for pair in words(rest) {
                    let (name, value) = pair.split_once('=').expect("ENV NAME=VALUE");
                    launch.env.push((name.to_owned(), value.to_owned()));
                }
            }
            "WORKDIR" => launch.workdir = Some(rest.trim().to_owned()),
            "ENTRYPOINT" => entrypoint = serde_json::from_str(rest).expect("exec-form ENTRYPOINT"),
            "CMD" => cmd = serde_json::from_str(rest).expect("exec-form CMD"),
            _ => {}
        }
    }
    launch.start = entrypoint.into_iter().chain(cmd).collect();
    launch
}

/// Splits on spaces outside double quotes, dropping the quotes.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The host's stand-ins for the artefact's fixed paths.
pub(crate) struct Host {
    pub(crate) root: tempfile::TempDir,
}

impl Host {
    pub(crate) fn new() -> Host {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join("state")).unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        Host { root }
    }

    pub(crate) fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    fn place(&self, text: &str) -> String {
        text.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_tgwatch"))
            .replace(STATE_DIR, &self.state().display().to_string())
            .replace(
                CONFIG_DIR,
                &self.root.path().join("etc").display().to_string(),
            )
    }

    /// A configuration for real Telegram with nothing to log in yet (so nothing is dialled).
    fn write_real_config(&self) {
        std::fs::write(
            self.root.path().join("etc/config.toml"),
            "[http]\nmetrics_public = true\n",
        )
        .unwrap();
    }

    /// A configuration with one account and one tracked person on a scripted Telegram.
    pub(crate) fn write_scripted_config(&self) {
        let scenario = self.root.path().join("scenario.toml");
        std::fs::write(
            &scenario,
            "[[users]]\nid = 1001\nusername = \"alice_example\"\nonline = [[0, 60]]\nrepeat_every = 120\n",
        )
        .unwrap();
        let config = format!(
            "[telegram]\nscenario = \"{}\"\n\n[[accounts]]\nlabel = \"main\"\n\n[[tracked_users]]\nusername = \"alice_example\"\n",
            scenario.display()
        );
        std::fs::write(self.root.path().join("etc/config.toml"), config).unwrap();
    }

    fn command(&self, argv: &[String], launch: &Launch, overrides: &[(&str, String)]) -> Command {
        let argv: Vec<String> = argv.iter().map(|word| self.place(word)).collect();
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).env_clear();
        for (name, value) in &launch.env {
            command.env(name, self.place(value));
        }
        command.env("TGWATCH_HTTP__ADMIN_TOKEN", TOKEN);
        for (name, value) in overrides {
            command.env(name, value);
        }
        if let Some(dir) = &launch.workdir {
            command.current_dir(self.place(dir));
        }
        command
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) async fn wait_healthy(base: &str, child: &mut Child) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(answer) = client.get(format!("{base}/readyz")).send().await
            && answer.status().is_success()
        {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the service exited before it was healthy: {status}");
        }
        assert!(tokio::time::Instant::now() < deadline, "never healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn terminate(child: &Child) {
    let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}

pub(crate) async fn exit_status(child: &mut Child) -> std::process::ExitStatus {
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the service exits within 20 s of SIGTERM")
        .unwrap()
}

/// Runs what the artefact runs, checks the service comes up with its state where the artefact
/// puts it, and stops it with SIGTERM.
async fn starts_and_stops(launch: Launch) {
    assert!(!launch.start.is_empty(), "no start command in {launch:?}");
    let host = Host::new();
    host.write_real_config();
    let port = free_port();
    let bind = [("TGWATCH_HTTP__BIND", format!("127.0.0.1:{port}"))];
    for before in &launch.before {
        let output = host.command(before, &launch, &bind).output().await.unwrap();
        assert!(
            output.status.success(),
            "{before:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut child = host
        .command(&launch.start, &launch, &bind)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_healthy(&format!("http://127.0.0.1:{port}"), &mut child).await;

    let key = host.state().join("tgwatch.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the master key is private");
    assert!(
        host.state().join("tgwatch.db").exists(),
        "the database is in the state directory"
    );

    terminate(&child);
    let status = exit_status(&mut child).await;
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop: {status}");
}

#[tokio::test]
async fn the_systemd_unit_runs_the_binary_with_its_state_in_the_state_directory() {
    let launch = systemd_launch(include_str!("../../contrib/tgwatch.service"));
    assert_eq!(launch.before.len(), 1, "check-config before the start");
    starts_and_stops(launch).await;
}

#[tokio::test]
async fn the_container_image_runs_the_binary_with_its_state_on_the_volume() {
    let launch = docker_launch(include_str!("../../Dockerfile"));
    assert_eq!(launch.workdir.as_deref(), Some(STATE_DIR));
    starts_and_stops(launch).await;
}

#[test]
fn quoted_words_keep_their_spaces() {
    assert_eq!(
        words(r#"A="x y" B=z"#),
        vec!["A=x y".to_owned(), "B=z".to_owned()]
    );
}

/// The probes answer without a token and without detail; `/readyz` is 503 while a migration of
/// this build is not applied.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_probes_answer_without_a_token_and_readyz_sees_a_pending_migration() {
    let app = common::spawn_app("", |_| {}).await;
    let client = reqwest::Client::new();
    let probe = |path: &'static str| {
        let request = client.get(format!("{}{path}", app.base));
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert_eq!(
        probe("/livez").await,
        (200, serde_json::json!({"status": "alive"}))
    );
    assert_eq!(
        probe("/readyz").await,
        (200, serde_json::json!({"status": "ready"}))
    );

    let db = sea_orm::Database::connect(&app.database_url).await.unwrap();
    db.execute_unprepared(
        "DELETE FROM seaql_migrations WHERE version = (SELECT MAX(version) FROM seaql_migrations)",
    )
    .await
    .unwrap();
    assert_eq!(
        probe("/readyz").await,
        (503, serde_json::json!({"status": "not_ready"}))
    );
    assert_eq!(probe("/livez").await.0, 200, "alive all the same");
}

/// Runs `tgwatch run` on the scripted configuration with the account health job due every few
/// milliseconds, for two seconds, with `env` set, and returns what it logged on standard output
/// and standard error.
async fn log_of_a_quiet_run(env: &[(&str, &str)]) -> (String, String) {
    let host = Host::new();
    host.write_scripted_config();
    let config = host.root.path().join("etc/config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace("[telegram]\n", "[telegram]\nclock_speed = 600.0\n")
        + "\n[jobs]\naccount_health_interval_seconds = 1\n";
    std::fs::write(&config, text).unwrap();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tgwatch"));
    command
        .arg("run")
        .arg("--config")
        .arg(&config)
        .current_dir(host.state())
        .env_remove("RUST_LOG")
        .env("TGWATCH_HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("TGWATCH_HTTP__ADMIN_TOKEN", TOKEN)
        .env(
            "TGWATCH_DATABASE__URL",
            format!("sqlite://{}/tgwatch.db?mode=rwc", host.state().display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.envs(env.iter().copied());
    let mut child = command.spawn().unwrap();
    wait_healthy(&format!("http://127.0.0.1:{port}"), &mut child).await;
    // A request line over actix-http's own limit, which it refuses before any of our code.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let line = format!(
        "GET /api/logs?x={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, line.as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0u8; 64];
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut stream, &mut answer),
    )
    .await
    .expect("an answer")
    .unwrap();
    answer.truncate(read);
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 4"),
        "refused: {}",
        String::from_utf8_lossy(&answer)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    terminate(&child);
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A periodic job that finds nothing new logs at debug, and a request line too long to parse
/// is not an ERROR line: the default log shows what changed, and nobody can flood it.
#[tokio::test]
async fn routine_job_runs_and_unparsable_requests_stay_out_of_the_default_log() {
    let (out, err) = log_of_a_quiet_run(&[("RUST_LOG", "info,tgwatch_service::jobs=debug")]).await;
    let debug = out + &err;
    assert!(
        debug.matches("account health checked").count() >= 2,
        "the job ran: {debug}"
    );
    let (out, err) = log_of_a_quiet_run(&[]).await;
    // Standard output is a pipe here: no colour codes.
    assert!(!out.contains('\u{1b}'), "{out}");
    let default = out + &err;
    assert!(default.contains("admin API listening"), "{default}");
    assert!(!default.contains("account health checked"), "{default}");
    assert!(!default.contains("uri too long"), "{default}");
    assert!(!default.contains("ERROR"), "{default}");
}

/// `[logging] format = "json"` (here through the environment): every line on standard output is
/// one JSON object with the level, the message and the event's fields.
#[tokio::test]
async fn the_json_log_format_writes_one_object_per_line() {
    let (out, _) = log_of_a_quiet_run(&[("TGWATCH_LOGGING__FORMAT", "json")]).await;
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect();
    let listening = lines
        .iter()
        .find(|line| line["fields"]["message"] == "admin API listening")
        .unwrap_or_else(|| panic!("no listening line in {out}"));
    assert_eq!(listening["level"], "INFO");
    assert!(listening["fields"]["port"].is_u64(), "{listening}");
    assert!(listening["timestamp"].is_string(), "{listening}");
}
