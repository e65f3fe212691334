//! One client connection: its stream, the bytes read from it and not used
//! yet, who it is; and what the connection does after a request.

use super::buffer::Buffer;
use super::request::ClientInfo;
use crate::deadline::Deadline;
use pingora::protocols::Stream;
use std::future::poll_fn;
use std::task::Poll;

/// One client connection.
pub struct Client {
    pub stream: Stream,
    pub buf: Buffer,
    pub info: ClientInfo,
}

/// Room to read a request head into.
const HEAD_ROOM: usize = 4096;

/// What the connection does after a request.
pub enum After {
    KeepAlive,
    Close,
    /// The route's upstreams speak HTTP/2, which pingora-proxy does: the
    /// connection (this request still unread) goes there.
    ToPingora,
}

impl Client {
    /// Waits for the client's next bytes; false when it closed. Each poll
    /// reads into a buffer taken for that poll and gives it back when
    /// nothing came, so a waiting connection holds no buffer. (tokio knows
    /// the socket is not readable without a syscall, so the empty polls
    /// cost none.) False also once `deadline` passed.
    pub async fn wait_for_bytes(&mut self, deadline: &Deadline) -> bool {
        let read = poll_fn(|cx| {
            let read = self.buf.poll_read_from(cx, &mut self.stream, HEAD_ROOM);
            if read.is_pending() {
                self.buf.release_if_empty();
                if deadline.poll_expired(cx).is_ready() {
                    return Poll::Ready(Ok(0));
                }
            }
            read
        });
        matches!(read.await, Ok(n) if n > 0)
    }

    /// Reads more of a request head; the head is parsed again from the
    /// start each time, so a head split over reads needs no parser state.
    pub async fn read_more_head(&mut self) -> std::io::Result<usize> {
        self.buf.read_from(&mut self.stream, HEAD_ROOM).await
    }
}
