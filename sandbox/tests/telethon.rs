//! A second, independent MTProto client against the sandbox: Telethon (Python, PyPI), so that
//! the sandbox cannot drift into grammers' quirks. The checks are in `telethon_conformance.py`;
//! this side prepares the world and plays Telegram's part of each step the script announces.
//!
//! Telethon is installed by the test itself, into a virtual environment under the target
//! directory (made once, kept for later runs).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tgwatch_sandbox::{AccountId, Sandbox, UserStatus};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const TELETHON: &str = "telethon==1.45.0";
const CHANNEL: i64 = 1_500_000_001;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Python with Telethon, in a virtual environment made on first use. Made aside and moved into
/// place, so that a run that dies half-way leaves nothing that looks ready.
async fn python_with_telethon() -> PathBuf {
    let venv = target_dir().join("telethon-venv");
    let python = venv.join("bin/python");
    let ready = |venv: &Path| {
        std::fs::read_to_string(venv.join("installed")).is_ok_and(|text| text == TELETHON)
    };
    if ready(&venv) {
        return python;
    }
    let building = venv.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    for command in [
        Command::new("python3").args(["-m", "venv"]).arg(&building),
        Command::new(building.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet", TELETHON]),
    ] {
        let output = command.output().await.expect("python3 runs");
        assert!(
            output.status.success(),
            "{command:?} failed (this test needs python3 with venv and pip, and PyPI for \
             {TELETHON}):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::write(building.join("installed"), TELETHON).expect("marker");
    if std::fs::rename(&building, &venv).is_err() {
        if ready(&venv) {
            // Another test process finished first; its environment may be in use: keep it.
            let _ = std::fs::remove_dir_all(&building);
        } else {
            // A stale environment of another version or a dead run.
            let _ = std::fs::remove_dir_all(&venv);
            std::fs::rename(&building, &venv).expect("the environment moves into place");
        }
    }
    python
}

/// An account with two contacts (alice, bob) and a public channel it joined, with three posts.
async fn world() -> (Sandbox, AccountId) {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    let account = sandbox
        .add_account(1000, 11, Some("watcher"), "Watcher")
        .expect("account");
    sandbox
        .add_user(2000, 21, Some("alice"), "Alice")
        .expect("alice");
    sandbox.add_user(2001, 22, Some("bob"), "Bob").expect("bob");
    sandbox.add_contact(account, 2000).expect("contact");
    sandbox.add_contact(account, 2001).expect("contact");
    sandbox
        .add_channel(CHANNEL, 31, Some("news"), "News", "All the news")
        .expect("channel");
    sandbox.join(account, CHANNEL).expect("join");
    for text in ["one", "two", "three"] {
        sandbox.post(CHANNEL, text).expect("post");
    }
    (sandbox, account)
}

/// Runs the script over `transport` and plays each step it asks for.
async fn conformance(transport: &str, checks: &str) {
    let python = python_with_telethon().await;
    let (sandbox, account) = world().await;
    let key = sandbox.auth_key(account).expect("key");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/telethon_conformance.py");
    let mut child = Command::new(python)
        .arg(script)
        .env("SANDBOX_PORT", sandbox.addr().port().to_string())
        .env(
            "SANDBOX_AUTH_KEY",
            key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        )
        .env("TRANSPORT", transport)
        .env("CHECKS", checks)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut finished = false;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the script answers within 60 s")
        .expect("reads")
    {
        let Some(step) = line.strip_prefix("WAIT ") else {
            finished |= line == "OK";
            continue;
        };
        match step {
            "alice-online" => {
                let delivery = sandbox
                    .set_user_status(2000, UserStatus::Online { expires: i32::MAX })
                    .expect("status");
                assert_eq!(delivery.live, 1, "{transport}");
            }
            "left" => assert!(!sandbox.joined(account, CHANNEL)),
            "joined" => assert!(sandbox.joined(account, CHANNEL)),
            "post-edit-delete" => {
                let posted = sandbox.post(CHANNEL, "hello").expect("post");
                sandbox
                    .edit(CHANNEL, posted.id, "hello, edited")
                    .expect("edit");
                sandbox.delete(CHANNEL, &[posted.id]).expect("delete");
            }
            "away" => {
                sandbox
                    .set_user_status(2000, UserStatus::Offline { was_online: 1 })
                    .expect("status");
                sandbox
                    .send_private_message(2001, account, "while you were away")
                    .expect("message");
            }
            other => panic!("the script asked for an unknown step {other:?}"),
        }
        stdin.write_all(b"GO\n").await.expect("answers");
    }
    let output = child.wait_with_output().await.expect("python ends");
    assert!(
        output.status.success() && finished,
        "Telethon over {transport} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telethon_does_everything_the_product_needs_over_the_full_transport() {
    conformance("full", "all").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telethon_connects_and_gets_pushes_over_every_other_transport() {
    for transport in ["abridged", "intermediate", "obfuscated"] {
        conformance(transport, "basic").await;
    }
}
