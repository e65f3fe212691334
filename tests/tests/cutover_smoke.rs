//! Smoke checks prove they reached green: a pinned request is answered
//! with the colour that served it, and a check whose answer did not come
//! from green fails, saying why. A pin from outside `pin.trusted_sources`
//! without the secret is routed by the split (to blue at step 0), so a
//! `/ → 200` check would otherwise pass on blue while green is broken.

use e2e::{one_route_config, Admin, Backend, Cutover, Gateway};
use serde_json::Value;

const SECRET: &str = "pin-secret-of-the-test";

/// A gateway that trusts no source for pins and knows the pin secret, in
/// front of a healthy blue and a green that fails every request but its
/// health check; and a plan whose one smoke check is `/ → 200`.
struct Setup {
    _backends: [Backend; 2],
    gateway: Gateway,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let blue = Backend::start("blue");
    let green = Backend::start_with("green", &["--error-rate", "1.0"]);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("pin-secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let config = one_route_config(&[&blue], &[&green], "").replace(
        "routes:",
        &format!(
            "pin: {{secret_file: \"{}\"}}\nroutes:",
            secret_file.display()
        ),
    );
    Setup {
        gateway: Gateway::start(&config),
        _backends: [blue, green],
        dir,
    }
}

impl Setup {
    fn plan(&self, fleet_extra: &str) -> String {
        let text = format!(
            r#"fleet: {{admin_urls: ["{}"], proxy_url: "http://{}"{fleet_extra}}}
routes: [web]
steps: [{{green_percent: 10, hold: 1s}}]
gates: {{interval: 500ms, window: 3s, min_requests: 1}}
smoke:
  - {{name: home, path: /, expect_status: 200}}
convergence_timeout: 3s
"#,
            self.gateway.admin_url(""),
            self.gateway.proxy,
        );
        let path = self.dir.path().join("plan.yaml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    async fn run(&self, plan: &str, env: &[(&str, &str)]) -> (i32, Vec<Value>) {
        let journal = tempfile::tempdir().unwrap();
        let cutover = Cutover::new(journal.path());
        let mut command = cutover.command(&["run", plan]);
        command.envs(env.iter().copied());
        let out = command.output().await.unwrap();
        (out.status.code().unwrap_or(-1), cutover.records())
    }
}

fn smoke_problem(records: &[Value]) -> String {
    let smoke = records
        .iter()
        .find(|r| r["event"] == "smoke")
        .expect("a smoke record");
    assert_eq!(smoke["passed"], false, "{smoke:#}");
    // Each check names the request it sent, so the gateway's and green's
    // logs can be searched for it.
    let result = &smoke["results"][0];
    let id = result["request_id"].as_str().expect("a request id");
    assert!(id.starts_with("smoke-"), "{id}");
    let problem = result["problem"].as_str().unwrap();
    problem
        .strip_suffix(&format!(" (request id {id})"))
        .unwrap_or_else(|| panic!("the problem does not name the request id: {problem}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_pin_fails_the_smoke_check_naming_why_and_the_secret_reaches_green() {
    let s = setup();

    // No trusted source, no secret: blue answers 200, the check still fails.
    let (code, records) = s.run(&s.plan(""), &[]).await;
    assert_eq!(code, 1, "rolled back: {records:#?}");
    let problem = smoke_problem(&records);
    assert!(
        problem.contains("did not honour the pin") && problem.contains("pin.trusted_sources"),
        "{problem}"
    );
    let state = Admin::new(&s.gateway).state().await;
    assert_eq!(
        state["routes"]["web"]["green_percent"], 0.0,
        "no traffic moved"
    );

    // A wrong secret: the check says the secret was refused.
    let (code, records) = s
        .run(
            &s.plan(", pin_secret_env: PIN_SECRET"),
            &[("PIN_SECRET", "wrong")],
        )
        .await;
    assert_eq!(code, 1);
    let problem = smoke_problem(&records);
    assert!(problem.contains("refused the pin secret"), "{problem}");

    // The right secret (from the environment, as a Job gets it from a
    // Secret): the check reaches green, which is broken.
    let (code, records) = s
        .run(
            &s.plan(", pin_secret_env: PIN_SECRET"),
            &[("PIN_SECRET", SECRET)],
        )
        .await;
    assert_eq!(code, 1);
    let problem = smoke_problem(&records);
    assert_eq!(problem, "status 500, expected 200", "green answered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_answer_names_the_colour_that_served_it_and_others_do_not() {
    let s = setup();
    let client = reqwest::Client::new();
    let pinned = client
        .get(s.gateway.url("/"))
        .header("x-cutover-color", "blue")
        .header("x-cutover-pin-secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(pinned.headers()["x-cutover-served-by"], "blue");
    let untrusted = client
        .get(s.gateway.url("/"))
        .header("x-cutover-color", "green")
        .send()
        .await
        .unwrap();
    assert!(untrusted.headers().get("x-cutover-served-by").is_none());
    assert_eq!(
        untrusted.headers()["x-backend"],
        "blue",
        "routed by the split"
    );
}
