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

/// A new ID: 32 lower-case hex digits, unique per process and worker.
/// The first 16 are a random number drawn once per thread, the last 16 a
/// per-thread counter put through splitmix64 (a bijection, so no two
/// requests of a thread share an ID): no random draw per request, which
/// would cost more than the rest of a small request's handling.
pub fn generate() -> [u8; 32] {
    thread_local! {
        static STATE: std::cell::Cell<(u64, u64)> =
            std::cell::Cell::new((rand::random(), rand::random()));
    }
    let (seed, counter) = STATE.with(|s| {
        let (seed, counter) = s.get();
        s.set((seed, counter.wrapping_add(1)));
        (seed, counter)
    });
    let mut id = [0u8; 32];
    hex(&mut id[..16], seed);
    hex(&mut id[16..], splitmix64(counter));
    id
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hex(out: &mut [u8], value: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = HEX[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
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
