//! Reading a config file: its text, every unknown field (not only the
//! first), the types (the `input-files` crate), then [`Config::validate`]'s
//! checks: every problem in one report, each naming its field.

use super::Config;
use std::path::{Path, PathBuf};

/// Every problem found in a config file, each naming its field.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<String>,
}

impl ConfigErrors {
    fn render(&self) -> String {
        let mut out = format!(
            "{}: {} error(s) in the gateway config",
            self.file.display(),
            self.errors.len()
        );
        for e in &self.errors {
            out.push_str("\n  - ");
            out.push_str(e);
        }
        out
    }
}

impl Config {
    /// Reads, parses and validates a config file. Names are checked for
    /// their form only ([`Config::unresolved_names`] looks them up).
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        input_files::load(path, Config::validate).map_err(|errors| ConfigErrors {
            file: path.to_owned(),
            errors,
        })
    }

    /// Every endpoint name that does not resolve now (`gateway check
    /// --resolve`), naming its field.
    pub fn unresolved_names(&self) -> Vec<String> {
        let resolver = self.dns.resolver();
        let mut errors = Vec::new();
        for (i, route) in self.routes.iter().enumerate() {
            for (color, group) in [("blue", &route.blue), ("green", &route.green)] {
                for (j, endpoint) in group.endpoints.iter().enumerate() {
                    if let Err(e) = resolver.resolve(endpoint) {
                        errors.push(format!("routes[{i}].{color}.endpoints[{j}]: {e}"));
                    }
                }
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_field_and_every_other_problem_is_listed() {
        let yaml = r#"
listeners: [{address: "127.0.0.1:8080", colour: red}]
threads: 0
routes:
  - name: web
    blu: {endpoints: ["127.0.0.1:1"]}
    blue: {endpoints: ["127.0.0.1:1"]}
    green: {endpoints: ["no port here"], extra: 1}
"#;
        let errors = input_files::parse(yaml, Config::validate)
            .unwrap_err()
            .join("\n");
        for needle in [
            "unknown field `colour`",
            "line 2",
            "routes[0].blu: unknown field `blu`, expected one of",
            "routes[0].green.extra: unknown field `extra`",
            "threads: must be at least 1",
            "routes[0].green.endpoints[0]",
        ] {
            assert!(errors.contains(needle), "missing {needle:?} in\n{errors}");
        }
    }
}
