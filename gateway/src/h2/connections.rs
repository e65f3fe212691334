//! HTTP/2 upstream connections for the lean path: one per endpoint per
//! worker, every stream of that worker to that endpoint multiplexed on it
//! (pingora's connector opens one connection per stream in flight unless
//! told otherwise, and wraps each stream in its session).
//!
//! Each worker is a single-threaded runtime (`work_stealing: false`), so
//! the table is a thread-local without a lock. A connection's task (the
//! `h2` crate's connection, reading and writing frames for all its streams)
//! runs on the worker that opened it; it ends once the upstream closes it or
//! nobody holds a handle to it, and the next stream then opens a new one.

use crate::choose::Attempts;
use crate::metrics::Metrics;
use crate::upstream::Endpoint;
use ::h2::client::SendRequest;
use bytes::Bytes;
use nohash_hasher::IntMap;
use pingora::connectors::TransportConnector;
use pingora::protocols::ALPN;
use pingora::upstreams::peer::Peer;
use std::cell::RefCell;

thread_local! {
    // Keyed by pingora's reuse hash: hashing it again would be for nothing.
    static CONNECTIONS: RefCell<IntMap<u64, SendRequest<Bytes>>> = RefCell::new(IntMap::default());
}

/// A handle to open a stream to `endpoint` on: this worker's connection
/// (`true`: it carried streams before), else a new one. A connect failure
/// is counted for `route` and the endpoint marked tried; `None` says to try
/// the next.
pub async fn connection(
    connector: &TransportConnector,
    endpoint: &Endpoint,
    route: &str,
    attempts: &mut Attempts,
    metrics: &Metrics,
) -> Option<(SendRequest<Bytes>, bool)> {
    let key = endpoint.pool_key;
    if let Some(open) = CONNECTIONS.with_borrow(|c| c.get(&key).cloned()) {
        return Some((open, true));
    }
    // Boxed: connecting is rare and its future large.
    match Box::pin(connect(connector, endpoint)).await {
        Ok(sender) => {
            CONNECTIONS.with_borrow_mut(|c| c.insert(key, sender.clone()));
            Some((sender, false))
        }
        Err(e) => {
            attempts.unreachable(endpoint.addr, route, metrics, e);
            None
        }
    }
}

/// Stops handing out the connection to the endpoint `key` (it closed, or a
/// stream on it got no answer in time); streams open on it go on.
pub fn forget(key: u64) {
    CONNECTIONS.with_borrow_mut(|c| c.remove(&key));
}

async fn connect(
    connector: &TransportConnector,
    endpoint: &Endpoint,
) -> Result<SendRequest<Bytes>, String> {
    let stream = connector
        .new_stream(&endpoint.peer)
        .await
        .map_err(|e| e.to_string())?;
    // Over TLS the upstream must have chosen HTTP/2; in the clear it is
    // spoken by prior knowledge.
    if endpoint.peer.tls() && stream.selected_alpn_proto() != Some(ALPN::H2) {
        return Err("it did not choose HTTP/2 (ALPN h2) in the TLS handshake".into());
    }
    let (sender, connection) = ::h2::client::Builder::new()
        .handshake::<_, Bytes>(stream)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    let addr = endpoint.addr;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(endpoint = %addr, "HTTP/2 upstream connection ended: {e}");
        }
    });
    Ok(sender)
}
