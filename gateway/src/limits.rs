//! Overload limits on client connections, so that a flood of connections
//! cannot take the descriptors the gateway needs for everything else.
//!
//! Each proxy listener serves at most `max_connections` client connections
//! at once; past it a new connection is closed as soon as it is accepted
//! (its descriptor freed at once) and counted. Without a configured limit
//! a listener gets an equal share of a budget derived from the process's
//! descriptor limit (raised to its hard limit at start): half of it, less
//! [`RESERVED_DESCRIPTORS`] for the admin API, health checks, DNS and files,
//! since every client connection may need an upstream connection too, and
//! at most [`DEFAULT_BUDGET_CEILING`].

use crate::config::ListenerConfig;
use crate::metrics::Metrics;
use prometheus::{IntCounter, IntGauge};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Descriptors kept out of the client budget.
pub const RESERVED_DESCRIPTORS: usize = 256;

/// The default budget's ceiling, whatever the descriptor limit (systemd
/// units often allow a million): memory, not descriptors, binds past it.
/// A listener that should hold more says so with `max_connections`.
pub const DEFAULT_BUDGET_CEILING: usize = 65_536;

/// The client connection limits of every proxy listener.
pub struct ConnectionLimits {
    listeners: Vec<Arc<ListenerLimit>>,
}

struct ListenerLimit {
    address: Option<SocketAddr>,
    limit: usize,
    open: AtomicUsize,
    gauge: IntGauge,
    refused: IntCounter,
}

/// One admitted client connection; dropping it frees its place.
pub struct Admitted(Option<Arc<ListenerLimit>>);

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(listener) = &self.0 {
            listener.open.fetch_sub(1, Ordering::Relaxed);
            listener.gauge.dec();
        }
    }
}

impl ConnectionLimits {
    pub fn new(listeners: &[ListenerConfig], metrics: &Metrics) -> ConnectionLimits {
        let budget = descriptor_budget();
        let unset = listeners
            .iter()
            .filter(|l| l.max_connections.is_none())
            .count();
        let share = budget / unset.max(1);
        let listeners = listeners
            .iter()
            .map(|l| {
                let limit = l.max_connections.unwrap_or(share).max(1);
                tracing::info!(listener = %l.address, max_connections = limit, "client connection limit");
                Arc::new(ListenerLimit {
                    address: l.address.parse().ok(),
                    limit,
                    open: AtomicUsize::new(0),
                    gauge: metrics.client_connections.with_label_values(&[&l.address]),
                    refused: metrics
                        .connections_refused
                        .with_label_values(&[&l.address]),
                })
            })
            .collect();
        ConnectionLimits { listeners }
    }

    /// Admits a connection accepted on `local` (the listener's socket), or
    /// `None` when that listener is full: the caller closes it.
    pub fn admit(&self, local: Option<SocketAddr>) -> Option<Admitted> {
        let Some(listener) = local.and_then(|local| self.listener_of(local)) else {
            return Some(Admitted(None));
        };
        if listener.open.fetch_add(1, Ordering::Relaxed) >= listener.limit {
            listener.open.fetch_sub(1, Ordering::Relaxed);
            listener.refused.inc();
            return None;
        }
        listener.gauge.inc();
        Some(Admitted(Some(listener.clone())))
    }

    /// Client connections open on every listener.
    pub fn open(&self) -> usize {
        self.listeners
            .iter()
            .map(|l| l.open.load(Ordering::Relaxed))
            .sum()
    }

    /// The listener whose address a connection's local address is: its
    /// port, and its IP unless the listener binds every address.
    fn listener_of(&self, local: SocketAddr) -> Option<&Arc<ListenerLimit>> {
        self.listeners.iter().find(|l| {
            l.address.is_some_and(|a| {
                a.port() == local.port() && (a.ip().is_unspecified() || a.ip() == local.ip())
            })
        })
    }
}

/// Raises the soft descriptor limit to the hard one (as nginx's
/// `worker_rlimit_nofile` or systemd's `LimitNOFILE` would), and returns
/// the client connection budget it allows.
fn descriptor_budget() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX).min(1 << 24);
    (soft.saturating_sub(RESERVED_DESCRIPTORS) / 2).clamp(64, DEFAULT_BUDGET_CEILING)
}
