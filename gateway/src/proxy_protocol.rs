//! PROXY protocol (v1 text and v2 binary, HAProxy's specification) on the
//! listeners that ask for it: a TCP load balancer in front says who the
//! client is before the connection's own bytes (before the TLS handshake on
//! a TLS listener). The header is parsed with the `ppp` crate; its source
//! address becomes the connection's peer address, so pins, forwarding
//! headers and metrics see the client, not the load balancer. A connection
//! without a valid header is closed.

use async_trait::async_trait;
use pingora::listeners::PreTlsProcess;
use pingora::protocols::l4::socket::SocketAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest};
use ppp::{HeaderResult, PartialResult};
use std::collections::HashSet;
use std::net::SocketAddr as StdSocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest header read (v2 with TLVs stays well below; v1 is at most
/// 107 bytes).
const MAX_HEADER: usize = 1024;

/// Which listeners expect the header: by their local address.
pub struct ProxyProtocol {
    listeners: HashSet<StdSocketAddr>,
    /// How long a connection may take to send it (`client_timeouts.header`).
    timeout: Duration,
}

impl ProxyProtocol {
    pub fn new(listeners: HashSet<StdSocketAddr>, timeout: Duration) -> ProxyProtocol {
        ProxyProtocol { listeners, timeout }
    }

    /// Whether any listener expects the header.
    pub fn is_used(&self) -> bool {
        !self.listeners.is_empty()
    }

    /// Whether connections accepted on `local` start with the header.
    pub fn expected_on(&self, stream: &L4Stream) -> bool {
        if !self.is_used() {
            return false;
        }
        // A fresh digest: a stream moved to another worker may have none.
        let local = SocketDigest::from_raw_fd(stream.as_raw_fd())
            .local_addr()
            .and_then(|a| a.as_inet().copied());
        local.is_some_and(|l| {
            self.listeners.contains(&l)
                || self.listeners.iter().any(|a| {
                    a.port() == l.port() && a.ip().is_unspecified() && a.is_ipv4() == l.is_ipv4()
                })
        })
    }

    /// Reads the header off a plain connection: its source, and the bytes
    /// read past it (the connection's own first bytes).
    pub async fn read<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
    ) -> Result<(Option<StdSocketAddr>, Vec<u8>), String> {
        tokio::time::timeout(self.timeout, read_header(stream))
            .await
            .map_err(|_| format!("no PROXY protocol header within {:?}", self.timeout))?
    }

    /// Reads the header off `stream` (before a TLS handshake), makes its
    /// source the peer address, and gives back any bytes read past it.
    /// Returns that source.
    pub async fn accept(&self, stream: &mut L4Stream) -> Result<Option<StdSocketAddr>, String> {
        let (source, rest) = self.read(stream).await?;
        stream.rewind(&rest);
        if let Some(source) = source {
            let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
            let _ = digest.peer_addr.set(Some(SocketAddr::Inet(source)));
            stream.set_socket_digest(digest);
        }
        Ok(source)
    }
}

/// The header's source address (`None`: a LOCAL or UNKNOWN header, e.g. a
/// load balancer's own health check, which keeps the peer address), and
/// the bytes read past the header.
async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Option<StdSocketAddr>, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(256);
    loop {
        let mut chunk = [0u8; 256];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the PROXY protocol header: {e}"))?;
        if n == 0 {
            return Err("closed before the PROXY protocol header ended".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let parsed = HeaderResult::parse(&buf);
        if parsed.is_incomplete() {
            if buf.len() > MAX_HEADER {
                return Err(format!("PROXY protocol header over {MAX_HEADER} bytes"));
            }
            continue;
        }
        let (len, source) = match parsed {
            HeaderResult::V1(Ok(h)) => (h.header.len(), v1_source(&h.addresses)),
            HeaderResult::V2(Ok(h)) => (h.len(), v2_source(&h.addresses)),
            HeaderResult::V1(Err(e)) => return Err(format!("bad PROXY protocol v1 header: {e}")),
            HeaderResult::V2(Err(e)) => return Err(format!("bad PROXY protocol v2 header: {e}")),
        };
        return Ok((source, buf.split_off(len)));
    }
}

fn v1_source(addresses: &ppp::v1::Addresses) -> Option<StdSocketAddr> {
    match addresses {
        ppp::v1::Addresses::Tcp4(a) => Some((a.source_address, a.source_port).into()),
        ppp::v1::Addresses::Tcp6(a) => Some((a.source_address, a.source_port).into()),
        ppp::v1::Addresses::Unknown => None,
    }
}

fn v2_source(addresses: &ppp::v2::Addresses) -> Option<StdSocketAddr> {
    match addresses {
        ppp::v2::Addresses::IPv4(a) => Some((a.source_address, a.source_port).into()),
        ppp::v2::Addresses::IPv6(a) => Some((a.source_address, a.source_port).into()),
        _ => None,
    }
}

/// On TLS listeners: the header comes before the handshake.
#[async_trait]
impl PreTlsProcess for ProxyProtocol {
    async fn process(&self, stream: &mut L4Stream) -> pingora::Result<()> {
        if !self.expected_on(stream) {
            return Ok(());
        }
        self.accept(stream).await.map(|_| ()).map_err(|e| {
            tracing::debug!("connection closed: {e}");
            pingora::Error::explain(pingora::ErrorType::AcceptError, e)
        })
    }
}
