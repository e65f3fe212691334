//! The workspace's layers, checked for every crate: the top-level modules
//! of `src/` (through `crate::…` paths) and the files of each module
//! folder (through `super::…` paths) import in one direction, with no
//! circle, and no source file is over 400 lines. Tests may reach anywhere
//! (`#[cfg(test)]` parts are left out).
//!
//! `cargo test -p e2e --test layers -- --nocapture` prints each crate's
//! layers, bottom first (the README shows them).

use e2e::docs::repo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 4] = ["input-files", "planner", "gateway", "cutover"];
const MAX_LINES: usize = 400;

type Graph = BTreeMap<String, BTreeSet<String>>;

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

/// The source without its `#[cfg(test)]` part and line comments.
fn production_code(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module name a piece of source reaches through `prefix` (`crate::`
/// or `super::`), including the names in `prefix{a, b::c}` groups.
fn references(source: &str, prefix: &str) -> BTreeSet<String> {
    let name_of = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(prefix) {
        let preceded_by_path = at > 0 && rest[..at].ends_with("::");
        rest = &rest[at + prefix.len()..];
        if preceded_by_path {
            continue; // `a::crate::…`: not this level
        }
        if let Some(up) = rest.strip_prefix(prefix) {
            rest = up; // `super::super::x`: a level further up
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = name_of(item);
                // Module names are lower case; `Event` is an item.
                if name.starts_with(|c: char| c.is_ascii_lowercase()) && name != "self" {
                    found.insert(name);
                }
            }
        } else {
            let name = name_of(rest);
            if name.starts_with(|c: char| c.is_ascii_lowercase()) && name != "super" {
                found.insert(name);
            }
        }
    }
    found
}

/// The top-level modules of `src` and the ones each reaches.
fn crate_graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" || module == "bin" {
            continue;
        }
        let text = production_code(&std::fs::read_to_string(&file).unwrap());
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(
            references(&text, "crate::")
                .into_iter()
                .filter(|n| *n != module),
        );
    }
    graph
}

/// The files of a module folder (not its `mod.rs`) and the siblings each
/// reaches through `super::`.
fn folder_graph(dir: &Path) -> Graph {
    let mut graph = Graph::new();
    let siblings: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "mod")
        .collect();
    for name in &siblings {
        let text = std::fs::read_to_string(dir.join(format!("{name}.rs"))).unwrap();
        let reached = references(&production_code(&text), "super::")
            .into_iter()
            .filter(|n| n != name && siblings.contains(n))
            .collect();
        graph.insert(name.clone(), reached);
    }
    graph
}

/// Each module's layer (the longest path down to one that reaches no
/// other), or the modules of a circle.
fn layers(graph: &Graph) -> Result<BTreeMap<String, usize>, Vec<String>> {
    fn visit(
        module: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeMap<String, usize>,
    ) -> Result<usize, Vec<String>> {
        if let Some(layer) = done.get(module) {
            return Ok(*layer);
        }
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut circle = path[start..].to_vec();
            circle.push(module.to_owned());
            return Err(circle);
        }
        path.push(module.to_owned());
        let mut layer = 0;
        for next in graph.get(module).into_iter().flatten() {
            layer = layer.max(visit(next, graph, path, done)? + 1);
        }
        path.pop();
        done.insert(module.to_owned(), layer);
        Ok(layer)
    }
    let mut done = BTreeMap::new();
    for module in graph.keys() {
        visit(module, graph, &mut Vec::new(), &mut done)?;
    }
    Ok(done)
}

/// The layers bottom first, `a, b → c → d` (each imports only from its left).
fn table(layers: &BTreeMap<String, usize>) -> String {
    let mut by_layer: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (module, layer) in layers {
        by_layer.entry(*layer).or_default().push(module);
    }
    let levels: Vec<String> = by_layer.into_values().map(|m| m.join(", ")).collect();
    if levels.is_empty() {
        "(one module)".into()
    } else {
        levels.join(" → ")
    }
}

fn src_of(krate: &str) -> PathBuf {
    repo().join(krate).join("src")
}

#[test]
fn every_crate_and_module_folder_imports_in_one_direction() {
    let mut circles = Vec::new();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for krate in CRATES {
        let src = src_of(krate);
        match layers(&crate_graph(&src)) {
            Ok(l) => {
                let line = format!("{krate}: {}", table(&l));
                println!("{line}");
                assert!(
                    readme.contains(&line),
                    "README.md (Code layers) does not show `{line}`"
                );
            }
            Err(c) => circles.push(format!("{krate}: {}", c.join(" -> "))),
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for f in files {
            let dir = f.parent().unwrap().to_owned();
            if dir != src && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        for dir in dirs {
            if let Err(c) = layers(&folder_graph(&dir)) {
                let at = dir.strip_prefix(repo()).unwrap().display().to_string();
                circles.push(format!("{at}: {}", c.join(" -> ")));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn no_source_file_is_over_400_lines() {
    let mut long = Vec::new();
    for krate in CRATES {
        let mut files = Vec::new();
        rust_files(&src_of(krate), &mut files);
        for f in files {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            if n > MAX_LINES {
                long.push(format!("{} ({n} lines)", f.display()));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn a_circle_is_found_and_named() {
    let mut graph = Graph::new();
    graph.insert("a".into(), BTreeSet::from(["b".into()]));
    graph.insert("b".into(), BTreeSet::from(["c".into()]));
    graph.insert("c".into(), BTreeSet::from(["a".into()]));
    assert_eq!(layers(&graph).unwrap_err(), ["a", "b", "c", "a"]);
    let refs = references(
        "use crate::{fleet::Fleet, journal::{self, Event}};\nx = crate::plan::Plan;",
        "crate::",
    );
    assert_eq!(
        refs,
        BTreeSet::from(["fleet".into(), "journal".into(), "plan".into()])
    );
    let refs = references(
        "use super::{client::Client, After};\nsuper::super::x",
        "super::",
    );
    assert_eq!(refs, BTreeSet::from(["client".into()]));
}
