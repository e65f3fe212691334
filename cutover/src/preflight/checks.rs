//! The preflight checks themselves.

use super::removals;
use super::sources::{decode_release, Declared, HelmRelease};
use super::{Check, PreflightArgs, Status};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const HELM_KEYS: [&str; 3] = [
    "app.kubernetes.io/managed-by",
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
];

pub async fn all(
    args: &PreflightArgs,
    blue: Client,
    green: Client,
    manifests: Vec<Declared>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let blue_version = version(&blue).await;
    let green_version = version(&green).await;
    checks.push(reachability("blue", &args.blue_context, &blue_version));
    checks.push(reachability("green", &args.green_context, &green_version));
    let Ok(green_minor) = green_version.as_ref().map(|(_, m)| *m) else {
        return checks; // nothing more can be learned about green
    };
    if let Ok((blue_text, blue_minor)) = &blue_version {
        checks.push(version_skew(
            blue_text,
            *blue_minor,
            &green_version.as_ref().unwrap().0,
            green_minor,
        ));
    }
    checks.push(nodes(&green, args.min_ready_nodes).await);
    let blue_reachable = blue_version.is_ok();
    let (releases, release_problems) = if blue_reachable {
        helm_releases(&blue, &args.namespaces).await
    } else {
        (Vec::new(), Vec::new())
    };
    if blue_reachable {
        checks.push(parity(&blue, &green, &args.namespaces).await);
    }
    let mut declared: Vec<Declared> = releases.iter().flat_map(|r| r.objects.clone()).collect();
    declared.extend(manifests);
    let mut served = Served::new(green.clone());
    checks.push(api_versions(&mut served, green_minor, &declared, &release_problems).await);
    if blue_reachable {
        let advisory = last_applied(&blue, &args.namespaces).await;
        checks.push(last_applied_check(&mut served, &advisory).await);
    }
    checks.push(helm_ownership(&green, &mut served, &releases, &args.green_context).await);
    checks
}

/// (git version, minor) of a cluster's API server.
async fn version(client: &Client) -> Result<(String, u32), String> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|e| e.to_string())?;
    let minor = info
        .minor
        .trim_end_matches('+')
        .parse()
        .map_err(|_| format!("odd minor version {:?}", info.minor))?;
    Ok((info.git_version, minor))
}

fn reachability(colour: &str, context: &str, v: &Result<(String, u32), String>) -> Check {
    let name = format!("{colour} reachable");
    match v {
        Ok((git, _)) => Check::new(&name, Status::Pass, format!("context {context}: Kubernetes {git}")),
        Err(e) => Check::new(&name, Status::Fail, format!("context {context}: cannot reach the API server: {e}"))
            .fix(format!("check the network path and credentials of context {context} (`kubectl --context {context} version`)")),
    }
}

fn version_skew(blue: &str, blue_minor: u32, green: &str, green_minor: u32) -> Check {
    if green_minor < blue_minor {
        Check::new(
            "version skew",
            Status::Warn,
            format!("green ({green}) is older than blue ({blue})"),
        )
        .fix(
            "fine for an emergency rebuild on the last good version; otherwise upgrade green first",
        )
    } else if green_minor > blue_minor + 1 {
        Check::new("version skew", Status::Warn, format!("green ({green}) is more than one minor ahead of blue ({blue})"))
            .fix("change one thing at a time: move to green on blue's minor (or one ahead), then upgrade")
    } else {
        Check::new(
            "version skew",
            Status::Pass,
            format!("blue {blue}, green {green}"),
        )
    }
}

async fn nodes(green: &Client, min_ready: f64) -> Check {
    let list = match Api::<Node>::all(green.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(l) => l,
        Err(e) => {
            return Check::new(
                "green nodes",
                Status::Fail,
                format!("cannot list nodes: {e}"),
            )
        }
    };
    let total = list.items.len();
    let not_ready: Vec<String> = list
        .items
        .iter()
        .filter(|n| {
            !n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .map(|n| format!("node/{}", n.name_any()))
        .collect();
    let ready = total - not_ready.len();
    let ratio = if total == 0 {
        0.0
    } else {
        ready as f64 / total as f64
    };
    let message = format!(
        "{ready}/{total} nodes Ready ({:.0}%, need {:.0}%)",
        ratio * 100.0,
        min_ready * 100.0
    );
    if total > 0 && ratio >= min_ready {
        Check::new("green nodes", Status::Pass, message)
    } else {
        Check::new("green nodes", Status::Fail, message)
            .objects(not_ready)
            .fix("wait for the nodes to join, or look at `kubectl describe node` on green")
    }
}

/// Deployments, StatefulSets, DaemonSets, LoadBalancer Services and
/// Ingresses of blue's namespaces exist on green, workloads available.
async fn parity(blue: &Client, green: &Client, namespaces: &[String]) -> Check {
    if namespaces.is_empty() {
        return Check::new(
            "workload parity",
            Status::Warn,
            "no --namespace given: workloads not compared",
        )
        .fix("name the application namespaces with --namespace");
    }
    let mut problems = Vec::new();
    let mut compared = 0;
    for ns in namespaces {
        macro_rules! compare {
            ($kind:ty, $label:expr, $available:expr) => {
                let on_blue = Api::<$kind>::namespaced(blue.clone(), ns)
                    .list(&ListParams::default())
                    .await;
                let green_api = Api::<$kind>::namespaced(green.clone(), ns);
                for obj in on_blue.map(|l| l.items).unwrap_or_default() {
                    compared += 1;
                    let name = obj.name_any();
                    match green_api.get_opt(&name).await {
                        Ok(Some(g)) => {
                            let check: fn(&$kind) -> Option<String> = $available;
                            if let Some(why) = check(&g) {
                                problems.push(format!(
                                    "{}/{name} in {ns}: unavailable on green ({why})",
                                    $label
                                ));
                            }
                        }
                        Ok(None) => {
                            problems.push(format!("{}/{name} in {ns}: missing on green", $label))
                        }
                        Err(e) => problems.push(format!(
                            "{}/{name} in {ns}: cannot read on green: {e}",
                            $label
                        )),
                    }
                }
            };
        }
        compare!(Deployment, "deployment", |d: &Deployment| {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let s = d.status.clone().unwrap_or_default();
            rollout(
                d.metadata.generation,
                s.observed_generation,
                want,
                s.available_replicas,
                s.updated_replicas,
            )
        });
        compare!(StatefulSet, "statefulset", |d: &StatefulSet| {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let s = d.status.clone().unwrap_or_default();
            rollout(
                d.metadata.generation,
                s.observed_generation,
                want,
                s.available_replicas,
                s.updated_replicas,
            )
        });
        compare!(DaemonSet, "daemonset", |d: &DaemonSet| {
            let s = d.status.clone().unwrap_or_default();
            rollout(
                d.metadata.generation,
                s.observed_generation,
                s.desired_number_scheduled,
                s.number_available,
                s.updated_number_scheduled,
            )
        });
        let services = Api::<Service>::namespaced(blue.clone(), ns)
            .list(&ListParams::default())
            .await;
        let green_services = Api::<Service>::namespaced(green.clone(), ns);
        for svc in services.map(|l| l.items).unwrap_or_default() {
            if svc.spec.as_ref().and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
                continue;
            }
            compared += 1;
            if !matches!(green_services.get_opt(&svc.name_any()).await, Ok(Some(_))) {
                problems.push(format!(
                    "service/{} (LoadBalancer) in {ns}: missing on green",
                    svc.name_any()
                ));
            }
        }
        // Blue may be too old to serve networking.k8s.io/v1: then skip.
        if let Ok(list) = Api::<Ingress>::namespaced(blue.clone(), ns)
            .list(&ListParams::default())
            .await
        {
            let green_ingresses = Api::<Ingress>::namespaced(green.clone(), ns);
            for ing in list.items {
                compared += 1;
                if !matches!(green_ingresses.get_opt(&ing.name_any()).await, Ok(Some(_))) {
                    problems.push(format!(
                        "ingress/{} in {ns}: missing on green",
                        ing.name_any()
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Check::new(
            "workload parity",
            Status::Pass,
            format!("{compared} object(s) of blue present and available on green"),
        )
    } else {
        Check::new(
            "workload parity",
            Status::Fail,
            format!(
                "{} of {compared} object(s) not ready on green",
                problems.len()
            ),
        )
        .objects(problems)
        .fix("deploy the missing workloads to green and wait until they are available")
    }
}

/// Why a rollout is not complete, if it is not.
fn rollout(
    generation: Option<i64>,
    observed: Option<i64>,
    want: i32,
    available: Option<i32>,
    updated: Option<i32>,
) -> Option<String> {
    if observed.unwrap_or(0) < generation.unwrap_or(0) {
        return Some("the controller has not observed the latest generation".into());
    }
    let available = available.unwrap_or(0);
    if available < want {
        return Some(format!("{available}/{want} available"));
    }
    if updated.unwrap_or(0) < want {
        return Some(format!("{}/{want} updated", updated.unwrap_or(0)));
    }
    None
}

/// Deployed and pending Helm 3 releases on blue (newest revision each).
async fn helm_releases(blue: &Client, namespaces: &[String]) -> (Vec<HelmRelease>, Vec<String>) {
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
struct Served {
    client: Client,
    cache: HashMap<String, Result<BTreeMap<String, ApiResourceInfo>, String>>,
}

#[derive(Clone)]
struct ApiResourceInfo {
    plural: String,
    namespaced: bool,
}

impl Served {
    fn new(client: Client) -> Served {
        Served {
            client,
            cache: HashMap::new(),
        }
    }

    /// The kinds green serves in `api_version`: `Ok(empty)` when it does
    /// not serve that group version at all.
    async fn kinds(
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
async fn api_versions(
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
async fn last_applied(blue: &Client, namespaces: &[String]) -> Vec<Declared> {
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

async fn last_applied_check(served: &mut Served, advisory: &[Declared]) -> Check {
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

/// Objects a release will manage that already exist on green must carry
/// Helm's ownership metadata, or Helm 3 refuses to adopt them.
async fn helm_ownership(
    green: &Client,
    served: &mut Served,
    releases: &[HelmRelease],
    context: &str,
) -> Check {
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut checked = 0;
    for release in releases {
        for obj in &release.objects {
            let Some((ar, namespaced)) = resolve(served, &obj.api_version, &obj.kind).await else {
                continue;
            };
            let ns = obj
                .namespace
                .clone()
                .unwrap_or_else(|| release.namespace.clone());
            let api: Api<DynamicObject> = if namespaced {
                Api::namespaced_with(green.clone(), &ns, &ar)
            } else {
                Api::all_with(green.clone(), &ar)
            };
            let Ok(Some(existing)) = api.get_opt(&obj.name).await else {
                continue;
            };
            checked += 1;
            let want = [
                ("app.kubernetes.io/managed-by", "Helm", true),
                ("meta.helm.sh/release-name", release.name.as_str(), false),
                (
                    "meta.helm.sh/release-namespace",
                    release.namespace.as_str(),
                    false,
                ),
            ];
            let mut wrong = Vec::new();
            for (key, value, is_label) in want {
                let have = if is_label {
                    existing.labels().get(key)
                } else {
                    existing.annotations().get(key)
                };
                if have.map(String::as_str) != Some(value) {
                    wrong.push((key, value, is_label, have.cloned()));
                }
            }
            if wrong.is_empty() {
                continue;
            }
            let kind = obj.kind.to_lowercase();
            let target = format!("{kind}/{}", obj.name);
            let where_ = if namespaced {
                format!(" in {ns}")
            } else {
                String::new()
            };
            let keys: Vec<String> = wrong
                .iter()
                .map(|(k, v, _, have)| match have {
                    Some(h) => format!("{k}={h:?} (want {v:?})"),
                    None => format!("{k} missing (want {v:?})"),
                })
                .collect();
            problems.push(format!(
                "{target}{where_} (release {}): {}",
                release.name,
                keys.join(", ")
            ));
            let ns_flag = if namespaced {
                format!(" -n {ns}")
            } else {
                String::new()
            };
            let labels: Vec<String> = wrong
                .iter()
                .filter(|w| w.2)
                .map(|(k, v, ..)| format!("{k}={v}"))
                .collect();
            let annotations: Vec<String> = wrong
                .iter()
                .filter(|w| !w.2)
                .map(|(k, v, ..)| format!("{k}={v}"))
                .collect();
            if !labels.is_empty() {
                fixes.push(format!(
                    "kubectl --context {context}{ns_flag} label {target} {} --overwrite",
                    labels.join(" ")
                ));
            }
            if !annotations.is_empty() {
                fixes.push(format!(
                    "kubectl --context {context}{ns_flag} annotate {target} {} --overwrite",
                    annotations.join(" ")
                ));
            }
        }
    }
    if problems.is_empty() {
        Check::new(
            "helm ownership",
            Status::Pass,
            format!("{checked} existing object(s) on green carry Helm's ownership keys"),
        )
    } else {
        Check::new(
            "helm ownership",
            Status::Fail,
            format!(
                "Helm 3 will refuse to adopt {} object(s) on green: set {}",
                problems.len(),
                HELM_KEYS.join(", ")
            ),
        )
        .objects(problems)
        .fix(fixes.join("\n"))
    }
}

/// How to read a kind on green: its own apiVersion if served, else the
/// replacement from the removals table.
async fn resolve(
    served: &mut Served,
    api_version: &str,
    kind: &str,
) -> Option<(ApiResource, bool)> {
    let mut candidates = vec![api_version.to_owned()];
    if let Some(to) = removals::find(api_version, kind).and_then(|r| r.replacement) {
        candidates.push(to.to_owned());
    }
    for av in candidates {
        if let Ok(kinds) = served.kinds(&av).await {
            if let Some(info) = kinds.get(kind) {
                let (group, version) = av.split_once('/').unwrap_or(("", av.as_str()));
                let gvk = GroupVersionKind::gvk(group, version, kind);
                let ar = ApiResource::from_gvk_with_plural(&gvk, &info.plural);
                return Some((ar, info.namespaced));
            }
        }
    }
    None
}
