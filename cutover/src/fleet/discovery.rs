//! Finding the gateway replicas through a headless Service: the ready
//! addresses of its EndpointSlices, each with the admin port.

use super::FleetError;
use crate::plan::KubernetesFleet;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

/// `scheme`: `https` for admin APIs over TLS.
pub async fn admin_urls(fleet: &KubernetesFleet, scheme: &str) -> Result<Vec<String>, FleetError> {
    let setup = |e: String| FleetError::Setup(format!("fleet.kubernetes: {e}"));
    let config = match &fleet.context {
        None => kube::Config::infer()
            .await
            .map_err(|e| setup(e.to_string()))?,
        Some(context) => {
            let kubeconfig = Kubeconfig::read().map_err(|e| setup(e.to_string()))?;
            let options = KubeConfigOptions {
                context: Some(context.clone()),
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| setup(format!("context {context:?}: {e}")))?
        }
    };
    let client = Client::try_from(config).map_err(|e| setup(e.to_string()))?;
    let slices: Api<EndpointSlice> = Api::namespaced(client, &fleet.namespace);
    let selector = format!("kubernetes.io/service-name={}", fleet.service);
    let list = slices
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| {
            setup(format!(
                "cannot list the endpoints of service {}/{}: {e}",
                fleet.namespace, fleet.service
            ))
        })?;
    let mut urls: Vec<String> = list
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|e| e.addresses.iter())
        .map(|ip| {
            if ip.contains(':') {
                format!("{scheme}://[{ip}]:{}", fleet.admin_port)
            } else {
                format!("{scheme}://{ip}:{}", fleet.admin_port)
            }
        })
        .collect();
    urls.sort();
    urls.dedup();
    if urls.is_empty() {
        return Err(setup(format!(
            "service {}/{} has no ready endpoints",
            fleet.namespace, fleet.service
        )));
    }
    Ok(urls)
}
