//! The deploy assets checked with real tools: kustomize + a Kubernetes
//! schema validator, promtool, systemd-analyze, hadolint; the dashboard and
//! alerts against a live /metrics; the README runbooks against the CLIs.

use e2e::docs::{repo, runbook};
use e2e::{bin, one_route_config, Admin, Backend, Gateway, Load, TOKEN};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A tool `scripts/setup.sh` installs into target/tools-venv.
fn venv_tool(name: &str) -> PathBuf {
    let path = repo().join("target/tools-venv/bin").join(name);
    assert!(
        path.exists(),
        "{} missing: run scripts/test.sh (it installs the tools)",
        path.display()
    );
    path
}

fn on_path(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Panics with the command's output, under `what`, unless it succeeded.
fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command to its end; see `assert_success`.
fn run_ok(command: &mut Command, what: &str) -> Output {
    let out = command.output().unwrap();
    assert_success(&out, what);
    out
}

/// Renders a kustomization; `None` (with a printed reason) without kubectl.
fn kustomize(dir: &str) -> Option<(String, Vec<Value>)> {
    if !on_path("kubectl") {
        println!("SKIPPED: kubectl is not installed here");
        return None;
    }
    let out = run_ok(
        Command::new("kubectl").args(["kustomize", &repo().join(dir).display().to_string()]),
        dir,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    Some((text, docs))
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn validate(name: &str, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, text).unwrap();
    run_ok(
        Command::new(venv_tool("kubernetes-validate"))
            .args(["-k", "1.31.0", "--strict", "--quiet"])
            .arg(&file),
        &format!("{name} fails the Kubernetes 1.31 schemas"),
    );
}

fn seconds(d: &str) -> u64 {
    humantime::parse_duration(d).unwrap().as_secs()
}

/// A self-signed certificate and its key (PEM) for `gateway.example`.
fn self_signed() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["gateway.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The rendered ConfigMap that holds the gateway's config (its name carries
/// Kustomize's hash suffix).
fn gateway_configmap(docs: &[Value]) -> &Value {
    find(docs, "ConfigMap")
        .into_iter()
        .find(|c| {
            c["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("gateway-config")
        })
        .expect("a gateway-config ConfigMap")
}

/// The gateway config inside the rendered ConfigMap, checked by the real binary.
fn gateway_config(docs: &[Value]) -> Value {
    let cm = gateway_configmap(docs);
    let text = cm["data"]["gateway.yaml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), text).unwrap();
    run_ok(
        Command::new(bin("gateway"))
            .args(["check", "--config"])
            .arg(dir.path().join("gateway.yaml")),
        "gateway check of the rendered config",
    );
    serde_yaml_ng::from_str(text).unwrap()
}

fn common_pod_checks(deployment: &Value, config: &Value) {
    let pod = &deployment["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(c["resources"]["requests"]["cpu"].is_string());
    let token = &c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "GATEWAY_ADMIN_TOKEN")
        .unwrap()["valueFrom"]["secretKeyRef"];
    assert_eq!(token["name"], "gateway-admin-token");
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9090");
    let drain = seconds(config["shutdown_grace"].as_str().unwrap());
    let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > drain + pre_stop,
        "termination grace {grace}s must exceed preStop {pre_stop}s + drain {drain}s"
    );
}

#[test]
fn kustomize_overlays_render_validate_and_hold_what_matters() {
    let Some((text, docs)) = kustomize("deploy/kubernetes/overlays/replicated") else {
        return;
    };
    validate("replicated", &text);
    let deployment = find(&docs, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 3);
    let config = gateway_config(&docs);
    assert_eq!(config["state"]["store"], "kubernetes");
    common_pod_checks(deployment, &config);
    let split = config["state"]["name"].as_str().unwrap();
    assert!(find(&docs, "ConfigMap")
        .iter()
        .any(|c| c["metadata"]["name"] == split));
    let role = find(&docs, "Role")[0];
    let rules = role["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "the store's RBAC is one rule: {rules:?}");
    assert_eq!(rules[0]["resources"], serde_json::json!(["configmaps"]));
    assert_eq!(
        rules[0]["resourceNames"],
        serde_json::json!([split]),
        "RBAC not limited to the split ConfigMap"
    );
    let verbs: BTreeSet<&str> = rules[0]["verbs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(verbs, BTreeSet::from(["get", "list", "watch", "update"]));
    assert_eq!(find(&docs, "PodDisruptionBudget").len(), 1);
    assert_eq!(
        find(&docs, "Service")
            .iter()
            .filter(|s| s["spec"]["type"] == "LoadBalancer")
            .count(),
        1
    );

    let Some((text, docs)) = kustomize("deploy/kubernetes/overlays/single") else {
        return;
    };
    validate("single", &text);
    let deployment = find(&docs, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert!(
        find(&docs, "PodDisruptionBudget").is_empty(),
        "a PDB on one replica would block node drains"
    );
    let config = gateway_config(&docs);
    common_pod_checks(deployment, &config);
    let state = config["state"]["path"].as_str().unwrap();
    let mounts = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap();
    let state_mount = mounts
        .iter()
        .find(|m| state.starts_with(m["mountPath"].as_str().unwrap()) && m["name"] == "state")
        .expect("state file on the volume");
    assert_ne!(state_mount["readOnly"], true);
    assert_eq!(find(&docs, "PersistentVolumeClaim").len(), 1);

    let Some((text, docs)) = kustomize("deploy/kubernetes/cutover-job") else {
        return;
    };
    validate("cutover-job", &text);
    let job = find(&docs, "Job")[0];
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["command"][0], "/usr/local/bin/cutover");
    let role = find(&docs, "Role")[0];
    assert_eq!(role["rules"][0]["resources"][0], "endpointslices");
    assert_eq!(
        pod["serviceAccountName"],
        find(&docs, "ServiceAccount")[0]["metadata"]["name"]
    );

    // The staged form: the Job leaves off at a wait, the CronJob resumes.
    let Some((text, docs)) = kustomize("deploy/kubernetes/cutover-staged") else {
        return;
    };
    validate("cutover-staged", &text);
    let job = &find(&docs, "Job")[0]["spec"]["template"]["spec"];
    let cron = find(&docs, "CronJob")[0];
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let resume = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let args = |pod: &Value| -> Vec<String> {
        pod["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(args(job)[0], "run");
    assert!(args(job).contains(&"--no-wait".to_owned()));
    assert_eq!(args(resume)[..2], ["resume", "--no-wait"]);
    let claim = |pod: &Value| {
        pod["volumes"].as_array().unwrap().iter().find_map(|v| {
            v["persistentVolumeClaim"]["claimName"]
                .as_str()
                .map(str::to_owned)
        })
    };
    assert_eq!(claim(job), claim(resume), "both must use the one journal");
    assert!(claim(job).is_some());
    let plan = find(&docs, "ConfigMap")[0]["data"]["plan.yaml"]
        .as_str()
        .unwrap();
    assert!(
        plan.contains("stages:"),
        "the staged plan replaced the Job's"
    );
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("gateway_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_pass_promtool_and_every_metric_name_is_exported() {
    let rules_dir = repo().join("deploy/prometheus");
    if on_path("promtool") {
        run_ok(
            Command::new("promtool")
                .args(["check", "rules", "alerts.yaml"])
                .current_dir(&rules_dir),
            "promtool check rules",
        );
        run_ok(
            Command::new("promtool")
                .args(["test", "rules", "alerts.test.yaml"])
                .current_dir(&rules_dir),
            "promtool test rules",
        );
    } else {
        panic!("promtool missing: scripts/test.sh installs Debian's prometheus package");
    }

    // Names the gateway really exports, from a live /metrics.
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    // With a TLS listener too: its certificates have metrics of their own.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed();
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), key).unwrap();
    // A mirrored route and a TCP route: their metrics too.
    let tcp = format!(
        "    mirror: {{percent: 0}}\n  - name: db\n    tcp: {{listen: \"127.0.0.1:{}\"}}\n    blue: {{endpoints: [\"{}\"]}}\n    green: {{endpoints: [\"{}\"]}}",
        e2e::free_port(),
        blue.addr,
        green.addr
    );
    let config = one_route_config(&[&blue], &[&green], &tcp).replacen(
        r#"listeners: [{address: "{proxy}"}]"#,
        &format!(
            r#"listeners: [{{address: "{{proxy}}"}}, {{address: "127.0.0.1:{}", tls: {{cert_file: "{{dir}}/tls.crt", key_file: "{{dir}}/tls.key"}}}}]"#,
            e2e::free_port()
        ),
        1,
    );
    let gw = Gateway::start_in(dir, &config);
    reqwest::get(gw.url("/")).await.unwrap();
    let metrics = Admin::new(&gw).metrics().await;
    let mut exported = BTreeSet::new();
    for line in metrics.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split_whitespace().skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        exported.insert(name.to_owned());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                exported.insert(format!("{name}{suffix}"));
            }
        }
    }
    let rules = std::fs::read_to_string(rules_dir.join("alerts.yaml")).unwrap();
    let dashboard_text =
        std::fs::read_to_string(repo().join("deploy/grafana/cutover-gateway.json")).unwrap();
    for (what, text) in [("alert rules", &rules), ("dashboard", &dashboard_text)] {
        let used = metric_names(text);
        assert!(!used.is_empty());
        let unknown: Vec<&String> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{what} use metrics the gateway does not export: {unknown:?}"
        );
    }
    let dashboard: Value = serde_json::from_str(&dashboard_text).unwrap();
    let titles: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for wanted in [
        "Request rate per colour",
        "Error rate (5xx and gRPC errors) per colour",
        "p99 latency per colour",
        "Split: percent to green per route",
        "Endpoint health",
        "State generation per replica",
    ] {
        assert!(
            titles.contains(&wanted),
            "dashboard lacks {wanted:?}: {titles:?}"
        );
    }
}

#[test]
fn the_systemd_unit_verifies_and_waits_longer_than_the_drain() {
    if !on_path("systemd-analyze") {
        println!("SKIPPED: systemd-analyze is not installed here");
        return;
    }
    let unit =
        std::fs::read_to_string(repo().join("deploy/systemd/cutover-gateway.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cutover-gateway.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/gateway",
            &bin("gateway").display().to_string(),
        ),
    )
    .unwrap();
    run_ok(
        Command::new("systemd-analyze").arg("verify").arg(&path),
        "systemd-analyze verify",
    );
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .unwrap()
        .parse()
        .unwrap();
    let example: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo().join("deploy/examples/gateway.yaml")).unwrap(),
    )
    .unwrap();
    assert!(stop > seconds(example["shutdown_grace"].as_str().unwrap()));
    assert!(unit.contains("KillSignal=SIGTERM") && unit.contains("NoNewPrivileges=yes"));
    // The in-place upgrade needs systemd to follow the new main process.
    assert!(unit.contains("Type=notify") && unit.contains("NotifyAccess=all"));
    assert!(unit.contains("--signal=SIGUSR2"));
}

#[test]
fn the_dockerfile_lints_and_matches_the_manifests() {
    let dockerfile_path = repo().join("deploy/docker/Dockerfile");
    run_ok(
        Command::new(venv_tool("hadolint")).arg(&dockerfile_path),
        "hadolint",
    );
    let dockerfile = std::fs::read_to_string(&dockerfile_path).unwrap();
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap();
    let uid: u64 = user.split(':').next().unwrap().parse().unwrap();
    let exposed: BTreeSet<u64> = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        dockerfile.contains("/usr/local/bin/")
            && dockerfile.contains("target/release/gateway")
            && dockerfile.contains("target/release/cutover")
    );
    let Some((_, docs)) = kustomize("deploy/kubernetes/overlays/replicated") else {
        return;
    };
    let pod = &find(&docs, "Deployment")[0]["spec"]["template"]["spec"];
    assert_eq!(
        pod["securityContext"]["runAsUser"].as_u64(),
        Some(uid),
        "image user and runAsUser differ"
    );
    let ports: BTreeSet<u64> = pod["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, exposed);
    assert_eq!(pod["containers"][0]["command"][0], "/usr/local/bin/gateway");
    let config_arg = pod["containers"][0]["args"][1].as_str().unwrap();
    assert!(
        dockerfile.contains(config_arg),
        "the image's default config path is not the manifests'"
    );
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .unwrap();
    assert!(config_arg.starts_with(mount["mountPath"].as_str().unwrap()));
}

fn shell(line: &str, env: &[(&str, &str)], cwd: &Path) -> Output {
    let path = format!(
        "{}:{}",
        bin("cutover").parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("sh");
    c.args(["-c", line]).current_dir(cwd).env("PATH", path);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn every_runbook_command_parses_with_the_real_cli() {
    let mut parsed = 0;
    for name in [
        "emergency",
        "network",
        "gradual-shift",
        "notifications",
        "staged",
        "watch",
        "dns",
        "grpc",
        "aks",
        "promote",
    ] {
        for line in runbook(name) {
            if !(line.starts_with("cutover ") || line.starts_with("gateway ")) {
                continue;
            }
            let out = shell(&line, &[("CUTOVER_PARSE_ONLY", "1")], &repo());
            assert_success(&out, &format!("runbook {name}: `{line}` does not parse"));
            parsed += 1;
        }
    }
    assert!(parsed >= 9, "only {parsed} commands found");
    // The parser does reject a wrong flag.
    let out = shell(
        "cutover run deploy/examples/plan.yaml --no-such-flag",
        &[("CUTOVER_PARSE_ONLY", "1")],
        &repo(),
    );
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gradual_shift_runbook_runs_against_the_local_topology() {
    for port in [8080, 8081, 8082, 9090] {
        assert!(
            !e2e::is_listening(format!("127.0.0.1:{port}").parse().unwrap()),
            "port {port} is busy: the runbook uses the demo topology"
        );
    }
    let work = tempfile::tempdir().unwrap();
    let spawn = |args: &[&str], program: PathBuf| e2e::Proc {
        child: Command::new(program)
            .args(args)
            .current_dir(work.path())
            .env("GATEWAY_ADMIN_TOKEN", TOKEN)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    };
    let _blue = spawn(
        &["--listen", "127.0.0.1:8081", "--name", "blue"],
        bin("sample-backend"),
    );
    let _green = spawn(
        &["--listen", "127.0.0.1:8082", "--name", "green"],
        bin("sample-backend"),
    );
    let config = repo().join("deploy/examples/gateway.yaml");
    let _gateway = spawn(&["--config", config.to_str().unwrap()], bin("gateway"));
    for port in [8080, 8081, 8082, 9090] {
        e2e::wait_listening(
            format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(15),
        );
    }
    let load = Load::start(
        "http://127.0.0.1:8080/".into(),
        4,
        Duration::from_millis(10),
    );
    let journal = work.path().join("journal.jsonl");
    let journal_str = journal.display().to_string();
    for line in runbook("gradual-shift") {
        let line2 = line.clone();
        let env_journal = journal_str.clone();
        let out = tokio::task::spawn_blocking(move || {
            shell(
                &line2,
                &[
                    ("GATEWAY_ADMIN_TOKEN", TOKEN),
                    ("CUTOVER_JOURNAL", &env_journal),
                ],
                &repo(),
            )
        })
        .await
        .unwrap();
        assert_success(&out, &format!("`{line}` failed"));
    }
    let (_, failed) = load.stop().await;
    assert_eq!(failed, 0);
    let state: Value = reqwest::get("http://127.0.0.1:9090/v1/state")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["routes"]["web"]["green_percent"], 100.0);
}

/// Every value under a key named `key`, anywhere in `v`.
fn values_of<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == key {
                    out.push(child);
                }
                values_of(child, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| values_of(i, key, out)),
        _ => {}
    }
}

/// Names of `kind` objects among `docs`.
fn names_of(docs: &[Value], kind: &str) -> BTreeSet<String> {
    find(docs, kind)
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_aks_quick_start_creates_everything_its_manifests_reference() {
    let Some((aks_text, aks)) = kustomize("deploy/kubernetes/aks") else {
        return;
    };
    let Some((job_text, job)) = kustomize("deploy/kubernetes/cutover-job") else {
        return;
    };
    validate("aks", &aks_text);
    validate("cutover-job", &job_text);
    let steps = runbook("aks");
    let step = |needle: &str| steps.iter().any(|s| s.contains(needle));
    // The steps apply exactly these manifests.
    for dir in ["deploy/kubernetes/aks", "deploy/kubernetes/cutover-job"] {
        assert!(
            step(&format!("kubectl kustomize {dir} | kubectl apply -f -")),
            "{dir} is never applied"
        );
    }
    let all: Vec<Value> = aks.iter().chain(job.iter()).cloned().collect();
    let every = Value::Array(all.clone());

    // The namespace: created by a step, before anything lands in it.
    let namespace_file = repo().join("deploy/kubernetes/aks/namespace.yaml");
    let namespace: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&namespace_file).unwrap()).unwrap();
    assert_eq!(namespace["kind"], "Namespace");
    assert!(step(
        "kubectl apply -f deploy/kubernetes/aks/namespace.yaml"
    ));
    for doc in all.iter().filter(|d| d["kind"] != "Namespace") {
        assert_eq!(
            doc["metadata"]["namespace"], namespace["metadata"]["name"],
            "{doc}"
        );
    }

    // Secrets: each one referenced is created by a step, with the key read.
    let mut referenced = BTreeSet::new();
    let mut refs = Vec::new();
    values_of(&every, "secretKeyRef", &mut refs);
    for r in refs {
        let (name, key) = (r["name"].as_str().unwrap(), r["key"].as_str().unwrap());
        assert!(
            step(&format!(
                "create secret generic {name} --from-literal={key}="
            )),
            "secret {name} (key {key}) is never created"
        );
        referenced.insert(name.to_owned());
    }
    let mut volumes = Vec::new();
    values_of(&every, "secret", &mut volumes);
    for v in volumes.iter().filter_map(|v| v["secretName"].as_str()) {
        assert!(
            step(&format!("create secret generic {v} "))
                || step(&format!("create secret tls {v} ")),
            "secret volume {v} is never created"
        );
        referenced.insert(v.to_owned());
    }
    for needed in ["gateway-admin-token", "gateway-pin-secret", "gateway-tls"] {
        assert!(
            referenced.contains(needed),
            "{needed} not referenced: {referenced:?}"
        );
    }

    // ConfigMaps, PersistentVolumeClaims and ServiceAccounts referenced are
    // rendered with the manifests.
    for (key, field, kind) in [
        ("configMap", "name", "ConfigMap"),
        (
            "persistentVolumeClaim",
            "claimName",
            "PersistentVolumeClaim",
        ),
        ("serviceAccountName", "", "ServiceAccount"),
    ] {
        let mut uses = Vec::new();
        values_of(&every, key, &mut uses);
        let created = names_of(&all, kind);
        for name in uses.iter().filter_map(|u| {
            if field.is_empty() {
                u.as_str()
            } else {
                u[field].as_str()
            }
        }) {
            assert!(created.contains(name), "{kind} {name} is not created");
        }
    }

    // Every container runs the image the steps build and push.
    let mut images = Vec::new();
    values_of(&every, "image", &mut images);
    assert!(images.len() >= 2);
    for image in images.iter().map(|i| i.as_str().unwrap()) {
        assert!(
            step(&format!(
                "docker build -f deploy/docker/Dockerfile -t {image} ."
            )),
            "{image} is never built"
        );
        assert!(
            step(&format!("docker push {image}")),
            "{image} is never pushed"
        );
        assert!(
            image.contains(".azurecr.io/"),
            "{image} is not from a registry"
        );
    }

    // The Service keeps client addresses and serves 443; the replicas spread.
    let service = find(&aks, "Service")
        .into_iter()
        .find(|s| s["metadata"]["name"] == "gateway")
        .unwrap();
    assert_eq!(service["spec"]["externalTrafficPolicy"], "Local");
    let ports: Vec<u64> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [80, 443]);
    assert!(service["metadata"]["annotations"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("service.beta.kubernetes.io/azure-")));
    let deployment = find(&aks, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        pod["topologySpreadConstraints"][0]["topologyKey"],
        "topology.kubernetes.io/zone"
    );
    assert!(
        pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            .is_array()
    );

    // The gateway config passes `gateway check` with the mounted files in
    // place, and its files are where the Secrets are mounted.
    let cm = gateway_configmap(&aks);
    let config_text = cm["data"]["gateway.yaml"].as_str().unwrap();
    let config: Value = serde_yaml_ng::from_str(config_text).unwrap();
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    let volume_of = |path: &str| {
        let mount = mounts
            .iter()
            .find(|m| {
                path.starts_with(m["mountPath"].as_str().unwrap()) && m["mountPath"] != "/tmp"
            })
            .unwrap_or_else(|| panic!("{path} is not mounted"));
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        volume["secret"]["secretName"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let tls = &config["listeners"][1]["tls"];
    assert_eq!(volume_of(tls["cert_file"].as_str().unwrap()), "gateway-tls");
    assert_eq!(
        volume_of(config["pin"]["secret_file"].as_str().unwrap()),
        "gateway-pin-secret"
    );
    assert!(
        config["pin"]["secret_file"]
            .as_str()
            .unwrap()
            .ends_with("/secret"),
        "the key the step creates"
    );
    // What the Secrets hold: a certificate and its key (the check loads
    // them), a pin secret.
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed();
    for (f, text) in [
        ("tls/tls.crt", cert),
        ("tls/tls.key", key),
        ("pin/secret", "x".to_string()),
    ] {
        std::fs::create_dir_all(files.path().join(f).parent().unwrap()).unwrap();
        std::fs::write(files.path().join(f), text).unwrap();
    }
    let local = config_text.replace("/etc/cutover/", &format!("{}/", files.path().display()));
    std::fs::write(files.path().join("gateway.yaml"), local).unwrap();
    run_ok(
        Command::new(bin("gateway"))
            .args(["check", "--config"])
            .arg(files.path().join("gateway.yaml")),
        "gateway check of the AKS config",
    );

    // The Job's smoke checks pin with the secret the gateways hold.
    let plan_text = find(&job, "ConfigMap")[0]["data"]["plan.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let plan: Value = serde_yaml_ng::from_str(&plan_text).unwrap();
    let env = &find(&job, "Job")[0]["spec"]["template"]["spec"]["containers"][0]["env"];
    let pin_env = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == plan["fleet"]["pin_secret_env"])
        .expect("the pin secret's variable is set");
    assert_eq!(
        pin_env["valueFrom"]["secretKeyRef"]["name"],
        "gateway-pin-secret"
    );
    assert!(
        plan["smoke"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["expect_body"].is_string()),
        "a smoke check looks at the body"
    );
}
