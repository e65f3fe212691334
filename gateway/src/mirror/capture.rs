//! What a comparison needs of an exchange: the request as sent upstream
//! and an answer's status, headers and body (up to `max_body`). On the
//! lean HTTP/1 path the bytes are tapped as they are relayed and parsed
//! later, off the request path.

use pingora::http::RequestHeader;

/// Bytes copied as they pass, up to a limit.
pub struct Capture {
    limit: usize,
    pub bytes: Vec<u8>,
    /// More came than the limit.
    pub over: bool,
}

impl Capture {
    pub fn new(limit: usize) -> Capture {
        Capture {
            limit,
            bytes: Vec::new(),
            over: false,
        }
    }

    pub fn take(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.bytes.len());
        self.over |= bytes.len() > room;
        self.bytes
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// The request a mirror copy repeats.
pub enum RequestCopy {
    /// The head the lean path sent upstream (pin headers already gone),
    /// and the body.
    Http1 { head: Vec<u8>, body: Vec<u8> },
    /// pingora's request header as sent upstream, and the body.
    Header {
        header: Box<RequestHeader>,
        body: Vec<u8>,
    },
}

impl RequestCopy {
    pub fn body(&self) -> &[u8] {
        match self {
            RequestCopy::Http1 { body, .. } | RequestCopy::Header { body, .. } => body,
        }
    }

    /// The request header for green's copy.
    pub fn header(&self) -> Result<RequestHeader, String> {
        match self {
            RequestCopy::Header { header, .. } => Ok(header.as_ref().clone()),
            RequestCopy::Http1 { head, .. } => {
                let mut headers = [httparse::EMPTY_HEADER; 128];
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(head) {
                    Ok(httparse::Status::Complete(_)) => {}
                    _ => return Err("the request head could not be read again".into()),
                }
                let (Some(method), Some(path)) = (req.method, req.path) else {
                    return Err("the request line could not be read again".into());
                };
                let mut header = RequestHeader::build(method, path.as_bytes(), None)
                    .map_err(|e| e.to_string())?;
                for h in req.headers.iter() {
                    header
                        .append_header(h.name.to_owned(), h.value)
                        .map_err(|e| e.to_string())?;
                }
                Ok(header)
            }
        }
    }

    /// Method and path (no query: it may carry secrets), for a sample.
    pub fn method_and_path(&self) -> (String, String) {
        let header = self.header();
        match header {
            Ok(h) => (h.method.to_string(), h.uri.path().to_owned()),
            Err(_) => ("?".into(), "?".into()),
        }
    }
}

/// One colour's answer.
#[derive(Default)]
pub struct Answer {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The body was longer than `max_body`: not comparable.
    pub truncated: bool,
    /// Request to the end of the answer.
    pub seconds: f64,
}

impl Answer {
    /// From a relayed HTTP/1 response: its head's bytes, and its body's
    /// bytes as framed (chunked ones decoded here).
    pub fn from_http1(head: &[u8], body: Capture, chunked: bool) -> Answer {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut resp = httparse::Response::new(&mut headers);
        let _ = resp.parse(head);
        let (bytes, truncated) = match chunked {
            false => (body.bytes, body.over),
            true => match dechunk(&body.bytes) {
                Some(decoded) => (decoded, body.over),
                None => (Vec::new(), true),
            },
        };
        Answer {
            status: resp.code.unwrap_or(0),
            headers: resp
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                .collect(),
            body: bytes,
            truncated,
            seconds: 0.0,
        }
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// A chunked body's data; `None` when it ends early (cut at the limit).
fn dechunk(mut framed: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(framed.len());
    loop {
        let (consumed, size) = match httparse::parse_chunk_size(framed) {
            Ok(httparse::Status::Complete(c)) => c,
            _ => return None,
        };
        if size == 0 {
            return Some(out);
        }
        let size = usize::try_from(size).ok()?;
        let data = framed.get(consumed..consumed + size)?;
        out.extend_from_slice(data);
        framed = framed.get(consumed + size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_is_decoded_and_a_cut_one_is_not() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcde"[..])
        );
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nd"), None);
    }

    #[test]
    fn a_capture_keeps_up_to_its_limit_and_says_when_more_came() {
        let mut c = Capture::new(4);
        c.take(b"ab");
        c.take(b"cdef");
        assert_eq!((c.bytes.as_slice(), c.over), (&b"abcd"[..], true));
    }
}
