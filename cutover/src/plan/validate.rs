//! Loading a plan file and validating it whole: every problem is reported
//! at once, each naming its field.

use super::mirror::validate_steps;
use super::{Fleet, GateSource, Plan, Step};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every problem in a plan file, each naming its field.
#[derive(Debug, thiserror::Error)]
#[error("{}: {} problem(s) in the plan:\n  - {}", file.display(), errors.len(), errors.join("\n  - "))]
pub struct PlanErrors {
    pub file: PathBuf,
    pub errors: Vec<String>,
}

impl Plan {
    /// Reads a plan file: every unknown field, the types, then every
    /// problem [`Plan::validate`] finds (the `input-files` crate).
    pub fn load(path: &Path) -> Result<Plan, PlanErrors> {
        input_files::load(path, Plan::validate).map_err(|errors| PlanErrors {
            file: path.to_owned(),
            errors,
        })
    }

    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for (i, hook) in self.notify.iter().enumerate() {
            errors.extend(validate_webhook(&format!("notify[{i}]"), hook));
        }
        if self.routes.is_empty() {
            errors.push("routes: name at least one gateway route".into());
        }
        if self.stages.is_empty() {
            match &self.fleet {
                Some(f) => validate_fleet("fleet", f, &mut errors),
                None => {
                    errors.push("fleet: required (or `stages`, each with its own fleet)".into())
                }
            }
            validate_steps("steps", &self.steps, &mut errors);
        } else {
            validate_stages(self, &mut errors);
        }
        if self.drain.is_some() && self.stages.is_empty() {
            let schedule = self.schedule();
            let last = schedule
                .len()
                .checked_sub(1)
                .map(|i| schedule.step(i).green_percent);
            if last.is_some_and(|p| p != 100.0) {
                errors.push(format!(
                    "drain: blue is drained after a run that ends at green_percent 100; the last step sends {}%",
                    last.unwrap_or_default()
                ));
            }
        }
        let g = &self.gates;
        let mirrored = self
            .steps
            .iter()
            .chain(self.stages.iter().flat_map(|s| &s.steps));
        if mirrored.clone().any(Step::is_mirror) && g.source != GateSource::Gateway {
            errors.push("gates.source: mirror steps are judged on the gateways' own figures (source: gateway); the PromQL source has no mirror figures".into());
        }
        if !(0.0..=1.0).contains(&g.mirror.max_mismatch_rate) {
            errors.push(format!(
                "gates.mirror.max_mismatch_rate: {} must be from 0 to 1",
                g.mirror.max_mismatch_rate
            ));
        }
        if !(0.0..=1.0).contains(&g.success_rate) {
            errors.push(format!(
                "gates.success_rate: {} must be from 0 to 1",
                g.success_rate
            ));
        }
        if !(0.0..=1.0).contains(&g.max_error_rate_increase) {
            errors.push(format!(
                "gates.max_error_rate_increase: {} must be from 0 to 1",
                g.max_error_rate_increase
            ));
        }
        if g.interval.is_zero() || g.window < g.interval {
            errors.push("gates: interval must be above 0 and window at least one interval".into());
        }
        if g.failure_limit == 0 {
            errors.push("gates.failure_limit: must be at least 1".into());
        }
        match (&g.source, &g.prometheus_url) {
            (GateSource::Prometheus, Some(url)) => {
                check_url("gates.prometheus_url", url, &mut errors)
            }
            (GateSource::Prometheus, None) => {
                errors.push("gates.prometheus_url: required with source: prometheus".into())
            }
            (GateSource::Gateway, _) => {}
        }
        for (i, s) in self.smoke.iter().enumerate() {
            if !s.path.starts_with('/') {
                errors.push(format!("smoke[{i}].path: {:?} must start with '/'", s.path));
            }
            if reqwest::Method::from_bytes(s.method.as_bytes()).is_err() {
                errors.push(format!(
                    "smoke[{i}].method: {:?} is not an HTTP method",
                    s.method
                ));
            }
        }
        if self.lock_ttl < Duration::from_secs(2) {
            errors.push("lock_ttl: must be at least 2s".into());
        }
        errors
    }
}

fn validate_stages(plan: &Plan, errors: &mut Vec<String>) {
    if plan.fleet.is_some() {
        errors.push(
            "fleet: a plan with `stages` names each stage's fleet; remove the top-level fleet"
                .into(),
        );
    }
    if !plan.steps.is_empty() {
        errors.push(
            "steps: a plan with `stages` lists each stage's steps; remove the top-level steps"
                .into(),
        );
    }
    if plan.drain.is_some() {
        errors.push(
            "drain: a plan with `stages` names each stage's drain (stages[].drain); remove the top-level drain"
                .into(),
        );
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, stage) in plan.stages.iter().enumerate() {
        let at = format!("stages[{i}]");
        if stage.name.trim().is_empty() {
            errors.push(format!("{at}.name: must not be empty"));
        } else if !names.insert(stage.name.as_str()) {
            errors.push(format!(
                "{at}.name: {:?} is used by an earlier stage",
                stage.name
            ));
        }
        match &stage.fleet {
            Some(f) => validate_fleet(&format!("{at}.fleet"), f, errors),
            None => errors.push(format!(
                "{at}.fleet: every stage needs its own fleet (admin_urls or kubernetes, and proxy_url)"
            )),
        }
        validate_steps(&format!("{at}.steps"), &stage.steps, errors);
        let last = stage.steps.last().map(|s| s.green_percent);
        if stage.drain.is_some() && last.is_some_and(|p| p != 100.0) {
            errors.push(format!(
                "{at}.drain: blue is drained after a stage that ends at green_percent 100; its last step sends {}%",
                last.unwrap_or_default()
            ));
        }
    }
}

fn validate_fleet(at: &str, f: &Fleet, errors: &mut Vec<String>) {
    match (&f.admin_urls.is_empty(), &f.kubernetes) {
        (true, None) => errors.push(format!("{at}: set admin_urls or kubernetes")),
        (false, Some(_)) => errors.push(format!("{at}: set admin_urls or kubernetes, not both")),
        _ => {}
    }
    for (i, url) in f.admin_urls.iter().enumerate() {
        check_url(&format!("{at}.admin_urls[{i}]"), url, errors);
    }
    check_url(&format!("{at}.proxy_url"), &f.proxy_url, errors);
    if let Some(tls) = &f.admin_tls {
        if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
            errors.push(format!(
                "{at}.admin_tls: client_cert_file and client_key_file go together"
            ));
        }
        if !f.admin_urls.is_empty() && f.admin_urls.iter().any(|u| !u.starts_with("https://")) {
            errors.push(format!(
                "{at}.admin_tls: every admin_urls entry must be https:// (TLS is for the admin API)"
            ));
        }
    }
}

fn check_url(field: &str, url: &str, errors: &mut Vec<String>) {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        _ => errors.push(format!("{field}: {url:?} is not an http(s) URL")),
    }
}

fn validate_webhook(at: &str, hook: &super::Webhook) -> Vec<String> {
    let mut errors = Vec::new();
    let sources = [
        hook.url.is_some(),
        hook.url_env.is_some(),
        hook.url_file.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        errors.push(format!("{at}: set exactly one of url, url_env, url_file"));
    }
    if let Some(url) = &hook.url {
        if let Err(e) = check_webhook_url(url) {
            errors.push(format!("{at}.url: {e}"));
        }
    }
    if hook.token_env.is_some() && hook.token_file.is_some() {
        errors.push(format!("{at}: set token_env or token_file, not both"));
    }
    errors
}

/// A webhook URL must be absolute http(s) with a host.
pub fn check_webhook_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "must be an http:// or https:// URL with a host, not {}://…",
            parsed.scheme()
        ));
    }
    Ok(())
}
