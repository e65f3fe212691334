//! The lean HTTP/1 request path, on pingora-core's server, listeners, TLS
//! and connectors: a request is read and checked by httparse, routed by
//! [`crate::choose`], and relayed to one upstream endpoint over a pooled
//! keep-alive connection, with no per-request task, channel or header map.
//!
//! listener   the proxy's listeners: plain ones on the gateway's own accept
//!            loops, TLS ones on pingora's
//! plain      plain listeners, and a connection's stream: the socket, no more
//! app        a client connection's loop (HTTP/2 goes to the HTTP/2 app the
//!            server hands in)
//! client     one client connection, and what it does after a request
//! service    what serving a request needs: gateway state, connector, timeouts
//! exchange   one request to the end of its response, with retries
//! forward    one attempt on one upstream connection
//! request    the client's head: framing checks, routing, the upstream head
//! fields     the head fields that decide framing, read in one pass
//! response   the upstream's head: framing, the client's head
//! framing    where a body ends (Content-Length, chunked, close)
//! relay      bodies as they arrive, upgrade tunnels, the gateway's answers
//! mirror     which requests are copied to green, taps on what is relayed
//! log        the access log's line of an exchange
//! buffer     bytes read and not used yet, freed while idle
//! pool       idle upstream connections, per worker thread
//! workers    which worker thread serves a connection

mod app;
mod buffer;
mod client;
mod exchange;
mod fields;
mod forward;
pub(crate) mod framing;
mod listener;
mod log;
mod mirror;
mod plain;
pub(crate) mod pool;
mod relay;
mod request;
pub(crate) mod response;
mod service;
mod workers;

pub use app::Http1App;
pub(crate) use fields::Connection;
pub use listener::ProxyListeners;
pub use plain::PlainListener;
pub(crate) use relay::{write_all, write_all_after};
pub(crate) use request::is_hop_by_hop;
