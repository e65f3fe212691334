//! From a plan that fits to the commands that use it: the `az` calls that
//! create the subnets the plan placed and the AKS cluster's network on
//! them (`cutover network plan --emit az`). Only what the plan proved goes
//! in: plugin and mode, subnet ids, pod and service CIDRs, DNS IP and each
//! pool's max pods; the rest (VM sizes, versions, identities) is the
//! operator's to add.

use crate::report::Report;
use crate::sizing::{ClusterShape, NetworkPlugin};

/// Where the commands act. Unknown parts stay shell variables that the
/// script asks for (`${RESOURCE_GROUP:?…}`), so nothing is guessed.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub subscription: Option<String>,
    pub resource_group: Option<String>,
}

/// One `az` call as its argument list (without the shell quoting).
pub type Command = Vec<String>;

/// The `az` calls, in order: each subnet, then the cluster with its first
/// node pool, then every further pool.
pub fn commands(report: &Report, shape: &ClusterShape, target: &Target) -> Vec<Command> {
    let group = target
        .resource_group
        .clone()
        .unwrap_or("$RESOURCE_GROUP".into());
    let subscription = target
        .subscription
        .clone()
        .unwrap_or("$SUBSCRIPTION".into());
    let subnet_id = |purpose: &str| {
        report.subnets.iter().find(|s| s.purpose == purpose).map(|s| {
            format!(
                "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/{}/subnets/{}",
                report.vnet, s.name
            )
        })
    };
    let mut out = Vec::new();
    for s in &report.subnets {
        let Some(cidr) = &s.cidr else { continue };
        out.push(args(&[
            "az",
            "network",
            "vnet",
            "subnet",
            "create",
            "--resource-group",
            &group,
            "--vnet-name",
            &report.vnet,
            "--name",
            &s.name,
            "--address-prefixes",
            cidr,
        ]));
    }
    let (plugin, mode, dataplane) = match shape.network_plugin {
        NetworkPlugin::Kubenet => ("kubenet", None, None),
        NetworkPlugin::AzureCni | NetworkPlugin::AzureCniPodSubnet => ("azure", None, None),
        NetworkPlugin::AzureCniOverlay => ("azure", Some("overlay"), None),
        NetworkPlugin::CiliumOverlay => ("azure", Some("overlay"), Some("cilium")),
        NetworkPlugin::CiliumPodSubnet => ("azure", None, Some("cilium")),
    };
    let nodes = subnet_id("nodes");
    let pods = subnet_id("pods");
    let Some(first) = shape.node_pools.first() else {
        return out;
    };
    let mut create = args(&[
        "az",
        "aks",
        "create",
        "--resource-group",
        &group,
        "--name",
        &shape.name,
        "--network-plugin",
        plugin,
    ]);
    if let Some(mode) = mode {
        create.extend(args(&["--network-plugin-mode", mode]));
    }
    if let Some(dataplane) = dataplane {
        create.extend(args(&["--network-dataplane", dataplane]));
    }
    let pool_network = |command: &mut Command, pool: &crate::sizing::NodePool| {
        if let Some(id) = &nodes {
            command.extend(args(&["--vnet-subnet-id", id]));
        }
        if let Some(id) = &pods {
            command.extend(args(&["--pod-subnet-id", id]));
        }
        command.extend(args(&["--max-pods", &pool.max_pods.to_string()]));
    };
    pool_network(&mut create, first);
    if let Some(pod_cidr) = shape
        .pod_cidr
        .as_deref()
        .filter(|_| crate::sizing::uses_pod_cidr(shape.network_plugin))
    {
        create.extend(args(&["--pod-cidr", pod_cidr]));
    }
    create.extend(args(&[
        "--service-cidr",
        &shape.service_cidr,
        "--dns-service-ip",
        &shape.dns_service_ip,
        "--nodepool-name",
        &first.name,
        "--enable-cluster-autoscaler",
        "--min-count",
        "1",
        "--max-count",
        &first.max_count.to_string(),
    ]));
    out.push(create);
    for pool in &shape.node_pools[1..] {
        let mut add = args(&[
            "az",
            "aks",
            "nodepool",
            "add",
            "--resource-group",
            &group,
            "--cluster-name",
            &shape.name,
            "--name",
            &pool.name,
        ]);
        pool_network(&mut add, pool);
        // The plan counted the pool's upgrade surge; the pool must use no more.
        let surge = match &pool.max_surge {
            crate::sizing::Surge::Count(n) => n.to_string(),
            crate::sizing::Surge::Percent(p) => p.clone(),
        };
        add.extend(args(&["--max-surge", &surge]));
        add.extend(args(&[
            "--enable-cluster-autoscaler",
            "--min-count",
            "1",
            "--max-count",
            &pool.max_count.to_string(),
        ]));
        out.push(add);
    }
    out
}

fn args(words: &[&str]) -> Command {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The commands as a shell script: values quoted, a `$VARIABLE` left to
/// the shell (double quotes), each option on its own line.
pub fn script(report: &Report, shape: &ClusterShape, target: &Target) -> String {
    let mut text = format!(
        "# The network of {} in VNet {}, as `cutover network plan` placed it.\n",
        report.cluster, report.vnet
    );
    text += "# Add what the plan does not decide (--location, --node-vm-size, --kubernetes-version, …).\n";
    if target.subscription.is_none() {
        text +=
            "SUBSCRIPTION=\"${SUBSCRIPTION:?set SUBSCRIPTION to the VNet's subscription id}\"\n";
    }
    if target.resource_group.is_none() {
        text += "RESOURCE_GROUP=\"${RESOURCE_GROUP:?set RESOURCE_GROUP to the VNet's resource group}\"\n";
    }
    for command in commands(report, shape, target) {
        text.push('\n');
        let mut line = String::new();
        for word in &command {
            let quoted = quote(word);
            if word.starts_with("--") {
                line += " \\\n  ";
            } else if !line.is_empty() {
                line.push(' ');
            }
            line += &quoted;
        }
        text += &line;
        text.push('\n');
    }
    text
}

/// A shell word: plain when safe, in double quotes where it holds a
/// `$VARIABLE` (expanded by the shell), in single quotes otherwise.
fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if word.chars().all(plain) {
        word.to_owned()
    } else if word.contains('$') && !word.contains(['"', '\\', '`']) {
        format!("\"{word}\"")
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
