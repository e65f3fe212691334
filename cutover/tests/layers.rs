//! The crate's layers, checked: no top-level module of `cutover/src` reaches
//! (through `crate::…` paths outside its tests) a module that reaches back,
//! and no source file is over 400 lines.
//!
//! Run it alone with `cargo test -p cutover --test layers -- --nocapture`;
//! it prints each module's layer (0 depends on nothing in the crate).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 400;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `engine/control.rs` → `engine`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::name` a piece of source names, including the names in
/// `use crate::{a, b::c}` groups (only their first segments count).
fn crate_references(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // Module names are lower case; `Event` in `journal::{self,
                // Event}` is an item of the module already counted.
                if name.starts_with(|c: char| c.is_ascii_lowercase()) && name != "self" {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

/// The source without its `#[cfg(test)]` part (tests may reach anywhere)
/// and without line comments.
fn production_code(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn dependencies(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(src, &file);
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = deps.entry(module.clone()).or_default();
        for name in crate_references(&production_code(&text)) {
            if name != module {
                entry.insert(name);
            }
        }
    }
    deps
}

/// Layer of each module (longest path down to a module with no crate
/// dependencies), or the modules of a cycle.
fn layers(
    deps: &BTreeMap<String, BTreeSet<String>>,
) -> Result<BTreeMap<String, usize>, Vec<String>> {
    fn visit(
        module: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeMap<String, usize>,
    ) -> Result<usize, Vec<String>> {
        if let Some(layer) = done.get(module) {
            return Ok(*layer);
        }
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Err(cycle);
        }
        path.push(module.to_owned());
        let mut layer = 0;
        for dep in deps.get(module).into_iter().flatten() {
            layer = layer.max(visit(dep, deps, path, done)? + 1);
        }
        path.pop();
        done.insert(module.to_owned(), layer);
        Ok(layer)
    }
    let mut done = BTreeMap::new();
    for module in deps.keys() {
        visit(module, deps, &mut Vec::new(), &mut done)?;
    }
    Ok(done)
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn modules_depend_in_one_direction() {
    let deps = dependencies(&src_dir());
    assert!(deps.contains_key("engine") && deps.contains_key("journal"));
    match layers(&deps) {
        Ok(layers) => {
            let mut by_layer: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
            for (module, layer) in &layers {
                by_layer.entry(*layer).or_default().push(module);
            }
            for (layer, modules) in by_layer {
                println!("layer {layer}: {}", modules.join(", "));
            }
        }
        Err(cycle) => panic!("import cycle: {}", cycle.join(" -> ")),
    }
}

#[test]
fn a_cycle_is_found_and_named() {
    let mut deps = BTreeMap::new();
    deps.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    deps.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    deps.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(layers(&deps).unwrap_err(), ["a", "b", "c", "a"]);
    let refs = crate_references(
        "use crate::{fleet::Fleet, journal::{self, Event}};\nx = crate::plan::Plan;",
    );
    assert_eq!(
        refs,
        BTreeSet::from(["fleet".into(), "journal".into(), "plan".into()])
    );
}

#[test]
fn no_module_is_over_400_lines() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let long: Vec<String> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, n)| *n > MAX_LINES)
        .map(|(f, n)| format!("{} ({n} lines)", f.display()))
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}
