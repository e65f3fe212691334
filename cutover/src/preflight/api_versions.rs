//! Preflight: the apiVersions blue's objects use (Helm releases, manifests,
//! last-applied annotations) against what green serves.

use super::removals;
use super::sources::{decode_release, Declared, HelmRelease};
use super::{Check, Status};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Deployed and pending Helm 3 releases on blue (newest revision each).
pub(super) async fn helm_releases(
    blue: &Client,
    namespaces: &[String],
) -> (Vec<HelmRelease>, Vec<String>) {
    let params = ListParams::default().labels("owner=helm");
    let apis: Vec<Api<Secret>> = if namespaces.is_empty() {
        vec![Api::all(blue.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(blue.clone(), ns))
            .collect()
    };
    let mut newest: BTreeMap<(String, String), (u64, Secret)> = BTreeMap::new();
    let mut problems = Vec::new();
    for api in apis {
        let list = match api.list(&params).await {
            Ok(l) => l.items,
            Err(e) => {
                problems.push(format!("cannot list Helm release secrets on blue: {e}"));
                continue;
            }
        };
        for s in list {
            let labels = s.labels();
            let status = labels.get("status").cloned().unwrap_or_default();
            if s.type_.as_deref() != Some("helm.sh/release.v1")
                || !(status == "deployed" || status.starts_with("pending"))
            {
                continue;
            }
            let version: u64 = labels
                .get("version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let key = (
                s.namespace().unwrap_or_default(),
                labels.get("name").cloned().unwrap_or_default(),
            );
            if newest.get(&key).is_none_or(|(v, _)| version > *v) {
                newest.insert(key, (version, s));
            }
        }
    }
    let mut releases = Vec::new();
    for ((ns, _), (_, secret)) in newest {
        let name = secret.name_any();
        match secret.data.as_ref().and_then(|d| d.get("release")) {
            Some(bytes) => match decode_release(&bytes.0) {
                Ok(r) => releases.push(r),
                Err(e) => problems.push(format!("secret {ns}/{name}: {e}")),
            },
            None => problems.push(format!("secret {ns}/{name}: no release data")),
        }
    }
    (releases, problems)
}

/// What green serves, asked per group version and remembered.
pub(super) struct Served {
    client: Client,
    cache: HashMap<String, Result<BTreeMap<String, ApiResourceInfo>, String>>,
}

#[derive(Clone)]
pub(super) struct ApiResourceInfo {
    pub(super) plural: String,
    pub(super) namespaced: bool,
}

impl Served {
    pub(super) fn new(client: Client) -> Served {
        Served {
            client,
            cache: HashMap::new(),
        }
    }

    /// The kinds green serves in `api_version`: `Ok(empty)` when it does
    /// not serve that group version at all.
    pub(super) async fn kinds(
        &mut self,
        api_version: &str,
    ) -> Result<BTreeMap<String, ApiResourceInfo>, String> {
        if let Some(hit) = self.cache.get(api_version) {
            return hit.clone();
        }
        let result = if api_version.contains('/') {
            self.client.list_api_group_resources(api_version).await
        } else {
            self.client.list_core_api_resources(api_version).await
        };
        let kinds = match result {
            Ok(list) => Ok(list
                .resources
                .into_iter()
                .filter(|r| !r.name.contains('/'))
                .map(|r| {
                    (
                        r.kind.clone(),
                        ApiResourceInfo {
                            plural: r.name,
                            namespaced: r.namespaced,
                        },
                    )
                })
                .collect()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(BTreeMap::new()),
            Err(e) => Err(e.to_string()),
        };
        self.cache.insert(api_version.to_owned(), kinds.clone());
        kinds
    }
}

/// Blue's (apiVersion, kind) pairs against what green serves.
pub(super) async fn api_versions(
    served: &mut Served,
    green_minor: u32,
    declared: &[Declared],
    release_problems: &[String],
) -> Check {
    let mut pairs: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for d in declared {
        pairs
            .entry((d.api_version.clone(), d.kind.clone()))
            .or_default()
            .push(format!("{} ({})", d.name, d.origin));
    }
    let mut fails = Vec::new();
    let mut advice = BTreeSet::new();
    let mut warnings = Vec::new();
    for ((api_version, kind), users) in &pairs {
        match served.kinds(api_version).await {
            Ok(kinds) if kinds.contains_key(kind) => {
                if let Some(r) =
                    removals::find(api_version, kind).filter(|r| r.removed_in > green_minor)
                {
                    warnings.push(format!(
                        "{kind} {api_version}: served by green, removed in 1.{} — move to {}",
                        r.removed_in,
                        r.replacement.unwrap_or("(no replacement)")
                    ));
                }
            }
            Ok(_) => {
                fails.push(format!("{kind} {api_version}: {}", users.join(", ")));
                advice.insert(removals::advice(api_version, kind));
            }
            Err(e) => warnings.push(format!("{kind} {api_version}: cannot ask green ({e})")),
        }
    }
    let name = "removed apiVersions";
    if !fails.is_empty() {
        Check::new(
            name,
            Status::Fail,
            format!(
                "green does not serve {} apiVersion/kind pair(s) blue is deployed from",
                fails.len()
            ),
        )
        .objects(fails)
        .fix(advice.into_iter().collect::<Vec<_>>().join("; "))
    } else if !warnings.is_empty() || !release_problems.is_empty() {
        let mut objects = warnings;
        objects.extend(release_problems.iter().cloned());
        Check::new(
            name,
            Status::Warn,
            "served today, but some will be removed (or could not be read)",
        )
        .objects(objects)
        .fix("update the charts and manifests to the replacement apiVersions")
    } else {
        Check::new(
            name,
            Status::Pass,
            format!(
                "green serves all {} apiVersion/kind pair(s) in use",
                pairs.len()
            ),
        )
    }
}

/// `kubectl.kubernetes.io/last-applied-configuration` of blue's workloads.
pub(super) async fn last_applied(blue: &Client, namespaces: &[String]) -> Vec<Declared> {
    let mut out = Vec::new();
    for ns in namespaces {
        let deployments = Api::<Deployment>::namespaced(blue.clone(), ns)
            .list(&ListParams::default())
            .await;
        for d in deployments.map(|l| l.items).unwrap_or_default() {
            if let Some(text) = d
                .annotations()
                .get("kubectl.kubernetes.io/last-applied-configuration")
            {
                let origin = format!(
                    "last-applied-configuration of deployment {ns}/{}",
                    d.name_any()
                );
                out.extend(super::sources::objects_in_yaml(text, &origin));
            }
        }
    }
    out
}

pub(super) async fn last_applied_check(served: &mut Served, advisory: &[Declared]) -> Check {
    let mut stale = Vec::new();
    for d in advisory {
        if let Ok(kinds) = served.kinds(&d.api_version).await {
            if !kinds.contains_key(&d.kind) {
                stale.push(format!("{} {}: {}", d.kind, d.api_version, d.origin));
            }
        }
    }
    if stale.is_empty() {
        Check::new(
            "last-applied apiVersions",
            Status::Pass,
            "advisory: no stale apiVersion in last-applied annotations",
        )
    } else {
        Check::new(
            "last-applied apiVersions",
            Status::Warn,
            "advisory: objects were last applied with apiVersions green does not serve",
        )
        .objects(stale)
        .fix("re-apply those objects from up-to-date manifests")
    }
}
