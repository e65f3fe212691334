//! The documents an operator navigates: every cross-reference names a file
//! and a heading that exist, and the README stays short.
//!
//! References are markdown links (`[text](docs/plan.md#gates)`) in the
//! repository's markdown files, and `FILE.md, "Heading"` (or `'Heading'`)
//! in the comments of `deploy/` and `scripts/`.

use e2e::docs::{anchor, headings, repo};
use std::path::{Path, PathBuf};

/// Every file under `dir` (not `target/` or `.git/`) for which `keep` holds.
fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                files(&path, keep, out);
            }
        } else if keep(&path) {
            out.push(path);
        }
    }
}

/// Whether `target` (a file, maybe with `#anchor`, relative to `from`'s
/// folder) exists with that heading; else why not.
fn resolve(from: &Path, target: &str) -> Result<(), String> {
    let (file, fragment) = match target.split_once('#') {
        Some((f, a)) => (f, Some(a)),
        None => (target, None),
    };
    let path = if file.is_empty() {
        from.to_owned()
    } else {
        from.parent().unwrap().join(file)
    };
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    let Some(fragment) = fragment else {
        return Ok(());
    };
    let anchors: Vec<String> = headings(&path).iter().map(|h| anchor(h)).collect();
    if anchors.iter().any(|a| a == fragment) {
        Ok(())
    } else {
        Err(format!(
            "{} has no heading #{fragment} (it has {anchors:?})",
            path.display()
        ))
    }
}

/// The relative targets of the markdown links in `text` (not URLs).
fn link_targets(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                found.push(target.to_owned());
            }
            rest = &rest[end..];
        }
    }
    found
}

#[test]
fn every_markdown_link_names_a_file_and_heading_that_exist() {
    let mut markdown = Vec::new();
    files(
        &repo(),
        &|p| p.extension().is_some_and(|e| e == "md"),
        &mut markdown,
    );
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in &markdown {
        let text = std::fs::read_to_string(file).unwrap();
        for target in link_targets(&text) {
            checked += 1;
            if let Err(e) = resolve(file, &target) {
                broken.push(format!("{}: ({target}): {e}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 20, "only {checked} links found");
}

#[test]
fn every_heading_named_in_deploy_and_scripts_exists() {
    let mut sources = Vec::new();
    for dir in ["deploy", "scripts"] {
        files(&repo().join(dir), &|_| true, &mut sources);
    }
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in &sources {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue; // not text
        };
        for (i, line) in text.lines().enumerate() {
            let at = format!("{}:{}", file.display(), i + 1);
            // Older forms ("README (Heading)", "the README runbooks") name
            // no file a reader can open: every mention is `FILE.md`.
            if line.contains("README") && !line.contains("README.md") {
                broken.push(format!("{at}: names the README without README.md"));
            }
            let mut rest = line;
            while let Some(pos) = rest.find(".md") {
                let before = &rest[..pos];
                let start = before
                    .rfind(|c: char| !(c.is_alphanumeric() || "/-_.".contains(c)))
                    .map_or(0, |s| s + 1);
                let file_name = format!("{}.md", &before[start..]);
                let after = &rest[pos + 3..];
                let heading = after.strip_prefix(", ").and_then(|h| {
                    let quote = h.chars().next().filter(|c| *c == '"' || *c == '\'')?;
                    h[1..].split(quote).next()
                });
                let target = match heading {
                    Some(h) => format!("{file_name}#{}", anchor(h)),
                    None => file_name,
                };
                checked += 1;
                if let Err(e) = resolve(&repo().join("README.md"), &target) {
                    broken.push(format!("{at}: {e}"));
                }
                rest = after;
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken references:\n{}",
        broken.join("\n")
    );
    assert!(checked >= 8, "only {checked} references found");
}

#[test]
fn the_readme_is_short_with_a_table_of_contents() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines < 200, "README.md has {lines} lines");
    assert!(readme.contains("**Contents**"), "no table of contents");
    for section in ["Quick start", "AKS quick start", "Runbooks", "Reference"] {
        assert!(
            headings(&repo().join("README.md"))
                .iter()
                .any(|h| h == section),
            "no {section} section"
        );
    }
    // The references live under docs/, each reached from the README.
    for doc in [
        "docs/gateway-config.md",
        "docs/plan.md",
        "docs/admin-api.md",
        "docs/metrics.md",
        "docs/exit-codes.md",
    ] {
        assert!(
            readme.contains(&format!("]({doc})")),
            "README does not link {doc}"
        );
    }
}
