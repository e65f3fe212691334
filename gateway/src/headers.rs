//! Read access to a request's headers, whatever parsed them: the lean
//! HTTP/1 path's httparse slice and pingora-proxy's `http::HeaderMap`. The
//! decisions (`choose`, `pin`, `forwarded`) read headers through this.
//! And the edits the gateway makes to the heads it passes on, whichever
//! kind of head they are ([`EditHead`]).

use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;

/// Read access to a request's headers, whatever parsed them.
pub trait Headers {
    /// The first value of a header; `name` is lower case.
    fn get(&self, name: &str) -> Option<&[u8]>;
    /// Calls `each` with every value of a header until it returns `Some`.
    fn find_map<T>(&self, name: &str, each: impl FnMut(&[u8]) -> Option<T>) -> Option<T>;
}

impl Headers for http::HeaderMap {
    fn get(&self, name: &str) -> Option<&[u8]> {
        http::HeaderMap::get(self, name).map(|v| v.as_bytes())
    }

    fn find_map<T>(&self, name: &str, each: impl FnMut(&[u8]) -> Option<T>) -> Option<T> {
        self.get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .find_map(each)
    }
}

impl Headers for [httparse::Header<'_>] {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    fn find_map<T>(&self, name: &str, mut each: impl FnMut(&[u8]) -> Option<T>) -> Option<T> {
        self.iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .find_map(|h| each(h.value))
    }
}

/// A head the gateway edits: pingora's (whose methods keep each name's
/// case for HTTP/1, title case for these) or, on the lean HTTP/2 path, an
/// HTTP/2 header map edited in place (pingora's methods would take each
/// name apart and parse it again).
pub trait EditHead {
    fn headers(&self) -> &http::HeaderMap;
    fn set(&mut self, name: HeaderName, value: HeaderValue) -> Result<()>;
    fn add(&mut self, name: HeaderName, value: HeaderValue) -> Result<()>;
    fn unset(&mut self, name: &HeaderName);
}

// pingora's request and response heads have the same methods, and no
// trait of pingora's names them.
macro_rules! edit_pingora_head {
    ($head:ty) => {
        impl EditHead for $head {
            fn headers(&self) -> &http::HeaderMap {
                &self.headers
            }
            fn set(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
                self.insert_header(name, value)
            }
            fn add(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
                self.append_header(name, value).map(|_| ())
            }
            fn unset(&mut self, name: &HeaderName) {
                self.remove_header(name);
            }
        }
    };
}

edit_pingora_head!(RequestHeader);
edit_pingora_head!(ResponseHeader);

impl EditHead for http::HeaderMap {
    fn headers(&self) -> &http::HeaderMap {
        self
    }
    fn set(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
        self.insert(name, value);
        Ok(())
    }
    fn add(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
        self.append(name, value);
        Ok(())
    }
    fn unset(&mut self, name: &HeaderName) {
        self.remove(name);
    }
}
