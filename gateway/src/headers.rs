//! Read access to a request's headers, whatever parsed them: the lean
//! HTTP/1 path's httparse slice and pingora-proxy's `http::HeaderMap`. The
//! decisions (`choose`, `pin`, `forwarded`) read headers through this.

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
