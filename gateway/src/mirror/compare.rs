//! Whether green answered a copy as blue answered the client: the status,
//! the configured headers, the body (byte for byte, or as JSON with some
//! fields left out); and when not, a short account of the first
//! difference.

use super::capture::Answer;
use crate::config::{BodyCompare, CompareConfig};
use serde_json::Value;

/// What came of one copy (the `result` label of `gateway_mirror_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Match,
    StatusDiffers,
    HeadersDiffer,
    BodyDiffers,
    /// Green gave no answer (connect failure, timeout).
    Error,
    /// Not sent (no free slot) or not comparable (blue's body too large).
    Dropped,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Match,
        Outcome::StatusDiffers,
        Outcome::HeadersDiffer,
        Outcome::BodyDiffers,
        Outcome::Error,
        Outcome::Dropped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::StatusDiffers => "status_differs",
            Outcome::HeadersDiffer => "headers_differ",
            Outcome::BodyDiffers => "body_differs",
            Outcome::Error => "error",
            Outcome::Dropped => "dropped",
        }
    }
}

/// Longest value quoted in a difference.
const QUOTE: usize = 60;

/// The outcome, and for a difference what differs.
pub fn answers(config: &CompareConfig, blue: &Answer, green: &Answer) -> (Outcome, Option<String>) {
    if config.status && blue.status != green.status {
        let diff = format!("status {} (blue) vs {} (green)", blue.status, green.status);
        return (Outcome::StatusDiffers, Some(diff));
    }
    for name in &config.headers {
        let (b, g) = (blue.header(name), green.header(name));
        if b != g {
            let show = |v: Option<&[u8]>| v.map_or("(none)".into(), quote);
            let diff = format!("header {name}: {} (blue) vs {} (green)", show(b), show(g));
            return (Outcome::HeadersDiffer, Some(diff));
        }
    }
    if green.truncated {
        let diff = "green's body is longer than max_body".to_owned();
        return (Outcome::BodyDiffers, Some(diff));
    }
    let diff = match config.body {
        BodyCompare::None => None,
        BodyCompare::Exact => exact(&blue.body, &green.body),
        BodyCompare::Json => json(&blue.body, &green.body, &config.ignore_fields),
    };
    match diff {
        None => (Outcome::Match, None),
        Some(diff) => (Outcome::BodyDiffers, Some(diff)),
    }
}

fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTE)]);
    let more = if bytes.len() > QUOTE { "…" } else { "" };
    format!("{:?}{more}", text)
}

fn exact(blue: &[u8], green: &[u8]) -> Option<String> {
    if blue == green {
        return None;
    }
    let at = blue.iter().zip(green).take_while(|(b, g)| b == g).count();
    let around = |b: &[u8]| quote(&b[at.saturating_sub(10).min(b.len())..]);
    Some(format!(
        "bodies differ at byte {at} ({} vs {} bytes): {} (blue) vs {} (green)",
        blue.len(),
        green.len(),
        around(blue),
        around(green)
    ))
}

fn json(blue: &[u8], green: &[u8], ignore: &[String]) -> Option<String> {
    let parse = |bytes: &[u8], who: &str| {
        serde_json::from_slice::<Value>(bytes).map_err(|e| format!("{who}'s body is not JSON: {e}"))
    };
    let (mut b, mut g) = match (parse(blue, "blue"), parse(green, "green")) {
        (Ok(b), Ok(g)) => (b, g),
        (Err(e), _) | (_, Err(e)) => return (blue != green).then_some(e),
    };
    for field in ignore {
        leave_out(&mut b, field);
        leave_out(&mut g, field);
    }
    first_difference(&b, &g, String::new()).map(|(path, bv, gv)| {
        let show =
            |v: Option<&Value>| v.map_or("(none)".into(), |v| quote(v.to_string().as_bytes()));
        format!(
            "{}: {} (blue) vs {} (green)",
            if path.is_empty() { "/" } else { &path },
            show(bv),
            show(gv)
        )
    })
}

/// Removes a JSON pointer's target, or a key name at any depth.
fn leave_out(value: &mut Value, field: &str) {
    if let Some(pointer) = field.strip_prefix('/') {
        let (parent, last) = match pointer.rsplit_once('/') {
            Some((p, l)) => (format!("/{p}"), l),
            None => (String::new(), pointer),
        };
        if let Some(Value::Object(map)) = value.pointer_mut(&parent) {
            map.remove(last);
        }
        return;
    }
    match value {
        Value::Object(map) => {
            map.remove(field);
            map.values_mut().for_each(|v| leave_out(v, field));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| leave_out(v, field)),
        _ => {}
    }
}

/// The JSON pointer of the first place the values differ, and both sides.
fn first_difference<'a>(
    b: &'a Value,
    g: &'a Value,
    at: String,
) -> Option<(String, Option<&'a Value>, Option<&'a Value>)> {
    match (b, g) {
        (Value::Object(bm), Value::Object(gm)) => {
            let mut keys: Vec<&String> = bm.keys().chain(gm.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let path = format!("{at}/{k}");
                match (bm.get(k), gm.get(k)) {
                    (Some(bv), Some(gv)) => first_difference(bv, gv, path),
                    (bv, gv) => Some((path, bv, gv)),
                }
            })
        }
        (Value::Array(ba), Value::Array(ga)) if ba.len() == ga.len() => ba
            .iter()
            .zip(ga)
            .enumerate()
            .find_map(|(i, (bv, gv))| first_difference(bv, gv, format!("{at}/{i}"))),
        _ if b == g => None,
        _ => Some((at, Some(b), Some(g))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: body.as_bytes().to_vec(),
            ..Answer::default()
        }
    }

    fn config(body: BodyCompare, ignore: &[&str]) -> CompareConfig {
        CompareConfig {
            body,
            ignore_fields: ignore.iter().map(|s| s.to_string()).collect(),
            ..CompareConfig::default()
        }
    }

    #[test]
    fn status_then_body_decide_and_the_difference_is_named() {
        let c = config(BodyCompare::Exact, &[]);
        assert_eq!(
            answers(&c, &answer(200, "a"), &answer(200, "a")).0,
            Outcome::Match
        );
        let (o, diff) = answers(&c, &answer(200, "a"), &answer(500, "a"));
        assert_eq!(
            (o, diff.unwrap().as_str()),
            (Outcome::StatusDiffers, "status 200 (blue) vs 500 (green)")
        );
        let (o, diff) = answers(&c, &answer(200, "hello world"), &answer(200, "hello there"));
        assert_eq!(o, Outcome::BodyDiffers);
        assert!(diff
            .unwrap()
            .starts_with("bodies differ at byte 6 (11 vs 11 bytes)"));
    }

    #[test]
    fn json_bodies_compare_as_values_without_the_ignored_fields() {
        let c = config(BodyCompare::Json, &["time", "/meta/id"]);
        let blue = answer(
            200,
            r#"{"a": 1, "time": "10:00", "meta": {"id": 7, "v": [1, 2]}}"#,
        );
        let same = answer(
            200,
            r#"{"meta": {"v": [1,2], "id": 9}, "time": "10:01", "a": 1}"#,
        );
        assert_eq!(answers(&c, &blue, &same).0, Outcome::Match);
        let other = answer(200, r#"{"a": 1, "meta": {"id": 7, "v": [1, 3]}}"#);
        let (o, diff) = answers(&c, &blue, &other);
        assert_eq!(
            (o, diff.unwrap().as_str()),
            (
                Outcome::BodyDiffers,
                "/meta/v/1: \"2\" (blue) vs \"3\" (green)"
            )
        );
    }

    #[test]
    fn configured_headers_must_match() {
        let c = CompareConfig {
            headers: vec!["Content-Type".into()],
            body: BodyCompare::None,
            ..CompareConfig::default()
        };
        let mut green = answer(200, "x");
        green.headers[0].1 = b"text/plain".to_vec();
        assert_eq!(
            answers(&c, &answer(200, "y"), &green).0,
            Outcome::HeadersDiffer
        );
    }
}
