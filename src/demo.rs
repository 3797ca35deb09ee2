//! `tgwatch demo`: the whole service on a fresh SQLite file and a scripted Telegram, with no
//! credentials, so a new user sees it work in a minute.

use std::path::PathBuf;

use crate::{
    config::{AccountConfig, Config, Secret, TrackedUserConfig},
    telegram::scripted::Scenario,
};

/// How many simulated people the demo tracks.
pub const DEMO_USERS: usize = 24;

/// The demo's configuration, its scenario, and where its database lives.
pub struct Demo {
    pub config: Config,
    pub scenario: Scenario,
    pub database_path: PathBuf,
}

/// Builds the demo: three accounts, a generated day of activity for [`DEMO_USERS`] people, a
/// clock 60 times faster than real time (a poll round every one or two seconds), a new admin
/// token and a new database file under `dir`.
pub fn demo(dir: &std::path::Path, bind: std::net::SocketAddr, clock_speed: f64) -> Demo {
    let database_path = dir.join(format!("tgwatch-demo-{}.db", uuid::Uuid::new_v4().simple()));
    let scenario = Scenario::generated(DEMO_USERS, 2026);
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}?mode=rwc", database_path.display());
    config.http.bind = bind;
    config.http.admin_token = Some(Secret::new(uuid::Uuid::new_v4().simple().to_string()));
    config.telegram.clock_speed = clock_speed;
    config.presence.batch_delay_seconds = 10;
    config.accounts = ["demo-main", "demo-backup", "demo-spare"]
        .into_iter()
        .map(|label| AccountConfig {
            label: label.to_owned(),
            phone: None,
            api_id: None,
            max_targets: 1000,
            max_channels: 100,
        })
        .collect();
    config.tracked_users = scenario
        .users
        .iter()
        .map(|user| TrackedUserConfig {
            username: user.username.clone(),
            telegram_user_id: None,
            account: None,
            notify: user.push,
        })
        .collect();
    Demo {
        config,
        scenario,
        database_path,
    }
}
