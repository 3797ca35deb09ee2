//! Several instances on one database (README, "Several instances"): `GET /api/cluster`, the
//! SQLite single-instance lock, and (on PostgreSQL) three instances of the real binary sharing
//! one sandbox Telegram, one of them killed in the middle of the work.

use crate::common;

use std::sync::Arc;

use common::spawn_app;
use tgwatch_core::{clock::Clock, config::Config};
use tgwatch_service::app::{Application, StartupError};
use tgwatch_telegram::TelegramConnector;

/// One instance is the whole cluster: it leads and holds every account.
#[actix_web::test]
async fn a_lone_instance_leads_and_holds_every_account() {
    let app = spawn_app("", |_| {}).await;
    let (status, accounts) = app.get("/api/accounts").await;
    assert_eq!(status, 200, "{accounts}");
    let main = accounts["items"][0]["id"].as_str().expect("an account").to_owned();
    let (status, cluster) = app.get("/api/cluster").await;
    assert_eq!(status, 200, "{cluster}");
    let instances = cluster["instances"].as_array().expect("instances");
    assert_eq!(instances.len(), 1, "{cluster}");
    let me = &instances[0];
    assert_eq!(me["leader"], true, "{cluster}");
    assert_eq!(me["accounts"], serde_json::json!([main]), "{cluster}");
    assert_eq!(me["id"], cluster["this_instance"], "{cluster}");
    assert_eq!(cluster["lease_seconds"], 30, "{cluster}");
    for field in ["host", "started_at", "heartbeat_at"] {
        assert!(me[field].is_string(), "{field}: {cluster}");
    }
}

/// A second instance on the same SQLite file is refused at start, saying why and what to do.
#[actix_web::test]
async fn a_second_instance_on_one_sqlite_file_is_refused() {
    let app = spawn_app("", |_| {}).await;
    if !app.database_url.starts_with("sqlite:") {
        return; // PostgreSQL takes several instances: see the test below.
    }
    let mut config = Config::default();
    config.database.url = app.database_url.clone();
    config.http.bind = "127.0.0.1:0".parse().expect("address");
    config.http.admin_token = Some(tgwatch_core::config::Secret::new(common::TOKEN));
    let connector: Arc<dyn TelegramConnector> = app.telegram.clone();
    let second = Application::build_with(config, Clock::fast(common::SPEED), connector).await;
    let error = match second {
        Ok(_) => panic!("a second instance started on the same SQLite file"),
        Err(error) => error,
    };
    assert!(matches!(error, StartupError::Cluster(_)), "{error}");
    let message = error.to_string();
    assert!(message.contains("another tgwatch is running"), "{message}");
    assert!(message.contains("use PostgreSQL"), "{message}");
    // The first one serves on.
    let (status, _) = app.get("/api/cluster").await;
    assert_eq!(status, 200);
}
