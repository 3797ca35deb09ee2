//! The commands of builds with the `sandbox` feature: `demo` (the whole service over the
//! sandbox's fake Telegram) and `bench` (the measurements of README, "Performance"), and the
//! scripted Telegram that `telegram.scenario` asks for.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Subcommand};
use tgwatch_bench as bench;
use tgwatch_core::{clock::Clock, config::Config};
use tgwatch_service::app::{Application, shutdown_signal};
use tgwatch_testkit::{
    demo,
    scripted::{Scenario, ScriptedTelegram},
};

use crate::AfterRuntime;

#[derive(Args)]
pub struct DemoArgs {
    /// Where the admin API listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// How much faster than real time the simulated day runs.
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Keep the demo's database and key file on exit (their paths are printed); by default
    /// they are removed.
    #[arg(long)]
    pub keep: bool,
    /// Serve `POST /api/faults/panic`, which makes an actor panic so that its supervisor's
    /// restart can be watched in `GET /api/supervision` (`[testing] fault_injection`).
    #[arg(long)]
    pub fault_injection: bool,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Tracked users over the scripted Telegram: calls per 100 polls, writes per second, memory.
    Presence {
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Accounts sharing the users.
        #[arg(long, default_value_t = 10)]
        accounts: usize,
        /// Real seconds to run the fleet for.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Clock speed of the fleet run.
        #[arg(long, default_value_t = 60.0)]
        speed: f64,
    },
    /// Tracked users polled through real MTProto (grammers against the sandbox): observations
    /// per second into the database, Telegram calls per poll round.
    Mtproto {
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        #[arg(long, default_value_t = 10)]
        accounts: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 60.0)]
        speed: f64,
    },
    /// Channel posts through real MTProto into the database, and the time from a ban to every
    /// channel reassigned and caught up.
    Channels {
        /// A PostgreSQL URL to measure on instead of a temporary SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 1000)]
        channels: usize,
        #[arg(long, default_value_t = 10)]
        accounts: usize,
        #[arg(long, default_value_t = 100_000)]
        posts: usize,
    },
    /// Several instances of this binary on one PostgreSQL database sharing one sandbox: posts
    /// stored per second per instance and in total, and the failover after a SIGKILL.
    Cluster {
        /// The PostgreSQL database the instances share (several instances need PostgreSQL).
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 3)]
        instances: usize,
        #[arg(long, default_value_t = 30)]
        accounts: usize,
        #[arg(long, default_value_t = 300)]
        channels: usize,
        #[arg(long, default_value_t = 30_000)]
        posts: usize,
    },
    /// Webhook delivery to a receiver on 127.0.0.1: deliveries per second, latency percentiles.
    Webhooks {
        /// A PostgreSQL URL to measure on instead of a temporary SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// Events written at once for the throughput figure.
        #[arg(long, default_value_t = 20_000)]
        burst: usize,
        /// Events per second for the latency figure.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Out-of-order observations of a user with a long history: time per observation until
    /// its sessions are folded again.
    LateObservation {
        /// A PostgreSQL URL to measure on instead of a temporary SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// Observations of history before the late ones arrive.
        #[arg(long, default_value_t = 1_000_000)]
        history: usize,
        /// Late observations to send and time.
        #[arg(long, default_value_t = 200)]
        late: usize,
    },
    /// The retention job on a large database: rows pruned per second per table, the longest
    /// batch, and the latency of a concurrent writer.
    Retention {
        /// An empty PostgreSQL database to measure on instead of a temporary SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// Observations in `status_checks` (the outbox and bot tables get a tenth each).
        #[arg(long, default_value_t = 10_000_000)]
        rows: usize,
        /// Rows per delete statement (`retention.batch_size`).
        #[arg(long, default_value_t = 1000)]
        batch: u64,
    },
    /// WebSocket clients on /ws with the status tick: clients held, broadcast latency, memory
    /// per client (the service runs as a child process).
    Websocket {
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// Real seconds to measure for, once every client is connected.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The status interval (`live.status_interval_ms`).
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
    },
}

/// `tgwatch demo`: prints where to look, runs until Ctrl-C (or `--seconds`), and leaves the
/// removal of its files (unless `--keep`) to `after`.
pub async fn demo(args: DemoArgs, after: &mut AfterRuntime) -> anyhow::Result<()> {
    let DemoArgs {
        bind,
        speed,
        seconds,
        keep,
        fault_injection,
    } = args;
    let mut demo = demo::demo(&std::env::temp_dir(), bind, speed);
    demo.config.testing.fault_injection = fault_injection;
    let files = demo.files();
    // Once the runtime is gone, and with it every connection to the demo's database, its files
    // can go.
    *after = Some(Box::new(move || {
        if keep {
            println!("tgwatch demo: kept its files:");
            for file in files.iter().filter(|file| file.exists()) {
                println!("  {}", file.display());
            }
        } else {
            demo::remove_files(&files);
        }
    }));
    let clock = Clock::fast(speed);
    let token = demo
        .config
        .http
        .admin_token
        .as_ref()
        .map(|token| token.expose().to_owned())
        .unwrap_or_default();
    let database_path = demo.database_path.clone();
    let (app, world) = demo::start(demo, clock).await?;
    let base = format!("http://{}:{}", bind.ip(), app.port());
    println!(
        "{}database:   {}\n{}",
        demo::banner(&base, &token, speed, &world),
        database_path.display(),
        match fault_injection {
            true => format!(
                "supervision: curl -H 'Authorization: Bearer {token}' {base}/api/supervision\n\
                 a panic:     curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \
                 -d '{{\"actor\": \"storage\"}}' {base}/api/faults/panic\n"
            ),
            false => String::new(),
        }
    );
    // `--seconds` ends the demo by the same clean stop as a signal.
    app.run_until(async {
        match seconds {
            Some(seconds) => tokio::select! {
                () = shutdown_signal() => {}
                () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
            },
            None => shutdown_signal().await,
        }
    })
    .await?;
    Ok(())
}

/// `tgwatch bench ...`: runs one measurement and prints its report.
pub async fn bench(what: BenchCommand) -> anyhow::Result<()> {
    match what {
        BenchCommand::Presence {
            users,
            accounts,
            seconds,
            speed,
        } => {
            let report =
                bench::presence(users, accounts, Duration::from_secs(seconds), speed).await?;
            println!("{report}");
        }
        BenchCommand::Mtproto {
            users,
            accounts,
            seconds,
            speed,
        } => {
            let report =
                bench::mtproto(users, accounts, Duration::from_secs(seconds), speed).await?;
            println!("{report}");
        }
        BenchCommand::Channels {
            database_url,
            channels,
            accounts,
            posts,
        } => {
            let report = bench::channels(database_url, channels, accounts, posts).await?;
            println!("{report}");
        }
        BenchCommand::Cluster {
            database_url,
            instances,
            accounts,
            channels,
            posts,
        } => {
            let report =
                bench::cluster::cluster(database_url, instances, accounts, channels, posts).await?;
            println!("{report}");
        }
        BenchCommand::Webhooks {
            database_url,
            burst,
            rate,
            seconds,
        } => {
            let report = bench::webhooks(database_url, burst, rate, seconds).await?;
            println!("{report}");
        }
        BenchCommand::LateObservation {
            database_url,
            history,
            late,
        } => {
            let report = bench::late_observation(database_url, history, late).await?;
            println!("{report}");
        }
        BenchCommand::Retention {
            database_url,
            rows,
            batch,
        } => {
            let report = bench::retention::retention(database_url, rows, batch).await?;
            println!("{report}");
        }
        BenchCommand::Websocket {
            clients,
            seconds,
            interval_ms,
        } => {
            let report = bench::websocket(clients, seconds, interval_ms).await?;
            println!("{report}");
        }
    }
    Ok(())
}

/// The service over the scripted Telegram that plays `telegram.scenario`.
pub async fn build_scripted(config: Config) -> anyhow::Result<Application> {
    let clock = Clock::fast(config.telegram.clock_speed);
    let path = config.telegram.scenario.clone().unwrap_or_default();
    let scenario = Scenario::load(std::path::Path::new(&path))?;
    let connector = ScriptedTelegram::start(scenario, clock);
    Ok(Application::build_with(config, clock, connector).await?)
}
