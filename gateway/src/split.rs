//! The traffic split: how much of a route goes to green, and which clients.
//!
//! A split is a percentage with 0.01 resolution, stored as basis points
//! (0..=10_000). A client's key hashes to a bucket in the same range and the
//! client goes to green iff `bucket < basis_points`. Raising the split only
//! ever adds buckets to green, so while a cutover moves forward a client moves
//! blue→green at most once and never back, and the share of clients on green
//! equals the configured split (a "stay where you landed" cookie would
//! ratchet the share towards 100% instead).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One of the two paired clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    /// Parses a pin header value; case-insensitive, surrounding blanks ignored.
    pub fn parse(value: &[u8]) -> Option<Color> {
        let v = value.trim_ascii();
        if v.eq_ignore_ascii_case(b"blue") {
            Some(Color::Blue)
        } else if v.eq_ignore_ascii_case(b"green") {
            Some(Color::Green)
        } else {
            None
        }
    }
}

/// Number of buckets; one bucket is 0.01%.
pub const BUCKETS: u16 = 10_000;

/// Percent of a route's traffic sent to green, 0–100 in steps of 0.01.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GreenPercent(u16);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PercentError {
    #[error("must be a number from 0 to 100, got {0}")]
    OutOfRange(f64),
    #[error("must have at most two decimal places (resolution 0.01), got {0}")]
    TooPrecise(f64),
}

impl GreenPercent {
    pub const ZERO: GreenPercent = GreenPercent(0);
    pub const HUNDRED: GreenPercent = GreenPercent(BUCKETS);

    /// Accepts 0..=100 with at most two decimal places; NaN and infinities
    /// are out of range.
    pub fn from_percent(value: f64) -> Result<Self, PercentError> {
        if !value.is_finite() || !(0.0..=100.0).contains(&value) {
            return Err(PercentError::OutOfRange(value));
        }
        let scaled = value * 100.0;
        let rounded = scaled.round();
        if (scaled - rounded).abs() > 1e-6 {
            return Err(PercentError::TooPrecise(value));
        }
        Ok(GreenPercent(rounded as u16))
    }

    pub fn basis_points(self) -> u16 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    /// Whether a client in `bucket` goes to green at this split.
    pub fn sends_to_green(self, bucket: u16) -> bool {
        bucket < self.0
    }
}

impl fmt::Display for GreenPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

impl Serialize for GreenPercent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for GreenPercent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        GreenPercent::from_percent(value).map_err(serde::de::Error::custom)
    }
}

/// The bucket of a client key: `xxh3_64(key) mod 10000`.
///
/// XXH3-64 with seed 0 is a fixed, published function: every replica and
/// every restart puts a key in the same bucket. Changing it would reshuffle
/// every client, so it is part of the gateway's contract.
pub fn bucket_of(key: &[u8]) -> u16 {
    (xxhash_rust::xxh3::xxh3_64(key) % u64::from(BUCKETS)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_accepts_two_decimals_and_rejects_the_rest() {
        assert_eq!(
            GreenPercent::from_percent(37.5).unwrap().basis_points(),
            3750
        );
        assert_eq!(GreenPercent::from_percent(0.01).unwrap().basis_points(), 1);
        assert_eq!(
            GreenPercent::from_percent(100.0).unwrap(),
            GreenPercent::HUNDRED
        );
        assert!(matches!(
            GreenPercent::from_percent(100.01),
            Err(PercentError::OutOfRange(_))
        ));
        assert!(GreenPercent::from_percent(-1.0).is_err());
        assert!(GreenPercent::from_percent(f64::NAN).is_err());
        assert!(GreenPercent::from_percent(f64::INFINITY).is_err());
        assert_eq!(
            GreenPercent::from_percent(12.345),
            Err(PercentError::TooPrecise(12.345))
        );
    }

    /// These vectors pin the hash function: if this test fails, every
    /// client in every fleet would change bucket on upgrade. They were
    /// computed with the Python `xxhash` package, an independent
    /// implementation: `xxhash.xxh3_64_intdigest(key) % 10000`.
    #[test]
    fn bucket_vectors_are_fixed() {
        let vectors: [(&str, u16); 5] = [
            ("", 3138), // XXH3-64("") = 0x2D06800538D394C2, the published value
            ("client-1", 8078),
            ("client-2", 7424),
            ("alice@example.com", 7167),
            ("0f8fad5b-d9cb-469f-a165-70867728950e", 3964),
        ];
        for (key, bucket) in vectors {
            assert_eq!(bucket_of(key.as_bytes()), bucket, "key {key:?}");
        }
    }

    #[test]
    fn raising_the_split_only_moves_clients_to_green() {
        let steps = [0.0, 1.0, 5.0, 25.0, 50.0, 100.0];
        for i in 0..2000 {
            let bucket = bucket_of(format!("k{i}").as_bytes());
            let colours: Vec<bool> = steps
                .iter()
                .map(|p| {
                    GreenPercent::from_percent(*p)
                        .unwrap()
                        .sends_to_green(bucket)
                })
                .collect();
            // once green, stays green
            let first_green = colours.iter().position(|g| *g).unwrap_or(colours.len());
            assert!(colours[first_green..].iter().all(|g| *g));
            assert!(colours[colours.len() - 1]);
        }
    }
}
