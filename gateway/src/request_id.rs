//! Request IDs: one `X-Request-Id` per request, kept when the client sent a
//! usable one, generated otherwise; sent upstream and back to the client,
//! so a smoke failure, a client's report and a backend's log name the same
//! request. (`traceparent` is passed through untouched.)

/// The header, lower case.
pub const X_REQUEST_ID: &str = "x-request-id";

/// Longest ID kept from a client; a longer one is replaced.
const MAX_LEN: usize = 128;

/// Whether a client's ID is kept: 1 to 128 visible ASCII characters.
pub fn is_usable(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len()) && value.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// A new ID: 128 random bits as 32 lower-case hex digits.
pub fn generate() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = rand::random::<u128>();
    let mut id = [0u8; 32];
    for (i, digit) in id.iter_mut().enumerate() {
        *digit = HEX[((bits >> (124 - 4 * i)) & 0xf) as usize];
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_hex_and_usable_and_differ() {
        let (a, b) = (generate(), generate());
        assert!(a.iter().all(|c| c.is_ascii_hexdigit()));
        assert!(is_usable(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn odd_client_ids_are_not_kept() {
        assert!(is_usable(b"abc-123"));
        assert!(!is_usable(b""));
        assert!(!is_usable(b"has space"));
        assert!(!is_usable(&[b'a'; 129]));
        assert!(!is_usable("é".as_bytes()));
    }
}
