//! A log line from an entry: one JSON object, or nginx's `combined` format
//! followed by `key=value` fields.

use super::entry::{Entry, Fields};
use crate::config::AccessLogFormat;
use crate::forwarded::write_ip;
use serde::Serialize;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

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

/// Formats lines; remembers the last second's time text (a line per
/// request costs a lookup, not a calendar computation).
#[derive(Default)]
pub struct Formatter {
    second: u64,
    /// `2026-12-07T02:56:36` and `07/Dec/2026:02:56:36 +0000` of `second`.
    rfc3339: String,
    clf: String,
}

impl Formatter {
    /// Appends `entry`'s line (with its newline) to `out`.
    pub fn line(
        &mut self,
        out: &mut Vec<u8>,
        entry: &Entry,
        format: AccessLogFormat,
        include_query: bool,
    ) {
        let since = entry
            .time
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if since.as_secs() != self.second || self.rfc3339.is_empty() {
            self.second = since.as_secs();
            let whole = std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.second);
            self.rfc3339 = humantime::format_rfc3339_seconds(whole).to_string();
            self.rfc3339.pop(); // the Z
            self.clf = clf_time(&self.rfc3339);
        }
        let millis = since.subsec_millis();
        entry.asked.fields(|f: Fields| {
            let path = match include_query {
                true => f.target,
                false => f.target.split_once('?').map_or(f.target, |(path, _)| path),
            };
            match format {
                AccessLogFormat::Json => {
                    let time = format!("{}.{millis:03}Z", self.rfc3339);
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
                    serde_json::to_writer(&mut *out, &line).expect("a line serializes");
                }
                AccessLogFormat::Combined => combined(out, entry, &f, path, &self.clf),
            }
            out.push(b'\n');
        });
    }
}

/// `client - - [07/Dec/2026:02:56:36 +0000] "GET /path HTTP/1.1" 200 512 "-" "agent"`
/// then the gateway's own fields, written piece by piece.
fn combined(out: &mut Vec<u8>, entry: &Entry, f: &Fields, path: &str, clf: &str) {
    let mut number = itoa::Buffer::new();
    let text = |out: &mut Vec<u8>, s: &str| {
        out.extend(
            s.bytes()
                .map(|b| if b == b'"' || b == b'\\' { b'_' } else { b }),
        );
    };
    match entry.client {
        Some(ip) => write_ip(out, ip),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" - - [");
    out.extend_from_slice(clf.as_bytes());
    out.extend_from_slice(b"] \"");
    out.extend_from_slice(f.method.as_bytes());
    out.push(b' ');
    text(out, path);
    out.push(b' ');
    out.extend_from_slice(f.version.as_bytes());
    out.extend_from_slice(b"\" ");
    out.extend_from_slice(number.format(entry.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(number.format(entry.bytes_out).as_bytes());
    out.extend_from_slice(b" \"-\" \"");
    text(out, f.user_agent.unwrap_or("-"));
    out.extend_from_slice(b"\" request_id=");
    out.extend_from_slice(f.request_id.unwrap_or("-").as_bytes());
    out.extend_from_slice(b" route=");
    out.extend_from_slice(
        entry
            .route
            .as_ref()
            .map_or("-", |r| r.name.as_str())
            .as_bytes(),
    );
    out.extend_from_slice(b" color=");
    out.extend_from_slice(entry.color.map_or("-", |c| c.as_str()).as_bytes());
    out.extend_from_slice(b" upstream=");
    match entry.upstream {
        Some(SocketAddr::V4(u)) => {
            write_ip(out, IpAddr::V4(*u.ip()));
            out.push(b':');
            out.extend_from_slice(number.format(u.port()).as_bytes());
        }
        Some(u) => write!(out, "{u}").expect("writing to a Vec"),
        None => out.push(b'-'),
    }
    let micros = entry.duration.as_micros();
    out.extend_from_slice(b" duration_ms=");
    out.extend_from_slice(number.format(micros / 1000).as_bytes());
    out.push(b'.');
    let thousandths = (micros % 1000) as u16;
    out.extend(
        [thousandths / 100, thousandths / 10 % 10, thousandths % 10].map(|d| b'0' + d as u8),
    );
    out.extend_from_slice(b" attempts=");
    out.extend_from_slice(number.format(entry.attempts).as_bytes());
    out.extend_from_slice(if entry.pinned {
        b" pinned=true"
    } else {
        b" pinned=false"
    });
}

/// `2026-12-07T02:56:36` → `07/Dec/2026:02:56:36 +0000`.
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
    use crate::access_log::{Asked, Http1Head};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_common_log_time_is_built_from_rfc3339() {
        assert_eq!(
            clf_time("2026-12-07T02:56:36"),
            "07/Dec/2026:02:56:36 +0000"
        );
    }

    #[test]
    fn a_combined_line_is_nginxs_then_the_gateways_fields() {
        let head =
            b"GET /a?q=1 HTTP/1.1\r\nHost: shop\r\nUser-Agent: curl/8\r\nX-Request-Id: abc\r\n\r\n";
        let at = |s: &str| {
            let i = head
                .windows(s.len())
                .position(|w| w == s.as_bytes())
                .unwrap();
            i..i + s.len()
        };
        let entry = Entry {
            time: UNIX_EPOCH + Duration::from_secs(1_796_612_196),
            client: Some("10.1.2.3".parse().unwrap()),
            asked: Asked::Http1(Http1Head {
                head: head.to_vec(),
                host: at("shop"),
                request_id: at("abc"),
                user_agent: Some(at("curl/8")),
            }),
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
        Formatter::default().line(&mut out, &entry, AccessLogFormat::Combined, false);
        let expected = "10.1.2.3 - - [07/Dec/2026:02:56:36 +0000] \"GET /a HTTP/1.1\" 200 512 \"-\" \"curl/8\" request_id=abc route=- color=green upstream=10.0.0.5:80 duration_ms=1.500 attempts=1 pinned=false\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn addresses_and_thousandths_are_written_as_display_would() {
        for ip in ["10.1.2.3", "255.0.10.100", "::1", "2001:db8::5"] {
            let mut out = Vec::new();
            write_ip(&mut out, ip.parse().unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), ip);
        }
    }
}
