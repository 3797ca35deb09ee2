//! Commands around accounts' sessions: `login` (through the running service's API, which owns
//! the account's connection and session), and `import-session`, `export-session` and
//! `rotate-key` (on the database directly, with the service stopped), and `backup` (an online
//! copy of the SQLite database and the master key file).

use std::{
    io::{BufRead, IsTerminal, Write},
    path::Path,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use qrcode::{QrCode, render::unicode::Dense1x2};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use uuid::Uuid;

use tgwatch_core::{
    clock::Clock,
    config::Config,
    vault::{MASTER_KEY_ENV, MasterKey, Vault},
};
use tgwatch_service::app::load_vault;
use tgwatch_store::{self as storage, entities::accounts};
use tgwatch_telegram::{
    logins::import_session,
    stored_session::{PersistedSession, SessionStore, StoredSession},
};

/// How `tgwatch login` reaches the service.
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// The service of `config` (its `http.bind` and `http.admin_token`), or `url`.
    pub fn new(config: &Config, url: Option<String>) -> anyhow::Result<ApiClient> {
        let token = config
            .http
            .admin_token
            .as_ref()
            .context("`http.admin_token` is not set (or TGWATCH_HTTP__ADMIN_TOKEN)")?
            .expose()
            .to_owned();
        let base = url.unwrap_or_else(|| format!("http://{}", config.http.bind));
        Ok(ApiClient {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
        })
    }

    /// One API call; an error answer becomes an error with the service's message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}/api{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!("cannot reach the service at {}; is it running?", self.base)
        })?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            let message = value["error"]["message"].as_str().unwrap_or("no message");
            bail!("{message} (HTTP {status})")
        }
    }

    async fn account_id(&self, account: &str) -> anyhow::Result<Uuid> {
        if let Ok(id) = account.parse::<Uuid>() {
            return Ok(id);
        }
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/accounts?limit=100&cursor={cursor}"),
                None => "/accounts?limit=100".to_owned(),
            };
            let page = self.call(reqwest::Method::GET, &path, None).await?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if let Some(found) = items.iter().find(|item| item["label"] == account) {
                return found["id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    .context("the service answered an account without an id");
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => bail!("no account labelled `{account}`"),
            }
        }
    }
}

/// Reads one answer from the terminal (or a line of standard input when it is not one).
fn ask(prompt: &str) -> anyhow::Result<String> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// The 2FA password, not echoed on a terminal; read as a line when standard input is a pipe
/// (scripts, tests).
fn ask_secret(prompt: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        Ok(rpassword::prompt_password(prompt)?)
    } else {
        ask(prompt)
    }
}

/// `tgwatch login ACCOUNT [--qr]`.
pub async fn login(
    api: &ApiClient,
    account: &str,
    phone: Option<String>,
    api_hash: Option<String>,
    qr: bool,
) -> anyhow::Result<()> {
    let id = api.account_id(account).await?;
    let base = format!("/accounts/{id}/login");
    let mut status = if qr {
        login_by_qr(api, &base, api_hash).await?
    } else {
        login_by_code(api, &base, phone, api_hash).await?
    };
    for _ in 0..5 {
        if status["state"] != "password_needed" {
            break;
        }
        let hint = status["password_hint"]
            .as_str()
            .map(|hint| format!(" (hint: {hint})"))
            .unwrap_or_default();
        let password = ask_secret(&format!("2FA password{hint}: "))?;
        status = match api
            .call(
                reqwest::Method::POST,
                &format!("{base}/password"),
                Some(json!({ "password": password })),
            )
            .await
        {
            Ok(status) => status,
            Err(error) => {
                eprintln!("{error}");
                api.call(reqwest::Method::GET, &format!("{base}/status"), None)
                    .await?
            }
        };
    }
    if status["is_authorized"] == true || status["state"] == "logged_in" {
        println!("logged in");
        Ok(())
    } else {
        bail!("the login did not finish (state: {})", status["state"])
    }
}

async fn login_by_code(
    api: &ApiClient,
    base: &str,
    phone: Option<String>,
    api_hash: Option<String>,
) -> anyhow::Result<Value> {
    let phone = match phone {
        Some(phone) => phone,
        None => ask("Phone number (international format, or empty for the account's): ")?,
    };
    let phone = (!phone.is_empty()).then_some(phone);
    api.call(
        reqwest::Method::POST,
        &format!("{base}/phone"),
        Some(json!({ "phone": phone, "api_hash": api_hash })),
    )
    .await?;
    for _ in 0..5 {
        let code = ask("Code Telegram sent: ")?;
        match api
            .call(
                reqwest::Method::POST,
                &format!("{base}/code"),
                Some(json!({ "code": code })),
            )
            .await
        {
            Ok(status) => return Ok(status),
            Err(error) => eprintln!("{error}"),
        }
    }
    bail!("too many wrong codes")
}

async fn login_by_qr(
    api: &ApiClient,
    base: &str,
    api_hash: Option<String>,
) -> anyhow::Result<Value> {
    let query = api_hash
        .map(|hash| format!("?api_hash={hash}"))
        .unwrap_or_default();
    let mut shown: Option<String> = None;
    loop {
        let status = api
            .call(reqwest::Method::GET, &format!("{base}/status"), None)
            .await?;
        match status["state"].as_str() {
            Some("logged_in" | "password_needed") => return Ok(status),
            Some("qr_pending") => {}
            _ => {
                let qr = api
                    .call(reqwest::Method::GET, &format!("{base}/qr{query}"), None)
                    .await?;
                let url = qr["url"]
                    .as_str()
                    .context("the service sent no QR URL")?
                    .to_owned();
                if shown.as_deref() != Some(&url) {
                    let code = QrCode::new(url.as_bytes())?;
                    println!("{}", code.render::<Dense1x2>().quiet_zone(true).build());
                    println!(
                        "Scan this in Telegram: Settings > Devices > Link Desktop Device (expires {})",
                        qr["expires_at"].as_str().unwrap_or("soon")
                    );
                    shown = Some(url);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn find_account(db: &DatabaseConnection, account: &str) -> anyhow::Result<accounts::Model> {
    let found = match account.parse::<Uuid>() {
        Ok(id) => storage::accounts::get(db, id).await?,
        Err(_) => storage::accounts::find_by_label(db, account).await?,
    };
    found.with_context(|| format!("no account `{account}` (give its label or id)"))
}

async fn open_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = storage::connect(&config.database.url, config.database.max_connections).await?;
    storage::migrate(&db).await?;
    Ok(db)
}

/// The database and the master key of `config`.
async fn open_store(config: &Config) -> anyhow::Result<SessionStore> {
    Ok(SessionStore {
        db: open_database(config).await?,
        vault: Arc::new(load_vault(config)?),
        clock: Clock::real(),
    })
}

/// `tgwatch import-session ACCOUNT --telethon STRING | --session STRING`.
pub async fn import(
    config: &Config,
    account: &str,
    telethon: Option<String>,
    session: Option<String>,
    api_hash: Option<String>,
) -> anyhow::Result<()> {
    let parsed = match (telethon, session) {
        (Some(telethon), None) => PersistedSession::from_telethon(&telethon)?,
        (None, Some(session)) => PersistedSession::import(&session)?,
        _ => bail!("give exactly one of --telethon or --session"),
    };
    let store = open_store(config).await?;
    let account = find_account(&store.db, account).await?;
    import_session(
        &store,
        &account,
        parsed,
        api_hash,
        config.telegram.api_id.unwrap_or(0),
        Duration::from_secs(30),
    )
    .await?;
    println!(
        "session imported for `{}`; start (or restart) the service to connect with it",
        account.label
    );
    Ok(())
}

/// `tgwatch export-session ACCOUNT`: prints the session string (it logs in as the account:
/// keep it like a password).
pub async fn export(config: &Config, account: &str) -> anyhow::Result<String> {
    let store = open_store(config).await?;
    let account = find_account(&store.db, account).await?;
    let session = StoredSession::load(account.id, store)
        .await?
        .with_context(|| format!("account `{}` has no session", account.label))?;
    Ok(session.snapshot().export()?)
}

/// `tgwatch rotate-key`: re-seals every stored secret with a new master key.
///
/// With a key file: the new key is written to `<file>.new` first, every row is re-sealed in one
/// transaction, then the new file replaces the old. A crash in between leaves both files, and
/// the next start (or the next `rotate-key`) opens rows sealed with either key. With
/// `TGWATCH_MASTER_KEY`, the new key comes from `TGWATCH_NEW_MASTER_KEY`, and the operator
/// swaps the variables afterwards.
pub async fn rotate_key(config: &Config) -> anyhow::Result<String> {
    let db = open_database(config).await?;
    let old = load_vault(config)?;
    let key_file = Path::new(&config.security.master_key_file);
    let env_key = std::env::var(MASTER_KEY_ENV).is_ok();
    let new_key = if env_key {
        let text = std::env::var("TGWATCH_NEW_MASTER_KEY").with_context(|| {
            format!("{MASTER_KEY_ENV} is set: put the new key in TGWATCH_NEW_MASTER_KEY (32 bytes, base64)")
        })?;
        MasterKey::parse(&text, "TGWATCH_NEW_MASTER_KEY")?
    } else {
        let pending = Vault::pending_key_path(key_file);
        match MasterKey::load_if_present(&pending)? {
            // An interrupted rotation: finish it with the key it already wrote.
            Some(key) => key,
            None => {
                let key = MasterKey::generate();
                key.write_new_file(&pending)?;
                key
            }
        }
    };
    let new = Vault::new(new_key.clone());
    let count = storage::account_sessions::reseal_all(&db, &old, &new).await?;
    if !env_key {
        std::fs::rename(Vault::pending_key_path(key_file), key_file)
            .with_context(|| format!("replacing {}", key_file.display()))?;
    }
    Ok(format!(
        "re-sealed {count} session(s) with key {}{}",
        new_key.id_hex(),
        if env_key {
            "; now set TGWATCH_MASTER_KEY to the new key"
        } else {
            ""
        }
    ))
}

/// `tgwatch backup --to DIR`: an online copy of the SQLite database (`VACUUM INTO`, consistent
/// while the service writes) and of the master key file, into a new private directory. A
/// PostgreSQL database is backed up with `pg_dump` instead (README, "Backup and restore").
pub async fn backup(config: &Config, to: &Path) -> anyhow::Result<String> {
    let db = storage::connect(&config.database.url, 1).await?;
    if db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        bail!(
            "the database is PostgreSQL: back it up with `pg_dump --format=custom` and copy the \
             master key ({}) beside the dump (README, \"Backup and restore\")",
            config.security.master_key_file
        );
    }
    if to.exists() && to.read_dir()?.next().is_some() {
        bail!(
            "{} is not empty: back up into a new directory",
            to.display()
        );
    }
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.create(to)
        .with_context(|| format!("creating {}", to.display()))?;

    let database = to.join("tgwatch.db");
    let target = database
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", database.display()))?;
    db.execute_unprepared(&format!("VACUUM INTO '{}'", target.replace('\'', "''")))
        .await
        .context("copying the database")?;
    db.close().await.context("closing the database")?;

    let key = if std::env::var(MASTER_KEY_ENV).is_ok() {
        format!("the master key is in {MASTER_KEY_ENV}: keep a copy of it with this backup")
    } else {
        let source = Path::new(&config.security.master_key_file);
        let key = MasterKey::load_if_present(source)?.with_context(|| {
            format!(
                "no master key file at {}: nothing can open the sessions",
                source.display()
            )
        })?;
        key.write_new_file(&to.join("tgwatch.key"))?;
        format!(
            "tgwatch.key (key {}): it opens every stored session, keep it as secret as the accounts",
            key.id_hex()
        )
    };
    Ok(format!(
        "backup written to {}:\n  tgwatch.db ({} bytes)\n  {key}\nRestore: stop the service, copy both \
         files to where [database] url and [security] master_key_file point, start it.",
        to.display(),
        std::fs::metadata(&database)?.len(),
    ))
}
