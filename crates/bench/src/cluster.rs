//! `tgwatch bench cluster`: several instances of `tgwatch run` (child processes of this binary)
//! on one PostgreSQL database share one sandbox Telegram held by this process. Measures the
//! channel posts stored per second by the whole cluster and by each instance (the posts of the
//! channels of the accounts it holds), and the failover: how long after a SIGKILL the killed
//! instance's accounts are held by the others, and until the posts made meanwhile are stored.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use sea_orm::{EntityTrait, PaginatorTrait};
use tokio::process::{Child, Command};
use uuid::Uuid;

use tgwatch_core::{clock::Clock, config::Config};
use tgwatch_store::entities::{channels, messages};
use tgwatch_testkit::{demo::SandboxFleet, scripted::Scenario};

use crate::{BenchError, sandbox_bench_config, tempfile_dir};

/// `[cluster] lease_seconds` of the benchmark.
const LEASE_SECONDS: u64 = 5;
const FIRST_CHANNEL: i64 = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum ClusterBenchError {
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error("{0}")]
    Failed(String),
}

impl From<sea_orm::DbErr> for ClusterBenchError {
    fn from(error: sea_orm::DbErr) -> Self {
        ClusterBenchError::Bench(error.into())
    }
}

impl From<std::io::Error> for ClusterBenchError {
    fn from(error: std::io::Error) -> Self {
        ClusterBenchError::Bench(error.into())
    }
}

pub struct ClusterReport {
    pub instances: usize,
    pub accounts: usize,
    pub channels: usize,
    pub posts: usize,
    pub store_seconds: f64,
    /// Per instance: accounts held and posts of their channels.
    pub per_instance: Vec<(usize, u64)>,
    pub killed_accounts: usize,
    pub failover_seconds: f64,
    pub caught_up_seconds: f64,
}

impl fmt::Display for ClusterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cluster benchmark (PostgreSQL): {} instances, {} accounts, {} channels, grammers against one sandbox over TCP, lease {LEASE_SECONDS} s",
            self.instances, self.accounts, self.channels
        )?;
        writeln!(
            f,
            "  {} posts stored in {:.2} s: {:.0} per second in total",
            self.posts,
            self.store_seconds,
            self.posts as f64 / self.store_seconds
        )?;
        for (index, (accounts, posts)) in self.per_instance.iter().enumerate() {
            writeln!(
                f,
                "  instance {index}: {accounts} accounts, {posts} posts: {:.0} per second",
                *posts as f64 / self.store_seconds
            )?;
        }
        write!(
            f,
            "  SIGKILL of an instance holding {} accounts: held by the others {:.2} s later, the posts made meanwhile stored {:.2} s after the kill",
            self.killed_accounts, self.failover_seconds, self.caught_up_seconds
        )
    }
}

/// One `tgwatch run`.
struct Instance {
    base: String,
    child: Child,
}

impl Instance {
    async fn start(
        dir: &Path,
        index: usize,
        file: &Path,
        config: &Config,
        token: &str,
    ) -> Result<Instance, ClusterBenchError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(dir.join(format!("instance{index}.log")))?;
        let mut child = Command::new(std::env::current_exe()?)
            .arg("run")
            .arg("--config")
            .arg(file)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .env("TGWATCH_HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("TGWATCH_HTTP__ADMIN_TOKEN", token)
            .env("TGWATCH_DATABASE__URL", &config.database.url)
            .env(
                "TGWATCH_SECURITY__MASTER_KEY_FILE",
                &config.security.master_key_file,
            )
            .env("TGWATCH_TELEGRAM__API_ID", "1")
            .env("TGWATCH_TELEGRAM__API_HASH", "bench-api-hash")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(answer) = client.get(format!("{base}/readyz")).send().await
                && answer.status().is_success()
            {
                return Ok(Instance { base, child });
            }
            if let Some(status) = child.try_wait()? {
                return Err(ClusterBenchError::Failed(format!(
                    "instance {index} exited before it was ready ({status}); see {}",
                    dir.join(format!("instance{index}.log")).display()
                )));
            }
            if Instant::now() > deadline {
                return Err(ClusterBenchError::Failed(format!(
                    "instance {index} not ready in 120 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|pid| rustix::process::Pid::from_raw(pid as i32))
        {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }
}

/// The instance ids and the accounts each holds, as `GET /api/cluster` of `base` shows them,
/// and which instance answered.
async fn holdings(
    base: &str,
    token: &str,
) -> Result<(BTreeMap<String, BTreeSet<Uuid>>, String), ClusterBenchError> {
    let cluster: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/cluster"))
        .bearer_auth(token)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| ClusterBenchError::Failed(format!("GET /api/cluster: {error}")))?
        .json()
        .await
        .map_err(|error| ClusterBenchError::Failed(format!("GET /api/cluster: {error}")))?;
    let mut held = BTreeMap::new();
    for instance in cluster["instances"].as_array().into_iter().flatten() {
        let accounts = instance["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|account| account.as_str()?.parse().ok())
            .collect();
        held.insert(
            instance["id"].as_str().unwrap_or_default().to_owned(),
            accounts,
        );
    }
    let this = cluster["this_instance"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((held, this))
}

async fn stored(db: &sea_orm::DatabaseConnection) -> Result<u64, ClusterBenchError> {
    Ok(messages::Entity::find().count(db).await?)
}

async fn wait_until(
    what: &str,
    within: Duration,
    mut done: impl AsyncFnMut() -> Result<bool, ClusterBenchError>,
) -> Result<(), ClusterBenchError> {
    let deadline = Instant::now() + within;
    while !done().await? {
        if Instant::now() > deadline {
            return Err(ClusterBenchError::Failed(format!(
                "{what}: not within {within:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

pub async fn cluster(
    database_url: String,
    instances: usize,
    accounts: usize,
    channel_count: usize,
    posts: usize,
) -> Result<ClusterReport, ClusterBenchError> {
    let instances = instances.max(2);
    let dir: PathBuf = tempfile_dir()?;
    let max_channels = channel_count.div_ceil(accounts.max(1)) as i32 + 1;
    let config = sandbox_bench_config(&dir, Some(database_url), accounts, 1000, max_channels);
    let token = config
        .http
        .admin_token
        .as_ref()
        .map(|token| token.expose().to_owned())
        .unwrap_or_default();
    let fleet = SandboxFleet::start(&config, &Scenario::default(), Clock::real())
        .await
        .map_err(BenchError::from)?;
    let mut file = format!(
        "[telegram]\nwatchdog_seconds = 0.5\n\n[presence]\nflush_interval_ms = 100\n\n\
         [cluster]\nlease_seconds = {LEASE_SECONDS}\n\n"
    );
    for account in &config.accounts {
        file.push_str(&format!(
            "[[accounts]]\nlabel = \"{}\"\nmax_channels = {max_channels}\n\n",
            account.label
        ));
    }
    for index in 0..channel_count {
        let id = FIRST_CHANNEL + index as i64;
        fleet
            .sandbox
            .add_channel(
                id,
                id * 7,
                Some(&format!("bench_cluster_{index}")),
                "Bench",
                "",
            )
            .map_err(BenchError::from)?;
        file.push_str(&format!(
            "[[channels]]\nchannel = \"@bench_cluster_{index}\"\n\n"
        ));
    }
    let file_path = dir.join("config.toml");
    std::fs::write(&file_path, file)?;

    // The first instance joins every channel (it holds every account then); the others join.
    let mut running = vec![Instance::start(&dir, 0, &file_path, &config, &token).await?];
    let db = fleet.db.clone();
    wait_until(
        "every channel joined",
        Duration::from_secs(600),
        async || {
            let active = channels::Entity::find()
                .all(&db)
                .await?
                .iter()
                .filter(|channel| {
                    channel.account_id.is_some() && channel.telegram_channel_id.is_some()
                })
                .count();
            Ok(active == channel_count)
        },
    )
    .await?;
    for index in 1..instances {
        running.push(Instance::start(&dir, index, &file_path, &config, &token).await?);
    }
    let first = running[0].base.clone();
    let smallest_share = accounts / instances;
    wait_until("accounts shared out", Duration::from_secs(60), async || {
        let (held, _) = holdings(&first, &token).await?;
        Ok(held.len() == instances && held.values().all(|mine| mine.len() >= smallest_share))
    })
    .await?;

    // Throughput: posts round-robin over every channel, as fast as the sandbox makes them.
    let started = Instant::now();
    for post in 0..posts {
        let channel = FIRST_CHANNEL + (post % channel_count) as i64;
        fleet
            .sandbox
            .post(channel, &format!("post {post}"))
            .map_err(BenchError::from)?;
    }
    wait_until("every post stored", Duration::from_secs(600), async || {
        Ok(stored(&db).await? >= posts as u64)
    })
    .await?;
    let store_seconds = started.elapsed().as_secs_f64();

    // Per instance: the posts of the channels of the accounts it holds.
    let channel_accounts: BTreeMap<i64, Uuid> = channels::Entity::find()
        .all(&db)
        .await?
        .into_iter()
        .filter_map(|channel| Some((channel.telegram_channel_id?, channel.account_id?)))
        .collect();
    let (held, _) = holdings(&first, &token).await?;
    let mut ids_in_order = Vec::new();
    for instance in &running {
        let (_, this) = holdings(&instance.base, &token).await?;
        ids_in_order.push(this);
    }
    let per_instance: Vec<(usize, u64)> = ids_in_order
        .iter()
        .map(|id| {
            let accounts = held.get(id).cloned().unwrap_or_default();
            let posts_here = (0..posts)
                .filter(|post| {
                    let channel = FIRST_CHANNEL + (post % channel_count) as i64;
                    channel_accounts
                        .get(&channel)
                        .is_some_and(|account| accounts.contains(account))
                })
                .count() as u64;
            (accounts.len(), posts_here)
        })
        .collect();

    // Failover: the last instance is killed, one post per channel is made at once.
    let victim = running
        .pop()
        .ok_or_else(|| ClusterBenchError::Failed("no instance".into()))?;
    let victim_id = ids_in_order.last().cloned().unwrap_or_default();
    let victim_accounts = held.get(&victim_id).cloned().unwrap_or_default();
    let killed = Instant::now();
    victim.signal(rustix::process::Signal::KILL);
    for index in 0..channel_count {
        fleet
            .sandbox
            .post(FIRST_CHANNEL + index as i64, "posted during the failover")
            .map_err(BenchError::from)?;
    }
    let survivor = running[0].base.clone();
    wait_until(
        "the killed instance's accounts taken over",
        Duration::from_secs(120),
        async || {
            let (held, _) = holdings(&survivor, &token).await?;
            Ok(!held.contains_key(&victim_id)
                && victim_accounts
                    .iter()
                    .all(|account| held.values().any(|accounts| accounts.contains(account))))
        },
    )
    .await?;
    let failover_seconds = killed.elapsed().as_secs_f64();
    let expected = (posts + channel_count) as u64;
    wait_until(
        "the posts of the failover stored",
        Duration::from_secs(300),
        async || Ok(stored(&db).await? >= expected),
    )
    .await?;
    let caught_up_seconds = killed.elapsed().as_secs_f64();
    for instance in &running {
        instance.signal(rustix::process::Signal::TERM);
    }
    for mut instance in running {
        let _ = tokio::time::timeout(Duration::from_secs(20), instance.child.wait()).await;
    }
    Ok(ClusterReport {
        instances,
        accounts,
        channels: channel_count,
        posts,
        store_seconds,
        per_instance,
        killed_accounts: victim_accounts.len(),
        failover_seconds,
        caught_up_seconds,
    })
}
