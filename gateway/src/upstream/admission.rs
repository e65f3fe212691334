//! A colour's `max_in_flight`: a request is admitted to a group only while
//! fewer than that many are in flight to it, so a slow colour answers 503
//! with `Retry-After` at once instead of queueing requests (and client
//! connections, and memory) without end.

use super::UpstreamGroup;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One admitted request; dropping it frees its place.
pub struct Admission(Arc<UpstreamGroup>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl UpstreamGroup {
    /// Admits one request, or `None` when the group is at `max_in_flight`.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        if self
            .spec
            .group
            .max_in_flight
            .is_some_and(|max| before >= max)
        {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Admission(self.clone()))
    }

    /// Requests in flight to this group now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}
