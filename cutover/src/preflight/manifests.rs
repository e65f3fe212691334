//! `--manifests PATH`: the objects an operator will apply to green, read
//! as `kubectl apply` would see them. A Kustomize folder is rendered
//! (`kubectl kustomize` when kubectl is on the PATH, else the files its
//! `resources:` name); a plain folder is read file by file, each Kustomize
//! folder inside it rendered as one. Files that are not Kubernetes objects
//! (a gateway config, a plan, a Kustomization itself) are skipped and said.

use super::sources::{objects_in_yaml, Declared};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `--manifests` found: the objects, and notes for the operator
/// (what was rendered and how, what was skipped and why).
#[derive(Debug, Default)]
pub struct Manifests {
    pub objects: Vec<Declared>,
    pub notes: Vec<String>,
}

const KUSTOMIZATION: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The objects under `path` (a file or a folder).
pub fn read(path: &Path) -> Result<Manifests, String> {
    let mut found = Manifests::default();
    if path.is_file() {
        read_file(path, &mut found)?;
    } else if kustomization_of(path).is_some() {
        render(path, &mut found)?;
    } else {
        read_dir(path, &mut found)?;
    }
    // Overlays render their bases again: each object counts once.
    let mut seen = BTreeSet::new();
    found.objects.retain(|o| {
        seen.insert((
            o.api_version.clone(),
            o.kind.clone(),
            o.namespace.clone(),
            o.name.clone(),
        ))
    });
    Ok(found)
}

fn kustomization_of(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

fn read_dir(dir: &Path, found: &mut Manifests) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("--manifests {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() && kustomization_of(&p).is_some() {
            render(&p, found)?;
        } else if p.is_dir() {
            read_dir(&p, found)?;
        } else if is_manifest_file(&p) {
            read_file(&p, found)?;
        }
    }
    Ok(())
}

fn is_manifest_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn read_file(p: &Path, found: &mut Manifests) -> Result<(), String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let objects = objects_in_yaml(&text, &format!("manifest {}", p.display()));
    let (kustomize, objects): (Vec<_>, Vec<_>) = objects
        .into_iter()
        .partition(|o| o.api_version.starts_with("kustomize.config.k8s.io/"));
    if objects.is_empty() {
        let why = if kustomize.is_empty() {
            "no Kubernetes object (apiVersion and kind) in it"
        } else {
            "a Kustomize file, not an object"
        };
        found.notes.push(format!("skipped {}: {why}", p.display()));
    }
    found.objects.extend(objects);
    Ok(())
}

/// A Kustomize folder's objects: kubectl's rendering when kubectl is
/// there, else the files and folders its `resources:` list.
fn render(dir: &Path, found: &mut Manifests) -> Result<(), String> {
    if let Ok(out) = Command::new("kubectl").arg("kustomize").arg(dir).output() {
        if !out.status.success() {
            return Err(format!(
                "--manifests {}: kubectl kustomize failed: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        found.objects.extend(objects_in_yaml(
            &text,
            &format!("kustomize {}", dir.display()),
        ));
        found
            .notes
            .push(format!("rendered {} with kubectl kustomize", dir.display()));
        return Ok(());
    }
    let file = kustomization_of(dir).expect("a Kustomize folder");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    found.notes.push(format!(
        "read {}'s resources (kubectl is not on the PATH: patches and generators are left out)",
        dir.display()
    ));
    for resource in doc["resources"].as_sequence().into_iter().flatten() {
        let Some(name) = resource.as_str() else {
            continue;
        };
        let p = dir.join(name);
        if p.is_dir() {
            match kustomization_of(&p) {
                Some(_) => render(&p, found)?,
                None => read_dir(&p, found)?,
            }
        } else if p.is_file() {
            read_file(&p, found)?;
        } else {
            found.notes.push(format!(
                "skipped {} resource {name:?}: not a local file or folder",
                file.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_folder_skips_what_is_not_an_object_and_says_so() {
        let dir = std::env::temp_dir().join(format!("manifests-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("deployment.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
        )
        .unwrap();
        std::fs::write(dir.join("gateway.yaml"), "listeners: []\nroutes: []\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "not yaml").unwrap();
        let found = read(&dir).unwrap();
        assert_eq!(found.objects.len(), 1);
        assert_eq!(found.objects[0].name, "web");
        assert_eq!(found.notes.len(), 1, "{:?}", found.notes);
        assert!(found.notes[0].contains("gateway.yaml"), "{:?}", found.notes);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
