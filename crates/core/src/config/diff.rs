//! What a new configuration changes: which keys apply live and which need a restart. Pure.

use serde_json::Value;

use crate::config::Config;

/// Top-level sections that apply while the service runs.
pub const RELOADABLE_SECTIONS: [&str; 7] = [
    "accounts",
    "tracked_users",
    "channels",
    "jobs",
    "logs",
    "retention",
    "reload",
];

/// Keys of `[presence]` that apply live: the actors read them at every poll. `gap_seconds` and
/// `flush_interval_ms` shape state that is already folded or scheduled: they need a restart.
pub const RELOADABLE_PRESENCE: [&str; 4] = [
    "poll_min_seconds",
    "poll_max_seconds",
    "batch_size",
    "batch_delay_seconds",
];

/// Keys of `[webhooks]` that apply live (the endpoints); the dispatcher's settings need a
/// restart.
pub const RELOADABLE_WEBHOOKS: [&str; 1] = ["endpoints"];

fn reloadable_keys(section: &str) -> Option<&'static [&'static str]> {
    match section {
        "presence" => Some(&RELOADABLE_PRESENCE),
        "webhooks" => Some(&RELOADABLE_WEBHOOKS),
        _ => None,
    }
}

/// The keys whose value differs between the configuration the service started with and the
/// file, and that apply only after a restart (`http.bind`, `database.url`, `presence.gap_seconds`,
/// a whole new section). Only names: values may be secrets.
pub fn restart_required(boot: &Config, file: &Config) -> Vec<String> {
    let (Ok(Value::Object(boot)), Ok(Value::Object(file))) =
        (serde_json::to_value(boot), serde_json::to_value(file))
    else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    let mut sections: Vec<&String> = boot.keys().chain(file.keys()).collect();
    sections.sort();
    sections.dedup();
    for section in sections {
        if RELOADABLE_SECTIONS.contains(&section.as_str()) {
            continue;
        }
        let (old, new) = (boot.get(section), file.get(section));
        if old == new {
            continue;
        }
        match (old, new, reloadable_keys(section)) {
            (Some(Value::Object(old)), Some(Value::Object(new)), live) => {
                let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
                names.sort();
                names.dedup();
                for name in names {
                    let is_live = live.is_some_and(|live| live.contains(&name.as_str()));
                    if !is_live && old.get(name) != new.get(name) {
                        keys.push(format!("{section}.{name}"));
                    }
                }
            }
            _ => keys.push(section.clone()),
        }
    }
    keys
}

/// The configuration to run with: what the service started with, with every live section taken
/// from the file.
pub fn merge_reloadable(boot: &Config, file: &Config) -> Config {
    let mut next = boot.clone();
    next.accounts = file.accounts.clone();
    next.tracked_users = file.tracked_users.clone();
    next.channels = file.channels.clone();
    next.jobs = file.jobs.clone();
    next.logs = file.logs.clone();
    next.retention = file.retention.clone();
    next.reload = file.reload.clone();
    next.presence.poll_min_seconds = file.presence.poll_min_seconds;
    next.presence.poll_max_seconds = file.presence.poll_max_seconds;
    next.presence.batch_size = file.presence.batch_size;
    next.presence.batch_delay_seconds = file.presence.batch_delay_seconds;
    next.webhooks.endpoints = file.webhooks.endpoints.clone();
    next
}

/// Whether the live keys of `[presence]` differ (the actors must be told).
pub fn presence_changed(running: &Config, next: &Config) -> bool {
    let (a, b) = (&running.presence, &next.presence);
    a.poll_min_seconds != b.poll_min_seconds
        || a.poll_max_seconds != b.poll_max_seconds
        || a.batch_size != b.batch_size
        || a.batch_delay_seconds != b.batch_delay_seconds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml(text).expect("valid test config")
    }

    #[test]
    fn same_file_needs_nothing() {
        let boot = config("[http]\nbind = \"127.0.0.1:9000\"\n");
        assert!(restart_required(&boot, &boot.clone()).is_empty());
    }

    #[test]
    fn bind_database_and_gap_need_a_restart_but_live_keys_do_not() {
        let boot = config("[presence]\ngap_seconds = 180\npoll_min_seconds = 60\n");
        let file = config(
            "[http]\nbind = \"127.0.0.1:9999\"\n[database]\nurl = \"sqlite://other.db\"\n\
             [presence]\ngap_seconds = 120\npoll_min_seconds = 30\n\
             [[tracked_users]]\nusername = \"alice_w\"\n\
             [webhooks]\njitter = 0.1\n",
        );
        assert_eq!(
            restart_required(&boot, &file),
            vec![
                "database.url",
                "http.bind",
                "presence.gap_seconds",
                "webhooks.jitter"
            ]
        );
    }

    #[test]
    fn merge_takes_live_sections_from_the_file_and_keeps_the_rest() {
        let boot = config("[http]\nbind = \"127.0.0.1:9000\"\n[presence]\ngap_seconds = 180\n");
        let file = config(
            "[http]\nbind = \"127.0.0.1:9999\"\n[presence]\ngap_seconds = 60\nbatch_size = 50\n\
             [[accounts]]\nlabel = \"second\"\n[logs]\nretention_days = 7\n\
             [retention]\nstatus_checks_days = 3\n",
        );
        let next = merge_reloadable(&boot, &file);
        assert_eq!(next.http.bind, boot.http.bind);
        assert_eq!(next.presence.gap_seconds, 180);
        assert_eq!(next.presence.batch_size, 50);
        assert_eq!(next.accounts.len(), 1);
        assert_eq!(next.logs.retention_days, 7);
        assert_eq!(next.retention.status_checks_days, 3);
        assert!(
            restart_required(&boot, &file)
                .iter()
                .all(|key| !key.starts_with("retention"))
        );
        assert!(presence_changed(&boot, &next));
        assert!(!presence_changed(&next, &merge_reloadable(&boot, &file)));
    }
}
