//! Address-space arithmetic on top of `ipnetwork`: blocks as integer
//! ranges, free runs inside an address space, and the aligned best-fit
//! search. IPv4 and IPv6 alike (addresses as `u128`).

use ipnetwork::IpNetwork;
use std::net::IpAddr;

/// An inclusive range of addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Block {
    pub v6: bool,
    pub first: u128,
    pub last: u128,
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Bits in an address of the family.
pub fn bits(v6: bool) -> u32 {
    if v6 {
        128
    } else {
        32
    }
}

/// Size of a prefix of `len` bits, saturating at `u128::MAX` for /0 IPv6.
fn size_of(v6: bool, len: u8) -> u128 {
    let host_bits = bits(v6) - u32::from(len);
    if host_bits >= 128 {
        u128::MAX
    } else {
        1u128 << host_bits
    }
}

/// The network of `net` (host bits cleared): `10.0.1.5/24` → `10.0.1.0/24`.
pub fn normalize(net: IpNetwork) -> IpNetwork {
    IpNetwork::new(net.network(), net.prefix()).expect("same prefix is valid")
}

impl Block {
    pub fn of(net: IpNetwork) -> Block {
        let net = normalize(net);
        let v6 = net.is_ipv6();
        let first = to_u128(net.network());
        let size = size_of(v6, net.prefix());
        Block {
            v6,
            first,
            last: first.saturating_add(size - 1),
        }
    }

    pub fn overlaps(&self, other: &Block) -> bool {
        self.v6 == other.v6 && self.first <= other.last && other.first <= self.last
    }

    pub fn contains(&self, other: &Block) -> bool {
        self.v6 == other.v6 && self.first <= other.first && other.last <= self.last
    }

    pub fn len(&self) -> u128 {
        (self.last - self.first).saturating_add(1)
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Back to a network, when the block is a single aligned prefix.
    pub fn to_network(&self) -> Option<IpNetwork> {
        let size = self.len();
        if !size.is_power_of_two() || self.first % size != 0 {
            return None;
        }
        let len = bits(self.v6) - size.trailing_zeros();
        let ip = if self.v6 {
            IpAddr::V6(self.first.into())
        } else {
            IpAddr::V4((self.first as u32).into())
        };
        IpNetwork::new(ip, len as u8).ok()
    }
}

/// Parts of `space` covered by none of `used` (sorted, merged).
pub fn free_runs(space: Block, used: &[Block]) -> Vec<Block> {
    let mut taken: Vec<Block> = used
        .iter()
        .filter(|u| u.overlaps(&space))
        .copied()
        .collect();
    taken.sort();
    let mut runs = Vec::new();
    let mut cursor = space.first;
    let mut exhausted = false;
    for t in taken {
        if t.first > cursor {
            runs.push(Block {
                v6: space.v6,
                first: cursor,
                last: (t.first - 1).min(space.last),
            });
        }
        if t.last >= space.last {
            exhausted = true;
            break;
        }
        cursor = cursor.max(t.last + 1);
    }
    if !exhausted && cursor <= space.last {
        runs.push(Block {
            v6: space.v6,
            first: cursor,
            last: space.last,
        });
    }
    runs
}

/// The first aligned block of prefix `len` inside `run`, if one fits.
pub fn aligned_in(run: Block, len: u8) -> Option<Block> {
    let size = size_of(run.v6, len);
    let start = run.first.div_ceil(size).checked_mul(size)?;
    let last = start.checked_add(size - 1)?;
    (last <= run.last).then_some(Block {
        v6: run.v6,
        first: start,
        last,
    })
}

/// Best fit: the smallest free run that can hold an aligned block of
/// prefix `len`, ties to the lowest address; the block is the lowest
/// aligned one inside that run.
pub fn best_fit(runs: &[Block], len: u8) -> Option<Block> {
    runs.iter()
        .filter_map(|r| aligned_in(*r, len).map(|b| (r.len(), r.first, b)))
        .min_by_key(|(run_len, first, _)| (*run_len, *first))
        .map(|(_, _, b)| b)
}

/// The largest aligned block inside any of `runs`.
pub fn largest_block(runs: &[Block]) -> Option<Block> {
    let v6 = runs.first()?.v6;
    (0..=bits(v6) as u8).find_map(|len| {
        runs.iter()
            .filter_map(|r| aligned_in(*r, len))
            .min_by_key(|b| b.first)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Block {
        Block::of(s.parse().unwrap())
    }
    fn net(b: Block) -> String {
        b.to_network().unwrap().to_string()
    }

    #[test]
    fn normalizes_before_comparing() {
        assert_eq!(
            normalize("10.0.1.5/24".parse().unwrap()).to_string(),
            "10.0.1.0/24"
        );
        assert_eq!(b("10.0.1.5/24"), b("10.0.1.0/24"));
        assert!(b("10.0.0.0/16").contains(&b("10.0.3.0/24")));
        assert!(!b("10.0.0.0/24").overlaps(&b("10.0.1.0/24")));
        assert!(
            !b("10.0.0.0/8").overlaps(&b("::/0")),
            "families never overlap"
        );
    }

    #[test]
    fn free_runs_skip_used_space() {
        let runs = free_runs(
            b("10.0.0.0/16"),
            &[b("10.0.0.0/24"), b("10.0.2.0/23"), b("192.168.0.0/16")],
        );
        let shown: Vec<String> = runs
            .iter()
            .map(|r| {
                format!(
                    "{}-{}",
                    r.first - b("10.0.0.0/16").first,
                    r.last - b("10.0.0.0/16").first
                )
            })
            .collect();
        assert_eq!(shown, ["256-511", "1024-65535"]);
        assert!(free_runs(b("10.0.0.0/24"), &[b("10.0.0.0/16")]).is_empty());
    }

    #[test]
    fn first_fit_alignment_and_best_fit() {
        // A /24 after a used /25 must start on a /24 boundary.
        let runs = free_runs(b("10.0.0.0/22"), &[b("10.0.0.0/25")]);
        assert_eq!(net(aligned_in(runs[0], 24).unwrap()), "10.0.1.0/24");
        // Best fit prefers the small hole over the big tail.
        let runs = free_runs(b("10.0.0.0/16"), &[b("10.0.0.0/24"), b("10.0.2.0/24")]);
        assert_eq!(net(best_fit(&runs, 24).unwrap()), "10.0.1.0/24");
        // Nothing fits.
        let runs = free_runs(b("10.0.0.0/24"), &[b("10.0.0.64/26")]);
        assert_eq!(best_fit(&runs, 24), None);
        assert_eq!(net(largest_block(&runs).unwrap()), "10.0.0.128/25");
    }

    #[test]
    fn ipv6() {
        let runs = free_runs(b("fd00::/56"), &[b("fd00::/64"), b("fd00:0:0:2::/64")]);
        assert_eq!(net(best_fit(&runs, 64).unwrap()), "fd00:0:0:1::/64");
        assert_eq!(net(aligned_in(runs[1], 63).unwrap()), "fd00:0:0:4::/63");
    }
}
