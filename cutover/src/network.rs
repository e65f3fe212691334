//! `cutover network plan`: is there room for the sibling cluster, and where?
//! Exit 0 when everything fits without conflicts, 1 when something does not
//! fit or conflicts, 2 on input errors.

use clap::{Args, ValueEnum};
use comfy_table::Table;
use planner::azure::{AzureTarget, CredentialKind, PUBLIC_ENDPOINT};
use planner::{ClusterShape, Inventory, Report};
use std::path::PathBuf;

#[derive(Args)]
pub struct PlanArgs {
    /// The network inventory (YAML/JSON), e.g. deploy/examples/network.yaml.
    /// With the Azure flags it adds what Azure does not know.
    #[arg(long)]
    inventory: Option<PathBuf>,
    /// Read the VNet live from Azure: the subscription id…
    #[arg(long, requires_all = ["resource_group", "vnet"])]
    azure_subscription: Option<String>,
    /// …its resource group…
    #[arg(long)]
    resource_group: Option<String>,
    /// …and the VNet's name.
    #[arg(long)]
    vnet: Option<String>,
    /// Azure Resource Manager endpoint (a local server in tests).
    #[arg(long, default_value = PUBLIC_ENDPOINT)]
    azure_endpoint: String,
    /// Which Azure credential to use (default: azure_identity's chain).
    #[arg(long, value_enum, default_value_t = Credential::Default)]
    azure_credential: Credential,
    /// The sibling cluster's shape, e.g. deploy/examples/cluster.yaml.
    #[arg(long)]
    cluster: PathBuf,
    /// Print the commands that create what the plan placed instead of the
    /// table: `az` gives `az network vnet subnet create` for each subnet and
    /// `az aks create` / `az aks nodepool add` with the network arguments
    /// (plugin and mode, subnet ids, pod and service CIDRs, DNS IP, max pods).
    /// The subscription and resource group come from the Azure flags, or
    /// the script asks for $SUBSCRIPTION and $RESOURCE_GROUP.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    Az,
}

#[derive(Clone, Copy, ValueEnum)]
enum Credential {
    Default,
    Cli,
    Env,
    ManagedIdentity,
}

/// Input errors (exit 2) versus a finished plan.
pub enum Planned {
    Report(Box<Report>, Box<ClusterShape>),
    InputError(String),
}

pub async fn plan(args: &PlanArgs) -> Planned {
    let shape: ClusterShape = match std::fs::read_to_string(&args.cluster)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_yaml_ng::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => return Planned::InputError(format!("--cluster {}: {e}", args.cluster.display())),
    };
    let mut inventory = Inventory::default();
    if let Some(sub) = &args.azure_subscription {
        let target = AzureTarget {
            subscription: sub.clone(),
            resource_group: args.resource_group.clone().unwrap_or_default(),
            vnet: args.vnet.clone().unwrap_or_default(),
            endpoint: args.azure_endpoint.clone(),
            credential: match args.azure_credential {
                Credential::Default => CredentialKind::Default,
                Credential::Cli => CredentialKind::Cli,
                Credential::Env => CredentialKind::Env,
                Credential::ManagedIdentity => CredentialKind::ManagedIdentity,
            },
        };
        match planner::azure::read_inventory(&target).await {
            Ok(i) => inventory = i,
            Err(e) => return Planned::InputError(e.to_string()),
        }
    }
    match &args.inventory {
        Some(path) => match Inventory::load(path) {
            Ok(file) => inventory.merge(file),
            Err(e) => return Planned::InputError(format!("--inventory {e}")),
        },
        None if args.azure_subscription.is_none() => {
            return Planned::InputError(
                "give --inventory FILE, or --azure-subscription S --resource-group RG --vnet NAME"
                    .into(),
            )
        }
        None => {}
    }
    match planner::plan(&inventory, &shape) {
        Ok(report) => Planned::Report(Box::new(report), Box::new(shape)),
        Err(e) => Planned::InputError(e.to_string()),
    }
}

/// The `az` commands for a plan that fits (`--emit az`), or `None`.
pub fn az_script(args: &PlanArgs, report: &Report, shape: &ClusterShape) -> Option<String> {
    let target = planner::az::Target {
        subscription: args.azure_subscription.clone(),
        resource_group: args.resource_group.clone(),
    };
    (args.emit == Some(Emit::Az) && report.fits)
        .then(|| planner::az::script(report, shape, &target))
}

/// The report for people.
pub fn print_table(r: &Report) {
    let mut table = Table::new();
    table.set_header([
        "subnet",
        "purpose",
        "needs",
        "prefix",
        "placed at",
        "usable",
    ]);
    for s in &r.subnets {
        table.add_row(vec![
            s.name.clone(),
            s.purpose.to_owned(),
            s.required_addresses.to_string(),
            s.prefix_length.map_or("-".into(), |p| format!("/{p}")),
            s.cidr
                .clone()
                .unwrap_or_else(|| format!("DOES NOT FIT: {}", s.problem.as_deref().unwrap_or(""))),
            s.usable_addresses.map_or("-".into(), |u| u.to_string()),
        ]);
    }
    println!(
        "cluster {} ({:?}) in VNet {}",
        r.cluster, r.network_plugin, r.vnet
    );
    println!("{table}");
    for c in &r.conflicts {
        println!("CONFLICT {} {}: {}", c.field, c.value, c.message);
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
    if let Some(free) = &r.largest_free {
        println!("largest free block left: {free}");
    }
    println!("{}", if r.fits { "fits: yes" } else { "fits: NO" });
}
