//! config.toml as desired state, applied at start and again whenever the file changes.
//!
//! The [`Reloader`] reads the file every `reload.interval_ms` (real time) and compares a hash of
//! its content with the last one it applied; a new content applies once two looks in a row find
//! it (so a half-written file never applies). Editors that replace the file on save are
//! handled, and no file-system notification crate is needed. A changed file goes through the same pipeline as
//! at start (defaults, file, environment, validation). A file that fails anywhere is refused as a
//! whole: the error, with its line, is logged, written to `GET /api/logs` and shown in
//! `GET /api/health` until a good edit replaces it, and the running configuration stays as it
//! was. An accepted file applies its live parts ([`diff::merge_reloadable`]) through the
//! [`reconcile::ConfigReconciler`]s; changes to the other keys are listed as needing a restart.

pub mod reconcile;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use actix::Addr;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::{
    actors::{messages::SetPresence, supervisor::FleetSupervisor},
    metrics::Metrics,
};
use reconcile::{ConfigReconciler, ReconcileContext};
use tgwatch_core::config::{Config, config_folder};
use tgwatch_core::config::{
    diff,
    locate::{self, ConfigProblem},
};
use tgwatch_store::{self as storage, LogLevel};

/// What `GET /api/health` shows under `config`.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigStatus {
    /// The file being watched; null when the service was built from a configuration in memory.
    pub path: Option<String>,
    pub watching: bool,
    /// When the running configuration was last loaded (service time).
    pub loaded_at: DateTime<Utc>,
    /// Why the last edit was refused; null once a good edit is applied.
    pub last_error: Option<RejectedEdit>,
    /// Keys changed in the file that apply only after a restart.
    pub restart_required: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RejectedEdit {
    /// The first problem.
    #[serde(flatten)]
    pub problem: ConfigProblem,
    /// Every problem with its line, as logged.
    pub text: String,
    pub at: DateTime<Utc>,
}

/// The configuration status shared with the HTTP API.
pub struct ConfigState(Mutex<ConfigStatus>);

impl ConfigState {
    pub fn new(loaded_at: DateTime<Utc>) -> ConfigState {
        ConfigState(Mutex::new(ConfigStatus {
            path: None,
            watching: false,
            loaded_at,
            last_error: None,
            restart_required: Vec::new(),
        }))
    }

    pub fn snapshot(&self) -> ConfigStatus {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut ConfigStatus)) {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Applies the configuration at start and after every edit of the watched file.
#[derive(Clone)]
pub struct Reloader {
    ctx: ReconcileContext,
    /// The configuration the service started with: the reference for keys that need a restart.
    boot: Arc<Config>,
    /// The running configuration; jobs read their settings from it.
    running: Arc<watch::Sender<Arc<Config>>>,
    state: Arc<ConfigState>,
    /// One reconciliation at a time (start-up and reloads).
    lock: Arc<tokio::sync::Mutex<()>>,
    reconcilers: Arc<Vec<Box<dyn ConfigReconciler>>>,
    supervisor: Addr<FleetSupervisor>,
    metrics: Arc<Metrics>,
}

/// What a look at the file found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Content([u8; 32]),
    Unreadable(String),
}

impl Reloader {
    pub fn new(
        ctx: ReconcileContext,
        boot: Config,
        supervisor: Addr<FleetSupervisor>,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        let state = Arc::new(ConfigState::new(ctx.now()));
        let boot = Arc::new(boot);
        Reloader {
            ctx,
            running: Arc::new(watch::channel(Arc::clone(&boot)).0),
            boot,
            state,
            lock: Arc::default(),
            reconcilers: Arc::new(reconcile::reconcilers()),
            supervisor,
            metrics,
        }
    }

    pub fn state(&self) -> Arc<ConfigState> {
        Arc::clone(&self.state)
    }

    /// The running configuration, updated by every accepted edit.
    pub fn running(&self) -> watch::Receiver<Arc<Config>> {
        self.running.subscribe()
    }

    /// Applies the configuration the service started with (in the background: resolving new
    /// users takes a Telegram call each).
    pub fn apply_at_start(&self) {
        let reloader = self.clone();
        actix::spawn(async move {
            let _one_at_a_time = reloader.lock.lock().await;
            let config = reloader.running.borrow().clone();
            reconcile::reconcile_all(&reloader.ctx, &config, &reloader.reconcilers).await;
        });
    }

    /// Watches `path` and applies every edit. The file is read at once: if it differs from the
    /// configuration the service was built with, it applies.
    pub fn watch(&self, path: PathBuf) {
        self.state.update(|status| {
            status.path = Some(path.display().to_string());
            status.watching = true;
        });
        let reloader = self.clone();
        actix::spawn(async move { reloader.watch_loop(path).await });
    }

    async fn watch_loop(self, path: PathBuf) {
        tracing::info!(path = %path.display(), "watching the configuration file");
        // What was last applied (or refused), and a change seen once: a change applies only
        // when the next look finds the same content, so a file caught half-written (an editor
        // writing in place; an empty file is valid TOML) never applies.
        let mut settled: Option<Seen> = None;
        let mut candidate: Option<Seen> = None;
        // The file the service was just built from needs no second application.
        let first = look(&path);
        if self.is_boot_file(&path) {
            settled = Some(first);
        }
        loop {
            let seen = look(&path);
            if settled.as_ref() == Some(&seen) {
                candidate = None;
            } else if candidate.as_ref() == Some(&seen) {
                candidate = None;
                let retry = self.reload(&path, &seen).await;
                settled = (!retry).then_some(seen);
            } else {
                candidate = Some(seen);
            }
            let interval = self.running.borrow().reload.interval_ms;
            tokio::time::sleep(Duration::from_millis(interval.max(10))).await;
        }
    }

    /// Whether the file holds exactly the configuration the service started with.
    fn is_boot_file(&self, path: &Path) -> bool {
        let Ok(text) = std::fs::read_to_string(path) else {
            return false;
        };
        let Ok(file) = locate::check_text(&text, &config_folder(path)) else {
            return false;
        };
        matches!(
            (serde_json::to_value(&file), serde_json::to_value(self.boot.as_ref())),
            (Ok(a), Ok(b)) if a == b
        )
    }

    /// Loads and applies the file. Returns true when it should be tried again (a part of it
    /// could not be applied because the database is away).
    async fn reload(&self, path: &Path, seen: &Seen) -> bool {
        let unreadable = |error: &dyn std::fmt::Display| {
            vec![ConfigProblem {
                message: format!("cannot read the file: {error}"),
                key: None,
                line: None,
                column: None,
            }]
        };
        let loaded = match seen {
            Seen::Unreadable(error) => Err(unreadable(error)),
            Seen::Content(_) => match std::fs::read_to_string(path) {
                Ok(text) if declares_nothing(&text) => Err(vec![ConfigProblem {
                    message: "the file is empty or holds only comments (a truncated file or a \
                              failed deploy?): applying it would stop every account, user and \
                              channel it declared. To remove them all, keep the keys and empty \
                              them: accounts = [], tracked_users = [], channels = []"
                        .to_owned(),
                    key: None,
                    line: None,
                    column: None,
                }]),
                Ok(text) => locate::check_text(&text, &config_folder(path)),
                Err(error) => Err(unreadable(&error)),
            },
        };
        match loaded {
            Ok(file) => self.apply(path, &file).await,
            Err(problems) => {
                self.reject(path, problems).await;
                false
            }
        }
    }

    async fn reject(&self, path: &Path, problems: Vec<ConfigProblem>) {
        let now = self.ctx.now();
        let Some(problem) = problems.first().cloned() else {
            return;
        };
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let text = format!("{}: {}", path.display(), listed.join("; "));
        self.metrics.config_reloads.inc("rejected");
        tracing::error!(
            path = %path.display(),
            line = problem.line,
            key = problem.key.as_deref(),
            problems = problems.len(),
            error = %listed.join("; "),
            "configuration edit refused; the running configuration stays as it was"
        );
        let message = format!("{text} (edit refused; the running configuration stays)");
        storage::logs::write(&self.ctx.db, LogLevel::Error, &message, None, None, now).await;
        self.state.update(|status| {
            status.last_error = Some(RejectedEdit {
                problem,
                text,
                at: now,
            });
        });
    }

    async fn apply(&self, path: &Path, file: &Config) -> bool {
        let _one_at_a_time = self.lock.lock().await;
        let running = self.running.borrow().clone();
        let next = diff::merge_reloadable(&self.boot, file);
        let restart_required = diff::restart_required(&self.boot, file);
        if diff::presence_changed(&running, &next) {
            self.supervisor.do_send(SetPresence(next.presence.clone()));
            tracing::info!(
                poll_min_seconds = next.presence.poll_min_seconds,
                poll_max_seconds = next.presence.poll_max_seconds,
                batch_size = next.presence.batch_size,
                batch_delay_seconds = next.presence.batch_delay_seconds,
                "presence settings changed"
            );
        }
        let outcome = reconcile::reconcile_all(&self.ctx, &next, &self.reconcilers).await;
        self.running.send_replace(Arc::new(next));
        let now = self.ctx.now();
        if !restart_required.is_empty()
            && restart_required != self.state.snapshot().restart_required
        {
            let message = format!(
                "{}: changed settings that apply only after a restart: {}",
                path.display(),
                restart_required.join(", ")
            );
            tracing::warn!(path = %path.display(), keys = ?restart_required, "configuration changes need a restart");
            storage::logs::write(&self.ctx.db, LogLevel::Warning, &message, None, None, now).await;
        }
        self.state.update(|status| {
            status.loaded_at = now;
            status.last_error = None;
            status.restart_required = restart_required;
        });
        self.metrics.config_reloads.inc("applied");
        tracing::info!(
            path = %path.display(),
            failed_sections = outcome.failed_sections.len(),
            failed_items = outcome.failed_items,
            new_failed_items = outcome.new_failed_items,
            "configuration applied{}",
            if outcome.failed_items > 0 {
                " except the items logged as config problems"
            } else {
                ""
            }
        );
        !outcome.failed_sections.is_empty()
    }
}

/// Whether `text` is valid TOML that holds no key at all (nothing, blank lines, comments).
fn declares_nothing(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|table| table.is_empty())
}

/// Reads the file and hashes it.
fn look(path: &Path) -> Seen {
    match std::fs::read(path) {
        Ok(bytes) => Seen::Content(Sha256::digest(&bytes).into()),
        Err(error) => Seen::Unreadable(error.to_string()),
    }
}
