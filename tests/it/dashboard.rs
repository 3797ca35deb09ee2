//! The dashboard in a real browser: headless Chromium (Debian's package) opens `/` against the
//! running service, driven over the DevTools protocol with the same WebSocket client the /ws
//! tests use. The page must show a person going online live (a WebSocket event, no reload), and
//! a screenshot is kept as an artifact (target/artifacts/dashboard.png); `tgwatch demo` in the
//! browser shows its week of history and a QR login by the demo phone (dashboard-demo.png).
//!
//! Without Chromium the test runs scripts/install-chromium.sh; when Chromium can be neither
//! found nor installed it fails, unless TGWATCH_SKIP_BROWSER_TESTS=1 says to skip it.

use crate::common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use base64::Engine;
use common::{TOKEN, spawn_app};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tgwatch_core::{clock::Clock, config::Secret};
use tgwatch_sandbox::bot_api::BotApi;
use tgwatch_testkit::demo;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

const BOT_TOKEN: &str = "123456:test-token_ABC-def";
const ADMIN: i64 = 9001;
const WAIT: Duration = Duration::from_secs(20);

/// Alice and Bob exist; their presence is set by hand in the test (polls are far apart).
const SCENARIO: &str = r#"
[[users]]
id = 1001
username = "alice_w"
first_name = "Alice"

[[users]]
id = 1002
username = "bob_b"
first_name = "Bob"
"#;

/// Chromium's binary: `TGWATCH_CHROMIUM`, else the usual names on PATH.
fn find_chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("TGWATCH_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Chromium, installed with scripts/install-chromium.sh if missing; `None` if that fails too.
fn chromium() -> Option<PathBuf> {
    if let Some(found) = find_chromium() {
        return Some(found);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-chromium.sh");
    eprintln!("chromium not found: running {}", script.display());
    let status = Command::new("bash").arg(&script).status();
    match status {
        Ok(status) if status.success() => find_chromium(),
        other => {
            eprintln!("installing chromium failed: {other:?}");
            None
        }
    }
}

/// The browser process; killed when the test ends, however it ends.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    port: u16,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    async fn launch(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let log = std::fs::File::create(profile.path().join("chromium.log")).expect("log file");
        let child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--hide-scrollbars",
                "--window-size=1400,1000",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start chromium");
        // Chromium writes the port it chose to DevToolsActivePort in the profile.
        let active = profile.path().join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + WAIT;
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&active)
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse::<u16>().ok())
            {
                break port;
            }
            if tokio::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(profile.path().join("chromium.log"))
                    .unwrap_or_default();
                panic!("chromium did not open its DevTools port:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Browser {
            child,
            _profile: profile,
            port,
        }
    }

    /// The DevTools connection of the page Chromium opened.
    async fn page(&self) -> Page {
        let deadline = tokio::time::Instant::now() + WAIT;
        let url = loop {
            let targets: Value =
                match reqwest::get(format!("http://127.0.0.1:{}/json/list", self.port)).await {
                    Ok(response) => response.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
            let page = targets.as_array().and_then(|targets| {
                targets
                    .iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                    .map(str::to_owned)
            });
            if let Some(url) = page {
                break url;
            }
            assert!(tokio::time::Instant::now() < deadline, "no page target");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("DevTools connection");
        Page { ws, next_id: 0 }
    }
}

/// One page over the DevTools protocol: commands and their results (events are skipped).
struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Page {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({"id": id, "method": method, "params": params});
        self.ws
            .send(Message::text(command.to_string()))
            .await
            .expect("send to DevTools");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("DevTools did not answer {method}"))
                .expect("DevTools open")
                .expect("frame");
            if let Message::Text(text) = frame {
                let value: Value = serde_json::from_str(&text).expect("DevTools JSON");
                if value["id"] == id {
                    assert!(value["error"].is_null(), "{method}: {value}");
                    return value["result"].clone();
                }
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Polls `expression` until `done` holds for its value.
    async fn until(
        &mut self,
        what: &str,
        expression: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = self.eval(expression).await;
            if done(&value) {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                let text = self.eval("document.body.innerText").await;
                panic!("the page never showed {what}; last value {value}; page text:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&mut self, path: &Path) {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("png data"))
            .expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("artifacts dir");
        std::fs::write(path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }
}

fn artifacts() -> PathBuf {
    common::target_dir().join("artifacts")
}

/// Chromium for `test`; `None` (the test returns) only when it cannot be had and
/// TGWATCH_SKIP_BROWSER_TESTS=1 says to skip.
async fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    // Installing Chromium may take a while: off the service's thread.
    let binary = tokio::task::spawn_blocking(chromium)
        .await
        .expect("looking for chromium");
    if binary.is_none() {
        assert_eq!(
            std::env::var("TGWATCH_SKIP_BROWSER_TESTS").as_deref(),
            Ok("1"),
            "chromium is not installed and scripts/install-chromium.sh could not install it; \
             set TGWATCH_SKIP_BROWSER_TESTS=1 to skip the browser test on purpose"
        );
        eprintln!(
            "SKIPPED (TGWATCH_SKIP_BROWSER_TESTS=1): {test}: chromium is not installed and \
             scripts/install-chromium.sh could not install it"
        );
    }
    binary
}

/// A page of `browser` at the given size, with Telegram's script blocked: nothing leaves the
/// machine.
async fn open_page(browser: &Browser, width: u32, height: u32) -> Page {
    let mut page = browser.page().await;
    page.call("Network.enable", json!({})).await;
    page.call(
        "Network.setBlockedURLs",
        json!({"urls": ["*telegram.org*"]}),
    )
    .await;
    page.call("Page.enable", json!({})).await;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;
    page
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_dashboard_shows_a_person_going_online_live() {
    let Some(binary) = chromium_or_skip("the_dashboard_shows_a_person_going_online_live").await
    else {
        return;
    };
    let bot = BotApi::start(BOT_TOKEN).await.expect("fake bot api");
    let bot_url = bot.url();
    let app = spawn_app(SCENARIO, |config| {
        // Presence comes from the test alone: polls are ten years of service time apart. A
        // target's first poll falls anywhere in [0, max]: with 1,000,000 s (28 minutes of real
        // time at 600x) one in about seventy runs polled Bob offline while the page loaded.
        config.presence.poll_min_seconds = 315_360_000;
        config.presence.poll_max_seconds = 315_360_000;
        config.bot.token = Some(Secret::new(BOT_TOKEN));
        config.bot.api_url = bot_url;
        config.bot.admin_ids = vec![ADMIN];
        config.bot.polling_timeout_seconds = 1;
        config.live.status_interval_ms = 200;
        config.live.broadcast_chat_id = Some(-1_001_234_567_890);
        config.testing.fault_injection = true;
    })
    .await;
    let alice = app.track("@alice_w").await;
    let bob = app.track("@bob_b").await;
    // One restart of the account's actor, for the accounts panel to show.
    let (_, accounts) = app.get("/api/accounts").await;
    let main = accounts["items"][0]["id"].as_str().unwrap().to_owned();
    app.panic_and_wait_for_restart("account", Some(&main), Duration::from_secs(1))
        .await;
    // Reconnected, the account polls everyone at once (Bob offline, by the scenario): the states
    // set below must come after that poll, not be overwritten by it.
    app.eventually(
        &format!("/api/online-statuses?tracked_user_id={bob}"),
        WAIT,
        |statuses| {
            statuses["items"]
                .as_array()
                .is_some_and(|items| !items.is_empty())
        },
    )
    .await;
    for (who, status) in [(&alice, "offline"), (&bob, "online")] {
        let (code, body) = app
            .post(
                "/api/online-statuses",
                &json!({"tracked_user_id": who, "status": status}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
    }

    let browser = Browser::launch(&binary).await;
    let mut page = open_page(&browser, 1400, 1000).await;

    // Desktop: the admin token in the fragment (never sent to the server in a URL).
    page.call(
        "Page.navigate",
        json!({"url": format!("{}/#token={TOKEN}", app.base)}),
    )
    .await;
    let row =
        |id: &str| format!("document.querySelector('[data-user=\"{id}\"]')?.dataset.state ?? null");
    page.until("Alice offline on the board", &row(&alice), |v| {
        v == "offline"
    })
    .await;
    page.until("Bob online on the board", &row(&bob), |v| v == "online")
        .await;
    page.until(
        "the live connection",
        "document.getElementById('conn').textContent",
        |v| v == "live",
    )
    .await;
    page.until(
        "status figures",
        "document.querySelector('[data-figure=\"online now\"] dd')?.textContent ?? null",
        |v| v == "1",
    )
    .await;
    // The token left the address bar.
    assert_eq!(page.eval("location.hash").await, "");
    // A marker that a reload would wipe: the update must come over the WebSocket.
    page.eval("window.__noReload = true").await;

    // Alice comes online.
    let (code, body) = app
        .post(
            "/api/online-statuses",
            &json!({"tracked_user_id": alice, "status": "online"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    page.until("Alice going online", &row(&alice), |v| v == "online")
        .await;
    page.until(
        "Alice online in the status",
        "document.querySelector('[data-figure=\"online now\"] dd')?.textContent ?? null",
        |v| v == "2",
    )
    .await;
    assert_eq!(page.eval("window.__noReload === true").await, true);
    let text = page
        .eval(&format!(
            "document.querySelector('[data-user=\"{alice}\"] .state').textContent"
        ))
        .await;
    assert!(
        text.as_str().expect("text").starts_with("online since"),
        "{text}"
    );

    // Her timeline and heatmap.
    page.eval(&format!(
        "document.querySelector('[data-user=\"{alice}\"]').click()"
    ))
    .await;
    page.until(
        "Alice's heatmap",
        "document.querySelectorAll('#heatmap .cell').length",
        |v| v == 168,
    )
    .await;
    page.until(
        "Alice's timeline",
        "document.querySelectorAll('#timeline .bar').length",
        |v| v == 7,
    )
    .await;
    // Accounts with their state, and the broadcast panel for an admin.
    page.until(
        "the account",
        "document.querySelector('[data-account=\"main\"]')?.textContent ?? ''",
        |v| v.as_str().is_some_and(|t| t.contains("active")),
    )
    .await;
    page.until(
        "the account's restarts",
        "document.querySelector('[data-account=\"main\"] .restarts')?.textContent ?? ''",
        |v| v == "1",
    )
    .await;
    page.until(
        "the broadcast panel",
        "document.getElementById('broadcast').hidden",
        |v| v == false,
    )
    .await;
    page.screenshot(&artifacts().join("dashboard.png")).await;

    // As the Telegram Mini App: init data and theme in the fragment, as Telegram passes them;
    // the page uses Telegram's colours and reads the admin API with `tma` authorization.
    let user = json!({"id": ADMIN, "first_name": "Ada", "username": "ada"}).to_string();
    let init_data = common::telegram_init_data(
        &[
            ("user", user.as_str()),
            ("auth_date", &chrono::Utc::now().timestamp().to_string()),
        ],
        BOT_TOKEN,
    );
    let fragment = form_urlencoded::Serializer::new(String::new())
        .append_pair("tgWebAppData", &init_data)
        .append_pair("tgWebAppVersion", "8.0")
        .append_pair(
            "tgWebAppThemeParams",
            r##"{"bg_color":"#17212b","secondary_bg_color":"#232e3c","text_color":"#f5f5f5","hint_color":"#708499","link_color":"#6ab3f3","button_color":"#5288c1","button_text_color":"#ffffff"}"##,
        )
        .finish();
    page.call(
        "Page.navigate",
        json!({"url": format!("{}/?miniapp#{fragment}", app.base)}),
    )
    .await;
    page.until(
        "Telegram's theme",
        "getComputedStyle(document.documentElement).getPropertyValue('--tg-bg').trim()",
        |v| v == "#17212b",
    )
    .await;
    page.until("the board over tma auth", &row(&alice), |v| v == "online")
        .await;
    page.until(
        "the live connection as the Mini App user",
        "document.getElementById('conn').textContent",
        |v| v == "live",
    )
    .await;
    page.screenshot(&artifacts().join("dashboard-miniapp.png"))
        .await;
}

/// `tgwatch demo` in the browser: a person's week in the timeline and heatmap from the first
/// second, the demo's webhook endpoint, the logged-out accounts, and a QR login finished with
/// the "Scan with the demo phone" button. Screenshots: target/artifacts/dashboard-demo.png (the
/// QR code with the button) and dashboard-demo-logged-in.png.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_demo_dashboard_shows_the_week_and_logs_in_by_the_demo_phone() {
    let Some(binary) =
        chromium_or_skip("the_demo_dashboard_shows_the_week_and_logs_in_by_the_demo_phone").await
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let speed = 60.0;
    let mut demo = demo::demo(dir.path(), "127.0.0.1:0".parse().unwrap(), speed);
    demo.config.http.admin_token = Some(Secret::new(TOKEN));
    let (app, _world) = demo::start(demo, Clock::fast(speed)).await.expect("demo");
    let api = common::Api {
        base: format!("http://127.0.0.1:{}", app.port()),
        client: reqwest::Client::new(),
    };
    actix_rt::spawn(app.run_until_stopped());
    let people = api
        .eventually("/api/tracked-users?limit=100", WAIT, |body| {
            body["items"]
                .as_array()
                .is_some_and(|items| items.len() == 24)
        })
        .await;
    let person = people["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|person| person["username"] == "user00001")
        .and_then(|person| person["id"].as_str())
        .expect("user00001")
        .to_owned();

    let browser = Browser::launch(&binary).await;
    let mut page = open_page(&browser, 1400, 1200).await;
    page.call(
        "Page.navigate",
        json!({"url": format!("{}/#token={TOKEN}", api.base)}),
    )
    .await;
    let row = format!("document.querySelector('[data-user=\"{person}\"]')");
    page.until("the person on the board", &format!("{row} !== null"), |v| {
        v == true
    })
    .await;
    page.eval(&format!("{row}.click()")).await;
    // A full week at once: every day of the timeline has sessions, the heatmap many hours.
    page.until(
        "a week in the timeline",
        "[...document.querySelectorAll('#timeline .bar')].filter((bar) => bar.children.length > 0).length",
        |v| v.as_u64() >= Some(6),
    )
    .await;
    page.until(
        "hours in the heatmap",
        "[...document.querySelectorAll('#heatmap .cell')].filter((cell) => cell.style.background).length",
        |v| v.as_u64() >= Some(20),
    )
    .await;
    page.until(
        "the channels' posts",
        "document.querySelectorAll('#feed li').length",
        |v| v.as_u64() >= Some(2),
    )
    .await;
    page.until(
        "the broadcast panel (to the demo chat)",
        "document.getElementById('broadcast').hidden",
        |v| v == false,
    )
    .await;
    page.until(
        "the demo's webhook endpoint",
        "document.getElementById('webhooks-body').textContent",
        |v| {
            v.as_str()
                .is_some_and(|text| text.contains("demo-receiver"))
        },
    )
    .await;
    let account = "document.querySelector('[data-account=\"login-by-qr\"]')";
    page.until(
        "the QR login account, logged out",
        &format!("{account}?.textContent ?? ''"),
        |v| v.as_str().is_some_and(|text| text.contains("logged out")),
    )
    .await;
    page.eval(&format!("{account}.querySelector('button').click()"))
        .await;
    page.until(
        "the QR code",
        "document.getElementById('qr-image').getAttribute('src') ?? ''",
        |v| {
            v.as_str()
                .is_some_and(|src| src.starts_with("data:image/svg+xml"))
        },
    )
    .await;
    page.until(
        "the demo phone's button",
        "document.getElementById('qr-demo-scan').hidden",
        |v| v == false,
    )
    .await;
    page.screenshot(&artifacts().join("dashboard-demo.png"))
        .await;

    page.eval("document.getElementById('qr-demo-scan').click()")
        .await;
    page.until(
        "the QR login finished",
        "document.getElementById('qr-state').textContent",
        |v| v == "logged in",
    )
    .await;
    page.until(
        "the account logged in",
        &format!("{account}?.textContent ?? ''"),
        |v| v.as_str().is_some_and(|text| !text.contains("logged out")),
    )
    .await;
    page.screenshot(&artifacts().join("dashboard-demo-logged-in.png"))
        .await;
}

/// Seed 003's two pages at `/telegram`: the login page (phone, code, then the 2FA password;
/// and the QR code) and the main page (session info, chats, a chat's messages), in a browser
/// against the sandbox Telegram over MTProto.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_telegram_pages_log_in_and_show_the_chats() {
    let Some(binary) = tokio::task::spawn_blocking(chromium)
        .await
        .expect("looking for chromium")
    else {
        assert_eq!(
            std::env::var("TGWATCH_SKIP_BROWSER_TESTS").as_deref(),
            Ok("1"),
            "chromium is not installed and scripts/install-chromium.sh could not install it; \
             set TGWATCH_SKIP_BROWSER_TESTS=1 to skip the browser test on purpose"
        );
        eprintln!(
            "SKIPPED (TGWATCH_SKIP_BROWSER_TESTS=1): the_telegram_pages_log_in_and_show_the_chats"
        );
        return;
    };
    let (sandbox, account) = crate::logins::sandbox(Some(("correct horse", "a horse"))).await;
    sandbox
        .add_channel(800, 81, Some("news_room"), "News room", "All the news")
        .unwrap();
    sandbox.join(account, 800).unwrap();
    for text in ["first", "second", "third"] {
        sandbox.post(800, text).unwrap();
    }
    let app = common::spawn_mtproto_app(&sandbox, |_| {}).await;
    let (status, body) = app
        .post(
            "/api/accounts",
            &json!({"label": "main", "phone": crate::logins::PHONE}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let browser = Browser::launch(&binary).await;
    let mut page = browser.page().await;
    page.call("Page.enable", json!({})).await;
    page.call(
        "Page.navigate",
        json!({"url": format!("{}/telegram#token={TOKEN}", app.base)}),
    )
    .await;
    let visible = |id: &str| format!("document.getElementById('{id}').hidden === false");
    page.until("the login page", &visible("tg-login"), |v| v == true)
        .await;
    assert_eq!(page.eval("location.hash").await, "");

    // Phone, then the code, then the password the answer asks for.
    page.eval(&format!(
        "document.getElementById('tg-phone').value = '{}'; \
         document.getElementById('tg-phone-form').requestSubmit()",
        crate::logins::PHONE
    ))
    .await;
    page.until("the code field", &visible("tg-code-form"), |v| v == true)
        .await;
    let code = sandbox
        .login_code(crate::logins::PHONE)
        .expect("a code was sent");
    page.eval(&format!(
        "document.getElementById('tg-code').value = '{code}'; \
         document.getElementById('tg-code-form').requestSubmit()"
    ))
    .await;
    page.until("the password field", &visible("tg-password-row"), |v| {
        v == true
    })
    .await;
    page.until(
        "the password hint",
        "document.getElementById('tg-password-hint').textContent",
        |v| v == "hint: a horse",
    )
    .await;
    page.eval(
        "document.getElementById('tg-password').value = 'correct horse'; \
         document.getElementById('tg-code-form').requestSubmit()",
    )
    .await;

    // The main page: who the account is, its chats, a chat's messages.
    page.until("the main page", &visible("tg-main"), |v| v == true)
        .await;
    page.until(
        "the session",
        "document.getElementById('tg-session').textContent",
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains("Watcher") && t.contains("@watcher"))
        },
    )
    .await;
    page.until(
        "the chats",
        "[...document.querySelectorAll('#tg-chats a')].map(a => a.textContent).join('|')",
        |v| v.as_str().is_some_and(|t| t.contains("News room")),
    )
    .await;
    page.eval(
        "[...document.querySelectorAll('#tg-chats a')].find(a => a.textContent === 'News room').click()",
    )
    .await;
    page.until(
        "the chat's messages",
        "[...document.querySelectorAll('#tg-messages li')].map(li => li.textContent.split(' ').pop()).join(',')",
        |v| v == "third,second,first",
    )
    .await;
    page.screenshot(&artifacts().join("telegram-main.png"))
        .await;

    // Reset the session: the login page again, this time with the QR code.
    page.eval("document.getElementById('tg-reset').click()")
        .await;
    page.until("the login page again", &visible("tg-login"), |v| v == true)
        .await;
    page.eval("document.getElementById('tg-qr-button').click()")
        .await;
    page.until(
        "the QR code",
        "document.getElementById('tg-qr-image').getAttribute('src') ?? ''",
        |v| {
            v.as_str()
                .is_some_and(|src| src.starts_with("data:image/svg+xml"))
        },
    )
    .await;
    page.screenshot(&artifacts().join("telegram-qr.png")).await;
    // The code the page shows is the account's current one: scanned in "Telegram".
    let (status, qr) = app.get("/telegram/auth/qr").await;
    assert_eq!(status, 200, "{qr}");
    let token = crate::logins::token_of(qr["url"].as_str().expect("url"));
    sandbox.accept_login_token(&token, account).unwrap();
    page.until(
        "the password after the scan",
        &visible("tg-password-row"),
        |v| v == true,
    )
    .await;
    page.eval(
        "document.getElementById('tg-password').value = 'correct horse'; \
         document.getElementById('tg-code-form').requestSubmit()",
    )
    .await;
    page.until("the main page again", &visible("tg-main"), |v| v == true)
        .await;
}
