//! Logging accounts in: by phone code (+ 2FA password) or QR code, for the HTTP endpoints and,
//! through them, `tgwatch login`.
//!
//! A login in progress lives in memory ([`Logins`]): grammers' login and password tokens cannot
//! be stored, and a login that a restart interrupts simply starts over. Every code and password
//! tried, and every QR login, is recorded in `auth_attempts`; wrong codes and passwords are
//! limited per account and per client address ([`limits`]).
//!
//! Logins run on wall-clock time, not the service clock: codes and QR tokens expire in
//! Telegram's real seconds, and the limits are about how fast a person (or an attacker) types.
//!
//! When a login succeeds, its session is already stored (sealed) by [`StoredSession`]; the login
//! client is dropped, the session is handed to the connector, and the account actor restarts
//! and connects with it.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use grammers_client::client::PasswordToken;
use grammers_session::SessionData;
use sea_orm::DatabaseConnection;
use serde::Serialize;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::{
    TelegramError,
    grammers::GrammersConnector,
    login::{LoginClient, LoginError, QrStep, QrToken, SentCode, SignedIn, Step},
    stored_session::{PersistedSession, SessionError, SessionStore, StoredSession},
};
use tgwatch_core::login_limits::{self as limits, LoginLimits};
use tgwatch_core::{clock::Clock, vault::Vault};
use tgwatch_store::{
    self as storage, StorageError,
    auth_attempts::{AttemptKind, AttemptStatus},
    entities::accounts,
};

/// Where a new login's session comes from: Telegram's DC list (a key exchange follows), or, in
/// the sandbox, a pre-shared key the sandbox knows. Any `Fn() -> SessionData` is one.
pub trait SessionSource: Send + Sync {
    /// The session a new login starts from.
    fn fresh(&self) -> SessionData;

    /// The demo's stand-in for the phone a person scans a QR login code with; only the demo's
    /// sandbox has one (`None` on real Telegram, where a person holds the phone).
    fn demo_phone(&self) -> Option<&dyn DemoPhone> {
        None
    }
}

impl<F: Fn() -> SessionData + Send + Sync> SessionSource for F {
    fn fresh(&self) -> SessionData {
        self()
    }
}

/// Makes the session a new login starts from (see [`SessionSource`]).
pub type FreshSession = Arc<dyn SessionSource>;

/// A logged-in Telegram app of every account of the demo's sandbox: it scans a QR login code
/// as the person would (Settings > Devices > Link Desktop Device).
pub trait DemoPhone: Send + Sync {
    /// Accepts the QR login `token` with the app of the account labelled `account`.
    fn scan(&self, account: &str, token: &[u8]) -> Result<(), String>;
}

/// How long the QR waiter listens for a scan before checking the token's expiry again.
const QR_WAIT_SLICE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum LoginsError {
    #[error("no account with id {0}")]
    UnknownAccount(Uuid),
    #[error("the account is already logged in; reset its session first (POST .../session/reset)")]
    AlreadyLoggedIn,
    #[error("no login is waiting for {expected} on this account; start with {start}")]
    WrongStep {
        expected: &'static str,
        start: &'static str,
    },
    #[error(
        "no api_hash for this account: pass `api_hash` (from my.telegram.org), keep one with the account (`api_hash` of /tracker-accounts/) or set telegram.api_hash"
    )]
    NoApiHash,
    #[error("too many wrong codes or passwords; try again in {} s", retry_after.as_secs())]
    TooManyAttempts { retry_after: Duration },
    #[error("the demo phone could not scan the QR code: {0}")]
    DemoScan(String),
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Where a login stands, for `GET .../login/status`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LoginStatus {
    /// none / code_sent / password_needed / qr_pending / qr_expired / logged_in
    pub state: &'static str,
    pub phone: Option<String>,
    pub password_hint: Option<String>,
    pub qr_url: Option<String>,
    pub qr_expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub is_authorized: bool,
}

enum Stage {
    CodeSent(SentCode),
    PasswordNeeded {
        token: PasswordToken,
        hint: Option<String>,
    },
    QrPending {
        token: QrToken,
        attempt: Uuid,
    },
    QrExpired,
}

struct Pending {
    client: Arc<LoginClient>,
    session: Arc<StoredSession>,
    stage: Stage,
    api_hash: String,
    last_error: Option<String>,
}

/// What a finished login hands its account to: the service restarts the account's actors (and
/// its tracked users') with the new session.
#[async_trait::async_trait]
pub trait AccountRestarter: Send + Sync {
    async fn restart_account(&self, account_id: Uuid) -> Result<(), StorageError>;
}

/// The logins in progress, and what they need.
pub struct Logins {
    db: DatabaseConnection,
    vault: Arc<Vault>,
    clock: Clock,
    store: SessionStore,
    connector: Arc<GrammersConnector>,
    restarter: Arc<dyn AccountRestarter>,
    fresh_session: FreshSession,
    default_api_hash: Option<String>,
    limits: LoginLimits,
    pending: Mutex<HashMap<Uuid, Pending>>,
    /// Accounts whose login succeeded and whose actor is being restarted with the new session:
    /// their status says `logging_in` until the account can take work, not `logged_in`.
    finishing: Mutex<std::collections::HashSet<Uuid>>,
}

impl Logins {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        vault: Arc<Vault>,
        clock: Clock,
        connector: Arc<GrammersConnector>,
        restarter: Arc<dyn AccountRestarter>,
        fresh_session: FreshSession,
        default_api_hash: Option<String>,
        limits: LoginLimits,
    ) -> Arc<Logins> {
        Arc::new(Logins {
            store: SessionStore {
                db: db.clone(),
                vault: Arc::clone(&vault),
                clock,
            },
            db,
            vault,
            clock,
            connector,
            restarter,
            fresh_session,
            default_api_hash,
            limits,
            pending: Mutex::new(HashMap::new()),
            finishing: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// The master key's vault (to read session info).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    async fn account(&self, account_id: Uuid) -> Result<accounts::Model, LoginsError> {
        storage::accounts::get(&self.db, account_id)
            .await?
            .ok_or(LoginsError::UnknownAccount(account_id))
    }

    /// A login client over a brand-new session of the account, replacing any login in progress.
    async fn begin(
        &self,
        account: &accounts::Model,
        api_hash: Option<String>,
    ) -> Result<Pending, LoginsError> {
        if account.is_authorized {
            return Err(LoginsError::AlreadyLoggedIn);
        }
        let kept = match api_hash.filter(|hash| !hash.trim().is_empty()) {
            Some(given) => Some(given),
            None => storage::account_sessions::load(&self.db, &self.vault, account.id)
                .await?
                .and_then(|row| row.api_hash),
        };
        let api_hash = kept
            .or_else(|| self.default_api_hash.clone())
            .ok_or(LoginsError::NoApiHash)?;
        let session = Arc::new(StoredSession::new(
            account.id,
            self.fresh_session.fresh(),
            self.store.clone(),
        ));
        session.persist().await?;
        storage::account_sessions::save_secrets(
            &self.db,
            &self.vault,
            account.id,
            Some(&api_hash),
            None,
        )
        .await?;
        let api_id = account.api_id.unwrap_or(self.connector.api_id());
        let client = Arc::new(LoginClient::start(
            Arc::clone(&session),
            api_id,
            self.connector.call_timeout(),
        ));
        Ok(Pending {
            client,
            session,
            stage: Stage::QrExpired,
            api_hash,
            last_error: None,
        })
    }

    /// Keeps `api_hash` (sealed, beside the account's session) for the account's logins that
    /// are given none. An account without a session gets a logged-out one to hold it.
    pub async fn keep_api_hash(&self, account_id: Uuid, api_hash: &str) -> Result<(), LoginsError> {
        let stored = storage::account_sessions::load(&self.db, &self.vault, account_id).await?;
        if stored.is_none() {
            StoredSession::new(account_id, self.fresh_session.fresh(), self.store.clone())
                .persist()
                .await?;
        }
        storage::account_sessions::save_secrets(
            &self.db,
            &self.vault,
            account_id,
            Some(api_hash),
            None,
        )
        .await?;
        Ok(())
    }

    /// `POST .../login/phone`: Telegram sends a code to the account's apps.
    pub async fn send_code(
        &self,
        account_id: Uuid,
        phone: Option<String>,
        api_hash: Option<String>,
    ) -> Result<LoginStatus, LoginsError> {
        let account = self.account(account_id).await?;
        let phone = phone
            .or(account.phone.clone())
            .filter(|phone| !phone.trim().is_empty())
            .ok_or(LoginsError::Login(LoginError::PhoneInvalid {
                phone: "(none given, and the account has no phone)".into(),
            }))?;
        let mut pending = self.begin(&account, api_hash).await?;
        let sent = pending.client.send_code(&phone, &pending.api_hash).await?;
        tracing::info!(account = %account.label, "login code sent");
        pending.stage = Stage::CodeSent(sent);
        let mut all = self.pending.lock().await;
        all.insert(account_id, pending);
        Ok(status_of(all.get(&account_id), &account, self.clock))
    }

    /// Refuses with 429 when this account or this client has too many recent failures.
    async fn check_limits(
        &self,
        account_id: Uuid,
        client_addr: Option<&str>,
    ) -> Result<(), LoginsError> {
        let now = Utc::now();
        let (by_account, by_client) = storage::auth_attempts::recent_failures(
            &self.db,
            account_id,
            client_addr,
            now - self.limits.window,
        )
        .await?;
        let wait = [by_account, by_client]
            .iter()
            .filter_map(|failures| limits::retry_after(failures, now, self.limits))
            .max();
        match wait {
            Some(wait) => Err(LoginsError::TooManyAttempts {
                retry_after: wait
                    .to_std()
                    .unwrap_or_default()
                    .max(Duration::from_secs(1)),
            }),
            None => Ok(()),
        }
    }

    async fn record(
        &self,
        account_id: Uuid,
        kind: AttemptKind,
        client_addr: Option<&str>,
        outcome: Result<(), &str>,
    ) -> Result<(), StorageError> {
        let now = Utc::now();
        let id =
            storage::auth_attempts::start(&self.db, account_id, kind, client_addr, now).await?;
        let (status, error) = match outcome {
            Ok(()) => (AttemptStatus::Success, None),
            Err(error) => (AttemptStatus::Failed, Some(error)),
        };
        storage::auth_attempts::finish(&self.db, id, status, error, now).await
    }

    /// `POST .../login/code`.
    pub async fn submit_code(
        self: &Arc<Self>,
        account_id: Uuid,
        code: &str,
        client_addr: Option<&str>,
    ) -> Result<LoginStatus, LoginsError> {
        self.check_limits(account_id, client_addr).await?;
        let mut all = self.pending.lock().await;
        let pending = match all.get_mut(&account_id) {
            Some(
                pending @ Pending {
                    stage: Stage::CodeSent(_),
                    ..
                },
            ) => pending,
            _ => {
                return Err(LoginsError::WrongStep {
                    expected: "a code",
                    start: "POST .../login/phone",
                });
            }
        };
        let Stage::CodeSent(sent) = &pending.stage else {
            return Err(LoginsError::WrongStep {
                expected: "a code",
                start: "POST .../login/phone",
            });
        };
        let outcome = pending.client.sign_in(sent, code).await;
        let step = self
            .settle(
                account_id,
                AttemptKind::Phone,
                client_addr,
                pending,
                outcome,
            )
            .await?;
        drop(all);
        self.advance(account_id, step).await
    }

    /// `POST .../login/password`.
    pub async fn submit_password(
        self: &Arc<Self>,
        account_id: Uuid,
        password: &str,
        client_addr: Option<&str>,
    ) -> Result<LoginStatus, LoginsError> {
        self.check_limits(account_id, client_addr).await?;
        let mut all = self.pending.lock().await;
        let Some(pending) = all.get_mut(&account_id) else {
            return Err(LoginsError::WrongStep {
                expected: "a 2FA password",
                start: "POST .../login/phone or GET .../login/qr",
            });
        };
        let Stage::PasswordNeeded { .. } = pending.stage else {
            return Err(LoginsError::WrongStep {
                expected: "a 2FA password",
                start: "POST .../login/phone or GET .../login/qr",
            });
        };
        // The token is consumed by the check; a wrong password hands a new one back.
        let Stage::PasswordNeeded { token, hint } =
            std::mem::replace(&mut pending.stage, Stage::QrExpired)
        else {
            return Err(LoginsError::WrongStep {
                expected: "a 2FA password",
                start: "POST .../login/phone or GET .../login/qr",
            });
        };
        let outcome = match pending.client.check_password(token, password).await {
            Ok(signed_in) => Ok(Step::Done(signed_in)),
            Err((error, token)) => {
                if let Some(token) = token {
                    pending.stage = Stage::PasswordNeeded { token, hint };
                }
                Err(error)
            }
        };
        let step = self
            .settle(
                account_id,
                AttemptKind::TwoFactor,
                client_addr,
                pending,
                outcome,
            )
            .await?;
        drop(all);
        self.advance(account_id, step).await
    }

    /// Records the outcome of a code or password try; a failure keeps the login where it was.
    async fn settle(
        &self,
        account_id: Uuid,
        kind: AttemptKind,
        client_addr: Option<&str>,
        pending: &mut Pending,
        outcome: Result<Step, LoginError>,
    ) -> Result<Option<Step>, LoginsError> {
        match outcome {
            Ok(step) => {
                self.record(account_id, kind, client_addr, Ok(())).await?;
                pending.last_error = None;
                Ok(Some(step))
            }
            Err(error) => {
                let counted = matches!(
                    error,
                    LoginError::InvalidCode | LoginError::InvalidPassword | LoginError::CodeExpired
                );
                let message = error.to_string();
                if counted {
                    self.record(account_id, kind, client_addr, Err(&message))
                        .await?;
                }
                tracing::warn!(%account_id, kind = kind.as_str(), error = %message, "login step failed");
                pending.last_error = Some(message);
                Err(error.into())
            }
        }
    }

    /// Moves a login on after a successful step: to the password, or to the end.
    async fn advance(
        self: &Arc<Self>,
        account_id: Uuid,
        step: Option<Step>,
    ) -> Result<LoginStatus, LoginsError> {
        match step {
            Some(Step::Done(signed_in)) => self.finish(account_id, signed_in).await?,
            Some(Step::PasswordNeeded { token, hint }) => {
                if let Some(hint) = &hint {
                    storage::account_sessions::save_secrets(
                        &self.db,
                        &self.vault,
                        account_id,
                        None,
                        Some(hint),
                    )
                    .await?;
                }
                if let Some(pending) = self.pending.lock().await.get_mut(&account_id) {
                    pending.stage = Stage::PasswordNeeded { token, hint };
                }
            }
            None => {}
        }
        self.status(account_id).await
    }

    /// The login succeeded: the session goes to the account's connection.
    async fn finish(&self, account_id: Uuid, signed_in: SignedIn) -> Result<(), LoginsError> {
        let pending = {
            let mut all = self.pending.lock().await;
            let Some(pending) = all.remove(&account_id) else {
                return Ok(());
            };
            // Under the same lock: the status never shows neither the stage nor this.
            self.finishing.lock().await.insert(account_id);
            pending
        };
        let finished = self.hand_over(account_id, pending, signed_in).await;
        self.finishing.lock().await.remove(&account_id);
        finished
    }

    /// Stores the logged-in session, marks the account logged in and restarts its actor on it.
    async fn hand_over(
        &self,
        account_id: Uuid,
        pending: Pending,
        signed_in: SignedIn,
    ) -> Result<(), LoginsError> {
        // The login's pool must stop before the account's own pool uses the session.
        drop(pending.client);
        pending.session.persist().await?;
        storage::account_sessions::mark_authorized(
            &self.db,
            account_id,
            signed_in.user_id,
            signed_in.username.as_deref(),
            self.clock.now(),
        )
        .await?;
        let account = self.account(account_id).await?;
        self.connector
            .register(account.label.clone(), pending.session);
        tracing::info!(account = %account.label, telegram_user_id = signed_in.user_id, "account logged in");
        storage::logs::write(
            &self.db,
            storage::LogLevel::Info,
            &format!(
                "account {} logged in as user {}",
                account.label, signed_in.user_id
            ),
            Some(account_id),
            None,
            self.clock.now(),
        )
        .await;
        self.restarter.restart_account(account_id).await?;
        Ok(())
    }

    /// `GET .../login/qr`: the current QR token, or a new one when there is none or it expired.
    /// A task then waits for the scan and finishes the login (or asks for the 2FA password).
    pub async fn qr(
        self: &Arc<Self>,
        account_id: Uuid,
        api_hash: Option<String>,
        client_addr: Option<&str>,
    ) -> Result<QrToken, LoginsError> {
        let account = self.account(account_id).await?;
        let mut all = self.pending.lock().await;
        if let Some(Pending {
            stage: Stage::QrPending { token, .. },
            ..
        }) = all.get(&account_id)
            && token.expires > Utc::now()
        {
            return Ok(token.clone());
        }
        let reuse = matches!(
            all.get(&account_id),
            Some(Pending {
                stage: Stage::QrExpired,
                ..
            })
        );
        let mut pending = match all.remove(&account_id) {
            Some(pending) if reuse => pending,
            _ => self.begin(&account, api_hash).await?,
        };
        let step = pending.client.export_qr(&pending.api_hash).await?;
        let token = match step {
            QrStep::Show(token) => token,
            // Already accepted (a scan raced this request): nothing to show.
            QrStep::Finished(_) => {
                return Err(LoginsError::WrongStep {
                    expected: "a QR code",
                    start: "GET .../login/status",
                });
            }
        };
        let attempt = storage::auth_attempts::start(
            &self.db,
            account_id,
            AttemptKind::Qr,
            client_addr,
            Utc::now(),
        )
        .await?;
        pending.stage = Stage::QrPending {
            token: token.clone(),
            attempt,
        };
        let client = Arc::clone(&pending.client);
        all.insert(account_id, pending);
        drop(all);
        tokio::spawn(Arc::clone(self).wait_for_qr_scan(account_id, client, token.clone(), attempt));
        Ok(token)
    }

    /// Listens for the scan until the token expires; then finishes the login, asks for the
    /// password, or marks the QR code expired.
    async fn wait_for_qr_scan(
        self: Arc<Self>,
        account_id: Uuid,
        client: Arc<LoginClient>,
        token: QrToken,
        attempt: Uuid,
    ) {
        let scanned = loop {
            if client.wait_for_scan(QR_WAIT_SLICE).await {
                break true;
            }
            if token.expires <= Utc::now() || !self.is_current_qr(account_id, attempt).await {
                break false;
            }
        };
        let outcome = if scanned {
            match client
                .export_qr(&self.pending_api_hash(account_id).await)
                .await
            {
                Ok(QrStep::Finished(step)) => Ok(step),
                Ok(QrStep::Show(_)) => Err(LoginError::QrExpired),
                Err(error) => Err(error),
            }
        } else {
            Err(LoginError::QrExpired)
        };
        let (status, error) = match &outcome {
            Ok(_) => (AttemptStatus::Success, None),
            Err(LoginError::QrExpired) => (
                AttemptStatus::Timeout,
                Some(LoginError::QrExpired.to_string()),
            ),
            Err(error) => (AttemptStatus::Failed, Some(error.to_string())),
        };
        if let Err(error) =
            storage::auth_attempts::finish(&self.db, attempt, status, error.as_deref(), Utc::now())
                .await
        {
            tracing::error!(%error, "cannot record the end of a QR login");
        }
        match outcome {
            Ok(step) => {
                if let Err(error) = self.advance(account_id, Some(step)).await {
                    tracing::error!(%account_id, %error, "QR login could not be completed");
                    self.note_error(account_id, error.to_string()).await;
                }
            }
            Err(error) => {
                let mut all = self.pending.lock().await;
                if let Some(pending) = all.get_mut(&account_id)
                    && matches!(&pending.stage, Stage::QrPending { attempt: current, .. } if *current == attempt)
                {
                    pending.stage = Stage::QrExpired;
                    pending.last_error = Some(error.to_string());
                }
            }
        }
    }

    /// Whether QR codes can be scanned with the demo's phone ([`Logins::scan_with_demo_phone`]).
    pub fn has_demo_phone(&self) -> bool {
        self.fresh_session.demo_phone().is_some()
    }

    /// The demo only: the account's pending QR code is scanned with the account's own phone in
    /// the sandbox, as a person would scan it; the waiting login then finishes (or asks for the
    /// 2FA password) as after any scan. `None` when there is no demo phone.
    pub async fn scan_with_demo_phone(&self, account_id: Uuid) -> Option<Result<(), LoginsError>> {
        let phone = self.fresh_session.demo_phone()?;
        Some(self.scan_with(phone, account_id).await)
    }

    async fn scan_with(&self, phone: &dyn DemoPhone, account_id: Uuid) -> Result<(), LoginsError> {
        let account = self.account(account_id).await?;
        let token = match self.pending.lock().await.get(&account_id) {
            Some(Pending {
                stage: Stage::QrPending { token, .. },
                ..
            }) => token.token.clone(),
            _ => {
                return Err(LoginsError::WrongStep {
                    expected: "a scan of the QR code",
                    start: "GET .../login/qr",
                });
            }
        };
        phone
            .scan(&account.label, &token)
            .map_err(LoginsError::DemoScan)
    }

    async fn is_current_qr(&self, account_id: Uuid, attempt: Uuid) -> bool {
        matches!(
            self.pending.lock().await.get(&account_id),
            Some(Pending { stage: Stage::QrPending { attempt: current, .. }, .. }) if *current == attempt
        )
    }

    async fn pending_api_hash(&self, account_id: Uuid) -> String {
        self.pending
            .lock()
            .await
            .get(&account_id)
            .map(|pending| pending.api_hash.clone())
            .unwrap_or_default()
    }

    async fn note_error(&self, account_id: Uuid, error: String) {
        if let Some(pending) = self.pending.lock().await.get_mut(&account_id) {
            pending.last_error = Some(error);
        }
    }

    /// `GET .../login/status`.
    pub async fn status(&self, account_id: Uuid) -> Result<LoginStatus, LoginsError> {
        let account = self.account(account_id).await?;
        let all = self.pending.lock().await;
        let mut status = status_of(all.get(&account_id), &account, self.clock);
        if self.finishing.lock().await.contains(&account_id) {
            status.state = "logging_in";
        }
        Ok(status)
    }

    /// `POST .../session/reset`: forgets the session; the account must log in again.
    pub async fn reset(&self, account_id: Uuid) -> Result<bool, LoginsError> {
        let account = self.account(account_id).await?;
        self.pending.lock().await.remove(&account_id);
        self.connector.unregister(&account.label);
        let deleted =
            storage::account_sessions::delete(&self.db, account_id, self.clock.now()).await?;
        tracing::info!(account = %account.label, "session reset");
        self.restarter.restart_account(account_id).await?;
        Ok(deleted)
    }

    /// Stores an imported session as the account's, and connects with it.
    pub async fn import(
        &self,
        account_id: Uuid,
        session: PersistedSession,
        api_hash: Option<String>,
    ) -> Result<(), LoginsError> {
        let account = self.account(account_id).await?;
        let stored = import_session(
            &self.store,
            &account,
            session,
            api_hash,
            self.connector.api_id(),
            self.connector.call_timeout(),
        )
        .await?;
        self.pending.lock().await.remove(&account_id);
        self.connector
            .register(account.label.clone(), Arc::new(stored));
        self.restarter.restart_account(account_id).await?;
        Ok(())
    }
}

/// Asks Telegram who `session` is logged in as (which proves that it works, and gives it the
/// self user that Telethon sessions lack) and only then stores it (sealed) as the account's,
/// with `api_hash`, and marks the account logged in. Until the check passes nothing is written:
/// a wrong string or a network failure leaves the account's working session and api_hash as
/// they were. Used by the import endpoint and by `tgwatch import-session` (with the service
/// stopped: one pool per session).
pub async fn import_session(
    store: &SessionStore,
    account: &accounts::Model,
    session: PersistedSession,
    api_hash: Option<String>,
    api_id: i32,
    call_timeout: Duration,
) -> Result<StoredSession, LoginsError> {
    if !session.has_auth_key() {
        return Err(LoginsError::Session(SessionError::Format(
            "the session has no auth key for its home DC: it was never logged in".into(),
        )));
    }
    let SessionStore { db, vault, clock } = store;
    let trial = Arc::new(StoredSession::unsaved(
        account.id,
        session.into_data(),
        store.clone(),
    ));
    let signed_in = {
        let client = LoginClient::start(
            Arc::clone(&trial),
            account.api_id.unwrap_or(api_id),
            call_timeout,
        );
        client.identify().await?
    };
    trial.persist().await?;
    storage::account_sessions::save_secrets(db, vault, account.id, api_hash.as_deref(), None)
        .await?;
    storage::account_sessions::mark_authorized(
        db,
        account.id,
        signed_in.user_id,
        signed_in.username.as_deref(),
        clock.now(),
    )
    .await?;
    let data = trial.snapshot().into_data();
    Ok(StoredSession::new(account.id, data, store.clone()))
}

fn status_of(pending: Option<&Pending>, account: &accounts::Model, clock: Clock) -> LoginStatus {
    let mut status = LoginStatus {
        state: if account.is_authorized {
            "logged_in"
        } else {
            "none"
        },
        phone: None,
        password_hint: None,
        qr_url: None,
        qr_expires_at: None,
        last_error: pending.and_then(|pending| pending.last_error.clone()),
        is_authorized: account.is_authorized,
    };
    match pending.map(|pending| &pending.stage) {
        Some(Stage::CodeSent(sent)) => {
            status.state = "code_sent";
            status.phone = Some(sent.phone.clone());
        }
        Some(Stage::PasswordNeeded { hint, .. }) => {
            status.state = "password_needed";
            status.password_hint = hint.clone();
        }
        Some(Stage::QrPending { token, .. }) => {
            status.state = if token.expires > Utc::now() {
                "qr_pending"
            } else {
                "qr_expired"
            };
            status.qr_url = Some(token.url.clone());
            // Telegram's expiry is wall time; shown on the service clock like every other time.
            status.qr_expires_at = Some(clock.from_wall(token.expires));
        }
        Some(Stage::QrExpired) => status.state = "qr_expired",
        None => {}
    }
    status
}

impl From<TelegramError> for LoginsError {
    fn from(error: TelegramError) -> LoginsError {
        LoginsError::Login(LoginError::Telegram(error))
    }
}
