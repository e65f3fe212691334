//! TLS passthrough: the server name of a connection's ClientHello, read
//! without ending the TLS (rustls's `Acceptor` parses the hello; nothing is
//! answered), and the bytes read kept to be sent on untouched.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A ClientHello larger than this is refused (16 KiB records, a few of them).
const MAX_HELLO: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// The bytes read so far (to be relayed first) and the server name the
    /// client asked for, if any.
    Read {
        bytes: Vec<u8>,
        server_name: Option<String>,
    },
    /// Not a TLS ClientHello, too large, or cut off.
    Bad(String),
    /// Closed before sending anything (a port probe).
    Gone,
}

/// Reads until the ClientHello is complete (within `timeout`, checked on
/// the worker's deadline list: up to a quarter second more).
pub async fn read_hello(stream: &mut (impl AsyncRead + Unpin), timeout: Duration) -> Hello {
    let mut bytes = Vec::with_capacity(1024);
    let mut acceptor = rustls::server::Acceptor::default();
    let reading = async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = match stream.read(&mut chunk).await {
                Ok(0) if bytes.is_empty() => return Hello::Gone,
                Ok(0) => return Hello::Bad("closed before its ClientHello ended".into()),
                Ok(n) => n,
                Err(e) => return Hello::Bad(format!("read: {e}")),
            };
            bytes.extend_from_slice(&chunk[..n]);
            if bytes.len() > MAX_HELLO {
                return Hello::Bad(format!("ClientHello over {MAX_HELLO} bytes"));
            }
            if let Err(e) = acceptor.read_tls(&mut &chunk[..n]) {
                return Hello::Bad(format!("not TLS: {e}"));
            }
            match acceptor.accept() {
                Ok(None) => continue,
                Ok(Some(accepted)) => {
                    let server_name = accepted.client_hello().server_name().map(str::to_owned);
                    return Hello::Read {
                        bytes: std::mem::take(&mut bytes),
                        server_name,
                    };
                }
                Err((e, _alert)) => return Hello::Bad(format!("not a ClientHello: {e}")),
            }
        }
    };
    crate::deadline::within(timeout, reading)
        .await
        .unwrap_or_else(|| Hello::Bad(format!("no ClientHello within {timeout:?}")))
}

/// Whether `pattern` (a name, or `*.` and a name one label up) names `host`.
pub fn names(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(parent)),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wildcards_name_one_label_only() {
        assert!(super::names("shop.example", "SHOP.example"));
        assert!(super::names("*.shop.example", "eu.shop.example"));
        assert!(!super::names("*.shop.example", "a.eu.shop.example"));
        assert!(!super::names("*.shop.example", "shop.example"));
    }
}
