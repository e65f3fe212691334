//! The process's life once it serves, and how it ends:
//!
//! SIGTERM / SIGINT  drain: readiness goes false, pingora stops accepting,
//!                   and the process exits as soon as no request is in
//!                   flight or `shutdown_grace` is over (pingora alone would
//!                   always sleep the whole grace period)
//! SIGUSR2           in-place upgrade ([`crate::upgrade`]): a successor takes
//!                   the listening sockets, then this process stops
//!                   accepting, lets its keep-alive clients go (each closes
//!                   after its next response) and exits once no request and
//!                   no client connection is left, or the grace is over
//! SIGQUIT           the same hand-over to a successor started by hand
//!                   (`gateway --upgrade`), as pingora's own servers do
//!
//! Under systemd (`Type=notify`) it says when it serves, and which process
//! is the unit's main one.

use crate::control::Gateway;
use crate::limits::ConnectionLimits;
use crate::{systemd, upgrade};
use pingora::server::{ExecutionPhase, ShutdownSignal};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, oneshot};

pub struct Lifecycle {
    pub gateway: Arc<Gateway>,
    pub limits: Arc<ConnectionLimits>,
    /// pingora's server phases, from before it started.
    pub phases: broadcast::Receiver<ExecutionPhase>,
    pub grace: Duration,
    pub upgrade_socket: PathBuf,
    pub _kept: KeptUntilExit,
}

impl Lifecycle {
    /// Runs until the process should end, then exits it.
    pub fn serve_until_stopped(
        mut self,
        stop: oneshot::Sender<ShutdownSignal>,
    ) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(self.run(stop))?;
        std::process::exit(0)
    }

    async fn run(&mut self, stop: oneshot::Sender<ShutdownSignal>) -> anyhow::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut usr2 = signal(SignalKind::user_defined2())?;
        let mut quit = signal(SignalKind::quit())?;
        self.wait_for(|p| matches!(p, ExecutionPhase::Running))
            .await;
        systemd::ready();
        let name = loop {
            tokio::select! {
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
                _ = quit.recv() => return self.hand_over(stop, None).await,
                _ = usr2.recv() => match upgrade::start_successor(&self.upgrade_socket).await {
                    Ok(successor) => return self.hand_over(stop, Some(successor)).await,
                    Err(e) => tracing::error!("SIGUSR2: upgrade abandoned, this process keeps serving: {e}"),
                },
            }
        };
        self.terminate(stop, name).await;
        Ok(())
    }

    async fn terminate(&self, stop: oneshot::Sender<ShutdownSignal>, name: &str) {
        let started = Instant::now();
        self.gateway.start_draining();
        let _ = stop.send(ShutdownSignal::GracefulTerminate);
        tracing::info!(in_flight = self.gateway.in_flight(), grace = ?self.grace, "{name}: draining");
        // Let connections accepted just before the signal register.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.wait_until(started, || self.gateway.in_flight() == 0)
            .await;
    }

    async fn hand_over(
        &mut self,
        stop: oneshot::Sender<ShutdownSignal>,
        successor: Option<u32>,
    ) -> anyhow::Result<()> {
        // pingora sends the listening sockets; both processes accept for a
        // few seconds, then this one stops.
        let _ = stop.send(ShutdownSignal::GracefulUpgrade);
        self.wait_for(|p| matches!(p, ExecutionPhase::GracefulUpgradeCloseTimeout))
            .await;
        tracing::info!(
            successor,
            "listening sockets handed over to the new process"
        );
        self.gateway.start_draining();
        self.wait_for(|p| matches!(p, ExecutionPhase::ShutdownStarted))
            .await;
        // Connections accepted just before pingora stopped accepting
        // register with the limits when their tasks start: wait for them,
        // or the process would exit under them (the client sees a reset).
        tokio::time::sleep(Duration::from_millis(250)).await;
        tracing::info!(
            in_flight = self.gateway.in_flight(),
            connections = self.limits.open(),
            "no longer accepting; draining"
        );
        let started = Instant::now();
        self.wait_until(started, || {
            self.gateway.in_flight() == 0 && self.limits.open() == 0
        })
        .await;
        Ok(())
    }

    /// Waits until `done` or the grace period (from `started`) is over.
    async fn wait_until(&self, started: Instant, done: impl Fn() -> bool) {
        while !done() && started.elapsed() < self.grace {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if done() {
            tracing::info!(after = ?started.elapsed(), "drained; exiting");
        } else {
            tracing::warn!(
                in_flight = self.gateway.in_flight(),
                connections = self.limits.open(),
                "grace period over; exiting with work left"
            );
        }
    }

    /// Waits for pingora to reach a phase (or to end).
    async fn wait_for(&mut self, reached: impl Fn(&ExecutionPhase) -> bool) {
        loop {
            match self.phases.recv().await {
                Ok(phase) if reached(&phase) => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// What costs much to free (each TLS client context holds the system's CA
/// store, ~100k instructions to free): kept until `exit`, so a stopping
/// process does not spend its last moments freeing it, and the benchmark's
/// instruction counts do not depend on how far that got before the exit.
pub struct KeptUntilExit {
    pub h2: Arc<crate::h2::H2App>,
    /// Upstream connections of the HTTP/1 path and TCP routes.
    pub connector: Arc<pingora::connectors::TransportConnector>,
}
