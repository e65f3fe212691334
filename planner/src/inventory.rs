//! The network inventory: what address space exists and what is taken.
//! Read from a YAML/JSON file (`deploy/examples/network.yaml`) or live from
//! Azure ([`crate::azure`]); a file can add what Azure does not know
//! (on-prem and VPN ranges, other clusters' pod and service CIDRs).

use crate::space::normalize;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(default)]
    pub vnets: Vec<Vnet>,
    /// Address spaces of peered VNets.
    #[serde(default)]
    pub peered_ranges: Vec<NamedRange>,
    /// On-premises and VPN ranges routed into the VNet.
    #[serde(default)]
    pub on_prem_ranges: Vec<NamedRange>,
    /// Anything else that must stay free (other clusters' pod or service
    /// CIDRs, ranges kept for later).
    #[serde(default)]
    pub reserved_ranges: Vec<NamedRange>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vnet {
    pub name: String,
    pub address_spaces: Vec<String>,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub name: String,
    /// One prefix (Azure's `addressPrefix`)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_prefix: Option<String>,
    /// …and/or several (`addressPrefixes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_prefixes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedRange {
    pub name: String,
    pub cidr: String,
}

/// An inventory with every prefix parsed and normalized.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub vnets: Vec<ParsedVnet>,
    pub peered: Vec<(String, IpNetwork)>,
    pub on_prem: Vec<(String, IpNetwork)>,
    pub reserved: Vec<(String, IpNetwork)>,
}

#[derive(Clone, Debug)]
pub struct ParsedVnet {
    pub name: String,
    pub address_spaces: Vec<IpNetwork>,
    pub subnets: Vec<(String, IpNetwork)>,
}

/// Parses a CIDR, naming the entry when it is not one.
pub fn parse_cidr(entry: &str, value: &str) -> Result<IpNetwork, String> {
    value
        .trim()
        .parse::<IpNetwork>()
        .map(normalize)
        .map_err(|_| format!("{entry}: {value:?} is not a CIDR (e.g. 10.0.0.0/16 or fd00::/56)"))
}

impl Inventory {
    /// Reads a YAML or JSON (JSON is YAML) inventory file.
    pub fn load(path: &Path) -> Result<Inventory, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Adds everything `other` knows.
    pub fn merge(&mut self, other: Inventory) {
        for v in other.vnets {
            match self.vnets.iter_mut().find(|x| x.name == v.name) {
                Some(existing) => {
                    existing.address_spaces.extend(v.address_spaces);
                    existing.subnets.extend(v.subnets);
                }
                None => self.vnets.push(v),
            }
        }
        self.peered_ranges.extend(other.peered_ranges);
        self.on_prem_ranges.extend(other.on_prem_ranges);
        self.reserved_ranges.extend(other.reserved_ranges);
    }

    /// Every prefix parsed; all malformed entries reported at once.
    pub fn parse(&self) -> Result<Parsed, Vec<String>> {
        let mut errors = Vec::new();
        let mut cidr = |entry: String, value: &str| match parse_cidr(&entry, value) {
            Ok(n) => Some(n),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let mut parsed = Parsed::default();
        for (i, v) in self.vnets.iter().enumerate() {
            let at = format!("vnets[{i}] ({})", v.name);
            let address_spaces = v
                .address_spaces
                .iter()
                .enumerate()
                .filter_map(|(j, s)| cidr(format!("{at}.address_spaces[{j}]"), s))
                .collect();
            let mut subnets = Vec::new();
            for (j, s) in v.subnets.iter().enumerate() {
                let sat = format!("{at}.subnets[{j}] ({})", s.name);
                if let Some(p) = &s.address_prefix {
                    subnets.extend(
                        cidr(format!("{sat}.address_prefix"), p).map(|n| (s.name.clone(), n)),
                    );
                }
                for (k, p) in s.address_prefixes.iter().enumerate() {
                    subnets.extend(
                        cidr(format!("{sat}.address_prefixes[{k}]"), p)
                            .map(|n| (s.name.clone(), n)),
                    );
                }
            }
            parsed.vnets.push(ParsedVnet {
                name: v.name.clone(),
                address_spaces,
                subnets,
            });
        }
        for (list, field, out) in [
            (&self.peered_ranges, "peered_ranges", &mut parsed.peered),
            (&self.on_prem_ranges, "on_prem_ranges", &mut parsed.on_prem),
            (
                &self.reserved_ranges,
                "reserved_ranges",
                &mut parsed.reserved,
            ),
        ] {
            for (i, r) in list.iter().enumerate() {
                out.extend(
                    cidr(format!("{field}[{i}] ({})", r.name), &r.cidr)
                        .map(|n| (r.name.clone(), n)),
                );
            }
        }
        if errors.is_empty() {
            Ok(parsed)
        } else {
            Err(errors)
        }
    }
}
