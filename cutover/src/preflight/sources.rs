//! Where blue's (apiVersion, kind) pairs come from: Helm 3 release Secrets
//! (`helm.sh/release.v1`: base64, gzip, JSON, its `manifest`), manifest
//! files, and — advisory only — `last-applied-configuration` annotations.

use base64::Engine;
use serde::Deserialize;
use std::io::Read;

/// One object a release, a file or an annotation declares.
#[derive(Clone, Debug, PartialEq)]
pub struct Declared {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// Where it was found, for people.
    pub origin: String,
}

#[derive(Debug, Deserialize)]
struct Release {
    name: String,
    namespace: String,
    #[serde(default)]
    info: ReleaseInfo,
    #[serde(default)]
    manifest: String,
}

#[derive(Debug, Default, Deserialize)]
struct ReleaseInfo {
    #[serde(default)]
    status: String,
}

/// A decoded Helm release: its name, namespace, status and objects.
#[derive(Debug)]
pub struct HelmRelease {
    pub name: String,
    pub namespace: String,
    pub status: String,
    pub objects: Vec<Declared>,
}

/// Decodes a release Secret's `release` value (the bytes Kubernetes
/// returns once it undid its own base64): base64 → gzip → JSON.
pub fn decode_release(release: &[u8]) -> Result<HelmRelease, String> {
    let gzipped = base64::engine::general_purpose::STANDARD
        .decode(release.trim_ascii())
        .map_err(|e| format!("not base64: {e}"))?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_end(&mut json)
        .map_err(|e| format!("not gzip: {e}"))?;
    let r: Release =
        serde_json::from_slice(&json).map_err(|e| format!("not a Helm release: {e}"))?;
    let origin = format!("Helm release {}/{}", r.namespace, r.name);
    let objects = objects_in_yaml(&r.manifest, &origin);
    Ok(HelmRelease {
        name: r.name,
        namespace: r.namespace,
        status: r.info.status,
        objects,
    })
}

/// Every object in a (multi-document) YAML text; `List` items included.
/// The text ends at the first document that is not YAML (the parser would
/// hand that one back for ever), with a warning naming where.
pub fn objects_in_yaml(text: &str, origin: &str) -> Vec<Declared> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        match serde_json::Value::deserialize(doc) {
            Ok(value) => collect(&value, origin, &mut out),
            Err(e) => {
                tracing::warn!("{origin}: not YAML from here on, the rest is left out: {e}");
                break;
            }
        }
    }
    out
}

fn collect(v: &serde_json::Value, origin: &str, out: &mut Vec<Declared>) {
    let (Some(api_version), Some(kind)) = (v["apiVersion"].as_str(), v["kind"].as_str()) else {
        return;
    };
    if kind == "List" || kind.ends_with("List") && v["items"].is_array() {
        for item in v["items"].as_array().into_iter().flatten() {
            collect(item, origin, out);
        }
        return;
    }
    out.push(Declared {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: v["metadata"]["name"].as_str().unwrap_or("").to_owned(),
        namespace: v["metadata"]["namespace"].as_str().map(str::to_owned),
        origin: origin.to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_expanded_and_non_objects_skipped() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: extensions/v1beta1, kind: Deployment, metadata: {name: a}}\n- {apiVersion: apps/v1, kind: Deployment, metadata: {name: b}}\n---\nfoo: bar\n";
        let objects = objects_in_yaml(text, "t");
        let pairs: Vec<(&str, &str)> = objects
            .iter()
            .map(|o| (o.api_version.as_str(), o.name.as_str()))
            .collect();
        assert_eq!(pairs, [("extensions/v1beta1", "a"), ("apps/v1", "b")]);
    }
}
