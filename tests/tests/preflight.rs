//! `cutover preflight` against fake API servers over TLS: green serves the
//! real discovery documents of a recent Kubernetes; blue is an older
//! cluster with Helm releases.

use base64::Engine;
use e2e::bin;
use e2e::fake_k8s::{kubeconfig, FakeCluster, TestCa};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

/// A Helm 3 release Secret as the API returns it: `data.release` is the
/// base64 of Helm's own base64 of the gzipped release JSON.
fn helm_secret(release: &str, namespace: &str, version: u32, manifest: &str) -> Value {
    let doc = json!({"name": release, "namespace": namespace, "version": version, "info": {"status": "deployed"}, "manifest": manifest});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(doc.to_string().as_bytes()).unwrap();
    let helm_encoded = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.{release}.v{version}"), "namespace": namespace,
                     "labels": {"name": release, "owner": "helm", "status": "deployed", "version": version.to_string()}},
        "data": {"release": base64::engine::general_purpose::STANDARD.encode(helm_encoded)},
    })
}

fn deployment(name: &str, ns: &str, replicas: i32, available: i32, extra_meta: Value) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "generation": 2},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"observedGeneration": 2, "replicas": replicas, "availableReplicas": available, "updatedReplicas": replicas},
    });
    if let Some(m) = extra_meta.as_object() {
        for (k, v) in m {
            d["metadata"][k] = v.clone();
        }
    }
    d
}

fn ready_nodes(cluster: &FakeCluster, n: usize) {
    let nodes: Vec<Value> = (0..n)
        .map(|i| json!({"metadata": {"name": format!("node-{i}")}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}))
        .collect();
    cluster.serve_objects("/api/v1/nodes", "NodeList", nodes);
}

async fn preflight(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = tokio::process::Command::new(bin("cutover"))
        .args([
            "preflight",
            "--kubeconfig",
            dir.join("kubeconfig").to_str().unwrap(),
            "--output",
            "json",
        ])
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report}"))
}

/// An old cluster (1.15-like) that serves the beta APIs removed since.
fn serve_old_discovery(cluster: &FakeCluster) {
    cluster.serve_group_versions(&[
        (
            "v1",
            &[
                ("Secret", "secrets", true),
                ("Service", "services", true),
                ("Node", "nodes", false),
            ],
        ),
        (
            "apps/v1",
            &[
                ("Deployment", "deployments", true),
                ("StatefulSet", "statefulsets", true),
                ("DaemonSet", "daemonsets", true),
            ],
        ),
        (
            "apps/v1beta1",
            &[
                ("Deployment", "deployments", true),
                ("StatefulSet", "statefulsets", true),
            ],
        ),
        (
            "extensions/v1beta1",
            &[
                ("Deployment", "deployments", true),
                ("Ingress", "ingresses", true),
                ("PodSecurityPolicy", "podsecuritypolicies", false),
            ],
        ),
        (
            "networking.k8s.io/v1beta1",
            &[("Ingress", "ingresses", true)],
        ),
        (
            "policy/v1beta1",
            &[
                ("PodDisruptionBudget", "poddisruptionbudgets", true),
                ("PodSecurityPolicy", "podsecuritypolicies", false),
            ],
        ),
        (
            "authentication.k8s.io/v1beta1",
            &[("TokenReview", "tokenreviews", false)],
        ),
        (
            "authorization.k8s.io/v1beta1",
            &[(
                "LocalSubjectAccessReview",
                "localsubjectaccessreviews",
                true,
            )],
        ),
        (
            "storage.k8s.io/v1beta1",
            &[
                ("StorageClass", "storageclasses", false),
                ("VolumeAttachment", "volumeattachments", false),
                ("CSINode", "csinodes", false),
            ],
        ),
        (
            "scheduling.k8s.io/v1beta1",
            &[("PriorityClass", "priorityclasses", false)],
        ),
        (
            "rbac.authorization.k8s.io/v1beta1",
            &[
                ("Role", "roles", true),
                ("ClusterRole", "clusterroles", false),
            ],
        ),
        (
            "node.k8s.io/v1beta1",
            &[("RuntimeClass", "runtimeclasses", false)],
        ),
        (
            "flowcontrol.apiserver.k8s.io/v1beta2",
            &[
                ("FlowSchema", "flowschemas", false),
                (
                    "PriorityLevelConfiguration",
                    "prioritylevelconfigurations",
                    false,
                ),
            ],
        ),
        ("batch/v1beta1", &[("CronJob", "cronjobs", true)]),
        (
            "autoscaling/v2beta2",
            &[("HorizontalPodAutoscaler", "horizontalpodautoscalers", true)],
        ),
        (
            "apiregistration.k8s.io/v1beta1",
            &[("APIService", "apiservices", false)],
        ),
        (
            "apiextensions.k8s.io/v1beta1",
            &[(
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
            )],
        ),
        ("cert-manager.io/v1alpha2", &[("Issuer", "issuers", true)]),
        (
            "snapshot.storage.k8s.io/v1beta1",
            &[("VolumeSnapshotClass", "volumesnapshotclasses", false)],
        ),
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_releases_with_removed_apis_fail_naming_the_replacements() {
    let (Some(discovery), Some(helm)) = (
        e2e::shared_fixtures("kubernetes/discovery/recent"),
        e2e::shared_fixtures("helm"),
    ) else {
        return;
    };
    let ca = TestCa::new();
    let blue = FakeCluster::start(&ca, 21).await;
    let green = FakeCluster::start(&ca, 33).await;
    green.serve_discovery_dir(&discovery);
    ready_nodes(&green, 3);
    // The real release Secret from the fixtures, and one of our own.
    let real: Value =
        serde_json::from_str(&std::fs::read_to_string(helm.join("secret.json")).unwrap()).unwrap();
    let ours = helm_secret(
        "shop",
        "shop",
        3,
        "---\napiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: {name: shop}\n---\napiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: shop-pdb}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop-web}\n",
    );
    blue.serve_objects("/api/v1/secrets", "SecretList", vec![real, ours]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kubeconfig"),
        kubeconfig(&ca, &[("blue", &blue), ("green", &green)], &[]),
    )
    .unwrap();

    let (code, report, stderr) = preflight(
        dir.path(),
        &["--blue-context", "blue", "--green-context", "green"],
    )
    .await;
    assert_eq!(code, 1, "{stderr}\n{report:#}");
    let apis = check(&report, "removed apiVersions");
    assert_eq!(apis["status"], "fail");
    let objects = apis["objects"].to_string();
    assert!(
        objects.contains("Ingress networking.k8s.io/v1beta1: shop (Helm release shop/shop)"),
        "{objects}"
    );
    assert!(
        objects.contains("PodDisruptionBudget policy/v1beta1"),
        "{objects}"
    );
    // The real fixture release (test in demo2) decodes: its extensions Deployment.
    assert!(
        objects.contains(
            "Deployment extensions/v1beta1: test-helm3chart-v1beta1 (Helm release demo2/test)"
        ),
        "{objects}"
    );
    assert!(
        !objects.contains("Deployment apps/v1"),
        "apps/v1 is served: {objects}"
    );
    let fix = apis["remediation"].as_str().unwrap();
    assert!(
        fix.contains("use networking.k8s.io/v1")
            && fix.contains("use policy/v1")
            && fix.contains("use apps/v1"),
        "{fix}"
    );
    assert_eq!(check(&report, "green reachable")["status"], "pass");
    assert_eq!(
        check(&report, "version skew")["status"],
        "warn",
        "green 1.33 is 12 minors ahead of blue 1.21"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_apis_in_manifest_files_are_all_found_and_none_falsely() {
    let (Some(discovery), Some(manifests)) = (
        e2e::shared_fixtures("kubernetes/discovery/recent"),
        e2e::shared_fixtures("manifests"),
    ) else {
        return;
    };
    let ca = TestCa::new();
    let blue = FakeCluster::start(&ca, 15).await;
    let recent = FakeCluster::start(&ca, 33).await;
    recent.serve_discovery_dir(&discovery);
    ready_nodes(&recent, 2);
    let old = FakeCluster::start(&ca, 15).await;
    serve_old_discovery(&old);
    ready_nodes(&old, 2);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kubeconfig"),
        kubeconfig(
            &ca,
            &[("blue", &blue), ("recent", &recent), ("old", &old)],
            &[],
        ),
    )
    .unwrap();
    let m = manifests.to_str().unwrap();

    let (code, report, stderr) = preflight(
        dir.path(),
        &[
            "--blue-context",
            "blue",
            "--green-context",
            "recent",
            "--manifests",
            m,
        ],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    let objects = check(&report, "removed apiVersions")["objects"].to_string();
    for (api, kind) in [
        ("extensions/v1beta1", "Deployment"),
        ("apps/v1beta1", "Deployment"),
        ("extensions/v1beta1", "Ingress"),
        ("policy/v1beta1", "PodSecurityPolicy"),
        ("policy/v1beta1", "PodDisruptionBudget"),
        ("authentication.k8s.io/v1beta1", "TokenReview"),
        ("authorization.k8s.io/v1beta1", "LocalSubjectAccessReview"),
        ("storage.k8s.io/v1beta1", "StorageClass"),
        ("storage.k8s.io/v1beta1", "VolumeAttachment"),
        ("storage.k8s.io/v1beta1", "CSINode"),
        ("scheduling.k8s.io/v1beta1", "PriorityClass"),
        ("rbac.authorization.k8s.io/v1beta1", "Role"),
        ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
        ("node.k8s.io/v1beta1", "RuntimeClass"),
        ("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema"),
        (
            "flowcontrol.apiserver.k8s.io/v1beta2",
            "PriorityLevelConfiguration",
        ),
        ("batch/v1beta1", "CronJob"),
        ("autoscaling/v2beta2", "HorizontalPodAutoscaler"),
        ("apiregistration.k8s.io/v1beta1", "APIService"),
        ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
    ] {
        assert!(
            objects.contains(&format!("{kind} {api}:")),
            "{kind} {api} not reported in {objects}"
        );
    }
    assert!(!objects.contains("Deployment apps/v1:"), "{objects}");

    // On a cluster that serves all of them, none is reported.
    let (code, report, stderr) = preflight(
        dir.path(),
        &[
            "--blue-context",
            "blue",
            "--green-context",
            "old",
            "--manifests",
            m,
        ],
    )
    .await;
    let apis = check(&report, "removed apiVersions");
    assert_ne!(apis["status"], "fail", "{stderr}\n{apis:#}");
    assert_eq!(code, 0, "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn workload_parity_and_helm_ownership() {
    let ca = TestCa::new();
    let blue = FakeCluster::start(&ca, 32).await;
    let green = FakeCluster::start(&ca, 33).await;
    serve_old_discovery(&green); // serves apps/v1 and v1
    ready_nodes(&green, 3);
    let deps = "/apis/apps/v1/namespaces/shop/deployments";
    blue.serve_objects(
        deps,
        "DeploymentList",
        vec![
            deployment("web", "shop", 2, 2, json!({})),
            deployment("api", "shop", 2, 2, json!({})),
            deployment("worker", "shop", 1, 1, json!({})),
        ],
    );
    green.serve_objects(
        deps,
        "DeploymentList",
        vec![
            deployment("web", "shop", 2, 2, json!({})),
            deployment("api", "shop", 2, 0, json!({})),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kubeconfig"),
        kubeconfig(&ca, &[("blue", &blue), ("green", &green)], &[]),
    )
    .unwrap();

    let (code, report, _) = preflight(
        dir.path(),
        &[
            "--blue-context",
            "blue",
            "--green-context",
            "green",
            "-n",
            "shop",
        ],
    )
    .await;
    assert_eq!(code, 1);
    let parity = check(&report, "workload parity");
    assert_eq!(parity["status"], "fail");
    let objects = parity["objects"].to_string();
    assert!(
        objects.contains("deployment/api in shop: unavailable on green (0/2 available)"),
        "{objects}"
    );
    assert!(
        objects.contains("deployment/worker in shop: missing on green"),
        "{objects}"
    );
    assert!(!objects.contains("deployment/web"), "{objects}");

    // All present and available: parity passes. A Helm release on blue
    // will manage green's existing `web` Deployment, which lacks Helm's keys.
    green.serve_objects(
        deps,
        "DeploymentList",
        vec![
            deployment("web", "shop", 2, 2, json!({})),
            deployment("api", "shop", 2, 2, json!({})),
            deployment("worker", "shop", 1, 1, json!({})),
        ],
    );
    blue.serve_objects(
        "/api/v1/namespaces/shop/secrets",
        "SecretList",
        vec![helm_secret(
            "shop",
            "shop",
            1,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
        )],
    );
    let (code, report, _) = preflight(
        dir.path(),
        &[
            "--blue-context",
            "blue",
            "--green-context",
            "green",
            "-n",
            "shop",
        ],
    )
    .await;
    assert_eq!(
        check(&report, "workload parity")["status"],
        "pass",
        "{report:#}"
    );
    let helm = check(&report, "helm ownership");
    assert_eq!(helm["status"], "fail", "{report:#}");
    assert_eq!(code, 1);
    let fix = helm["remediation"].as_str().unwrap();
    for key in [
        "app.kubernetes.io/managed-by=Helm",
        "meta.helm.sh/release-name=shop",
        "meta.helm.sh/release-namespace=shop",
    ] {
        assert!(fix.contains(key), "remediation lacks {key}: {fix}");
    }
    assert!(fix.contains("deployment/web"), "{fix}");

    // With the keys in place, everything passes.
    let owned = json!({"labels": {"app.kubernetes.io/managed-by": "Helm"}, "annotations": {"meta.helm.sh/release-name": "shop", "meta.helm.sh/release-namespace": "shop"}});
    green.serve_objects(
        deps,
        "DeploymentList",
        vec![
            deployment("web", "shop", 2, 2, owned),
            deployment("api", "shop", 2, 2, json!({})),
            deployment("worker", "shop", 1, 1, json!({})),
        ],
    );
    let (code, report, _) = preflight(
        dir.path(),
        &[
            "--blue-context",
            "blue",
            "--green-context",
            "green",
            "-n",
            "shop",
        ],
    )
    .await;
    assert_eq!(
        check(&report, "helm ownership")["status"],
        "pass",
        "{report:#}"
    );
    assert_eq!(code, 0, "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_kubeconfig_or_context_is_exit_2_and_an_unreachable_green_is_exit_1() {
    let ca = TestCa::new();
    let blue = FakeCluster::start(&ca, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let closed = format!("https://127.0.0.1:{}", e2e::free_port());
    std::fs::write(
        dir.path().join("kubeconfig"),
        kubeconfig(&ca, &[("blue", &blue)], &[("gone", closed)]),
    )
    .unwrap();

    let (code, _, stderr) = preflight(
        dir.path(),
        &["--blue-context", "blue", "--green-context", "nope"],
    )
    .await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--green-context \"nope\": no such context") && stderr.contains("blue"),
        "{stderr}"
    );
    let out = tokio::process::Command::new(bin("cutover"))
        .args([
            "preflight",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "--blue-context",
            "a",
            "--green-context",
            "b",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kubeconfig /nonexistent/kubeconfig"));

    let (code, report, stderr) = preflight(
        dir.path(),
        &["--blue-context", "blue", "--green-context", "gone"],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(check(&report, "green reachable")["status"], "fail");
    assert!(!stderr.contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_with_a_failing_preflight_changes_nothing() {
    let ca = TestCa::new();
    let blue_cluster = FakeCluster::start(&ca, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig_path = dir.path().join("kubeconfig");
    let closed = format!("https://127.0.0.1:{}", e2e::free_port());
    std::fs::write(
        &kubeconfig_path,
        kubeconfig(&ca, &[("blue", &blue_cluster)], &[("green", closed)]),
    )
    .unwrap();
    let blue = e2e::Backend::start("blue");
    let green = e2e::Backend::start("green");
    let gw = e2e::Gateway::start(&e2e::one_route_config(&[&blue], &[&green], ""));
    let plan = dir.path().join("plan.yaml");
    let preflight = format!(
        "preflight: {{blue_context: blue, green_context: green, kubeconfig: \"{}\"}}\n",
        kubeconfig_path.display()
    );
    std::fs::write(
        &plan,
        e2e::test_plan(&[gw.admin_url("")], gw.proxy, "[{green_percent: 50}]", "") + &preflight,
    )
    .unwrap();
    let cutover = e2e::Cutover::new(dir.path());
    let (code, _, stderr) = cutover.output(&["run", plan.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{stderr}");
    let records = cutover.records();
    let pre = records
        .iter()
        .find(|r| r["event"] == "preflight")
        .expect("preflight journaled");
    assert_eq!(pre["passed"], false);
    assert!(pre["checks"].to_string().contains("green reachable"));
    assert!(!records.iter().any(|r| r["event"] == "applied"));
    let state = e2e::Admin::new(&gw).state().await;
    assert_eq!(
        state["generation"], 0,
        "a failed preflight changed the split"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_network_runbooks_preflight_of_deploy_kubernetes_runs_clean() {
    let Some(discovery) = e2e::shared_fixtures("kubernetes/discovery/recent") else {
        return;
    };
    let line = e2e::docs::runbook("network")
        .into_iter()
        .find(|l| l.starts_with("cutover preflight") && l.contains("--manifests"))
        .expect("the network runbook runs a preflight with --manifests");
    let ca = TestCa::new();
    let blue = FakeCluster::start(&ca, 32).await;
    let green = FakeCluster::start(&ca, 33).await;
    green.serve_discovery_dir(&discovery); // serves every apiVersion deploy/kubernetes uses
    ready_nodes(&green, 3);
    // Namespace `shop` is empty on both (no workloads, no Helm releases).
    for cluster in [&blue, &green] {
        for (path, list) in [
            ("/api/v1/namespaces/shop/secrets", "SecretList"),
            ("/api/v1/namespaces/shop/services", "ServiceList"),
            (
                "/apis/apps/v1/namespaces/shop/deployments",
                "DeploymentList",
            ),
            (
                "/apis/apps/v1/namespaces/shop/statefulsets",
                "StatefulSetList",
            ),
            ("/apis/apps/v1/namespaces/shop/daemonsets", "DaemonSetList"),
            (
                "/apis/networking.k8s.io/v1/namespaces/shop/ingresses",
                "IngressList",
            ),
        ] {
            cluster.serve_objects(path, list, Vec::new());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(
        &config,
        kubeconfig(&ca, &[("aks-blue", &blue), ("aks-green", &green)], &[]),
    )
    .unwrap();
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{line} --output json"))
        .current_dir(e2e::docs::repo())
        .env("KUBECONFIG", &config)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin("cutover").parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let apis = check(&report, "removed apiVersions");
    assert_eq!(apis["status"], "pass", "{apis:#}\n{stderr}");
    assert!(
        !apis.to_string().contains("kustomize"),
        "a Kustomization was read as an object: {apis:#}"
    );
    // The Kustomize folders were rendered, and the gateway config and
    // plans beside them are not objects: nothing else was in the way.
    assert!(stderr.contains("rendered"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{stderr}");
}
