//! The `tgwatch` command: parses flags, sets up logging and the runtime, and hands over to the
//! library.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tgwatch::cli;
use tgwatch_bench as bench;
use tgwatch_service::app::{Application, shutdown_signal};

use tgwatch_core::{
    clock::Clock,
    config::{Config, config_folder},
};
use tgwatch_store as storage;
use tgwatch_testkit::{
    demo::{self, demo},
    scripted::{Scenario, ScriptedTelegram},
};

#[derive(Parser)]
#[command(
    name = "tgwatch",
    version,
    about = "Watches Telegram: presence tracking, channels, webhooks, bot"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service with a configuration file.
    Run {
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Run the whole service on a fresh SQLite file and a simulated Telegram: no credentials.
    Demo {
        /// Where the admin API listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// How much faster than real time the simulated day runs.
        #[arg(long, default_value_t = 60.0)]
        speed: f64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
        /// Keep the demo's database and key file on exit (their paths are printed); by default
        /// they are removed.
        #[arg(long)]
        keep: bool,
    },
    /// Apply the database migrations and exit.
    Migrate {
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Check a configuration file as `run` would, and exit: prints every problem, key by key,
    /// and warnings (an account that can never log in).
    CheckConfig {
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Log an account in through the running service: phone, code and 2FA password, or a QR
    /// code to scan with a logged-in Telegram app.
    Login {
        /// The account's label or id.
        account: String,
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
        /// Scan a QR code instead of typing a code.
        #[arg(long)]
        qr: bool,
        #[arg(long)]
        phone: Option<String>,
        /// The api_hash from my.telegram.org (default: telegram.api_hash).
        #[arg(long)]
        api_hash: Option<String>,
        /// The service's address (default: http://<http.bind>).
        #[arg(long)]
        url: Option<String>,
    },
    /// Store an existing session as an account's (service stopped): a Telethon StringSession or
    /// a string from `tgwatch export-session`.
    ImportSession {
        account: String,
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
        #[arg(long, conflicts_with = "session")]
        telethon: Option<String>,
        #[arg(long)]
        session: Option<String>,
        #[arg(long)]
        api_hash: Option<String>,
    },
    /// Print an account's session as a string for `import-session` (it logs in as the account:
    /// keep it like a password).
    ExportSession {
        account: String,
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Copy the SQLite database (online, while the service runs) and the master key file into
    /// a new directory.
    Backup {
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
        /// A new (or empty) directory for the copy; created readable by its owner only.
        #[arg(long)]
        to: PathBuf,
    },
    /// Re-seal every stored session with a new master key (service stopped).
    RotateKey {
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Measure the presence pipeline (see README, "Performance").
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // actix-http logs every request line it cannot parse (one over 64 KiB, say) as
                // an ERROR: anyone could fill the log without a token.
                .unwrap_or_else(|_| {
                    "info,sqlx=warn,sea_orm=warn,actix_http::h1::dispatcher=off".into()
                }),
        )
        .init();
    let mut demo_files = None;
    // One runtime for everything: actors and actix-web on the System thread, Send tasks on the
    // worker threads (notes/actix-seaorm-and-friends.md).
    let outcome = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|error| panic!("cannot start the async runtime: {error}"))
    })
    .block_on(run(cli.command, &mut demo_files));
    // The runtime is gone now, and with it every connection to the demo's database: its files
    // can go.
    if let Some(DemoFiles { files, keep }) = demo_files {
        if keep {
            println!("tgwatch demo: kept its files:");
            for file in files.iter().filter(|file| file.exists()) {
                println!("  {}", file.display());
            }
        } else {
            demo::remove_files(&files);
        }
    }
    outcome
}

/// What `demo` leaves behind, and whether to keep it.
struct DemoFiles {
    files: Vec<PathBuf>,
    keep: bool,
}

/// Checks a configuration file exactly as `run` does: every problem, each with its line, fails
/// it; warnings are returned, located too.
fn load_checked(path: &std::path::Path) -> anyhow::Result<(Config, Vec<String>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match tgwatch_core::config::locate::check_text(&text, &config_folder(path)) {
        Ok(config) => {
            let warnings = tgwatch_core::config::locate::warnings(&text, &config)
                .iter()
                .map(|warning| format!("{}: {warning}", path.display()))
                .collect();
            Ok((config, warnings))
        }
        Err(problems) => {
            let listed: Vec<String> = problems
                .iter()
                .map(|problem| format!("  {}: {problem}", path.display()))
                .collect();
            anyhow::bail!(
                "{} is not a valid configuration ({} problem{}):\n{}",
                path.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                listed.join("\n")
            )
        }
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("loading {}", path.display()))
}

async fn run(command: Command, demo_files: &mut Option<DemoFiles>) -> anyhow::Result<()> {
    match command {
        Command::Run { config: path } => {
            // Nothing (database, key file) is written before the whole file is known good.
            let (config, warnings) = load_checked(&path)?;
            for warning in warnings {
                tracing::warn!(%warning, "configuration warning");
            }
            let app = build(config).await?;
            // config.toml is desired state: edits apply while the service runs.
            app.watch_config(&path);
            app.run_until_stopped().await?;
        }
        Command::Demo {
            bind,
            speed,
            seconds,
            keep,
        } => {
            let demo = demo(&std::env::temp_dir(), bind, speed);
            *demo_files = Some(DemoFiles {
                files: demo.files(),
                keep,
            });
            let clock = Clock::fast(speed);
            let token = demo
                .config
                .http
                .admin_token
                .as_ref()
                .map(|token| token.expose().to_owned())
                .unwrap_or_default();
            let database_path = demo.database_path.clone();
            let (app, sandbox) = demo::start(demo, clock).await?;
            let base = format!("http://{}:{}", bind.ip(), app.port());
            println!(
                "\ntgwatch demo: {users} simulated people, 3 accounts over MTProto (sandbox Telegram at {sandbox}), clock x{speed}\n\
                 database:    {db}\n\
                 admin API:   {base}/api (token: {token})\n\n\
                 try:\n  curl {base}/api/health\n  \
                 curl -H 'Authorization: Bearer {token}' {base}/api/tracked-users\n  \
                 curl -H 'Authorization: Bearer {token}' '{base}/api/tracked-users?online=true'\n  \
                 curl -H 'Authorization: Bearer {token}' {base}/api/tracked-users/<id>/stats?hours=24\n  \
                 curl -H 'Authorization: Bearer {token}' {base}/api/channels\n  \
                 curl -H 'Authorization: Bearer {token}' {base}/api/channels/<id>/messages\n",
                users = demo::DEMO_USERS,
                db = database_path.display(),
                sandbox = sandbox.addr(),
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
        }
        Command::Migrate { config } => {
            let config =
                Config::load(&config).with_context(|| format!("loading {}", config.display()))?;
            let db =
                storage::connect(&config.database.url, config.database.max_connections).await?;
            storage::migrate(&db).await?;
            println!("migrations applied");
        }
        Command::Login {
            account,
            config,
            qr,
            phone,
            api_hash,
            url,
        } => {
            let config = load(&config)?;
            let api = cli::ApiClient::new(&config, url)?;
            cli::login(&api, &account, phone, api_hash, qr).await?;
        }
        Command::ImportSession {
            account,
            config,
            telethon,
            session,
            api_hash,
        } => {
            cli::import(&load(&config)?, &account, telethon, session, api_hash).await?;
        }
        Command::ExportSession { account, config } => {
            println!("{}", cli::export(&load(&config)?, &account).await?);
        }
        Command::Backup { config, to } => {
            println!("{}", cli::backup(&load(&config)?, &to).await?);
        }
        Command::RotateKey { config } => {
            println!("{}", cli::rotate_key(&load(&config)?).await?);
        }
        Command::CheckConfig { config } => {
            let (_, warnings) = load_checked(&config)?;
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "{}: ok{}",
                config.display(),
                if warnings.is_empty() {
                    String::new()
                } else {
                    format!(" ({} warning(s))", warnings.len())
                }
            );
        }
        Command::Bench {
            what:
                BenchCommand::Presence {
                    users,
                    accounts,
                    seconds,
                    speed,
                },
        } => {
            let report =
                bench::presence(users, accounts, Duration::from_secs(seconds), speed).await?;
            println!("{report}");
        }
        Command::Bench {
            what:
                BenchCommand::Mtproto {
                    users,
                    accounts,
                    seconds,
                    speed,
                },
        } => {
            let report =
                bench::mtproto(users, accounts, Duration::from_secs(seconds), speed).await?;
            println!("{report}");
        }
        Command::Bench {
            what:
                BenchCommand::Channels {
                    database_url,
                    channels,
                    accounts,
                    posts,
                },
        } => {
            let report = bench::channels(database_url, channels, accounts, posts).await?;
            println!("{report}");
        }
        Command::Bench {
            what:
                BenchCommand::Webhooks {
                    database_url,
                    burst,
                    rate,
                    seconds,
                },
        } => {
            let report = bench::webhooks(database_url, burst, rate, seconds).await?;
            println!("{report}");
        }
        Command::Bench {
            what:
                BenchCommand::LateObservation {
                    database_url,
                    history,
                    late,
                },
        } => {
            let report = bench::late_observation(database_url, history, late).await?;
            println!("{report}");
        }
        Command::Bench {
            what:
                BenchCommand::Websocket {
                    clients,
                    seconds,
                    interval_ms,
                },
        } => {
            let report = bench::websocket(clients, seconds, interval_ms).await?;
            println!("{report}");
        }
    }
    Ok(())
}

/// The service for `tgwatch run`: over real Telegram, or, when `telegram.scenario` names a
/// scenario file, over the scripted Telegram that plays it.
async fn build(config: Config) -> anyhow::Result<Application> {
    if let Some(path) = &config.telegram.scenario {
        let clock = Clock::fast(config.telegram.clock_speed);
        let scenario = Scenario::load(std::path::Path::new(path))?;
        let connector = ScriptedTelegram::start(scenario, clock);
        return Ok(Application::build_with(config, clock, connector).await?);
    }
    Ok(Application::build(config).await?)
}
