//! The repository's documents as the tests read them: the runbooks'
//! commands, every heading, every cross-reference.

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The operator's documents: README.md, CONTRIBUTING.md and docs/*.md.
pub fn markdown_files() -> Vec<PathBuf> {
    let root = repo();
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The commands of the runbook block marked `<!-- runbook: NAME -->` in
/// the README or a document under docs/.
pub fn runbook(name: &str) -> Vec<String> {
    let marker = format!("<!-- runbook: {name} -->");
    let text = markdown_files()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|t| t.contains(&marker))
        .unwrap_or_else(|| panic!("no runbook {name}"));
    let block = &text[text.find(&marker).unwrap()..];
    let body_start = block.find("```sh\n").unwrap() + 6;
    let body_end = block[body_start..].find("```").unwrap() + body_start;
    block[body_start..body_end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation
/// other than `-` and `_` dropped.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The headings (`#` lines outside code blocks) of a markdown file.
pub fn headings(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.push(line.trim_start_matches('#').trim().to_owned());
        }
    }
    found
}
