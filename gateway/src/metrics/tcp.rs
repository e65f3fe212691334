//! A TCP route's series, made with the route and at 0 from the start (a
//! rate over its first connections is then right, and dashboards show the
//! route at once). A connection counts through these handles: a label
//! lookup hashes every label and takes a lock, four times a connection.

use super::Metrics;
use crate::split::Color;
use prometheus::{Histogram, IntCounter, IntCounterVec};

pub struct TcpSeries {
    route: String,
    connections: IntCounterVec,
    /// Per colour: connections that went well, the common case.
    ok: [IntCounter; 2],
    /// Per colour: bytes client to upstream, and back.
    bytes: [[IntCounter; 2]; 2],
    connect: [Histogram; 2],
}

impl TcpSeries {
    pub fn new(metrics: &Metrics, route: &str) -> TcpSeries {
        let colors = [Color::Blue, Color::Green];
        for color in colors {
            for result in ["refused", "reset", "no_endpoint"] {
                metrics
                    .tcp_connections
                    .with_label_values(&[route, color.as_str(), result]);
            }
        }
        TcpSeries {
            route: route.to_owned(),
            connections: metrics.tcp_connections.clone(),
            ok: colors.map(|c| {
                metrics
                    .tcp_connections
                    .with_label_values(&[route, c.as_str(), "ok"])
            }),
            bytes: colors.map(|c| {
                ["in", "out"].map(|d| metrics.tcp_bytes.with_label_values(&[route, c.as_str(), d]))
            }),
            connect: colors.map(|c| {
                metrics
                    .tcp_connect_duration
                    .with_label_values(&[route, c.as_str()])
            }),
        }
    }

    /// A connection ended: `ok`, `refused`, `reset`, `no_endpoint` or
    /// `overload`.
    pub fn connection(&self, color: Color, result: &str) {
        match result {
            "ok" => self.ok[color as usize].inc(),
            _ => self
                .connections
                .with_label_values(&[&self.route, color.as_str(), result])
                .inc(),
        }
    }

    pub fn relayed(&self, color: Color, bytes_in: u64, bytes_out: u64) {
        let [inward, outward] = &self.bytes[color as usize];
        inward.inc_by(bytes_in);
        outward.inc_by(bytes_out);
    }

    pub fn connected(&self, color: Color, seconds: f64) {
        self.connect[color as usize].observe(seconds);
    }
}
