//! What serving any request needs beyond its connection: the gateway's
//! state (routes, metrics, draining), the connector that opens upstream
//! connections, and the client timeouts. `exchange` and `forward` serve
//! requests with it; `app` owns it.

use crate::config::ClientTimeoutConfig;
use crate::control::Gateway;
use pingora::connectors::TransportConnector;
use std::sync::Arc;

pub struct Service {
    pub gateway: Arc<Gateway>,
    /// Opens upstream connections (TCP or TLS, as the endpoint's peer says).
    pub connector: Arc<TransportConnector>,
    pub timeouts: ClientTimeoutConfig,
}
