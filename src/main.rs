//! The `tgwatch` command: parses flags, sets up logging and the runtime, and hands over to the
//! service (`tgwatch-service`), to the operator commands ([`tgwatch::cli`]) or, in builds with
//! the default `sandbox` feature, to `demo` and `bench` (`tools`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tgwatch::cli;
use tgwatch_service::app::{Application, RunError};

use tgwatch_core::config::{Config, LogFormat, LoggingConfig, config_folder};
use tgwatch_store as storage;

#[cfg(feature = "sandbox")]
mod tools;

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
    #[cfg(feature = "sandbox")]
    Demo(tools::DemoArgs),
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
    #[cfg(feature = "sandbox")]
    Bench {
        #[command(subcommand)]
        what: tools::BenchCommand,
    },
}

/// The storage path allocates a value per column per row (sea-orm, sqlx): glibc's allocator
/// was a fifth of the CPU time of a batch write.
#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The heap profile of `--features dhat-heap` (see Cargo.toml).
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn main() -> anyhow::Result<()> {
    // Written to dhat-heap.json when main returns.
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    let cli = Cli::parse();
    let logging = match &cli.command {
        Command::Run { config } | Command::Migrate { config } => LoggingConfig::of(Some(config)),
        _ => LoggingConfig::of(None),
    };
    init_logging(logging.format);
    let mut after: AfterRuntime = None;
    // One runtime for everything: actors and actix-web on the System thread, Send tasks (sea-orm
    // queries, reqwest, grammers) on the worker threads of the same multi-threaded runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let handle = runtime.handle().clone();
    let system = actix_rt::System::with_tokio_rt(move || runtime);
    let outcome = system.block_on(run(cli.command, &mut after));
    if let Err(error) = &outcome
        && let Some(code) = error.downcast_ref::<RunError>().map(RunError::exit_code)
    {
        // A stop that did not finish: what it abandoned may still hold the runtime (a request
        // that never ends), so the process ends here, without waiting for it.
        eprintln!("Error: {error:#}");
        if let Some(after) = after {
            after();
        }
        std::process::exit(code);
    }
    {
        // Dropping the system drops the tasks still pending on its thread; one that holds a
        // database connection hands it back to sqlx's pool by spawning onto the runtime, which
        // needs the runtime's context here, outside `block_on`.
        let _context = handle.enter();
        drop(system);
    }
    if let Some(after) = after {
        after();
    }
    outcome
}

/// Log lines on standard output, as text or as one JSON object per line.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // actix-http logs every request line it cannot parse (one over 64 KiB, say) as an
        // ERROR: anyone could fill the log without a token.
        .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn,actix_http::h1::dispatcher=off".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        // Colour codes only where a person reads them: a file or a log collector gets plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}

/// Work to do once the runtime, and every database connection with it, is gone (`demo` removes
/// its files).
type AfterRuntime = Option<Box<dyn FnOnce()>>;

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

#[cfg_attr(not(feature = "sandbox"), allow(unused_variables))]
async fn run(command: Command, after: &mut AfterRuntime) -> anyhow::Result<()> {
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
        #[cfg(feature = "sandbox")]
        Command::Demo(args) => tools::demo(args, after).await?,
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
        #[cfg(feature = "sandbox")]
        Command::Bench { what } => tools::bench(what).await?,
    }
    Ok(())
}

/// The service for `tgwatch run`: over real Telegram, or, when `telegram.scenario` names a
/// scenario file, over the scripted Telegram that plays it (builds with the `sandbox` feature;
/// the others refuse the key when they load the configuration).
async fn build(config: Config) -> anyhow::Result<Application> {
    #[cfg(feature = "sandbox")]
    if config.telegram.scenario.is_some() {
        return tools::build_scripted(config).await;
    }
    Ok(Application::build(config).await?)
}
