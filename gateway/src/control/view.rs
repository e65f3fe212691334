//! What `GET /v1/state` shows: the split document, every route's split,
//! endpoint health and unresolved names, the store, readiness.

use super::Gateway;
use crate::split::Color;
use serde_json::json;

impl Gateway {
    /// The state document as `GET /v1/state` shows it.
    pub async fn state_view(&self) -> serde_json::Value {
        // The document and whether it was read from the store, together:
        // `adopt` changes both under the lock.
        let (document, loaded) = {
            let control = self.lock().await;
            (control.document.clone(), self.is_loaded())
        };
        let snapshot = self.snapshot();
        let mut routes = serde_json::Map::new();
        for entry in &snapshot.routes {
            let group = |c| {
                let g = entry.def.group(c);
                json!({
                    "healthy": g.has_healthy_endpoint(),
                    "in_flight": g.in_flight(),
                    "endpoints": g.endpoint_health().into_iter()
                        .map(|(address, healthy)| json!({"address": address, "healthy": healthy}))
                        .collect::<Vec<_>>(),
                    "unresolved": g.unresolved().into_iter()
                        .map(|(endpoint, error, last_good)| json!({"endpoint": endpoint, "error": error, "last_good": last_good}))
                        .collect::<Vec<_>>(),
                })
            };
            routes.insert(
                entry.def.name.clone(),
                json!({
                    "green_percent": entry.green_percent,
                    "mirror_percent": entry.def.mirror.as_ref().map(|_| entry.mirror_percent),
                    "mirror": entry.def.mirror.as_ref().map(|m| m.tally.view()),
                    "blue": group(Color::Blue),
                    "green": group(Color::Green),
                }),
            );
        }
        json!({
            "generation": document.generation,
            "served_generation": snapshot.generation,
            "routes": routes,
            "actor": document.actor,
            "reason": document.reason,
            "updated_at": document.updated_at,
            "lock": document.lock,
            "run": document.run,
            "controls": document.controls,
            "store": {"kind": self.store.describe(), "stale": self.store.is_stale()},
            "loaded": loaded,
            "ready": self.is_ready(),
            "draining": self.is_draining(),
            "colors": {
                "blue": self.color_view(Color::Blue),
                "green": self.color_view(Color::Green),
            },
        })
    }

    /// What is still in flight to a colour, and its drain.
    fn color_view(&self, color: Color) -> serde_json::Value {
        json!({
            "in_flight": self.in_flight_to(color),
            "draining": self.drains.is_draining(color),
            "drain_seconds_left": self.drains.time_left(color).map(|d| d.as_secs_f64()),
        })
    }
}
