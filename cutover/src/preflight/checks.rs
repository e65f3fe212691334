//! The preflight checks themselves.

use super::api_versions::{api_versions, helm_releases, last_applied, last_applied_check, Served};
use super::ownership::helm_ownership;
use super::sources::Declared;
use super::{Check, PreflightArgs, Status};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

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
        // Deployments and StatefulSets report rollouts in fields of the same
        // names on two different types.
        macro_rules! replicated_rollout {
            ($kind:ty) => {
                |d: &$kind| {
                    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    let s = d.status.clone().unwrap_or_default();
                    rollout(
                        d.metadata.generation,
                        s.observed_generation,
                        want,
                        s.available_replicas,
                        s.updated_replicas,
                    )
                }
            };
        }
        compare!(Deployment, "deployment", replicated_rollout!(Deployment));
        compare!(StatefulSet, "statefulset", replicated_rollout!(StatefulSet));
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
