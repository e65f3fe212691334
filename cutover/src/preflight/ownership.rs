//! Preflight: Helm 3 ownership metadata on the objects green already has.

use super::api_versions::Served;
use super::removals;
use super::sources::HelmRelease;
use super::{Check, Status};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client, ResourceExt};

const HELM_KEYS: [&str; 3] = [
    "app.kubernetes.io/managed-by",
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
];

/// Objects a release will manage that already exist on green must carry
/// Helm's ownership metadata, or Helm 3 refuses to adopt them.
pub(super) async fn helm_ownership(
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
pub(super) async fn resolve(
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
