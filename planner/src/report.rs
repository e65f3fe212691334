//! Planning a sibling cluster into an inventory: place its subnets
//! (largest first, best fit), check its service/pod CIDRs and DNS IP, and
//! say whether it all fits.

use crate::inventory::{parse_cidr, Inventory, Parsed};
use crate::sizing::{self, ClusterShape, SubnetNeed};
use crate::space::{best_fit, free_runs, largest_block, Block};
use ipnetwork::IpNetwork;
use serde::Serialize;
use std::net::IpAddr;

/// Ranges no cluster CIDR may use: link-local (Azure's platform), the
/// ranges AKS documents as reserved, and TEST-NET-1.
pub const FORBIDDEN: [(&str, &str); 4] = [
    ("link-local (Azure platform)", "169.254.0.0/16"),
    ("reserved by AKS", "172.30.0.0/16"),
    ("reserved by AKS", "172.31.0.0/16"),
    ("TEST-NET-1", "192.0.2.0/24"),
];

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub fits: bool,
    pub cluster: String,
    pub vnet: String,
    pub network_plugin: sizing::NetworkPlugin,
    pub subnets: Vec<PlacedSubnet>,
    pub conflicts: Vec<Conflict>,
    pub warnings: Vec<String>,
    /// The largest free aligned block left in the VNet, after placement.
    pub largest_free: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlacedSubnet {
    pub name: String,
    pub purpose: &'static str,
    pub required_addresses: u128,
    pub prefix_length: Option<u8>,
    pub cidr: Option<String>,
    /// Addresses the placed subnet offers (size − 5).
    pub usable_addresses: Option<u128>,
    /// Why it could not be placed, and by how much.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conflict {
    /// The cluster field at fault, e.g. `service_cidr`.
    pub field: String,
    pub value: String,
    pub message: String,
}

/// Input that cannot be planned; every problem names its entry.
#[derive(Debug, thiserror::Error)]
#[error("{}", errors.join("\n"))]
pub struct InputErrors {
    pub errors: Vec<String>,
}

fn inputs(errors: Vec<String>) -> InputErrors {
    InputErrors { errors }
}

pub fn plan(inventory: &Inventory, shape: &ClusterShape) -> Result<Report, InputErrors> {
    let parsed = inventory.parse().map_err(inputs)?;
    let needs = sizing::subnet_needs(shape).map_err(|e| inputs(vec![format!("cluster {e}")]))?;
    let vnet_index = pick_vnet(&parsed, shape)?;
    let service =
        parse_cidr("cluster service_cidr", &shape.service_cidr).map_err(|e| inputs(vec![e]))?;
    let dns: IpAddr = shape.dns_service_ip.trim().parse().map_err(|_| {
        inputs(vec![format!(
            "cluster dns_service_ip: {:?} is not an IP address",
            shape.dns_service_ip
        )])
    })?;
    let pod_cidr = match (&shape.pod_cidr, sizing::uses_pod_cidr(shape.network_plugin)) {
        (Some(p), _) => Some(parse_cidr("cluster pod_cidr", p).map_err(|e| inputs(vec![e]))?),
        (None, true) => {
            return Err(inputs(vec![format!(
                "cluster pod_cidr: required with network_plugin {:?} (pods take addresses from it)",
                shape.network_plugin
            )]))
        }
        (None, false) => None,
    };

    let vnet = &parsed.vnets[vnet_index];
    let mut warnings = overlapping_subnets(&parsed);
    // Everything that is taken, anywhere: subnets of every VNet, peers,
    // on-prem and reserved ranges.
    let mut used: Vec<Block> = parsed
        .vnets
        .iter()
        .flat_map(|v| v.subnets.iter().map(|(_, n)| Block::of(*n)))
        .chain(named(&parsed).map(|(_, _, n)| Block::of(n)))
        .collect();
    let spaces: Vec<Block> = vnet
        .address_spaces
        .iter()
        .filter(|n| n.is_ipv4())
        .map(|n| Block::of(*n))
        .collect();
    if spaces.is_empty() {
        warnings.push(format!(
            "VNet {} has no IPv4 address space: nothing can be placed",
            vnet.name
        ));
    }

    let mut ordered: Vec<SubnetNeed> = needs;
    ordered.sort_by(|a, b| {
        b.required_addresses
            .cmp(&a.required_addresses)
            .then(a.name.cmp(&b.name))
    });
    let mut subnets = Vec::new();
    for need in ordered {
        let prefix = sizing::prefix_for(need.required_addresses, false);
        let runs: Vec<Block> = spaces.iter().flat_map(|s| free_runs(*s, &used)).collect();
        let placed = prefix.and_then(|p| best_fit(&runs, p));
        let problem = match (prefix, placed) {
            (None, _) => Some(format!(
                "{} addresses exceed any IPv4 subnet",
                need.required_addresses
            )),
            (Some(p), None) => Some(match largest_block(&runs) {
                Some(b) => {
                    let usable = b.len().saturating_sub(sizing::AZURE_RESERVED);
                    format!(
                        "needs a /{p} ({} usable addresses); the largest free block is {} ({usable} usable), {} short",
                        (1u128 << (32 - u32::from(p))) - sizing::AZURE_RESERVED,
                        show(b),
                        need.required_addresses.saturating_sub(usable)
                    )
                }
                None => format!("needs a /{p}; the VNet has no free space left"),
            }),
            (Some(_), Some(_)) => None,
        };
        if let Some(b) = placed {
            used.push(b);
        }
        subnets.push(PlacedSubnet {
            name: need.name,
            purpose: need.purpose,
            required_addresses: need.required_addresses,
            prefix_length: prefix,
            cidr: placed.map(show),
            usable_addresses: placed.map(|b| b.len() - sizing::AZURE_RESERVED),
            problem,
        });
    }

    let mut conflicts = Vec::new();
    let mut check = |field: &str, net: IpNetwork| {
        let b = Block::of(net);
        for v in &parsed.vnets {
            for s in &v.address_spaces {
                if Block::of(*s).overlaps(&b) {
                    conflicts.push(conflict(
                        field,
                        net,
                        format!("overlaps VNet {} address space {s}", v.name),
                    ));
                }
            }
        }
        for (kind, name, other) in named(&parsed) {
            if Block::of(other).overlaps(&b) {
                conflicts.push(conflict(
                    field,
                    net,
                    format!("overlaps {kind} {name} ({other})"),
                ));
            }
        }
        for (why, cidr) in FORBIDDEN {
            let forbidden: IpNetwork = cidr.parse().expect("constant");
            if Block::of(forbidden).overlaps(&b) {
                conflicts.push(conflict(field, net, format!("overlaps {cidr}, {why}")));
            }
        }
    };
    check("service_cidr", service);
    if let Some(p) = pod_cidr {
        check("pod_cidr", p);
        if Block::of(p).overlaps(&Block::of(service)) {
            conflicts.push(conflict(
                "pod_cidr",
                p,
                format!("overlaps service_cidr {service}"),
            ));
        }
        if sizing::uses_pod_cidr(shape.network_plugin) && p.is_ipv4() {
            let per_node_blocks = Block::of(p).len() / 256;
            let nodes = sizing::peak_nodes(shape);
            if per_node_blocks < nodes {
                conflicts.push(conflict(
                    "pod_cidr",
                    p,
                    format!("holds {per_node_blocks} node /24s, the cluster needs {nodes} at peak"),
                ));
            }
        }
    }
    let dns_block = Block::of(IpNetwork::from(dns));
    if !Block::of(service).contains(&dns_block) {
        conflicts.push(Conflict {
            field: "dns_service_ip".into(),
            value: dns.to_string(),
            message: format!("must lie inside service_cidr {service}"),
        });
    } else if dns == service.network() {
        conflicts.push(Conflict {
            field: "dns_service_ip".into(),
            value: dns.to_string(),
            message: format!("must not be the first address of service_cidr {service}"),
        });
    }
    if shape.network_plugin == sizing::NetworkPlugin::Kubenet && sizing::peak_nodes(shape) > 400 {
        warnings.push("kubenet supports at most 400 nodes (route table limit)".into());
    }

    let runs: Vec<Block> = spaces.iter().flat_map(|s| free_runs(*s, &used)).collect();
    let fits = subnets.iter().all(|s| s.cidr.is_some()) && conflicts.is_empty();
    Ok(Report {
        fits,
        cluster: shape.name.clone(),
        vnet: vnet.name.clone(),
        network_plugin: shape.network_plugin,
        subnets,
        conflicts,
        warnings,
        largest_free: largest_block(&runs).map(show),
    })
}

fn show(b: Block) -> String {
    b.to_network()
        .map_or_else(|| format!("{b:?}"), |n| n.to_string())
}

fn conflict(field: &str, net: IpNetwork, message: String) -> Conflict {
    Conflict {
        field: field.into(),
        value: net.to_string(),
        message,
    }
}

/// Peered, on-prem and reserved ranges with their kind.
fn named(parsed: &Parsed) -> impl Iterator<Item = (&'static str, &str, IpNetwork)> {
    let peered = parsed
        .peered
        .iter()
        .map(|(n, c)| ("peered range", n.as_str(), *c));
    let on_prem = parsed
        .on_prem
        .iter()
        .map(|(n, c)| ("on-prem range", n.as_str(), *c));
    let reserved = parsed
        .reserved
        .iter()
        .map(|(n, c)| ("reserved range", n.as_str(), *c));
    peered.chain(on_prem).chain(reserved)
}

fn pick_vnet(parsed: &Parsed, shape: &ClusterShape) -> Result<usize, InputErrors> {
    match &shape.vnet {
        Some(name) => parsed
            .vnets
            .iter()
            .position(|v| &v.name == name)
            .ok_or_else(|| {
                inputs(vec![format!(
                    "cluster vnet: {name:?} is not in the inventory (it has: {})",
                    parsed
                        .vnets
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )])
            }),
        None if parsed.vnets.len() == 1 => Ok(0),
        None => Err(inputs(vec![format!(
            "cluster vnet: the inventory has {} VNets; name the one for the new subnets",
            parsed.vnets.len()
        )])),
    }
}

/// Real inventories have overlapping subnets; they are worth a warning,
/// not a refusal.
fn overlapping_subnets(parsed: &Parsed) -> Vec<String> {
    let mut warnings = Vec::new();
    for v in &parsed.vnets {
        let mut blocks: Vec<(Block, &str, IpNetwork)> = v
            .subnets
            .iter()
            .map(|(n, c)| (Block::of(*c), n.as_str(), *c))
            .collect();
        blocks.sort_by_key(|(b, ..)| *b);
        let mut widest: Option<(Block, &str, IpNetwork)> = None;
        for item in blocks {
            if let Some(prev) = widest {
                if prev.0.overlaps(&item.0) {
                    warnings.push(format!(
                        "VNet {}: subnets {} ({}) and {} ({}) overlap",
                        v.name, prev.1, prev.2, item.1, item.2
                    ));
                }
            }
            if widest.is_none_or(|w| item.0.last > w.0.last) {
                widest = Some(item);
            }
        }
    }
    warnings
}
