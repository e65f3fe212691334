//! How many VNet addresses a sibling AKS cluster needs, per network plugin.
//!
//! Sources (Microsoft Learn, "Azure Kubernetes Service" networking docs):
//! - kubenet: "Use kubenet networking with your own IP address ranges":
//!   nodes take one VNet address each; pods come from the pod CIDR, a /24
//!   per node; "a /24 subnet can support up to 251 nodes" (256 − 5 Azure
//!   reserved addresses).
//! - Azure CNI (pods in the node subnet): "Configure Azure CNI networking":
//!   `(nodes + 1) + ((nodes + 1) × max pods per node)`, the `+ 1` being the
//!   upgrade surge node: 50 nodes, 30 pods → 1,581 addresses (a /21); 60
//!   nodes → 1,891. With surge `s` in general: `(nodes + s) × (1 + max pods)`.
//! - Azure CNI with dynamic pod subnet: "Configure Azure CNI for dynamic IP
//!   allocation": nodes take one address each in the node subnet; pod
//!   addresses are allocated to nodes in batches of 16, so plan
//!   `(nodes + surge) × roundup(max pods, 16)` in the pod subnet.
//! - Azure CNI Overlay: "Configure Azure CNI Overlay networking": nodes take
//!   one VNet address each; pods come from a private pod CIDR outside the
//!   VNet, a /24 per node.
//! - Azure CNI powered by Cilium: "Configure Azure CNI Powered by Cilium":
//!   runs either in overlay mode (sized as Overlay) or with a VNet pod
//!   subnet (sized as dynamic pod subnet).
//!
//! Every subnet also loses 5 addresses to Azure, and the smallest Azure
//! subnet is a /29. Blue and green run side by side, so green needs all of
//! this in free space.

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

/// Addresses Azure keeps in every subnet.
pub const AZURE_RESERVED: u128 = 5;
/// The smallest IPv4 subnet Azure allows.
pub const SMALLEST_V4_PREFIX: u8 = 29;
/// Azure IPv6 subnets are /64.
pub const V6_PREFIX: u8 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkPlugin {
    Kubenet,
    AzureCni,
    AzureCniPodSubnet,
    AzureCniOverlay,
    CiliumOverlay,
    CiliumPodSubnet,
}

/// The sibling cluster's shape (`deploy/examples/cluster.yaml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterShape {
    pub name: String,
    pub network_plugin: NetworkPlugin,
    /// The VNet to place the new subnets in (when the inventory has several).
    #[serde(default)]
    pub vnet: Option<String>,
    pub node_pools: Vec<NodePool>,
    #[serde(default)]
    pub internal_load_balancers: u32,
    /// Further addresses to keep in the node subnet (private endpoints, …).
    #[serde(default)]
    pub extra_reserved: u32,
    pub service_cidr: String,
    pub dns_service_ip: String,
    /// Pods' private range (kubenet and the overlay modes).
    #[serde(default)]
    pub pod_cidr: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePool {
    pub name: String,
    /// The most nodes the pool scales to.
    pub max_count: u32,
    pub max_pods: u32,
    /// Extra nodes during upgrades: a count (`1`) or a percent (`"33%"`,
    /// of max_count, rounded up).
    #[serde(default = "one_node")]
    pub max_surge: Surge,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Surge {
    Count(u32),
    Percent(String),
}

fn one_node() -> Surge {
    Surge::Count(1)
}

impl NodePool {
    /// Surge nodes; `Err` names what is wrong.
    pub fn surge(&self) -> Result<u32, String> {
        match &self.max_surge {
            Surge::Count(n) => Ok(*n),
            Surge::Percent(p) => {
                let number = p
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<f64>().ok())
                    .filter(|n| *n >= 0.0 && *n <= 100.0)
                    .ok_or_else(|| {
                        format!("max_surge {p:?} must be a node count or a percent such as \"33%\"")
                    })?;
                Ok((f64::from(self.max_count) * number / 100.0).ceil() as u32)
            }
        }
    }
}

/// A subnet the cluster needs, before placement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubnetNeed {
    pub name: String,
    pub purpose: &'static str,
    /// What the cluster uses, without Azure's 5.
    pub required_addresses: u128,
}

/// The subnets `shape` needs; `Err` names the entry at fault.
pub fn subnet_needs(shape: &ClusterShape) -> Result<Vec<SubnetNeed>, String> {
    let mut nodes: u128 = 0;
    let mut cni_addresses: u128 = 0;
    let mut pod_subnet: u128 = 0;
    for (i, pool) in shape.node_pools.iter().enumerate() {
        let surge = pool
            .surge()
            .map_err(|e| format!("node_pools[{i}] ({}): {e}", pool.name))?;
        if pool.max_count == 0 {
            return Err(format!(
                "node_pools[{i}] ({}): max_count must be at least 1",
                pool.name
            ));
        }
        let peak = u128::from(pool.max_count) + u128::from(surge);
        nodes += peak;
        cni_addresses += peak * (1 + u128::from(pool.max_pods));
        pod_subnet += peak * u128::from(pool.max_pods.div_ceil(16) * 16);
    }
    let fixed = u128::from(shape.internal_load_balancers) + u128::from(shape.extra_reserved);
    let node_subnet = |n| SubnetNeed {
        name: format!("{}-nodes", shape.name),
        purpose: "nodes",
        required_addresses: n + fixed,
    };
    let pods = |n| SubnetNeed {
        name: format!("{}-pods", shape.name),
        purpose: "pods",
        required_addresses: n,
    };
    Ok(match shape.network_plugin {
        NetworkPlugin::AzureCni => vec![node_subnet(cni_addresses)],
        NetworkPlugin::AzureCniPodSubnet | NetworkPlugin::CiliumPodSubnet => {
            vec![node_subnet(nodes), pods(pod_subnet)]
        }
        NetworkPlugin::Kubenet | NetworkPlugin::AzureCniOverlay | NetworkPlugin::CiliumOverlay => {
            vec![node_subnet(nodes)]
        }
    })
}

/// Whether pods come from a private pod CIDR outside the VNet.
pub fn uses_pod_cidr(plugin: NetworkPlugin) -> bool {
    matches!(
        plugin,
        NetworkPlugin::Kubenet | NetworkPlugin::AzureCniOverlay | NetworkPlugin::CiliumOverlay
    )
}

/// Total nodes at peak (all pools at max plus surge).
pub fn peak_nodes(shape: &ClusterShape) -> u128 {
    shape
        .node_pools
        .iter()
        .map(|p| u128::from(p.max_count) + u128::from(p.surge().unwrap_or(0)))
        .sum()
}

/// The prefix length whose usable addresses (size − 5) hold `required`;
/// never smaller than a /29 (IPv4), always /64 for IPv6.
pub fn prefix_for(required: u128, v6: bool) -> Option<u8> {
    if v6 {
        return Some(V6_PREFIX);
    }
    (0..=SMALLEST_V4_PREFIX)
        .rev()
        .find(|len| (1u128 << (32 - u32::from(*len))) - AZURE_RESERVED >= required)
}

/// Nodes a subnet of this prefix holds under kubenet / overlay (one address
/// per node): `/24` → 251.
pub fn nodes_in(net: IpNetwork) -> u128 {
    let size = 1u128 << (if net.is_ipv4() { 32 } else { 128 } - u32::from(net.prefix())).min(127);
    size.saturating_sub(AZURE_RESERVED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(plugin: NetworkPlugin, nodes: u32, pods: u32, surge: Surge) -> ClusterShape {
        ClusterShape {
            name: "green".into(),
            network_plugin: plugin,
            vnet: None,
            node_pools: vec![NodePool {
                name: "pool".into(),
                max_count: nodes,
                max_pods: pods,
                max_surge: surge,
            }],
            internal_load_balancers: 0,
            extra_reserved: 0,
            service_cidr: "10.0.0.0/16".into(),
            dns_service_ip: "10.0.0.10".into(),
            pod_cidr: None,
        }
    }

    #[test]
    fn azure_cni_matches_the_documented_examples() {
        let needs = subnet_needs(&shape(NetworkPlugin::AzureCni, 50, 30, Surge::Count(1))).unwrap();
        assert_eq!(needs[0].required_addresses, 1_581);
        assert_eq!(prefix_for(1_581, false), Some(21));
        let needs = subnet_needs(&shape(NetworkPlugin::AzureCni, 60, 30, Surge::Count(1))).unwrap();
        assert_eq!(needs[0].required_addresses, 1_891);
        assert_eq!(prefix_for(1_891, false), Some(21));
    }

    #[test]
    fn kubenet_a_slash_24_holds_251_nodes() {
        assert_eq!(nodes_in("10.0.0.0/24".parse().unwrap()), 251);
        let needs =
            subnet_needs(&shape(NetworkPlugin::Kubenet, 250, 110, Surge::Count(1))).unwrap();
        assert_eq!(needs[0].required_addresses, 251);
        assert_eq!(prefix_for(251, false), Some(24));
        assert_eq!(prefix_for(252, false), Some(23));
    }

    #[test]
    fn pod_subnet_and_overlay_models() {
        let needs = subnet_needs(&shape(
            NetworkPlugin::AzureCniPodSubnet,
            10,
            30,
            Surge::Percent("10%".into()),
        ))
        .unwrap();
        assert_eq!(
            needs[0].required_addresses, 11,
            "10 nodes + 1 surge (10% rounded up)"
        );
        assert_eq!(
            needs[1].required_addresses,
            11 * 32,
            "pods in batches of 16"
        );
        let needs = subnet_needs(&shape(
            NetworkPlugin::AzureCniOverlay,
            100,
            250,
            Surge::Percent("33%".into()),
        ))
        .unwrap();
        assert_eq!(needs.len(), 1);
        assert_eq!(needs[0].required_addresses, 133);
        assert_eq!(
            prefix_for(1, false),
            Some(29),
            "the smallest subnet is a /29"
        );
    }

    #[test]
    fn bad_surge_is_named() {
        let err = subnet_needs(&shape(
            NetworkPlugin::Kubenet,
            3,
            30,
            Surge::Percent("lots".into()),
        ))
        .unwrap_err();
        assert!(
            err.contains("node_pools[0] (pool)") && err.contains("max_surge"),
            "{err}"
        );
    }
}
