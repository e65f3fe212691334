//! The plan file's parsing and validation, end to end.

use super::*;

const PLAN: &str = r#"
fleet: {admin_urls: ["http://127.0.0.1:9090"], proxy_url: "http://127.0.0.1:8080"}
routes: [web]
steps:
  - {green_percent: 5, hold: 10s}
  - {green_percent: 100}
"#;

#[test]
fn a_minimal_plan_gets_safe_defaults() {
    let plan: Plan = serde_yaml_ng::from_str(PLAN).unwrap();
    assert!(plan.validate().is_empty());
    assert_eq!(plan.gates.failure_limit, 2);
    assert_eq!(plan.gates.source, GateSource::Gateway);
    assert_eq!(plan.rollback.to, RollbackTarget::Zero);
    assert_eq!(plan.fleet.unwrap().token_env, "GATEWAY_ADMIN_TOKEN");
}

#[test]
fn the_shipped_plans_are_valid() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in [
        "deploy/examples/plan.yaml",
        "deploy/kubernetes/cutover-job/plan.yaml",
        "deploy/kubernetes/cutover-staged/plan.yaml",
    ] {
        if let Err(e) = Plan::load(&repo.join(file)) {
            panic!("{e}");
        }
    }
}

#[test]
fn problems_name_their_fields() {
    let bad = PLAN
        .replace("green_percent: 100", "green_percent: 4")
        .replace("routes: [web]", "routes: []\ngates: {success_rate: 2}");
    let plan: Plan = serde_yaml_ng::from_str(&bad).unwrap();
    let errors = plan.validate().join("\n");
    for needle in ["steps[1].green_percent", "routes:", "gates.success_rate"] {
        assert!(errors.contains(needle), "{needle} missing in {errors}");
    }
}
