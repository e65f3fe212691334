//! Plain listeners, and a plain client connection as the lean path's
//! stream: the tokio socket and nothing else. pingora's own stream type adds a socket digest (two
//! addresses, ~450 B on the heap) and ~380 B of its own to every
//! connection, idle ones too; the lean path knows the peer from the accept
//! and needs neither. A connection pingora-proxy takes over (h2c) becomes
//! pingora's stream then.

use async_trait::async_trait;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType,
};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// A plain (not TLS) listener.
#[derive(Clone)]
pub struct PlainListener {
    pub address: SocketAddr,
    /// Its connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
}

/// A connection accepted on one.
#[derive(Debug)]
pub struct PlainStream(pub TcpStream);

impl PlainStream {
    /// The connection as pingora's stream, for pingora-proxy: `unread`
    /// (bytes the lean path read and did not use) comes first, and the
    /// socket's addresses are in its digest (pingora-proxy reads the
    /// client's address from it).
    pub fn into_pingora(stream: Stream, unread: &[u8]) -> Option<Stream> {
        let PlainStream(tcp) = *stream.into_any().downcast::<PlainStream>().ok()?;
        let fd = tcp.as_raw_fd();
        let mut l4 = L4Stream::from(tcp);
        l4.set_socket_digest(SocketDigest::from_raw_fd(fd));
        l4.rewind(unread);
        Some(Box::new(l4))
    }
}

impl AsyncRead for PlainStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PlainStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

// What pingora's stream interface asks; a plain socket has no TLS, proxy
// or timing details to give.
#[async_trait]
impl Shutdown for PlainStream {
    async fn shutdown(&mut self) {
        let _ = AsyncWriteExt::shutdown(&mut self.0).await;
    }
}

impl UniqueID for PlainStream {
    fn id(&self) -> UniqueIDType {
        self.0.as_raw_fd() as UniqueIDType
    }
}

impl Ssl for PlainStream {}

impl GetTimingDigest for PlainStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        Vec::new()
    }
}

impl GetProxyDigest for PlainStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        None
    }
}

impl GetSocketDigest for PlainStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        None
    }
}

impl Peek for PlainStream {}
