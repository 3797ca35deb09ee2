//! Python tools the tests run (the reference Standard Webhooks library, schemathesis), each in a
//! virtual environment under the target directory, made on first use and kept for later runs.
//! Needs `python3` with `venv` (Debian: `python3-venv`) and PyPI the first time.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `python` of a virtual environment `target/<name>` holding `requirements` (pinned
/// `package==version` lines), made if it is missing or holds something else.
///
/// It is made aside and moved into place by a rename, so that a run that dies half-way leaves
/// nothing that looks ready (the venv's python finds its packages from where it is, wherever
/// that is). A ready environment is never deleted: another test process may be using it.
pub fn venv(name: &str, requirements: &[&str]) -> PathBuf {
    let venv = super::target_dir().join(name);
    let python = venv.join("bin/python");
    let wanted = requirements.join("\n");
    let ready = |venv: &Path| {
        std::fs::read_to_string(venv.join("installed")).is_ok_and(|text| text == wanted)
    };
    if ready(&venv) {
        return python;
    }
    let building = venv.with_extension(format!("building-{}", std::process::id()));
    let run = |command: &mut Command| {
        let output = command.output().expect("python3 runs");
        assert!(
            output.status.success(),
            "{command:?} failed (this test needs python3 with venv and pip, and access to PyPI \
             for {wanted}):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let _ = std::fs::remove_dir_all(&building);
    run(Command::new("python3").args(["-m", "venv"]).arg(&building));
    run(Command::new(building.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(requirements));
    std::fs::write(building.join("installed"), &wanted).expect("marker");
    if std::fs::rename(&building, &venv).is_err() {
        if ready(&venv) {
            // Another test process finished first; its environment may be in use: keep it.
            let _ = std::fs::remove_dir_all(&building);
        } else {
            // A stale environment of other requirements, or of a dead run: nobody uses it.
            let _ = std::fs::remove_dir_all(&venv);
            std::fs::rename(&building, &venv).expect("the environment moves into place");
        }
    }
    python
}
