//! What the gateway and the cutover CLI say about the YAML files operators
//! give them (a gateway config, a cutover plan): where a file stops being
//! UTF-8, where its YAML is wrong (line and column), and every unknown
//! field (not only the first) with the fields accepted there. Both
//! binaries then add their own semantic checks, so an operator fixes a
//! file in one pass.

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use std::path::Path;

/// Unknown fields reported at most (a file of another program's config
/// would have hundreds).
const MAX_UNKNOWN: usize = 50;

/// Reads `path` and parses it as [`parse`] does; a file that cannot be
/// read or is not UTF-8 is one error saying so.
pub fn load<T: DeserializeOwned>(
    path: &Path,
    validate: impl Fn(&T) -> Vec<String>,
) -> Result<T, Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| vec![format!("cannot read: {e}")])?;
    let text = utf8_text(bytes).map_err(|e| vec![e])?;
    let parsed = parse(&text, &validate)?;
    let errors = validate(&parsed);
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// The document in `text`, or every unknown field and the first other
/// problem (the first with its line and column). After an unknown field
/// the document is read again without it, so the next one is found too;
/// each is named by its path with the fields accepted there. When only
/// unknown fields were wrong, `validate` adds what it finds in the rest.
pub fn parse<T: DeserializeOwned>(
    text: &str,
    validate: impl Fn(&T) -> Vec<String>,
) -> Result<T, Vec<String>> {
    let first = serde_yaml_ng::Deserializer::from_str(text);
    let e = match serde_path_to_error::deserialize::<_, T>(first) {
        Ok(config) => return Ok(config),
        Err(e) => e,
    };
    let mut errors = vec![yaml_error(text, e.inner())];
    if !is_unknown_field(e.inner()) {
        return Err(errors);
    }
    let Ok(mut tree) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) else {
        return Err(errors);
    };
    let mut unknown_at = e.path().clone();
    for _ in 0..MAX_UNKNOWN {
        if !remove(&mut tree, &unknown_at) {
            return Err(errors);
        }
        match serde_path_to_error::deserialize::<_, T>(tree.clone()) {
            Ok(config) => {
                // The types are right once the unknown fields are gone:
                // the semantic checks have their say too.
                return Err(errors.into_iter().chain(validate(&config)).collect());
            }
            Err(e) => {
                errors.push(located(text, e.path(), e.inner()));
                if !is_unknown_field(e.inner()) {
                    return Err(errors);
                }
                unknown_at = e.path().clone();
            }
        }
    }
    Err(errors)
}

/// `path: message`, with the line where the path's last key is written
/// (found in the text: a document read again has no locations of its own).
fn located(text: &str, path: &serde_path_to_error::Path, e: &serde_yaml_ng::Error) -> String {
    let key = path.iter().next_back().and_then(|s| match s {
        Segment::Map { key } => Some(key.as_str()),
        _ => None,
    });
    // `key:` where it is written as a block mapping's key; the key alone
    // where it is not (a flow mapping's `{a, b}`, a key with no value).
    let line = key.and_then(|key| {
        let lines = || text.lines();
        lines()
            .position(|l| l.contains(&format!("{key}:")))
            .or_else(|| lines().position(|l| l.contains(key)))
    });
    match line {
        Some(i) => format!("{path}: {e} at line {}", i + 1),
        None => format!("{path}: {e}"),
    }
}

fn is_unknown_field(e: &serde_yaml_ng::Error) -> bool {
    e.to_string().contains("unknown field `")
}

/// Takes the entry at `path` (an unknown field's) out of `tree`.
fn remove(tree: &mut serde_yaml_ng::Value, path: &serde_path_to_error::Path) -> bool {
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((Segment::Map { key }, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = tree;
    for segment in parents {
        node = match segment {
            Segment::Map { key } => match node.get_mut(key.as_str()) {
                Some(n) => n,
                None => return false,
            },
            Segment::Seq { index } => match node.get_mut(*index) {
                Some(n) => n,
                None => return false,
            },
            _ => return false,
        };
    }
    node.as_mapping_mut()
        .and_then(|m| m.remove(key.as_str()))
        .is_some()
}

/// A file's text, or where it stops being UTF-8.
pub fn utf8_text(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let column = good.len() - good.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
        format!("not UTF-8 text at line {line} column {column}")
    })
}

/// A YAML error that says where: serde's location when it has one, the
/// first control character when that is the trouble, else the document.
pub fn yaml_error(text: &str, e: &serde_yaml_ng::Error) -> String {
    let message = e.to_string();
    if message.contains(" line ") {
        return message;
    }
    if let Some(at) = e.location() {
        return format!("{message} at line {} column {}", at.line(), at.column());
    }
    let control = text.lines().enumerate().find_map(|(i, line)| {
        line.chars()
            .position(|c| c.is_control() && c != '\t')
            .map(|col| (i + 1, col + 1))
    });
    match control {
        Some((line, column)) => format!("{message} at line {line} column {column}"),
        None => format!("document: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        count: u32,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: String,
    }

    fn no_zero(d: &Doc) -> Vec<String> {
        if d.count == 0 || d.items.iter().any(|i| i.name.is_empty()) {
            vec!["count: must be at least 1".into()]
        } else {
            Vec::new()
        }
    }

    #[test]
    fn every_unknown_field_then_the_semantic_checks() {
        let text = "count: 0\ncolour: red\nitems:\n  - name: a\n    size: 3\n";
        let errors = parse(text, no_zero).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("unknown field `colour`"), "{errors:?}");
        assert!(errors[0].contains("line 2"), "{errors:?}");
        assert!(
            errors[1].starts_with("items[0].size: unknown field `size`, expected `name`"),
            "{errors:?}"
        );
        assert!(errors[1].ends_with("at line 5"), "{errors:?}");
        assert_eq!(errors[2], "count: must be at least 1");
    }

    #[test]
    fn a_type_error_after_an_unknown_field_is_named_by_its_path() {
        let errors = parse("bogus: 1\ncount: many\n", no_zero).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[1].starts_with("count: invalid type"), "{errors:?}");
    }

    #[test]
    fn an_unknown_key_without_a_value_is_found_on_its_line() {
        // Found by the parsers' property test: a flow mapping's key with a
        // colon and a space in it, and no value.
        let text = "count: 1\ncolour: red\nitems:\n  - {name: a, hold:0 5s}\n";
        let errors = parse(text, no_zero).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[1].contains("unknown field `hold:0 5s`"),
            "{errors:?}"
        );
        assert!(errors[1].ends_with("at line 4"), "{errors:?}");
    }

    #[test]
    fn a_type_error_alone_says_where() {
        let errors = parse("count: many\n", no_zero).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("line 1"), "{errors:?}");
    }

    #[test]
    fn text_that_is_not_utf8_says_where() {
        let e = utf8_text(b"ok: 1\nbad: \xff\n".to_vec()).unwrap_err();
        assert_eq!(e, "not UTF-8 text at line 2 column 6");
    }
}
