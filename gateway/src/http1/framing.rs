//! Where a message body ends (RFC 9112 section 6): after Content-Length
//! bytes, after the last chunk and its trailers, or when the connection
//! closes. Bodies pass through byte for byte; this only finds their end, and
//! refuses chunked framing that two parsers could read differently.

use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: a GET without Content-Length, a 204, a reply to HEAD.
    Empty,
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunk),
    /// Until the sender closes the connection (responses only).
    UntilClose,
}

/// Where a chunked body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// In the trailer section, this many bytes into it.
    Trailer(usize),
    Done,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("invalid chunk-size line")]
    ChunkSize,
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    #[error("trailer line not ended by CRLF")]
    TrailerLine,
    #[error("chunk-size line or trailer section too long")]
    TooLong,
}

/// Longest chunk-size line, extensions included.
const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section.
const MAX_TRAILERS: usize = 16 * 1024;

impl Framing {
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            Framing::Empty | Framing::Length(0) | Framing::Chunked(Chunk::Done)
        )
    }

    /// How many of `input` (the next bytes on the connection) belong to the
    /// body. It stops at the body's end; an incomplete chunk-size or trailer
    /// line is left in `input`, to be offered again with more bytes.
    pub fn advance(&mut self, input: &[u8]) -> Result<usize, FramingError> {
        match self {
            Framing::Empty => Ok(0),
            Framing::Length(left) => {
                let n = (*left).min(input.len() as u64);
                *left -= n;
                Ok(n as usize)
            }
            Framing::UntilClose => Ok(input.len()),
            Framing::Chunked(chunk) => advance_chunked(chunk, input, |_| {}),
        }
    }

    /// [`Framing::advance`] that also hands over the body's own bytes (a
    /// chunked body without its chunk lines and trailers), for a client
    /// that frames bodies itself (HTTP/2).
    pub fn advance_payload(
        &mut self,
        input: &[u8],
        payload: impl FnMut(&[u8]),
    ) -> Result<usize, FramingError> {
        match self {
            Framing::Chunked(chunk) => advance_chunked(chunk, input, payload),
            _ => {
                let mut payload = payload;
                let n = self.advance(input)?;
                payload(&input[..n]);
                Ok(n)
            }
        }
    }
}

fn advance_chunked(
    chunk: &mut Chunk,
    input: &[u8],
    mut payload: impl FnMut(&[u8]),
) -> Result<usize, FramingError> {
    let mut at = 0;
    loop {
        let rest = &input[at..];
        match *chunk {
            Chunk::Size => {
                // httparse reads an empty line as size 0; a size needs digits.
                if rest.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                    return Err(FramingError::ChunkSize);
                }
                match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        at += used;
                        *chunk = if size == 0 {
                            Chunk::Trailer(0)
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) if rest.len() < MAX_SIZE_LINE => return Ok(at),
                    Ok(httparse::Status::Partial) => return Err(FramingError::TooLong),
                    Err(_) => return Err(FramingError::ChunkSize),
                }
            }
            Chunk::Data(left) => {
                if rest.is_empty() {
                    return Ok(at);
                }
                let n = left.min(rest.len() as u64);
                payload(&rest[..n as usize]);
                at += n as usize;
                *chunk = if n == left {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left - n)
                };
            }
            Chunk::DataEnd => match rest {
                [b'\r', b'\n', ..] => {
                    at += 2;
                    *chunk = Chunk::Size;
                }
                [] | [b'\r'] => return Ok(at),
                _ => return Err(FramingError::ChunkEnd),
            },
            Chunk::Trailer(seen) => {
                let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                    if seen + rest.len() > MAX_TRAILERS {
                        return Err(FramingError::TooLong);
                    }
                    return Ok(at);
                };
                if lf == 0 || rest[lf - 1] != b'\r' {
                    return Err(FramingError::TrailerLine);
                }
                at += lf + 1;
                *chunk = if lf == 1 {
                    Chunk::Done
                } else if seen + lf + 1 > MAX_TRAILERS {
                    return Err(FramingError::TooLong);
                } else {
                    Chunk::Trailer(seen + lf + 1)
                };
            }
            Chunk::Done => return Ok(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in pieces of `step` bytes, as reads would deliver it,
    /// keeping unconsumed bytes for the next piece; returns the bytes
    /// consumed in all.
    fn feed(body: &[u8], step: usize) -> Result<(usize, Framing), FramingError> {
        let mut framing = Framing::Chunked(Chunk::Size);
        let (mut consumed, mut end) = (0, 0);
        while !framing.is_done() && end < body.len() {
            end = (end + step).min(body.len());
            consumed += framing.advance(&body[consumed..end])?;
        }
        Ok((consumed, framing))
    }

    #[test]
    fn chunked_bodies_end_after_the_trailers_however_they_are_split() {
        let body = b"3\r\nabc\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nX-Sum: 1\r\n\r\nGET /next";
        let end = body.len() - b"GET /next".len();
        for step in [1, 2, 3, 7, body.len()] {
            let (consumed, framing) = feed(body, step).unwrap();
            assert_eq!(consumed, end, "step {step}");
            assert!(framing.is_done());
        }
    }

    #[test]
    fn ambiguous_chunk_framing_is_refused() {
        for (body, error) in [
            (&b"zz\r\nabc\r\n0\r\n\r\n"[..], FramingError::ChunkSize),
            (b"\r\nabc\r\n0\r\n\r\n", FramingError::ChunkSize),
            (b"3\nabc\r\n0\r\n\r\n", FramingError::ChunkSize),
            (b"-3\r\nabc\r\n0\r\n\r\n", FramingError::ChunkSize),
            (b"3\r\nabcd\r\n0\r\n\r\n", FramingError::ChunkEnd),
            (b"3\r\nabc\n0\r\n\r\n", FramingError::ChunkEnd),
            (b"3\r\nabc\r\n0\r\n\n", FramingError::TrailerLine),
            (b"10000000000000000\r\n", FramingError::ChunkSize),
        ] {
            assert_eq!(feed(body, 1).unwrap_err(), error, "{body:?}");
            assert_eq!(feed(body, body.len()).unwrap_err(), error, "{body:?}");
        }
        let endless_line = vec![b'1'; 2 * MAX_SIZE_LINE];
        assert!(feed(&[&b"1"[..], &[b';'; 5000]].concat(), 6000).is_err());
        assert!(feed(&endless_line, endless_line.len()).is_err());
    }

    #[test]
    fn lengths_count_down_and_stop_at_the_end() {
        let mut framing = Framing::Length(5);
        assert_eq!(framing.advance(b"abc").unwrap(), 3);
        assert!(!framing.is_done());
        assert_eq!(framing.advance(b"defgh").unwrap(), 2);
        assert!(framing.is_done());
        assert_eq!(framing.advance(b"more").unwrap(), 0);
        assert_eq!(Framing::Empty.advance(b"x").unwrap(), 0);
    }
}
