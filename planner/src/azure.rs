//! The inventory read live from Azure with `azure_mgmt_network`: a VNet's
//! address spaces, its subnets (`addressPrefix` and `addressPrefixes`,
//! following `nextLink` pages) and its peerings' remote address spaces.
//!
//! Every request must go to the configured endpoint's host: a `nextLink`
//! pointing elsewhere is refused, since following it would hand our bearer
//! token to that host.

use crate::inventory::{Inventory, NamedRange, Subnet, Vnet};
use async_trait::async_trait;
use azure_core::auth::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::{
    ClientOptions, Context, ExponentialRetryOptions, Policy, PolicyResult, Request, RetryOptions,
    Url,
};
use azure_identity::{
    AzureCliCredential, DefaultAzureCredential, EnvironmentCredential, TokenCredentialOptions,
    VirtualMachineManagedIdentityCredential,
};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// The public Azure Resource Manager endpoint.
pub const PUBLIC_ENDPOINT: &str = "https://management.azure.com";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// azure_identity's chain (environment, managed identity, Azure CLI).
    Default,
    /// `az account get-access-token`.
    Cli,
    /// AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET.
    Env,
    /// The instance metadata endpoint of an Azure VM.
    ManagedIdentity,
}

pub struct AzureTarget {
    pub subscription: String,
    pub resource_group: String,
    pub vnet: String,
    pub endpoint: String,
    pub credential: CredentialKind,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AzureError(pub String);

fn credential(kind: CredentialKind) -> Result<Arc<dyn TokenCredential>, AzureError> {
    let fail = |e: azure_core::Error| {
        AzureError(format!("cannot set up the {kind:?} Azure credential: {e}"))
    };
    Ok(match kind {
        CredentialKind::Cli => Arc::new(AzureCliCredential::new()),
        CredentialKind::Env => Arc::new(
            EnvironmentCredential::create(TokenCredentialOptions::default()).map_err(fail)?,
        ),
        CredentialKind::ManagedIdentity => Arc::new(VirtualMachineManagedIdentityCredential::new(
            TokenCredentialOptions::default(),
        )),
        CredentialKind::Default => Arc::new(
            DefaultAzureCredential::create(TokenCredentialOptions::default()).map_err(fail)?,
        ),
    })
}

/// Refuses any request to another scheme, host or port than the endpoint.
#[derive(Debug)]
struct SameHostOnly {
    endpoint: Url,
}

#[async_trait]
impl Policy for SameHostOnly {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let url = request.url();
        let same = url.scheme() == self.endpoint.scheme()
            && url.host_str() == self.endpoint.host_str()
            && url.port_or_known_default() == self.endpoint.port_or_known_default();
        if !same {
            return Err(azure_core::Error::with_message(ErrorKind::Other, || {
                format!(
                    "refused to follow a link to {} (not the endpoint {}): it would receive our bearer token",
                    url.origin().ascii_serialization(),
                    self.endpoint.origin().ascii_serialization()
                )
            }));
        }
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// Turns an Azure error into what the operator should check.
fn explain(e: azure_core::Error, target: &AzureTarget, what: &str) -> AzureError {
    let message = match e.kind() {
        ErrorKind::HttpResponse { status, .. } => match u16::from(*status) {
            401 => format!("Azure refused the credentials (401) while reading {what}: check `az login`, the tenant, or AZURE_CLIENT_ID/AZURE_CLIENT_SECRET"),
            403 => format!(
                "the identity may not read {what} (403): grant it Reader (or Network Contributor) on resource group {} in subscription {}",
                target.resource_group, target.subscription
            ),
            404 => format!(
                "{what} was not found (404): check --vnet {:?}, --resource-group {:?} and --azure-subscription {:?}",
                target.vnet, target.resource_group, target.subscription
            ),
            429 => format!("Azure throttled the requests for {what} (429) even after retries: wait a minute and run again"),
            code => format!("Azure answered {code} while reading {what}: {e}"),
        },
        ErrorKind::Credential => format!("could not get an Azure token ({:?} credential): {e}", target.credential),
        _ => format!("cannot read {what}: {e}"),
    };
    AzureError(message)
}

/// Reads the target VNet, its subnets and its peerings into an inventory.
pub async fn read_inventory(target: &AzureTarget) -> Result<Inventory, AzureError> {
    read_inventory_with(target, credential(target.credential)?).await
}

/// The same with a given credential (tests use an in-process one, so no
/// credential chain ever reaches for a real identity endpoint).
pub async fn read_inventory_with(
    target: &AzureTarget,
    credential: Arc<dyn TokenCredential>,
) -> Result<Inventory, AzureError> {
    let endpoint = Url::parse(&target.endpoint).map_err(|e| {
        AzureError(format!(
            "--azure-endpoint {:?} is not a URL: {e}",
            target.endpoint
        ))
    })?;
    let mut options = ClientOptions::default().retry(RetryOptions::exponential(
        ExponentialRetryOptions::default()
            .max_retries(3u32)
            .initial_delay(Duration::from_millis(200))
            .max_delay(Duration::from_secs(5)),
    ));
    options.per_call_policies_mut().push(Arc::new(SameHostOnly {
        endpoint: endpoint.clone(),
    }));
    let scope = if target.endpoint.trim_end_matches('/') == PUBLIC_ENDPOINT {
        format!("{PUBLIC_ENDPOINT}/.default")
    } else {
        endpoint
            .join(".default")
            .map(|u| u.to_string())
            .unwrap_or_default()
    };
    let client = azure_mgmt_network::package_2024_03::Client::new(
        endpoint,
        credential,
        vec![scope],
        options,
    );
    let (sub, rg, name) = (&target.subscription, &target.resource_group, &target.vnet);
    let what = format!("VNet {name}");

    let vnet = client
        .virtual_networks_client()
        .get(rg, name, sub)
        .await
        .map_err(|e| explain(e, target, &what))?;
    let address_spaces = vnet
        .properties
        .as_ref()
        .and_then(|p| p.address_space.as_ref())
        .map(|a| a.address_prefixes.clone())
        .unwrap_or_default();

    let mut subnets = Vec::new();
    let mut pages = client.subnets_client().list(rg, name, sub).into_stream();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| explain(e, target, &format!("the subnets of {what}")))?;
        for s in page.value {
            let props = s.properties.unwrap_or_default();
            subnets.push(Subnet {
                name: s.name.unwrap_or_else(|| "(unnamed)".into()),
                address_prefix: props.address_prefix,
                address_prefixes: props.address_prefixes,
            });
        }
    }

    let mut peered = Vec::new();
    let mut pages = client
        .virtual_network_peerings_client()
        .list(rg, name, sub)
        .into_stream();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| explain(e, target, &format!("the peerings of {what}")))?;
        for p in page.value {
            let peering = p.name.clone().unwrap_or_else(|| "(unnamed peering)".into());
            let props = p.properties.unwrap_or_default();
            let remote = props
                .remote_address_space
                .or(props.remote_virtual_network_address_space);
            for cidr in remote.map(|a| a.address_prefixes).unwrap_or_default() {
                peered.push(NamedRange {
                    name: peering.clone(),
                    cidr,
                });
            }
        }
    }

    Ok(Inventory {
        vnets: vec![Vnet {
            name: name.clone(),
            address_spaces,
            subnets,
        }],
        peered_ranges: peered,
        ..Inventory::default()
    })
}
