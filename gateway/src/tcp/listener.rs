//! A TCP route listener's accept loop, a pingora service of its own.
//!
//! pingora's listening service wraps every connection in its `Stream` (a
//! boxed stream with a socket digest, a pending-time clock and a socket
//! check on drop) and runs it through its handshake and app layers: more
//! than half of a relayed connection's cost. A relay needs none of it, so
//! this loop accepts plain tokio streams. The listening socket still goes
//! through pingora's table of listening descriptors, so an in-place upgrade
//! hands it to the new process as it does pingora's own listeners.

use super::TcpApp;
use crate::listening;
use async_trait::async_trait;
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;
use std::sync::Arc;

pub struct TcpService {
    name: String,
    app: Arc<TcpApp>,
}

impl TcpService {
    pub fn new(app: TcpApp) -> TcpService {
        TcpService {
            name: format!("tcp {}", app.listen),
            app: Arc::new(app),
        }
    }
}

#[async_trait]
impl Service for TcpService {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let listen = self.app.listen.clone();
        let fds = fds.expect("pingora hands every service its table of listening sockets");
        let what = "a TCP route's listener";
        let listener = listening::tokio_listener_or_exit(&listen, &fds, what).await;
        listening::accept_until_shutdown(&listener, &listen, shutdown, |client, peer| {
            let app = self.app.clone();
            // Boxed: the task then holds a pointer, not the connection's
            // whole future, which spawning would copy in (three moves) and
            // its end copy over (tokio writes the output over the future's
            // room): ~1,600 instructions a connection.
            tokio::spawn(Box::pin(async move { app.serve(client, peer).await }));
        })
        .await;
    }

    fn name(&self) -> &str {
        &self.name
    }
}
