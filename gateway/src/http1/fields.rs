//! The head fields that decide framing and routing (Host, Content-Length,
//! Transfer-Encoding, Connection, Upgrade, Expect), read in one pass; a
//! contradiction is refused with what was wrong.

/// The fields that decide framing and routing, read in one pass.
pub(super) struct Fields<'a> {
    pub host: Option<&'a str>,
    pub content_length: Option<u64>,
    /// `Some(true)`: Transfer-Encoding ends in chunked; `Some(false)`: it
    /// does not.
    pub chunked: Option<bool>,
    pub connection: Connection<'a>,
    pub upgrade: Option<&'a [u8]>,
    pub expects_continue: bool,
}

impl<'a> Fields<'a> {
    pub fn read(headers: &'a [httparse::Header<'a>]) -> Result<Fields<'a>, &'static str> {
        let mut fields = Fields {
            host: None,
            content_length: None,
            chunked: None,
            connection: Connection::default(),
            upgrade: None,
            expects_continue: false,
        };
        for h in headers {
            let name = h.name;
            if name.eq_ignore_ascii_case("host") {
                let value = std::str::from_utf8(h.value).map_err(|_| "Host is not text")?;
                if fields.host.is_some_and(|seen| seen != value) {
                    return Err("two different Host headers");
                }
                fields.host = Some(value);
            } else if name.eq_ignore_ascii_case("content-length") {
                for item in h.value.split(|&b| b == b',') {
                    let n =
                        parse_length(item.trim_ascii()).ok_or("Content-Length is not a number")?;
                    if fields.content_length.is_some_and(|seen| seen != n) {
                        return Err("Content-Length values disagree");
                    }
                    fields.content_length = Some(n);
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Several lines are one list: only the very last coding counts.
                let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
                fields.chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                fields.connection.add(h.value);
            } else if name.eq_ignore_ascii_case("upgrade") {
                fields.upgrade = Some(h.value);
            } else if name.eq_ignore_ascii_case("expect") {
                fields.expects_continue = h.value.eq_ignore_ascii_case(b"100-continue");
            }
        }
        Ok(fields)
    }
}

/// Digits only: no sign, no spaces, at most 18 of them.
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The tokens of the Connection header(s).
#[derive(Default)]
pub(crate) struct Connection<'a> {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
    /// Other tokens: names of headers meant for this connection only.
    pub others: Vec<&'a [u8]>,
}

impl<'a> Connection<'a> {
    pub fn add(&mut self, value: &'a [u8]) {
        for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else if !token.is_empty() {
                self.others.push(token);
            }
        }
    }

    /// Whether the Connection header names this header.
    pub fn names(&self, header: &str) -> bool {
        self.others
            .iter()
            .any(|t| t.eq_ignore_ascii_case(header.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_digits_only() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"1234"), Some(1234));
        for bad in [
            &b""[..],
            b"+5",
            b"-1",
            b"5 ",
            b"0x10",
            b"1234567890123456789",
        ] {
            assert_eq!(parse_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn connection_tokens_name_headers_for_this_hop() {
        let mut connection = Connection::default();
        connection.add(b"Keep-Alive, X-Secret");
        connection.add(b"upgrade");
        assert!(connection.keep_alive && connection.upgrade && !connection.close);
        assert!(connection.names("x-secret"));
        assert!(!connection.names("x-other"));
    }
}
