//! Mirroring: a copy of some of blue's requests goes to green while blue
//! answers the client; green's answer is compared with blue's and thrown
//! away. The client never waits for the copy: it is sent after blue's
//! answer is complete, from a task of its own, and only while the route
//! has a free slot (`max_in_flight`); otherwise it is dropped and counted.
//!
//! admit     on the request path: the dice at the route's mirror percent,
//!           the method, the body's size, a free slot → a [`Ticket`]
//! Ticket    carries the slot; `send` hands the request and blue's answer
//!           to a task that asks green ([`ask`]) and compares ([`compare`])
//! Tally     what came of it: counts per result and the latest differing
//!           samples, for `/v1/state` (the metrics count the same)

mod ask;
mod capture;
mod compare;
mod tally;
mod tap;

pub use capture::{Answer, Capture, RequestCopy};
pub use compare::Outcome;
pub use tally::{Sample, Tally};
pub use tap::Tap;

use crate::config::MirrorConfig;
use crate::metrics::Metrics;
use crate::split::GreenPercent;
use crate::upstream::UpstreamGroup;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The header a mirrored request carries, so green can tell copies apart.
pub const MIRROR_HEADER: &str = "x-gateway-mirror";

/// One route's mirroring, built with its routing snapshot.
pub struct Mirror {
    route: String,
    pub config: MirrorConfig,
    /// The percent served until the state store says otherwise.
    pub initial: GreenPercent,
    slots: Arc<Semaphore>,
    pub tally: Arc<Tally>,
    metrics: Arc<Metrics>,
}

/// A request chosen for mirroring, holding its slot until its comparison
/// is done.
pub struct Ticket {
    mirror: Arc<Mirror>,
    _slot: OwnedSemaphorePermit,
    started: Instant,
}

impl Mirror {
    pub fn new(route: &str, config: &MirrorConfig, metrics: &Arc<Metrics>) -> Mirror {
        // Every series exists from the start, at 0: a rate over the first
        // copies is then right, and dashboards show the route at once.
        for outcome in Outcome::ALL {
            metrics.mirror.with_label_values(&[route, outcome.as_str()]);
        }
        for color in ["blue", "green"] {
            metrics.mirror_duration.with_label_values(&[route, color]);
            metrics.mirror_errors.with_label_values(&[route, color]);
        }
        Mirror {
            route: route.to_owned(),
            initial: GreenPercent::from_percent(config.percent).expect("validated with the config"),
            config: config.clone(),
            slots: Arc::new(Semaphore::new(config.max_in_flight)),
            tally: Arc::new(Tally::default()),
            metrics: metrics.clone(),
        }
    }

    /// The largest body copied and compared.
    pub fn max_body(&self) -> usize {
        self.config.max_body.as_u64() as usize
    }

    /// Whether this request is copied to green: at `percent` of requests,
    /// for the configured methods, with a body of `body_len` bytes at most
    /// `max_body` (`None`: a length not known up front, never copied). A
    /// request that would be copied but finds no free slot is dropped.
    pub fn admit(
        self: &Arc<Self>,
        percent: GreenPercent,
        method: &[u8],
        body_len: Option<u64>,
    ) -> Option<Ticket> {
        if percent == GreenPercent::ZERO
            || rand::random::<u16>() % crate::split::BUCKETS >= percent.basis_points()
            || !self.config.methods.iter().any(|m| m.as_bytes() == method)
            || body_len.is_none_or(|n| n > self.config.max_body.as_u64())
        {
            return None;
        }
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => Some(Ticket {
                mirror: self.clone(),
                _slot: slot,
                started: Instant::now(),
            }),
            Err(_) => {
                self.count(Outcome::Dropped);
                None
            }
        }
    }

    fn count(&self, outcome: Outcome) {
        self.tally.count(outcome);
        self.metrics
            .mirror
            .with_label_values(&[&self.route, outcome.as_str()])
            .inc();
    }

    fn observe(&self, color: &str, seconds: f64, error: bool) {
        self.metrics
            .mirror_duration
            .with_label_values(&[&self.route, color])
            .observe(seconds);
        if error {
            self.metrics
                .mirror_errors
                .with_label_values(&[&self.route, color])
                .inc();
        }
    }
}

impl Ticket {
    /// Blue's answer cannot be compared (cut off, failed over, the
    /// gateway's own): the copy is dropped, and counted.
    pub fn abandon(self) {
        self.mirror.count(Outcome::Dropped);
    }

    /// Blue answered the client with `blue`: the copy of `request` goes to
    /// green from a task of its own, and the answers are compared there.
    /// A blue answer too large to compare drops the copy.
    pub fn send(self, request: RequestCopy, mut blue: Answer, green: Arc<UpstreamGroup>) {
        blue.seconds = self.started.elapsed().as_secs_f64();
        if blue.truncated {
            self.mirror.count(Outcome::Dropped);
            return;
        }
        tokio::spawn(async move {
            let mirror = &self.mirror;
            let asked =
                ask::green(&green, &request, mirror.max_body(), mirror.config.timeout).await;
            mirror.observe("blue", blue.seconds, blue.status >= 500);
            let outcome = match &asked {
                Ok(answer) => {
                    mirror.observe("green", answer.seconds, answer.status >= 500);
                    compare::answers(&mirror.config.compare, &blue, answer)
                }
                Err(why) => {
                    mirror.observe("green", mirror.config.timeout.as_secs_f64(), true);
                    (Outcome::Error, Some(why.clone()))
                }
            };
            mirror.count(outcome.0);
            if let (true, Some(diff)) = (outcome.0 != Outcome::Match, outcome.1) {
                let green_status = asked.as_ref().ok().map(|a| a.status);
                mirror.tally.keep(Sample::new(
                    &request,
                    blue.status,
                    green_status,
                    outcome.0,
                    diff,
                ));
            }
            drop(self);
        });
    }
}
