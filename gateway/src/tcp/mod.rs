//! TCP routes: connections on a route's own listener, split per
//! connection between blue and green with the same split document, admin
//! API and generation as HTTP routes (so a plan moves them too).
//!
//! listener   the accept loop: plain tokio streams, the listening socket
//!            handed over on an in-place upgrade ([`listener`])
//! TcpApp     one listener: which route (the only one, or by the
//!            ClientHello's server name on a TLS passthrough listener,
//!            [`sni`]), which colour (the client address's bucket against
//!            the split: a client moves blue→green at most once), which
//!            endpoint (healthy, not tried yet, failing over as HTTP does)
//! relay      bytes both ways until done, idle or drained ([`relay`])

mod listener;
mod relay;
pub mod sni;

pub use listener::TcpService;

use crate::access_log::{Asked, Entry};
use crate::choose::{Attempts, Choice};
use crate::control::Gateway;
use crate::metrics::TcpSeries;
use crate::routing::{RouteDef, RouteEntry, Snapshot};
use crate::split::{bucket_of, Color};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub struct TcpApp {
    gateway: Arc<Gateway>,
    /// The listener's address, as the routes' `tcp.listen` names it.
    listen: String,
    /// How long a passthrough client may take to send its ClientHello.
    hello_timeout: std::time::Duration,
}

impl TcpApp {
    pub fn new(
        gateway: Arc<Gateway>,
        listen: String,
        hello_timeout: std::time::Duration,
    ) -> TcpApp {
        TcpApp {
            gateway,
            listen,
            hello_timeout,
        }
    }
}

/// The route a connection takes: on a passthrough listener by server name
/// (exact or `*.`, else the default), otherwise the listener's one route.
fn route_for<'a>(
    snapshot: &'a Snapshot,
    listen: &str,
    server_name: Option<&str>,
) -> Option<&'a RouteEntry> {
    let here = || {
        snapshot
            .routes
            .iter()
            .filter(move |r| r.def.tcp.as_ref().is_some_and(|t| t.listen == listen))
    };
    let named = server_name.and_then(|name| {
        here().find(|r| {
            r.def
                .tcp
                .as_ref()
                .is_some_and(|t| t.sni.iter().any(|p| sni::names(p, name)))
        })
    });
    named.or_else(|| {
        here().find(|r| {
            r.def
                .tcp
                .as_ref()
                .is_some_and(|t| t.sni_default || t.sni.is_empty())
        })
    })
}

impl TcpApp {
    /// One accepted connection, from routing to its end.
    async fn serve(&self, mut client: TcpStream, peer: SocketAddr) {
        let started = Instant::now();
        // Relayed bytes go out as they come.
        let _ = client.set_nodelay(true);
        let snapshot = self.gateway.snapshot();
        let passthrough = snapshot
            .routes
            .iter()
            .filter_map(|r| r.def.tcp.as_ref())
            .any(|t| t.listen == self.listen && (!t.sni.is_empty() || t.sni_default));
        let (early, server_name) = match passthrough {
            false => (Vec::new(), None),
            // Boxed: its 4 KiB read buffer would otherwise be part of every
            // connection's task, copied in at spawn and out at its end.
            true => match Box::pin(sni::read_hello(&mut client, self.hello_timeout)).await {
                sni::Hello::Read { bytes, server_name } => (bytes, server_name),
                sni::Hello::Bad(why) => {
                    tracing::debug!(listener = %self.listen, "connection closed: {why}");
                    return self.rejected("bad_client_hello");
                }
                sni::Hello::Gone => return,
            },
        };
        let Some(entry) = route_for(&snapshot, &self.listen, server_name.as_deref()) else {
            let reason = if server_name.is_some() {
                "unknown_sni"
            } else {
                "no_sni"
            };
            return self.rejected(reason);
        };
        // The address as text, as HTTP routes hash a client's address.
        let mut key = Vec::with_capacity(39);
        crate::forwarded::write_ip(&mut key, peer.ip());
        let color = match entry.green_percent.sends_to_green(bucket_of(&key)) {
            true => Color::Green,
            false => Color::Blue,
        };
        let choice = Choice {
            route: 0,
            color,
            pinned: false,
            issued_key: None,
        };
        let mut connection = Connection {
            app: self,
            entry,
            attempts: Attempts::new(&choice),
            client_ip: peer.ip(),
            server_name,
            started,
            tries: 0,
            upstream: None,
        };
        connection.serve(client, &early).await;
    }

    fn rejected(&self, reason: &str) {
        let m = &self.gateway.metrics.tcp_rejected;
        m.with_label_values(&[&self.listen, reason]).inc();
    }
}

/// One client connection on its route.
struct Connection<'a> {
    app: &'a TcpApp,
    entry: &'a RouteEntry,
    attempts: Attempts,
    client_ip: IpAddr,
    server_name: Option<String>,
    started: Instant,
    tries: u32,
    upstream: Option<SocketAddr>,
}

impl Connection<'_> {
    async fn serve(&mut self, mut client: TcpStream, early: &[u8]) {
        let def = self.entry.def.clone();
        let Some(mut upstream) = self.connect().await else {
            return self.close("refused", 0, 0);
        };
        let color = self.attempts.color;
        let Some(_admitted) = def.group(color).admit() else {
            def.metrics.overloaded(color, false);
            return self.close("overload", 0, 0);
        };
        if upstream.write_all(early).await.is_err() {
            return self.close("reset", 0, 0);
        }
        let idle = def
            .tcp
            .as_ref()
            .map_or(std::time::Duration::from_secs(600), |t| t.idle_timeout);
        let drains = &self.app.gateway.drains;
        let drain_left = || drains.time_left(color);
        let relayed = Box::pin(relay::both_ways(
            &mut client,
            &mut upstream,
            idle,
            drain_left,
        ))
        .await;
        let bytes_in = relayed.bytes_in + early.len() as u64;
        let result = match relayed.ended {
            relay::Ended::Failed(e) if relayed.bytes_out == 0 => {
                tracing::debug!(route = %def.name, "upstream failed before its first byte: {e}");
                "reset"
            }
            _ => "ok",
        };
        series(&def).relayed(color, bytes_in, relayed.bytes_out);
        self.close(result, bytes_in, relayed.bytes_out);
    }

    /// A healthy endpoint that takes the connection: tried one after the
    /// other (each within the group's connect timeout), failing over to the
    /// other colour as the route allows.
    async fn connect(&mut self) -> Option<TcpStream> {
        let def = self.entry.def.clone();
        let metrics = &self.app.gateway.metrics;
        loop {
            let endpoint = self.attempts.next(&def, metrics).ok()?;
            self.tries += 1;
            self.upstream = Some(endpoint.addr);
            let began = Instant::now();
            let limit = def.group(self.attempts.color).spec().timeouts.connect;
            let connecting = TcpStream::connect(endpoint.addr);
            // The worker's deadline list, not a timer per connect.
            let failed = match crate::deadline::within(limit, connecting).await {
                Some(Ok(stream)) => {
                    let seconds = began.elapsed().as_secs_f64();
                    series(&def).connected(self.attempts.color, seconds);
                    // Relayed bytes go out as they come.
                    let _ = stream.set_nodelay(true);
                    return Some(stream);
                }
                Some(Err(e)) => e.to_string(),
                None => format!("no connection within {limit:?}"),
            };
            tracing::debug!(endpoint = %endpoint.addr, "connect failed: {failed}");
            self.attempts.failed(endpoint.addr);
        }
    }

    /// Counts the connection and logs it; the client closes as `serve`
    /// returns.
    fn close(&mut self, result: &str, bytes_in: u64, bytes_out: u64) {
        let def = &self.entry.def;
        let color = self.attempts.color;
        let result = if result == "refused" && self.tries == 0 {
            "no_endpoint"
        } else {
            result
        };
        series(def).connection(color, result);
        let Some(log) = self.app.gateway.access_log.as_ref().filter(|l| l.wants()) else {
            return;
        };
        log.record(Entry {
            time: SystemTime::now(),
            client: Some(self.client_ip),
            asked: Asked::Tcp {
                server_name: self.server_name.take(),
                result: result.to_owned(),
            },
            status: 0,
            grpc_status: None,
            bytes_in,
            bytes_out,
            duration: self.started.elapsed(),
            upstream: self.upstream,
            route: Some(def.clone()),
            color: Some(color),
            pinned: false,
            attempts: self.tries,
        });
    }
}

fn series(def: &RouteDef) -> &TcpSeries {
    def.metrics
        .tcp
        .as_ref()
        .expect("a TCP route has its series")
}
