//! In-place upgrade of the gateway binary (or of listeners and threads),
//! nginx-style: on SIGUSR2 the running gateway starts the binary now at its
//! path, with its own arguments and `--upgrade`; the new process takes the
//! listening sockets over pingora's upgrade socket, so no connection is
//! refused, and the old one stops accepting, finishes what it serves within
//! `shutdown_grace` and exits. If the new process cannot start (a bad
//! config, a broken binary), the old one keeps serving as if nothing
//! happened.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the new process may take to load its config and ask for the
/// sockets.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts the successor and waits until it listens on the upgrade socket,
/// ready to take the listening sockets; `Err` says why it is not.
pub async fn start_successor(socket: &Path) -> Result<u32, String> {
    // A socket file left by an earlier upgrade would look like a ready
    // successor.
    let _ = std::fs::remove_file(socket);
    let binary = current_binary()?;
    let args: Vec<OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--upgrade")
        .collect();
    let mut child = Command::new(&binary)
        .args(&args)
        .arg("--upgrade")
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id();
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the new process ({}) exited with {status} before taking over",
                binary.display()
            ));
        }
        if socket.exists() {
            tracing::info!(pid, binary = %binary.display(), "the new process is ready to take the listening sockets");
            return Ok(pid);
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the new process did not open {} within {START_TIMEOUT:?}",
                socket.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The binary at this process's path now: after a package upgrade replaced
/// the file, Linux names the running one "… (deleted)".
fn current_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    })
}
