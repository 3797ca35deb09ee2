//! `tgwatch-sandbox`: the sandbox (tgwatch's fake Telegram) as a server of its own, for
//! development. Several tgwatch instances, Telethon or any other MTProto client can share it;
//! its control API (see `tgwatch_testkit::sandbox_server`) posts to channels, changes statuses,
//! bans accounts, injects FLOOD_WAITs and hands out sessions to log in with.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tgwatch_testkit::sandbox_server::{SandboxServer, ServerOptions};
use tgwatch_testkit::scripted::Scenario;

/// A fake Telegram on 127.0.0.1, driven over HTTP.
#[derive(Parser)]
#[command(name = "tgwatch-sandbox", version)]
struct Args {
    /// A scenario file (people, their online times, FLOOD_WAITs), as `telegram.scenario` takes.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// The control API's port on 127.0.0.1 (0: a free one, printed at start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The accounts' labels, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "main")]
    accounts: Vec<String>,
    /// Channels to make at start, by username, comma separated (posting makes more).
    #[arg(long, value_delimiter = ',')]
    channels: Vec<String>,
    /// How fast the scenario plays (1 is real time).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

#[actix_web::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if !(args.speed.is_finite() && args.speed > 0.0) {
        eprintln!(
            "tgwatch-sandbox: --speed must be a positive number, not {}",
            args.speed
        );
        return ExitCode::from(2);
    }
    let scenario = match &args.scenario {
        Some(path) => match Scenario::load(path) {
            Ok(scenario) => scenario,
            Err(error) => {
                eprintln!("tgwatch-sandbox: {error}");
                return ExitCode::from(2);
            }
        },
        None => Scenario::default(),
    };
    let options = ServerOptions {
        scenario,
        port: args.port,
        accounts: args.accounts,
        channels: args.channels,
        speed: args.speed,
    };
    let server = match SandboxServer::start(options).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("tgwatch-sandbox: {error}");
            return ExitCode::FAILURE;
        }
    };
    let dcs: Vec<String> = tgwatch_sandbox::DCS
        .filter_map(|dc| Some(format!("DC {dc} at {}", server.sandbox.dc_addr(dc)?)))
        .collect();
    println!("control API: http://{}/control", server.control);
    println!("MTProto: {}", dcs.join(", "));
    println!(
        "accounts: {} (sessions: GET /control/accounts/LABEL/session?format=tgw1|telethon)",
        server
            .accounts
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    server.serve_until(stop_signal()).await;
    ExitCode::SUCCESS
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
