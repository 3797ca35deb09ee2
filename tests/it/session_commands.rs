//! The session commands: `tgwatch login` (the binary, typing into its standard input) against a
//! running service and the sandbox; `export-session`, `import-session` and `rotate-key` on the
//! test database.

use crate::common;

use std::{io::Write, process::Stdio, time::Duration};

use common::{MtprotoApp, TOKEN, spawn_mtproto_app};
use serde_json::json;
use tgwatch::cli;
use tgwatch_core::vault::{MasterKey, Vault};
use tgwatch_sandbox::{AccountId, Sandbox};
use tgwatch_store as storage;
use tgwatch_telegram::stored_session::PersistedSession;

const PHONE: &str = "+15550002000";

async fn sandbox() -> (Sandbox, AccountId) {
    let sandbox = Sandbox::start().await.unwrap();
    let account = sandbox
        .add_account(6000, 66, Some("cli_watcher"), "Watcher")
        .unwrap();
    sandbox.set_phone(account, PHONE).unwrap();
    sandbox.set_password(account, Some("s3cret"), None).unwrap();
    (sandbox, account)
}

async fn add_account(app: &MtprotoApp) -> String {
    let (status, body) = app
        .post("/api/accounts", &json!({ "label": "main", "phone": PHONE }))
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn tgwatch_login_asks_for_the_code_and_password_and_logs_in() {
    let (sandbox, _) = sandbox().await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;
    let config = app.dir.path().join("login.toml");
    std::fs::write(&config, format!("[http]\nadmin_token = \"{TOKEN}\"\n")).unwrap();

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tgwatch"))
        .args(["login", "main", "--url", &app.base, "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // An empty phone: the account's own.
    writeln!(stdin,).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(code) = sandbox.login_code(PHONE) {
            break code;
        }
        assert!(tokio::time::Instant::now() < deadline, "no code was sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    writeln!(stdin, "{code}").unwrap();
    writeln!(stdin, "wrong").unwrap();
    writeln!(stdin, "s3cret").unwrap();
    drop(stdin);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("2FA password"), "{stdout}");
    assert!(stderr.contains("2FA password is wrong"), "{stderr}");
    assert!(stdout.contains("logged in"), "{stdout}");
    let (_, account) = app.get(&format!("/api/accounts/{id}")).await;
    assert_eq!(account["is_authorized"], true);

    // An unknown account is named. (Waited for off this thread, as above: the test's runtime
    // has one thread, which also runs the service the command talks to.)
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tgwatch"));
    command
        .args(["login", "nobody", "--url", &app.base, "--config"])
        .arg(&config)
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no account labelled `nobody`"), "{stderr}");
}

fn dc_key(session: &PersistedSession) -> Option<[u8; 256]> {
    session
        .dc_options
        .iter()
        .find(|option| option.id == session.home_dc)
        .and_then(|option| option.auth_key)
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn sessions_export_import_and_survive_a_key_rotation() {
    let (sandbox, account) = sandbox().await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    add_account(&app).await;
    let config = app.config.clone();

    cli::import(
        &config,
        "main",
        Some(common::telethon_string(&sandbox, account)),
        None,
        None,
    )
    .await
    .unwrap();
    let exported = cli::export(&config, "main").await.unwrap();
    assert!(exported.starts_with("tgw1:"));
    let before = PersistedSession::import(&exported).unwrap();
    assert_eq!(before.self_user_id(), Some(6000), "import asked who it is");
    assert_eq!(dc_key(&before), Some(sandbox.auth_key(account).unwrap()));

    let key_file = std::path::PathBuf::from(&config.security.master_key_file);
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let report = cli::rotate_key(&config).await.unwrap();
    assert!(report.contains("re-sealed 1 session"), "{report}");
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(old_key, new_key);
    assert!(!Vault::pending_key_path(&key_file).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The rows open with the new key only.
    let db = storage::connect(&config.database.url, 2).await.unwrap();
    let old_vault = Vault::new(MasterKey::parse(&old_key, "old key").unwrap());
    let rows = storage::account_sessions::authorized_account_ids(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        storage::account_sessions::load(&db, &old_vault, rows[0])
            .await
            .is_err()
    );
    let after = PersistedSession::import(&cli::export(&config, "main").await.unwrap()).unwrap();
    assert_eq!(dc_key(&after), dc_key(&before));

    // Our own export imports back, and garbage is refused with a reason.
    cli::import(&config, "main", None, Some(exported), None)
        .await
        .unwrap();
    let error = cli::import(&config, "main", Some("1AAAA".into()), None, None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Telethon"), "{error}");
    let error = cli::import(&config, "ghost", None, Some("tgw1:e30".into()), None)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("ghost") || error.to_string().contains("session"),
        "{error}"
    );
}

/// `backup` copies the database while the service runs; a service started on the copy and its
/// key in a fresh directory uses the account's session without a new login.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_backup_restored_into_a_fresh_directory_keeps_the_session_usable() {
    let sandbox = Sandbox::start().await.unwrap();
    let account = sandbox
        .add_account(6100, 61, Some("backup_watcher"), "Watcher")
        .unwrap();
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = common::add_logged_in_account(&app, &sandbox, account, "main", 10).await;
    let backup = app.dir.path().join("backup");

    let result = cli::backup(&app.config, &backup).await;
    if app.config.database.url.starts_with("postgres") {
        let error = result.unwrap_err().to_string();
        assert!(error.contains("pg_dump"), "{error}");
        return;
    }
    let report = result.unwrap();
    assert!(report.contains("tgwatch.key"), "{report}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&backup).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the backup directory is private");
    let again = cli::backup(&app.config, &backup).await.unwrap_err();
    assert!(again.to_string().contains("not empty"), "{again}");
    app.server.stop(true).await;

    let fresh = tempfile::tempdir().unwrap();
    std::fs::copy(backup.join("tgwatch.db"), fresh.path().join("restored.db")).unwrap();
    std::fs::copy(backup.join("tgwatch.key"), fresh.path().join("tgwatch.key")).unwrap();
    let mut config = app.config.clone();
    config.database.url = format!(
        "sqlite://{}?mode=rw",
        fresh.path().join("restored.db").display()
    );
    config.security.master_key_file = fresh.path().join("tgwatch.key").display().to_string();
    let logins = sandbox.calls("auth.signIn");
    let restored = common::start_mtproto_app(&sandbox, config, std::sync::Arc::new(fresh)).await;
    restored
        .eventually(
            &format!("/api/accounts/{id}"),
            Duration::from_secs(20),
            |account| account["status"] == "active",
        )
        .await;
    let (status, chats) = restored.get(&format!("/api/accounts/{id}/chats")).await;
    assert_eq!(
        status, 200,
        "the restored session reaches Telegram: {chats}"
    );
    assert_eq!(sandbox.calls("auth.signIn"), logins, "no new login");
    assert!(restored.issued_keys.lock().unwrap().is_empty());
}

/// `import-session` with a session Telegram refuses leaves the working one, and its api_hash,
/// in place: the account stays logged in.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_failed_import_session_keeps_the_working_session() {
    let (sandbox, account) = sandbox().await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    add_account(&app).await;
    let config = app.config.clone();
    cli::import(
        &config,
        "main",
        Some(common::telethon_string(&sandbox, account)),
        None,
        Some("working-hash".into()),
    )
    .await
    .unwrap();
    let before = PersistedSession::import(&cli::export(&config, "main").await.unwrap()).unwrap();

    let refused = PersistedSession::from_data(&sandbox.fresh_session_data())
        .export()
        .unwrap();
    cli::import(
        &config,
        "main",
        None,
        Some(refused),
        Some("other-hash".into()),
    )
    .await
    .unwrap_err();

    let after = PersistedSession::import(&cli::export(&config, "main").await.unwrap()).unwrap();
    assert_eq!(dc_key(&after), Some(sandbox.auth_key(account).unwrap()));
    assert_eq!(dc_key(&after), dc_key(&before));
    assert_eq!(after.self_user_id(), Some(6000));
    let db = storage::connect(&config.database.url, 1).await.unwrap();
    let key = std::fs::read_to_string(&config.security.master_key_file).unwrap();
    let vault = Vault::new(MasterKey::parse(&key, "key").unwrap());
    let ids = storage::account_sessions::authorized_account_ids(&db)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1, "still logged in");
    let row = storage::account_sessions::load(&db, &vault, ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.api_hash.as_deref(), Some("working-hash"));
}
