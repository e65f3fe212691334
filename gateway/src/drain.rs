//! Draining a colour: once every route sends it nothing, what is still
//! open to it (WebSockets, gRPC and HTTP/2 streams opened before the split
//! moved, requests in flight) is ended by a deadline, so the operator knows
//! when that cluster may be deleted.
//!
//! A drain marks the colour with its deadline. From then on no upstream
//! connection to it goes back to the pool; at the deadline every tunnel to
//! it is closed (a WebSocket with close code 1001, "going away") and every
//! stream to it is cut. `GET /v1/state` shows what is still in flight to
//! each colour; `cutover drain` waits for it to reach 0. A split change
//! that gives the colour traffic again ends its drain.

use crate::split::Color;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Each colour's drain: none, or the instant its tunnels are closed.
pub struct Drains {
    colors: [watch::Sender<Option<Instant>>; 2],
    /// Whether each colour drains, read on every response without a lock.
    draining: [AtomicBool; 2],
}

impl Default for Drains {
    fn default() -> Self {
        Drains {
            colors: [watch::Sender::new(None), watch::Sender::new(None)],
            draining: [AtomicBool::new(false), AtomicBool::new(false)],
        }
    }
}

impl Drains {
    /// Drains `color`: its tunnels close `deadline` from now.
    pub fn start(&self, color: Color, deadline: Duration) {
        self.colors[color as usize].send_replace(Some(Instant::now() + deadline));
        self.draining[color as usize].store(true, Ordering::Relaxed);
    }

    /// Ends a drain (the colour gets traffic again).
    pub fn stop(&self, color: Color) {
        self.draining[color as usize].store(false, Ordering::Relaxed);
        self.colors[color as usize].send_if_modified(|d| d.take().is_some());
    }

    pub fn is_draining(&self, color: Color) -> bool {
        self.draining[color as usize].load(Ordering::Relaxed)
    }

    /// Time left before `color`'s tunnels close, while it drains.
    pub fn time_left(&self, color: Color) -> Option<Duration> {
        // Cheap when no drain runs: TCP relays ask on every tick.
        if !self.is_draining(color) {
            return None;
        }
        let deadline = (*self.colors[color as usize].borrow())?;
        Some(deadline.saturating_duration_since(Instant::now()))
    }

    /// Whether `color`'s drain deadline has passed.
    pub fn deadline_passed(&self, color: Color) -> bool {
        self.is_draining(color) && self.time_left(color).is_some_and(|left| left.is_zero())
    }

    /// Resolves when a drain of `color` reaches its deadline: a tunnel to
    /// the colour selects on it.
    pub async fn closing(&self, color: Color) {
        let mut drain = self.colors[color as usize].subscribe();
        loop {
            let deadline = *drain.borrow_and_update();
            match deadline {
                Some(deadline) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline.into()) => return,
                        _ = drain.changed() => {}
                    }
                }
                None => {
                    if drain.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
}
