//! The `tgwatch` binary: configuration checks name every key that is wrong, `run` checks as
//! much before it writes anything, and paths in a configuration file are the file's.

use std::{path::Path, process::Command};

/// A token long enough for `http.admin_token`, as a deployment sets it in the environment.
const TOKEN: &str = "a-long-enough-admin-token";

/// Runs `tgwatch ARGS --config DIR/config.toml` in `cwd` without configuration from the
/// environment but `env`; returns success and stdout + stderr.
fn tgwatch(args: &[&str], config: &Path, cwd: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tgwatch"));
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .current_dir(cwd);
    for (key, _) in std::env::vars() {
        if key.starts_with("TGWATCH_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let output = command.output().expect("run tgwatch");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

fn check_config_with(text: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write config");
    tgwatch(&["check-config"], &path, dir.path(), env)
}

fn check_config(text: &str) -> (bool, String) {
    check_config_with(
        &format!("[http]\nadmin_token = \"{TOKEN}\"\n[telegram]\napi_id = 1\n{text}"),
        &[],
    )
}

#[test]
fn the_shipped_config_is_valid_with_a_token_and_warns_about_the_api_id() {
    let shipped = include_str!("../../config.toml");
    let (ok, output) = check_config_with(shipped, &[("TGWATCH_HTTP__ADMIN_TOKEN", TOKEN)]);
    assert!(ok, "{output}");
    // The example account has no api_id, nor has [telegram]: it could never log in.
    assert!(output.contains("warning:"), "{output}");
    assert!(output.contains("accounts[0].api_id"), "{output}");
    assert!(output.contains("can never log in"), "{output}");

    // `run` would refuse it without a token: so does the check.
    let (ok, output) = check_config_with(shipped, &[]);
    assert!(!ok, "{output}");
    assert!(output.contains("http.admin_token"), "{output}");
}

#[test]
fn a_wrong_type_or_unknown_key_is_named() {
    let (ok, output) = check_config("[presence]\ngap_seconds = \"3 minutes\"\n");
    assert!(!ok);
    assert!(output.contains("gap_seconds"), "{output}");

    let (ok, output) = check_config("[bot]\napi_url = \"https://x\"\ntokn = \"x\"\n");
    assert!(!ok);
    assert!(output.contains("tokn"), "{output}");

    let (ok, output) = check_config("[presence]\npoll_min_seconds = 200\n");
    assert!(!ok);
    assert!(output.contains("presence.poll_max_seconds"), "{output}");
}

#[test]
fn every_problem_is_listed_with_its_line() {
    let (ok, output) = check_config(
        "[presence]\ngap_secs = 10\nbatch_size = \"many\"\n\
         [logs]\ncleanup_batch_size = 0\n",
    );
    assert!(!ok);
    assert!(output.contains("3 problems"), "{output}");
    for (key, line) in [
        ("gap_secs", 6),
        ("presence.batch_size", 7),
        ("logs.cleanup_batch_size", 9),
    ] {
        let found = output
            .lines()
            .any(|l| l.contains(key) && l.contains(&format!("line {line}")));
        assert!(found, "{key} on line {line}: {output}");
    }
}

#[test]
fn a_missing_file_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ok, output) = tgwatch(
        &["check-config"],
        Path::new("/nonexistent/tgwatch.toml"),
        dir.path(),
        &[],
    );
    assert!(!ok);
    assert!(output.contains("/nonexistent/tgwatch.toml"), "{output}");
}

#[test]
fn run_writes_nothing_before_the_configuration_is_known_good() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    // No admin token: `run` cannot serve.
    std::fs::write(&path, "[http]\nbind = \"127.0.0.1:0\"\n").unwrap();
    let (ok, output) = tgwatch(&["run"], &path, dir.path(), &[]);
    assert!(!ok, "{output}");
    assert!(output.contains("http.admin_token"), "{output}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(left, vec!["config.toml"], "{output}");
}

#[test]
fn relative_paths_are_the_configuration_files() {
    let deployment = tempfile::tempdir().expect("temp dir");
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let path = deployment.path().join("config.toml");
    std::fs::write(&path, "[database]\nurl = \"sqlite://data.db?mode=rwc\"\n").unwrap();
    let (ok, output) = tgwatch(&["migrate"], &path, elsewhere.path(), &[]);
    assert!(ok, "{output}");
    assert!(deployment.path().join("data.db").exists(), "{output}");
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing in the working directory: {output}"
    );
}
