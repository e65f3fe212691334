//! Bytes read from a connection and not used yet. The allocation is taken
//! when bytes arrive and given back when the connection goes idle, so an
//! idle keep-alive connection holds no buffer.

use pingora::protocols::Stream;
use std::future::poll_fn;
use std::task::{Context, Poll};

#[derive(Default)]
pub struct Buffer {
    data: Vec<u8>,
    /// `data[start..]` is unread.
    start: usize,
}

impl Buffer {
    /// A buffer whose pending bytes are `data`.
    pub fn holding(data: Vec<u8>) -> Buffer {
        Buffer { data, start: 0 }
    }

    pub fn pending(&self) -> &[u8] {
        &self.data[self.start..]
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.data.len()
    }

    pub fn consume(&mut self, n: usize) {
        debug_assert!(self.start + n <= self.data.len());
        self.start += n;
    }

    /// Frees the allocation once everything in it is used.
    pub fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.data = Vec::new();
            self.start = 0;
        }
    }

    /// Reads once from `stream`, appending to what is pending, with room
    /// for at least `room` new bytes. 0 means the peer closed.
    pub async fn read_from(&mut self, stream: &mut Stream, room: usize) -> std::io::Result<usize> {
        poll_fn(|cx| self.poll_read_from(cx, stream, room)).await
    }

    /// [`Buffer::read_from`], one poll of it.
    pub fn poll_read_from(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut Stream,
        room: usize,
    ) -> Poll<std::io::Result<usize>> {
        if self.start > 0 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.reserve(room);
        tokio_util::io::poll_read_buf(std::pin::Pin::new(stream), cx, &mut self.data)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn consumed_bytes_are_not_pending_and_an_empty_buffer_frees() {
        let mut buffer = super::Buffer {
            data: b"GET / HTTP/1.1\r\n\r\nrest".to_vec(),
            start: 0,
        };
        buffer.consume(18);
        assert_eq!(buffer.pending(), b"rest");
        buffer.release_if_empty();
        assert!(
            buffer.data.capacity() > 0,
            "pending bytes keep their buffer"
        );
        buffer.consume(4);
        assert!(buffer.is_empty());
        buffer.release_if_empty();
        assert_eq!(buffer.data.capacity(), 0);
    }
}
