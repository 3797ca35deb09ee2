//! Logins against the sandbox with the REAL grammers client, over real TCP on 127.0.0.1: by
//! phone code, with 2FA (SRP), by QR code, and the ways each can fail.
//!
//! Every step runs under a timeout so that a protocol bug fails the test instead of hanging it.
//! Steps that derive a 2FA key get a longer one: PBKDF2 with 100 000 rounds plus grammers'
//! primality check of the SRP prime take seconds in a debug build.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::time::Duration;

use grammers_client::client::{LoginToken, PasswordToken};
use grammers_client::session::Session;
use grammers_client::session::types::{PeerId, PeerInfo};
use grammers_client::update::Update;
use grammers_client::{InvocationError, SignInError, tl};
use support::{API_ID, TestClient, rpc_error, within, within_for};
use tgwatch_sandbox::{AccountId, Ban, Sandbox, SandboxError, UserStatus};

const API_HASH: &str = "0123456789abcdef0123456789abcdef";
const PHONE: &str = "+1 415 555 0132";
/// For steps that run the 2FA key derivation (see the module docs).
const KDF_STEP: Duration = Duration::from_secs(60);

/// The login steps, on a client of a fresh session ([`TestClient::fresh`]).
impl TestClient {
    /// Asks for a login code for [`PHONE`] and reads the code the sandbox sent.
    async fn request_code(&self, sandbox: &Sandbox) -> (LoginToken, String) {
        let token = within(
            "request_login_code",
            self.client.request_login_code(PHONE, API_HASH),
        )
        .await
        .expect("request_login_code");
        let code = sandbox.login_code(PHONE).expect("code");
        (token, code)
    }

    async fn is_authorized(&self) -> bool {
        within("is_authorized", self.client.is_authorized())
            .await
            .expect("is_authorized")
    }

    async fn invoke<R: tl::RemoteCall>(
        &self,
        what: &str,
        request: &R,
    ) -> Result<R::Return, InvocationError> {
        within(what, self.client.invoke(request)).await
    }

    async fn send_code(&self, phone: &str) -> Result<String, InvocationError> {
        let sent = self
            .invoke(
                "auth.sendCode",
                &tl::functions::auth::SendCode {
                    phone_number: phone.to_owned(),
                    api_id: API_ID,
                    api_hash: API_HASH.to_owned(),
                    settings: tl::enums::CodeSettings::Settings(tl::types::CodeSettings {
                        allow_flashcall: false,
                        current_number: false,
                        allow_app_hash: false,
                        allow_missed_call: false,
                        allow_firebase: false,
                        unknown_number: false,
                        logout_tokens: None,
                        token: None,
                        app_sandbox: None,
                    }),
                },
            )
            .await?;
        let tl::enums::auth::SentCode::Code(sent) = sent else {
            panic!("expected auth.sentCode, got {sent:?}");
        };
        assert_eq!(
            sent.r#type,
            tl::enums::auth::SentCodeType::App(tl::types::auth::SentCodeTypeApp { length: 5 })
        );
        Ok(sent.phone_code_hash)
    }

    async fn raw_sign_in(
        &self,
        phone: &str,
        phone_code_hash: &str,
        code: &str,
    ) -> Result<tl::enums::auth::Authorization, InvocationError> {
        self.invoke(
            "auth.signIn",
            &tl::functions::auth::SignIn {
                phone_number: phone.to_owned(),
                phone_code_hash: phone_code_hash.to_owned(),
                phone_code: Some(code.to_owned()),
                email_verification: None,
            },
        )
        .await
    }

    async fn export_login_token(&self) -> tl::enums::auth::LoginToken {
        self.invoke(
            "auth.exportLoginToken",
            &tl::functions::auth::ExportLoginToken {
                api_id: API_ID,
                api_hash: API_HASH.to_owned(),
                except_ids: Vec::new(),
            },
        )
        .await
        .expect("exportLoginToken")
    }

    /// A fresh QR token (and its expiry) from `auth.exportLoginToken`.
    async fn qr_token(&self) -> (Vec<u8>, i32) {
        match self.export_login_token().await {
            tl::enums::auth::LoginToken::Token(token) => (token.token, token.expires),
            other => panic!("expected a token, got {other:?}"),
        }
    }

    async fn get_password(&self) -> tl::types::account::Password {
        self.invoke(
            "account.getPassword",
            &tl::functions::account::GetPassword {},
        )
        .await
        .expect("getPassword")
        .into()
    }

    /// The account this client is logged in as, by `users.getUsers([self])`.
    async fn self_id(&self) -> i64 {
        let users = self
            .invoke(
                "users.getUsers",
                &tl::functions::users::GetUsers {
                    id: vec![tl::enums::InputUser::UserSelf],
                },
            )
            .await
            .expect("getUsers");
        match users.as_slice() {
            [tl::enums::User::User(user)] => {
                assert!(user.is_self);
                user.id
            }
            other => panic!("expected the self user, got {other:?}"),
        }
    }
}

fn assert_rpc_error(result: Result<impl std::fmt::Debug, InvocationError>, code: i32, name: &str) {
    let error = rpc_error(result);
    assert_eq!((error.code, error.name.as_str()), (code, name), "{error:?}");
}

/// A code that is not `code`.
fn wrong_code(code: &str) -> &'static str {
    if code == "00000" { "11111" } else { "00000" }
}

fn authorized_user(authorization: tl::enums::auth::Authorization) -> tl::types::User {
    match authorization {
        tl::enums::auth::Authorization::Authorization(authorization) => match authorization.user {
            tl::enums::User::User(user) => user,
            other => panic!("expected a user, got {other:?}"),
        },
        other => panic!("expected an authorization, got {other:?}"),
    }
}

async fn start_with_account() -> (Sandbox, AccountId) {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    let account = sandbox
        .add_account(1000, 77, Some("watcher"), "Watcher")
        .expect("account");
    sandbox.set_phone(account, PHONE).expect("phone");
    (sandbox, account)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_code() {
    let (sandbox, account) = start_with_account().await;
    let fresh = TestClient::fresh(&sandbox);

    assert!(!fresh.is_authorized().await);
    // Everything but the login methods is refused before the login.
    assert_rpc_error(
        within("get_me before login", fresh.client.get_me()).await,
        401,
        "AUTH_KEY_UNREGISTERED",
    );
    assert_eq!(sandbox.login_code(PHONE), None);

    let token = within(
        "request_login_code",
        fresh.client.request_login_code(PHONE, API_HASH),
    )
    .await
    .expect("request_login_code");
    // Formatting does not matter, only the digits.
    let code = sandbox.login_code("14155550132").expect("a code was sent");
    assert_eq!(code.len(), 5);
    assert!(code.chars().all(|c| c.is_ascii_digit()));

    let user = within("sign_in", fresh.client.sign_in(&token, &code))
        .await
        .expect("sign_in");
    assert_eq!(user.id().bare_id(), Some(1000));
    assert!(user.is_self());

    assert!(fresh.is_authorized().await);
    assert_eq!(fresh.self_id().await, 1000);
    let me = within("get_me", fresh.client.get_me())
        .await
        .expect("get_me");
    assert_eq!(me.username(), Some("watcher"));

    // grammers caches the self user after a login, under its id only: MemorySession does not
    // map the `self_user()` sentinel, so an update stream created on this session from now on
    // would not fetch `updates.getState` by itself (a storage must map it, as SQLite's does).
    let self_peer = within("peer(self)", fresh.session.peer(PeerId::self_user()))
        .await
        .expect("session");
    assert_eq!(self_peer, None);
    let by_id = within(
        "peer(1000)",
        fresh.session.peer(PeerId::user(1000).expect("a user id")),
    )
    .await
    .expect("session");
    assert!(matches!(
        by_id,
        Some(PeerInfo::User {
            is_self: Some(true),
            ..
        })
    ));

    // The login key is the account's now; its original pre-shared key still works too.
    assert_eq!(sandbox.connection_count(account).expect("count"), 1);
    let original = TestClient::connect(&sandbox, account);
    assert!(original.is_authorized().await);
    drop(original);

    // The code is used up.
    let again = within("sign_in again", fresh.client.sign_in(&token, &code)).await;
    assert!(matches!(again, Err(SignInError::InvalidCode)), "{again:?}");
    assert_eq!(sandbox.calls("auth.sendCode"), 1);
    assert_eq!(sandbox.calls("auth.signIn"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_code_with_2fa() {
    let (sandbox, account) = start_with_account().await;
    sandbox
        .set_password(account, Some("hunter2"), Some("the usual"))
        .expect("password");
    let fresh = TestClient::fresh(&sandbox);

    let (token, code) = fresh.request_code(&sandbox).await;
    let password_token = match within("sign_in", fresh.client.sign_in(&token, &code)).await {
        Err(SignInError::PasswordRequired(password_token)) => password_token,
        other => panic!("expected PasswordRequired, got {other:?}"),
    };
    assert_eq!(password_token.hint(), Some("the usual"));
    // The code step alone does not log in.
    assert!(!fresh.is_authorized().await);

    let user = within_for(
        KDF_STEP,
        "check_password",
        fresh.client.check_password(password_token, "hunter2"),
    )
    .await
    .expect("check_password");
    assert_eq!(user.id().bare_id(), Some(1000));
    assert!(fresh.is_authorized().await);
    assert_eq!(fresh.self_id().await, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_is_refused_and_the_right_one_still_works() {
    let (sandbox, _account) = start_with_account().await;
    let fresh = TestClient::fresh(&sandbox);
    let (token, code) = fresh.request_code(&sandbox).await;

    let wrong = within(
        "sign_in wrong",
        fresh.client.sign_in(&token, wrong_code(&code)),
    )
    .await;
    assert!(matches!(wrong, Err(SignInError::InvalidCode)), "{wrong:?}");
    assert!(!fresh.is_authorized().await);

    within("sign_in right", fresh.client.sign_in(&token, &code))
        .await
        .expect("a typo does not burn the code");
    assert!(fresh.is_authorized().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_errors_carry_telegrams_names() {
    let (sandbox, account) = start_with_account().await;
    let fresh = TestClient::fresh(&sandbox);

    assert_rpc_error(
        fresh.send_code("+999 000").await,
        400,
        "PHONE_NUMBER_INVALID",
    );
    assert_rpc_error(
        fresh
            .invoke(
                "auth.sendCode without api_hash",
                &tl::functions::auth::SendCode {
                    phone_number: PHONE.to_owned(),
                    api_id: API_ID,
                    api_hash: String::new(),
                    settings: tl::enums::CodeSettings::Settings(tl::types::CodeSettings {
                        allow_flashcall: false,
                        current_number: false,
                        allow_app_hash: false,
                        allow_missed_call: false,
                        allow_firebase: false,
                        unknown_number: false,
                        logout_tokens: None,
                        token: None,
                        app_sandbox: None,
                    }),
                },
            )
            .await,
        400,
        "API_ID_INVALID",
    );

    let first_hash = fresh.send_code(PHONE).await.expect("sendCode");
    let first_code = sandbox.login_code(PHONE).expect("code");
    // Sending again replaces the pending code (and its hash).
    let hash = fresh.send_code(PHONE).await.expect("sendCode again");
    assert_ne!(hash, first_hash);
    let code = sandbox.login_code(PHONE).expect("code");
    assert_rpc_error(
        fresh.raw_sign_in(PHONE, &first_hash, &first_code).await,
        400,
        "PHONE_CODE_INVALID",
    );
    assert_rpc_error(
        fresh.raw_sign_in(PHONE, "", &code).await,
        400,
        "PHONE_CODE_HASH_EMPTY",
    );
    assert_rpc_error(
        fresh.raw_sign_in(PHONE, &hash, wrong_code(&code)).await,
        400,
        "PHONE_CODE_INVALID",
    );
    assert_rpc_error(
        fresh.raw_sign_in("+999 000", &hash, &code).await,
        400,
        "PHONE_NUMBER_INVALID",
    );

    // The raw success answer: the self user, with its access hash.
    let user = authorized_user(
        fresh
            .raw_sign_in(PHONE, &hash, &code)
            .await
            .expect("signIn"),
    );
    assert_eq!(user.id, account.user_id());
    assert!(user.is_self);
    assert_eq!(user.access_hash, Some(77));

    // A banned phone cannot get a code.
    sandbox.ban(account, Ban::UserDeactivatedBan).expect("ban");
    let other = TestClient::fresh(&sandbox);
    assert_rpc_error(other.send_code(PHONE).await, 400, "PHONE_NUMBER_BANNED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_refused() {
    let (sandbox, _account) = start_with_account().await;
    let fresh = TestClient::fresh(&sandbox);

    let (token, code) = fresh.request_code(&sandbox).await;
    sandbox.expire_login_codes();
    // grammers folds every PHONE_CODE_* error into InvalidCode...
    let expired = within("sign_in expired", fresh.client.sign_in(&token, &code)).await;
    assert!(
        matches!(expired, Err(SignInError::InvalidCode)),
        "{expired:?}"
    );

    // ...which is PHONE_CODE_EXPIRED underneath.
    let hash = fresh.send_code(PHONE).await.expect("sendCode");
    let code = sandbox.login_code(PHONE).expect("code");
    sandbox.expire_login_codes();
    assert_rpc_error(
        fresh.raw_sign_in(PHONE, &hash, &code).await,
        400,
        "PHONE_CODE_EXPIRED",
    );
    // The code stays readable, like an SMS.
    assert_eq!(sandbox.login_code(PHONE), Some(code));

    // A new code works.
    let token = within(
        "request_login_code again",
        fresh.client.request_login_code(PHONE, API_HASH),
    )
    .await
    .expect("request_login_code");
    let code = sandbox.login_code(PHONE).expect("code");
    within("sign_in", fresh.client.sign_in(&token, &code))
        .await
        .expect("sign_in with a new code");
    assert!(fresh.is_authorized().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_the_token_can_be_retried() {
    let (sandbox, account) = start_with_account().await;
    sandbox
        .set_password(account, Some("hunter2"), None)
        .expect("password");
    let fresh = TestClient::fresh(&sandbox);

    // Without the code step there is nothing to check a password for.
    let password = fresh.get_password().await;
    assert!(!password.has_password);
    assert_rpc_error(
        fresh
            .invoke(
                "auth.checkPassword early",
                &tl::functions::auth::CheckPassword {
                    password: tl::enums::InputCheckPasswordSrp::Srp(
                        tl::types::InputCheckPasswordSrp {
                            srp_id: 1,
                            a: vec![2; 256],
                            m1: vec![3; 32],
                        },
                    ),
                },
            )
            .await,
        401,
        "AUTH_KEY_UNREGISTERED",
    );

    let (token, code) = fresh.request_code(&sandbox).await;
    let password_token = match within("sign_in", fresh.client.sign_in(&token, &code)).await {
        Err(SignInError::PasswordRequired(password_token)) => password_token,
        other => panic!("expected PasswordRequired, got {other:?}"),
    };
    assert_eq!(password_token.hint(), None);

    let retry = match within_for(
        KDF_STEP,
        "check_password wrong",
        fresh.client.check_password(password_token, "hunter3"),
    )
    .await
    {
        Err(SignInError::InvalidPassword(retry)) => retry,
        other => panic!("expected InvalidPassword, got {other:?}"),
    };
    assert!(!fresh.is_authorized().await);

    // grammers hands back the same challenge for a retry, and it stays valid.
    within_for(
        KDF_STEP,
        "check_password right",
        fresh.client.check_password(retry, "hunter2"),
    )
    .await
    .expect("check_password");
    assert!(fresh.is_authorized().await);
    assert_eq!(sandbox.calls("auth.checkPassword"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_qr_code() {
    let (sandbox, account) = start_with_account().await;
    let mut fresh = TestClient::fresh(&sandbox);
    let mut stream = fresh.stream().await;
    assert!(!fresh.is_authorized().await);

    let (token, expires) = fresh.qr_token().await;
    assert_eq!(token.len(), 32);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i32;
    assert!(
        (now + 25..=now + 31).contains(&expires),
        "{expires} vs {now}"
    );
    // Asking again before it expires gives the same token.
    assert_eq!(fresh.qr_token().await, (token.clone(), expires));

    // "The user scans the QR code": the waiting client is told by a pushed updateLoginToken.
    sandbox.accept_login_token(&token, account).expect("accept");
    loop {
        let update = within("updateLoginToken", stream.next())
            .await
            .expect("update stream");
        if let Update::Raw(raw) = update
            && raw.raw == tl::enums::Update::LoginToken
        {
            break;
        }
    }

    let success = match fresh.export_login_token().await {
        tl::enums::auth::LoginToken::Success(success) => success,
        other => panic!("expected loginTokenSuccess, got {other:?}"),
    };
    let user = authorized_user(success.authorization);
    assert_eq!(user.id, 1000);
    assert!(user.is_self);
    assert!(fresh.is_authorized().await);
    assert_eq!(fresh.self_id().await, 1000);

    // The token did its job.
    assert!(matches!(
        sandbox.accept_login_token(&token, account),
        Err(SandboxError::UnknownLoginToken)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_qr_code_with_2fa() {
    let (sandbox, account) = start_with_account().await;
    sandbox
        .set_password(account, Some("correct horse"), Some("horse"))
        .expect("password");
    let fresh = TestClient::fresh(&sandbox);

    let (token, _) = fresh.qr_token().await;
    sandbox.accept_login_token(&token, account).expect("accept");
    assert_rpc_error(
        fresh
            .invoke(
                "auth.exportLoginToken after accept",
                &tl::functions::auth::ExportLoginToken {
                    api_id: API_ID,
                    api_hash: API_HASH.to_owned(),
                    except_ids: Vec::new(),
                },
            )
            .await,
        401,
        "SESSION_PASSWORD_NEEDED",
    );
    assert!(!fresh.is_authorized().await);

    let password = fresh.get_password().await;
    assert!(password.has_password);
    assert_eq!(password.hint.as_deref(), Some("horse"));
    let Some(tl::enums::PasswordKdfAlgo::Sha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow(algo)) =
        &password.current_algo
    else {
        panic!("expected Telegram's KDF, got {:?}", password.current_algo);
    };
    assert_eq!((algo.g, algo.p.len()), (3, 256));
    assert_eq!(password.srp_b.as_ref().map(Vec::len), Some(256));

    let user = within_for(
        KDF_STEP,
        "check_password",
        fresh
            .client
            .check_password(PasswordToken::new(password), "correct horse"),
    )
    .await
    .expect("check_password");
    assert_eq!(user.id().bare_id(), Some(1000));
    assert!(fresh.is_authorized().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_tokens_expire_and_import_login_token_finishes_a_login() {
    let (sandbox, account) = start_with_account().await;
    let fresh = TestClient::fresh(&sandbox);

    assert!(matches!(
        sandbox.accept_login_token(b"never exported", account),
        Err(SandboxError::UnknownLoginToken)
    ));

    let (old, _) = fresh.qr_token().await;
    sandbox.expire_login_tokens();
    let refused = sandbox.accept_login_token(&old, account);
    assert!(
        matches!(refused, Err(SandboxError::LoginTokenExpired)),
        "{refused:?}"
    );
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("the QR login token has expired")
    );
    assert_rpc_error(
        fresh
            .invoke(
                "auth.importLoginToken expired",
                &tl::functions::auth::ImportLoginToken { token: old.clone() },
            )
            .await,
        400,
        "AUTH_TOKEN_EXPIRED",
    );

    // Exporting again gives a new token, which works.
    let (token, _) = fresh.qr_token().await;
    assert_ne!(token, old);
    assert_rpc_error(
        fresh
            .invoke(
                "auth.importLoginToken replaced",
                &tl::functions::auth::ImportLoginToken { token: old },
            )
            .await,
        400,
        "AUTH_TOKEN_INVALID",
    );
    sandbox.accept_login_token(&token, account).expect("accept");
    assert!(matches!(
        sandbox.accept_login_token(&token, account),
        Err(SandboxError::LoginTokenAlreadyAccepted)
    ));

    let imported = fresh
        .invoke(
            "auth.importLoginToken",
            &tl::functions::auth::ImportLoginToken { token },
        )
        .await
        .expect("importLoginToken");
    let tl::enums::auth::LoginToken::Success(success) = imported else {
        panic!("expected loginTokenSuccess, got {imported:?}");
    };
    assert_eq!(authorized_user(success.authorization).id, 1000);
    assert!(fresh.is_authorized().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_wait_on_send_code_reaches_the_caller() {
    let (sandbox, _account) = start_with_account().await;
    let fresh = TestClient::fresh(&sandbox);

    sandbox.inject_method_flood_wait("auth.sendCode", 300, 1);
    let error = rpc_error(
        within(
            "flooded request_login_code",
            fresh.client.request_login_code(PHONE, API_HASH),
        )
        .await
        // LoginToken is not Debug.
        .map(|_| ()),
    );
    assert_eq!(
        (error.code, error.name.as_str(), error.value),
        (420, "FLOOD_WAIT", Some(300))
    );
    assert_eq!(sandbox.login_code(PHONE), None);

    // Used up: the next call gets a code.
    within(
        "request_login_code",
        fresh.client.request_login_code(PHONE, API_HASH),
    )
    .await
    .expect("request_login_code");
    assert!(sandbox.login_code(PHONE).is_some());

    // calls = 0 clears an injection.
    sandbox.inject_method_flood_wait("auth.sendCode", 300, 5);
    sandbox.inject_method_flood_wait("auth.sendCode", 300, 0);
    fresh.send_code(PHONE).await.expect("sendCode");
    assert_eq!(sandbox.calls("auth.sendCode"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_out_makes_the_key_unauthorized_again() {
    let (sandbox, account) = start_with_account().await;
    let fresh = TestClient::fresh(&sandbox);
    let (token, code) = fresh.request_code(&sandbox).await;
    within("sign_in", fresh.client.sign_in(&token, &code))
        .await
        .expect("sign_in");
    assert!(fresh.is_authorized().await);

    let logged_out = within("sign_out", fresh.client.sign_out())
        .await
        .expect("sign_out");
    assert_eq!(
        logged_out,
        tl::enums::auth::LoggedOut::Out(tl::types::auth::LoggedOut {
            future_auth_token: None
        })
    );
    assert!(!fresh.is_authorized().await);
    assert_rpc_error(
        within("get_me after logout", fresh.client.get_me()).await,
        401,
        "AUTH_KEY_UNREGISTERED",
    );
    assert_rpc_error(
        within("sign_out again", fresh.client.sign_out()).await,
        401,
        "AUTH_KEY_UNREGISTERED",
    );
    // The connection stays open, and belongs to nobody now.
    assert_eq!(sandbox.connection_count(account).expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_in_key_gets_the_accounts_pushes_and_bans() {
    let (sandbox, account) = start_with_account().await;
    sandbox.add_user(2000, 1, None, "Alice").expect("user");
    sandbox.add_contact(account, 2000).expect("contact");
    let mut fresh = TestClient::fresh(&sandbox);
    let mut stream = fresh.stream().await;

    let (token, code) = fresh.request_code(&sandbox).await;
    within("sign_in", fresh.client.sign_in(&token, &code))
        .await
        .expect("sign_in");

    // The connection that logged in now carries the account's pushes.
    let delivery = sandbox
        .set_user_status(2000, UserStatus::Online { expires: 42 })
        .expect("status");
    assert_eq!((delivery.live, delivery.queued), (1, 0));
    loop {
        let update = within("pushed status", stream.next())
            .await
            .expect("update stream");
        if let Update::Raw(raw) = update
            && let tl::enums::Update::UserStatus(status) = raw.raw
        {
            assert_eq!(status.user_id, 2000);
            break;
        }
    }

    // A ban covers every key of the account, the login's included.
    sandbox.ban(account, Ban::SessionRevoked).expect("ban");
    assert_rpc_error(
        within("banned get_me", fresh.client.get_me()).await,
        401,
        "SESSION_REVOKED",
    );
    assert!(!fresh.is_authorized().await);
    sandbox.unban(account).expect("unban");
    assert!(fresh.is_authorized().await);

    // drop_connections closes the login key's connection too.
    assert_eq!(sandbox.drop_connections(account).expect("drop"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_are_unique_and_need_digits() {
    let (sandbox, account) = start_with_account().await;
    let other = sandbox
        .add_account(1001, 1, None, "Other")
        .expect("account");

    assert!(matches!(
        sandbox.set_phone(other, "14155550132"),
        Err(SandboxError::PhoneTaken { account: owner, .. }) if owner == account
    ));
    assert!(matches!(
        sandbox.set_phone(other, "call me"),
        Err(SandboxError::InvalidPhone(_))
    ));
    // A new phone replaces the old one.
    sandbox
        .set_phone(account, "+44 20 7946 0000")
        .expect("phone");
    sandbox
        .set_phone(other, PHONE)
        .expect("the old phone is free");

    let fresh = TestClient::fresh(&sandbox);
    let (token, code) = fresh.request_code(&sandbox).await;
    let user = within("sign_in", fresh.client.sign_in(&token, &code))
        .await
        .expect("sign_in");
    assert_eq!(user.id().bare_id(), Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_by_code_moves_to_the_dc_the_account_lives_in() {
    let (sandbox, account) = start_with_account().await;
    sandbox.set_home_dc(account, 4).expect("dc 4");
    let fresh = TestClient::fresh(&sandbox);
    assert_eq!(fresh.session.home_dc_id().expect("home dc"), 2);

    // auth.sendCode on DC 2 answers PHONE_MIGRATE_4; grammers moves its home and asks again.
    let token = within(
        "request_login_code",
        fresh.client.request_login_code(PHONE, API_HASH),
    )
    .await
    .expect("request_login_code");
    assert_eq!(sandbox.calls("auth.sendCode"), 2);
    assert_eq!(fresh.session.home_dc_id().expect("home dc"), 4);
    let code = sandbox.login_code(PHONE).expect("a code was sent");
    let user = within("sign_in", fresh.client.sign_in(&token, &code))
        .await
        .expect("sign_in");
    assert_eq!(user.id().bare_id(), Some(1000));
    within("get_me", fresh.client.get_me())
        .await
        .expect("get_me in the account's DC");

    // Anywhere else the account is sent home.
    let elsewhere = within(
        "get_me in DC 2",
        fresh.client.invoke_in_dc(
            2,
            &tl::functions::users::GetUsers {
                id: vec![tl::enums::InputUser::UserSelf],
            },
        ),
    )
    .await;
    let error = rpc_error(elsewhere);
    assert_eq!(
        (error.code, error.name.as_str(), error.value),
        (303, "USER_MIGRATE", Some(4))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qr_login_accepted_by_an_account_in_another_dc_is_finished_there() {
    let (sandbox, account) = start_with_account().await;
    sandbox.set_home_dc(account, 4).expect("dc 4");
    let fresh = TestClient::fresh(&sandbox);
    let (token, _) = fresh.qr_token().await;
    sandbox.accept_login_token(&token, account).expect("accept");

    let tl::enums::auth::LoginToken::MigrateTo(migrate) = fresh.export_login_token().await else {
        panic!("expected loginTokenMigrateTo");
    };
    assert_eq!(migrate.dc_id, 4);
    let imported = within(
        "importLoginToken in DC 4",
        fresh.client.invoke_in_dc(
            4,
            &tl::functions::auth::ImportLoginToken {
                token: migrate.token,
            },
        ),
    )
    .await
    .expect("importLoginToken");
    let tl::enums::auth::LoginToken::Success(success) = imported else {
        panic!("expected loginTokenSuccess, got {imported:?}");
    };
    assert_eq!(authorized_user(success.authorization).id, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dc_answers_on_its_own_port_and_says_which_it_is() {
    let (sandbox, account) = start_with_account().await;
    let tc = TestClient::connect(&sandbox, account);
    for dc in tgwatch_sandbox::DCS {
        let tl::enums::Config::Config(config) = within(
            "help.getConfig",
            tc.client
                .invoke_in_dc(dc, &tl::functions::help::GetConfig {}),
        )
        .await
        .expect("getConfig");
        assert_eq!(config.this_dc, dc);
    }
    let ports: std::collections::BTreeSet<u16> = tgwatch_sandbox::DCS
        .map(|dc| sandbox.dc_addr(dc).expect("a DC").port())
        .collect();
    assert_eq!(ports.len(), 5);
    assert!(matches!(
        sandbox.set_home_dc(account, 6),
        Err(SandboxError::UnknownDc(6))
    ));
}
