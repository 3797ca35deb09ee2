//! The `tgwatch` binary: configuration checks name the key that is wrong.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failing test may panic

use std::process::Command;

fn check_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_tgwatch"))
        .args(["check-config", "--config"])
        .arg(&path)
        .env_remove("TGWATCH_HTTP__ADMIN_TOKEN")
        .output()
        .expect("run tgwatch");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn the_shipped_config_is_valid() {
    let (ok, output) = check_config(include_str!("../config.toml"));
    assert!(ok, "{output}");
}

#[test]
fn a_wrong_type_or_unknown_key_is_named() {
    let (ok, output) = check_config("[presence]\ngap_seconds = \"3 minutes\"\n");
    assert!(!ok);
    assert!(output.contains("gap_seconds"), "{output}");

    let (ok, output) = check_config("[http]\nbind = \"127.0.0.1:8080\"\nadmin_tokn = \"x\"\n");
    assert!(!ok);
    assert!(output.contains("admin_tokn"), "{output}");

    let (ok, output) = check_config("[presence]\npoll_min_seconds = 200\n");
    assert!(!ok);
    assert!(output.contains("presence.poll_max_seconds"), "{output}");
}

#[test]
fn a_missing_file_is_reported() {
    let output = Command::new(env!("CARGO_BIN_EXE_tgwatch"))
        .args(["check-config", "--config", "/nonexistent/tgwatch.toml"])
        .output()
        .expect("run tgwatch");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/tgwatch.toml"), "{stderr}");
}
