//! A log line from an entry: one JSON object, or nginx's `combined` format
//! followed by `key=value` fields.

use super::entry::{Entry, Fields};
use crate::config::AccessLogFormat;
use serde::Serialize;
use std::io::Write;

/// One JSON line's fields (absent ones left out).
#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<String>,
    method: &'a str,
    host: &'a str,
    path: &'a str,
    protocol: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc_status: Option<&'a str>,
    bytes_in: u64,
    bytes_out: u64,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<&'a str>,
    pinned: bool,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
}

/// Appends `entry`'s line (with its newline) to `out`.
pub fn line(out: &mut Vec<u8>, entry: &Entry, format: AccessLogFormat, include_query: bool) {
    let time = humantime::format_rfc3339_millis(entry.time).to_string();
    entry.asked.fields(|f: Fields| {
        let path = match include_query {
            true => f.target,
            false => f.target.split_once('?').map_or(f.target, |(path, _)| path),
        };
        let line = Line {
            time: &time,
            client: entry.client.map(|c| c.to_string()),
            method: f.method,
            host: f.host,
            path,
            protocol: f.version,
            status: entry.status,
            grpc_status: entry.grpc_status.as_deref(),
            bytes_in: entry.bytes_in,
            bytes_out: entry.bytes_out,
            duration_ms: (entry.duration.as_secs_f64() * 1e6).round() / 1e3,
            upstream: entry.upstream.map(|u| u.to_string()),
            route: entry.route.as_ref().map(|r| r.name.as_str()),
            color: entry.color.map(|c| c.as_str()),
            pinned: entry.pinned,
            attempts: entry.attempts,
            request_id: f.request_id,
            user_agent: f.user_agent,
        };
        match format {
            AccessLogFormat::Json => {
                serde_json::to_writer(&mut *out, &line).expect("a line serializes");
            }
            AccessLogFormat::Combined => combined(out, &line),
        }
        out.push(b'\n');
    });
}

/// `client - - [07/Dec/2026:02:56:36 +0000] "GET /path HTTP/1.1" 200 512 "-" "agent"`
/// then the gateway's own fields.
fn combined(out: &mut Vec<u8>, l: &Line) {
    let quoted = |s: &str| s.replace(['"', '\\'], "_");
    let _ = write!(
        out,
        "{} - - [{}] \"{} {} {}\" {} {} \"-\" \"{}\" request_id={} route={} color={} upstream={} duration_ms={} attempts={} pinned={}",
        l.client.as_deref().unwrap_or("-"),
        clf_time(l.time),
        l.method,
        quoted(l.path),
        l.protocol,
        l.status,
        l.bytes_out,
        quoted(l.user_agent.unwrap_or("-")),
        l.request_id.unwrap_or("-"),
        l.route.unwrap_or("-"),
        l.color.unwrap_or("-"),
        l.upstream.as_deref().unwrap_or("-"),
        l.duration_ms,
        l.attempts,
        l.pinned,
    );
}

/// `2026-12-07T02:56:36.123Z` → `07/Dec/2026:02:56:36 +0000`.
fn clf_time(rfc3339: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let part = |r: std::ops::Range<usize>| rfc3339.get(r).unwrap_or("?");
    let month = part(5..7)
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    format!(
        "{}/{}/{}:{} +0000",
        part(8..10),
        month.unwrap_or(&"?"),
        part(0..4),
        part(11..19)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::Asked;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_common_log_time_is_built_from_rfc3339() {
        assert_eq!(
            clf_time("2026-12-07T02:56:36.123Z"),
            "07/Dec/2026:02:56:36 +0000"
        );
    }

    #[test]
    fn a_combined_line_is_nginxs_then_the_gateways_fields() {
        let head =
            b"GET /a?q=1 HTTP/1.1\r\nHost: shop\r\nUser-Agent: curl/8\r\nX-Request-Id: abc\r\n\r\n";
        let entry = Entry {
            time: UNIX_EPOCH + Duration::from_secs(1_796_612_196),
            client: Some("10.1.2.3".parse().unwrap()),
            asked: Asked::Http1Head(head.to_vec()),
            status: 200,
            grpc_status: None,
            bytes_in: 80,
            bytes_out: 512,
            duration: Duration::from_micros(1500),
            upstream: Some("10.0.0.5:80".parse().unwrap()),
            route: None,
            color: Some(crate::split::Color::Green),
            pinned: false,
            attempts: 1,
        };
        let mut out = Vec::new();
        line(&mut out, &entry, AccessLogFormat::Combined, false);
        let expected = "10.1.2.3 - - [07/Dec/2026:02:56:36 +0000] \"GET /a HTTP/1.1\" 200 512 \"-\" \"curl/8\" request_id=abc route=- color=green upstream=10.0.0.5:80 duration_ms=1.5 attempts=1 pinned=false\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
