//! systemd's readiness protocol (`sd_notify`): under `Type=notify` the unit
//! learns when the gateway serves and, after an in-place upgrade, which
//! process is the main one now. Without `NOTIFY_SOCKET` it does nothing.

use std::os::unix::net::UnixDatagram;

/// Tells systemd this process serves and is the unit's main process.
pub fn ready() {
    notify(&format!("READY=1\nMAINPID={}", std::process::id()));
}

fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        match path.as_encoded_bytes().strip_prefix(b"@") {
            // An abstract socket (systemd's usual choice).
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &addr)
            }
            None => socket.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        tracing::warn!("cannot notify systemd: {e}");
    }
}
