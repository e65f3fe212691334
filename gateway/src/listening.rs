//! Listening sockets: every listener's socket is bound here, before the
//! service that accepts on it starts, and kept in pingora's table of
//! listening descriptors, where pingora's listeners find it and from which
//! an in-place upgrade hands it to the next process.
//!
//! Why not let pingora bind them: a pingora listener that cannot bind (an
//! address in use past its retries, an address no interface has) panics
//! its service's thread, and the process runs on without the listener, up
//! and answering health checks on its admin port while its clients are
//! refused. Here the process stops instead, naming the listener, as nginx
//! does, so a supervisor (systemd, Kubernetes) sees it.

use async_trait::async_trait;
use pingora::server::{ListenFds, RuntimeOpts, ShutdownWatch};
use pingora::services::Service;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The accept backlog pingora's own listeners ask for.
const BACKLOG: u32 = 65535;

/// Binds tried after the first while the address is in use.
const BIND_TRIES: u32 = 29;

/// The listening socket for `listen` (an IP:port, as config validation
/// demands): the one in the table (handed over by the process this one
/// upgrades, or bound by another service of this process), else a new
/// one, put in the table. The table owns it: a service that takes it for
/// its own must be the only one.
pub async fn socket(listen: &str, fds: &ListenFds) -> std::io::Result<RawFd> {
    if let Some(fd) = fds.lock().get(listen).copied() {
        return Ok(fd);
    }
    let addr: SocketAddr = listen.parse().map_err(std::io::Error::other)?;
    let mut tries = 0;
    let listener = loop {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        // A restart binds while the old connections are in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => break socket.listen(BACKLOG)?,
            // A process on its way out may still hold the port: wait for
            // it as pingora's listeners do (30 tries, a second apart).
            Err(e) if e.kind() == ErrorKind::AddrInUse && tries < BIND_TRIES => {
                tries += 1;
                tracing::warn!(listener = %listen, "address in use; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let fd = listener.into_std()?.into_raw_fd();
    fds.lock().add(listen.to_owned(), fd);
    Ok(fd)
}

/// [`socket`], or the process stops: `what` names the listener's kind in
/// the error ("a TCP route's listener").
pub async fn socket_or_exit(listen: &str, fds: &ListenFds, what: &str) -> RawFd {
    match socket(listen, fds).await {
        Ok(fd) => fd,
        Err(e) => {
            tracing::error!(listener = %listen, "{what} cannot listen: {e}");
            std::process::exit(1);
        }
    }
}

/// [`socket_or_exit`] as a tokio listener of the calling service, which
/// must be the only one to take this address's socket.
pub async fn tokio_listener_or_exit(listen: &str, fds: &ListenFds, what: &str) -> TcpListener {
    let fd = socket_or_exit(listen, fds, what).await;
    // SAFETY: the table's socket for `listen`, which no other service takes
    // (listener addresses are unique: config validation).
    let socket = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    match socket
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(socket))
    {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(listener = %listen, "{what} cannot listen: {e}");
            std::process::exit(1);
        }
    }
}

/// Accepts on `listener` until shutdown begins (then the next process, on
/// an upgrade, accepts; open connections run on), handing each connection
/// to `accepted`.
pub async fn accept_until_shutdown(
    listener: &TcpListener,
    listen: &str,
    mut shutdown: ShutdownWatch,
    mut accepted: impl FnMut(TcpStream, SocketAddr),
) {
    let mut failures = Failures::default();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            connection = listener.accept() => match connection {
                Ok((tcp, peer)) => {
                    if let Some(failed) = failures.ended() {
                        tracing::warn!(listener = %listen, "accepting again after {failed} failed accepts");
                    }
                    accepted(tcp, peer)
                }
                Err(e) => {
                    if let Some(failed) = failures.failed(Instant::now()) {
                        tracing::warn!(listener = %listen, "accept failed ({failed} times since the last warning): {e}");
                    }
                    // Out of descriptors, most likely: let some close.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// A run of failed accepts (out of descriptors under a flood, retried every
/// 10 ms) is worth a warning when it starts and every few seconds while it
/// lasts, not a hundred a second.
#[derive(Default)]
struct Failures {
    /// Failed accepts in this run.
    count: u64,
    /// Failed accepts since the last warning.
    unreported: u64,
    last_warning: Option<Instant>,
}

/// Shortest time between two warnings of one run.
const WARN_EVERY: Duration = Duration::from_secs(5);

impl Failures {
    /// One more failure: `Some(failures since the last warning)` when it
    /// is time to warn.
    fn failed(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        self.unreported += 1;
        if self
            .last_warning
            .is_some_and(|last| now.duration_since(last) < WARN_EVERY)
        {
            return None;
        }
        self.last_warning = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }

    /// An accept worked: `Some(failures in the run)` if one just ended.
    fn ended(&mut self) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let run = std::mem::take(self);
        Some(run.count)
    }
}

/// A pingora listening service whose sockets are bound first, by
/// [`socket_or_exit`]; pingora's listeners then find them in the table.
pub struct BoundFirst<S> {
    service: S,
    addresses: Vec<String>,
    what: &'static str,
}

impl<S> BoundFirst<S> {
    /// `what` names the listeners' kind in an error ("the proxy listener").
    pub fn new(service: S, addresses: Vec<String>, what: &'static str) -> BoundFirst<S> {
        BoundFirst {
            service,
            addresses,
            what,
        }
    }
}

#[async_trait]
impl<S: Service> Service for BoundFirst<S> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
    ) {
        // Without a table (never on unix), pingora binds on its own.
        if let Some(fds) = &fds {
            for listen in &self.addresses {
                socket_or_exit(listen, fds, self.what).await;
            }
        }
        self.service
            .start_service(fds, shutdown, listeners_per_fd)
            .await
    }

    fn name(&self) -> &str {
        self.service.name()
    }

    fn threads(&self) -> Option<usize> {
        self.service.threads()
    }

    fn runtime_opts_override(&self, global: &RuntimeOpts) -> Option<RuntimeOpts> {
        self.service.runtime_opts_override(global)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        self.service.listen_addresses()
    }
}

#[cfg(test)]
mod tests {
    use super::Failures;
    use std::time::{Duration, Instant};

    #[test]
    fn a_run_of_failed_accepts_warns_at_its_start_then_every_few_seconds() {
        let mut failures = Failures::default();
        assert_eq!(failures.ended(), None, "nothing to say without failures");
        let start = Instant::now();
        assert_eq!(failures.failed(start), Some(1));
        // A hundred a second for 4.99 s: silent.
        for i in 1..499 {
            let now = start + Duration::from_millis(10 * i);
            assert_eq!(failures.failed(now), None);
        }
        // Then the next warning counts what was not said.
        assert_eq!(failures.failed(start + Duration::from_secs(5)), Some(499));
        assert_eq!(failures.ended(), Some(500));
        // A new run warns at once.
        assert_eq!(failures.failed(start + Duration::from_secs(6)), Some(1));
    }
}
