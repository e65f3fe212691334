//! Draining a colour through the gateway's state: refused while a route
//! still sends it traffic, ended when one sends it traffic again, and what
//! is still in flight to it (see [`crate::drain`]).

use super::Gateway;
use crate::routing::Snapshot;
use crate::split::Color;
use std::time::Duration;

impl Gateway {
    /// Starts draining `color` (its tunnels close after `deadline`), or
    /// says which routes still send it traffic; nothing changes then.
    pub fn start_drain(&self, color: Color, deadline: Duration) -> Result<(), String> {
        let snapshot = self.snapshot();
        let serving: Vec<String> = snapshot
            .routes
            .iter()
            .filter(|e| share_of(e.green_percent.as_f64(), color) > 0.0)
            .map(|e| {
                let share = share_of(e.green_percent.as_f64(), color);
                format!("{} sends {share}% to {}", e.def.name, color.as_str())
            })
            .collect();
        if !serving.is_empty() {
            return Err(format!(
                "{} still has traffic: {}; move the split first",
                color.as_str(),
                serving.join(", ")
            ));
        }
        self.drains.start(color, deadline);
        tracing::info!(color = color.as_str(), deadline = ?deadline, in_flight = self.in_flight_to(color), "draining");
        Ok(())
    }

    /// Requests (tunnels and streams included) in flight to `color`.
    pub fn in_flight_to(&self, color: Color) -> usize {
        let snapshot = self.snapshot();
        snapshot
            .routes
            .iter()
            .map(|e| e.def.group(color).in_flight())
            .sum()
    }

    /// `gateway_in_flight_requests` as it is now (called on each scrape).
    pub fn publish_in_flight(&self) {
        for entry in &self.snapshot().routes {
            for color in [Color::Blue, Color::Green] {
                self.metrics
                    .in_flight
                    .with_label_values(&[&entry.def.name, color.as_str()])
                    .set(entry.def.group(color).in_flight() as i64);
            }
        }
    }

    /// A colour that gets traffic again is no longer drained.
    pub(super) fn end_drains_with_traffic(&self, snapshot: &Snapshot) {
        for color in [Color::Blue, Color::Green] {
            let has_traffic = snapshot
                .routes
                .iter()
                .any(|e| share_of(e.green_percent.as_f64(), color) > 0.0);
            if has_traffic && self.drains.is_draining(color) {
                self.drains.stop(color);
                tracing::info!(
                    color = color.as_str(),
                    "drain ended: the colour has traffic again"
                );
            }
        }
    }
}

/// The percent of a route's traffic `color` gets.
fn share_of(green_percent: f64, color: Color) -> f64 {
    match color {
        Color::Green => green_percent,
        Color::Blue => 100.0 - green_percent,
    }
}
