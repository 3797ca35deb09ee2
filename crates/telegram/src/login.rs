//! The grammers side of logging an account in: phone code, 2FA password, QR code.
//!
//! A [`LoginClient`] runs its own sender pool over the account's (not yet logged-in) session and
//! is dropped when the login ends; the account's regular connection starts afterwards, since
//! grammers must not run two pools over one session.
//!
//! The code step calls `auth.signIn` itself rather than grammers' `sign_in`, which folds every
//! `PHONE_CODE_*` error into "invalid code": a user must be told when a code has expired, so
//! that they ask for a new one instead of retyping the old. It then does what grammers'
//! `complete_login` does (cache the self user with `is_self`, store `updates.getState`), as the
//! QR path must too. The 2FA step uses grammers' `check_password` for its SRP computation.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use grammers_client::{
    Client, SenderPool, SignInError,
    client::PasswordToken,
    sender::{ConnectionParams, NoRetries},
    tl,
};
use grammers_session::updates::UpdatesLike;
use grammers_session::{
    Session,
    types::{PeerAuth, PeerInfo, UpdateState, UpdatesState},
};
use tokio::{sync::mpsc, task::AbortHandle};

use super::{
    TelegramError,
    grammers::{invoke, join_failed, map_invocation_error},
    stored_session::{StoredSession, needs_ipv6},
};

/// Why a login step failed, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the code is wrong; check it and try again")]
    InvalidCode,
    #[error("the code has expired; ask for a new one (POST .../login/phone)")]
    CodeExpired,
    #[error("the 2FA password is wrong")]
    InvalidPassword,
    #[error("Telegram does not know the phone number {phone}")]
    PhoneInvalid { phone: String },
    #[error("this phone number has no Telegram account; create it with an official app first")]
    SignUpRequired,
    #[error("the QR code has expired; ask for a new one (GET .../login/qr)")]
    QrExpired,
    #[error("Telegram refused the api_id/api_hash: {name}")]
    ApiIdInvalid { name: String },
    #[error(transparent)]
    Telegram(#[from] TelegramError),
}

/// The user logged in as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIn {
    pub user_id: i64,
    pub username: Option<String>,
    pub first_name: Option<String>,
}

/// What the code or QR step leads to.
pub enum Step {
    Done(SignedIn),
    /// 2FA is on: the password is needed (with the hint Telegram keeps for it).
    PasswordNeeded {
        token: PasswordToken,
        hint: Option<String>,
    },
}

/// A QR login token to show as `tg://login?token=...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrToken {
    pub url: String,
    /// The token the URL carries, as a phone's camera reads it.
    pub token: Vec<u8>,
    pub expires: DateTime<Utc>,
}

pub enum QrStep {
    /// Not scanned yet: show this.
    Show(QrToken),
    Finished(Step),
}

/// A code sent to the phone, to be typed back.
pub struct SentCode {
    pub phone: String,
    pub phone_code_hash: String,
}

pub struct LoginClient {
    client: Client,
    session: Arc<StoredSession>,
    api_id: i32,
    call_timeout: Duration,
    runner: AbortHandle,
    updates: tokio::sync::Mutex<mpsc::Receiver<UpdatesLike>>,
}

impl Drop for LoginClient {
    fn drop(&mut self) {
        self.client.disconnect();
        self.runner.abort();
    }
}

impl LoginClient {
    pub fn start(session: Arc<StoredSession>, api_id: i32, call_timeout: Duration) -> LoginClient {
        let params = ConnectionParams {
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            retry_policy: Box::new(NoRetries),
            use_ipv6: needs_ipv6(&*session),
            ..ConnectionParams::default()
        };
        let SenderPool {
            runner,
            handle,
            updates,
        } = SenderPool::with_configuration(Arc::clone(&session), api_id, params);
        let runner = tokio::spawn(runner.run()).abort_handle();
        LoginClient {
            client: Client::new(handle),
            session,
            api_id,
            call_timeout,
            runner,
            updates: tokio::sync::Mutex::new(updates),
        }
    }

    /// Makes a login call. When Telegram says the phone or account lives in another DC
    /// (`PHONE_MIGRATE_X`, `USER_MIGRATE_X`), the session moves its home there, where the
    /// login goes on, and the call is made again: the sealed session then keeps that DC.
    async fn call<R>(&self, request: R) -> Result<R::Return, TelegramError>
    where
        R: tl::RemoteCall + Clone + Send + Sync + 'static,
        R::Return: Send + 'static,
    {
        match invoke(&self.client, self.call_timeout, request.clone()).await {
            Err(TelegramError::Migrate { name, dc }) => {
                tracing::info!(%name, dc, "login: moving to the account's DC");
                self.session
                    .set_home_dc_id(dc)
                    .await
                    .map_err(|error| TelegramError::Connection(error.to_string()))?;
                invoke(&self.client, self.call_timeout, request).await
            }
            other => other,
        }
    }

    /// `auth.sendCode`: Telegram sends a code to the account's apps (or by SMS).
    pub async fn send_code(&self, phone: &str, api_hash: &str) -> Result<SentCode, LoginError> {
        let request = tl::functions::auth::SendCode {
            phone_number: phone.to_owned(),
            api_id: self.api_id,
            api_hash: api_hash.to_owned(),
            settings: tl::types::CodeSettings {
                allow_flashcall: false,
                current_number: false,
                allow_app_hash: false,
                allow_missed_call: false,
                allow_firebase: false,
                logout_tokens: None,
                token: None,
                app_sandbox: None,
                unknown_number: false,
            }
            .into(),
        };
        match self.call(request).await {
            Ok(tl::enums::auth::SentCode::Code(code)) => Ok(SentCode {
                phone: phone.to_owned(),
                phone_code_hash: code.phone_code_hash,
            }),
            Ok(tl::enums::auth::SentCode::Success(_)) => {
                Err(LoginError::Telegram(TelegramError::Rpc {
                    code: 400,
                    name: "UNEXPECTED_LOGIN_SUCCESS".into(),
                }))
            }
            Ok(tl::enums::auth::SentCode::PaymentRequired(_)) => {
                Err(LoginError::Telegram(TelegramError::Rpc {
                    code: 400,
                    name: "PAYMENT_REQUIRED".into(),
                }))
            }
            Err(error) => Err(login_error(error, phone)),
        }
    }

    /// `auth.signIn` with the code the user typed.
    pub async fn sign_in(&self, sent: &SentCode, code: &str) -> Result<Step, LoginError> {
        let request = tl::functions::auth::SignIn {
            phone_number: sent.phone.clone(),
            phone_code_hash: sent.phone_code_hash.clone(),
            phone_code: Some(code.trim().to_owned()),
            email_verification: None,
        };
        match self.call(request).await {
            Ok(tl::enums::auth::Authorization::Authorization(authorization)) => {
                self.complete(authorization).await.map(Step::Done)
            }
            Ok(tl::enums::auth::Authorization::SignUpRequired(_)) => {
                Err(LoginError::SignUpRequired)
            }
            Err(TelegramError::Rpc { name, .. }) if name == "SESSION_PASSWORD_NEEDED" => {
                self.password_step().await
            }
            Err(TelegramError::Unauthorized { reason }) if reason == "SESSION_PASSWORD_NEEDED" => {
                self.password_step().await
            }
            Err(error) => Err(login_error(error, &sent.phone)),
        }
    }

    async fn password_step(&self) -> Result<Step, LoginError> {
        let tl::enums::account::Password::Password(password) =
            self.call(tl::functions::account::GetPassword {}).await?;
        let hint = password.hint.clone();
        Ok(Step::PasswordNeeded {
            token: PasswordToken::new(password),
            hint,
        })
    }

    /// The 2FA password. On a wrong one, the step can be tried again with the returned token.
    pub async fn check_password(
        &self,
        token: PasswordToken,
        password: &str,
    ) -> Result<SignedIn, (LoginError, Option<PasswordToken>)> {
        let client = self.client.clone();
        let password = password.to_owned();
        // grammers' SRP computation unwraps parts of Telegram's answer: in a task, so a panic
        // costs this attempt only.
        let task = tokio::spawn(async move { client.check_password(token, password).await });
        let outcome = match tokio::time::timeout(self.call_timeout, task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join_error)) => return Err((join_failed(join_error).into(), None)),
            Err(_) => {
                return Err((
                    TelegramError::Connection("no answer to the 2FA check in time".into()).into(),
                    None,
                ));
            }
        };
        match outcome {
            Ok(user) => {
                // grammers' complete_login cached the self user and the update state.
                Ok(SignedIn {
                    user_id: user.id().bare_id_unchecked(),
                    username: user.username().map(str::to_owned),
                    first_name: user.first_name().map(str::to_owned),
                })
            }
            Err(SignInError::InvalidPassword(token)) => {
                Err((LoginError::InvalidPassword, Some(token)))
            }
            Err(SignInError::SignUpRequired) => Err((LoginError::SignUpRequired, None)),
            Err(SignInError::InvalidCode) => Err((LoginError::InvalidCode, None)),
            Err(SignInError::PasswordRequired(token)) => {
                Err((LoginError::InvalidPassword, Some(token)))
            }
            Err(SignInError::Other(error)) => {
                Err((LoginError::Telegram(map_invocation_error(&error)), None))
            }
        }
    }

    /// `auth.exportLoginToken`: a token to show as a QR code, or the outcome once a logged-in
    /// app has scanned it.
    pub async fn export_qr(&self, api_hash: &str) -> Result<QrStep, LoginError> {
        let request = tl::functions::auth::ExportLoginToken {
            api_id: self.api_id,
            api_hash: api_hash.to_owned(),
            except_ids: Vec::new(),
        };
        match self.call(request).await {
            Ok(tl::enums::auth::LoginToken::Token(token)) => Ok(QrStep::Show(QrToken {
                url: format!("tg://login?token={}", URL_SAFE_NO_PAD.encode(&token.token)),
                token: token.token,
                expires: DateTime::from_timestamp(i64::from(token.expires), 0)
                    .unwrap_or_else(Utc::now),
            })),
            Ok(tl::enums::auth::LoginToken::MigrateTo(migrate)) => {
                // The account lives in another DC: import the token there.
                self.session
                    .set_home_dc_id(migrate.dc_id)
                    .await
                    .map_err(|error| TelegramError::Connection(error.to_string()))?;
                let imported = self
                    .call(tl::functions::auth::ImportLoginToken {
                        token: migrate.token,
                    })
                    .await;
                self.qr_outcome(imported).await
            }
            Ok(tl::enums::auth::LoginToken::Success(success)) => {
                self.qr_outcome(Ok(tl::enums::auth::LoginToken::Success(success)))
                    .await
            }
            Err(error) => self.qr_outcome(Err(error)).await,
        }
    }

    async fn qr_outcome(
        &self,
        answer: Result<tl::enums::auth::LoginToken, TelegramError>,
    ) -> Result<QrStep, LoginError> {
        match answer {
            Ok(tl::enums::auth::LoginToken::Success(success)) => match success.authorization {
                tl::enums::auth::Authorization::Authorization(authorization) => Ok(
                    QrStep::Finished(Step::Done(self.complete(authorization).await?)),
                ),
                tl::enums::auth::Authorization::SignUpRequired(_) => {
                    Err(LoginError::SignUpRequired)
                }
            },
            Ok(
                tl::enums::auth::LoginToken::Token(_) | tl::enums::auth::LoginToken::MigrateTo(_),
            ) => Err(LoginError::Telegram(TelegramError::Rpc {
                code: 400,
                name: "UNEXPECTED_LOGIN_TOKEN".into(),
            })),
            Err(TelegramError::Rpc { name, .. } | TelegramError::Unauthorized { reason: name })
                if name == "SESSION_PASSWORD_NEEDED" =>
            {
                Ok(QrStep::Finished(self.password_step().await?))
            }
            Err(TelegramError::Rpc { name, .. })
                if name == "AUTH_TOKEN_EXPIRED" || name == "AUTH_TOKEN_INVALID" =>
            {
                Err(LoginError::QrExpired)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Waits up to `wait` for Telegram to say that the QR token was scanned
    /// (`updateLoginToken`). Returns whether it did.
    pub async fn wait_for_scan(&self, wait: Duration) -> bool {
        let mut updates = self.updates.lock().await;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, updates.recv()).await {
                Ok(Some(UpdatesLike::Updates(updates))) if holds_login_token(&updates) => {
                    return true;
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Asks Telegram who the session is logged in as and caches the self user, which an
    /// imported session (Telethon keeps none) lacks and grammers' update stream needs.
    pub async fn identify(&self) -> Result<SignedIn, LoginError> {
        let users = self
            .call(tl::functions::users::GetUsers {
                id: vec![tl::enums::InputUser::UserSelf],
            })
            .await?;
        let Some(tl::enums::User::User(user)) = users.into_iter().next() else {
            return Err(LoginError::Telegram(TelegramError::Rpc {
                code: 400,
                name: "USER_EMPTY".into(),
            }));
        };
        self.complete(tl::types::auth::Authorization {
            setup_password_required: false,
            otherwise_relogin_days: None,
            tmp_sessions: None,
            future_auth_token: None,
            user: tl::enums::User::User(user),
        })
        .await
    }

    /// What grammers' `complete_login` does: the self user (with `is_self`, or updates stop
    /// after a reconnect) and the update state go into the session.
    async fn complete(
        &self,
        authorization: tl::types::auth::Authorization,
    ) -> Result<SignedIn, LoginError> {
        let tl::enums::User::User(user) = authorization.user else {
            return Err(LoginError::Telegram(TelegramError::Rpc {
                code: 400,
                name: "USER_EMPTY".into(),
            }));
        };
        let store_failed = |error: super::stored_session::SessionError| {
            TelegramError::Connection(format!("cannot store the session: {error}"))
        };
        self.session
            .cache_peer(PeerInfo::User {
                id: user.id,
                auth: user.access_hash.map(PeerAuth::from_hash),
                bot: Some(user.bot),
                is_self: Some(true),
            })
            .await
            .map_err(store_failed)?;
        if let Ok(tl::enums::updates::State::State(state)) =
            self.call(tl::functions::updates::GetState {}).await
        {
            self.session
                .set_update_state(UpdateState::All(UpdatesState {
                    pts: state.pts,
                    qts: state.qts,
                    date: state.date,
                    seq: state.seq,
                    channels: Vec::new(),
                }))
                .await
                .map_err(store_failed)?;
        }
        Ok(SignedIn {
            user_id: user.id,
            username: user.username,
            first_name: user.first_name,
        })
    }
}

fn holds_login_token(updates: &tl::enums::Updates) -> bool {
    let is_login_token =
        |update: &tl::enums::Update| matches!(update, tl::enums::Update::LoginToken);
    match updates {
        tl::enums::Updates::UpdateShort(short) => is_login_token(&short.update),
        tl::enums::Updates::Updates(many) => many.updates.iter().any(is_login_token),
        tl::enums::Updates::Combined(many) => many.updates.iter().any(is_login_token),
        _ => false,
    }
}

fn login_error(error: TelegramError, phone: &str) -> LoginError {
    match &error {
        TelegramError::Rpc { name, .. } => match name.as_str() {
            "PHONE_CODE_EXPIRED" => LoginError::CodeExpired,
            "PHONE_CODE_INVALID" | "PHONE_CODE_EMPTY" | "PHONE_CODE_HASH_EMPTY" => {
                LoginError::InvalidCode
            }
            "PHONE_NUMBER_INVALID" | "PHONE_NUMBER_BANNED" | "PHONE_NUMBER_UNOCCUPIED" => {
                LoginError::PhoneInvalid {
                    phone: phone.to_owned(),
                }
            }
            "API_ID_INVALID" | "API_ID_PUBLISHED_FLOOD" => {
                LoginError::ApiIdInvalid { name: name.clone() }
            }
            _ => LoginError::Telegram(error),
        },
        _ => LoginError::Telegram(error),
    }
}
