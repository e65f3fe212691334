//! `cutover network plan` end to end: from inventory files, and live from
//! a fake Azure Resource Manager serving the real ARM examples, with a fake
//! `az` as the only credential (nothing leaves loopback).

use e2e::bin;
use e2e::fake_arm::{ArmData, FakeArm};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const CLUSTER: &str = r#"
name: green
network_plugin: azure_cni_overlay
node_pools: [{name: system, max_count: 3, max_pods: 30}]
service_cidr: 12.1.0.0/16
dns_service_ip: 12.1.0.10
pod_cidr: 100.64.0.0/16
"#;

fn body(dir: &Path, file: &str) -> Value {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
    doc["responses"]["200"]["body"].clone()
}

/// A directory with a fake `az` that hands out a fixed token.
fn fake_az(dir: &Path) -> String {
    let az = dir.join("az");
    std::fs::write(
        &az,
        "#!/bin/sh\necho '{\"accessToken\": \"fake-cli-token\", \"expires_on\": 4102444800, \"subscription\": \"subid\", \"tenant\": \"t\", \"tokenType\": \"Bearer\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

async fn network_plan(dir: &Path, path_env: &str, args: &[&str]) -> (i32, String, String) {
    let cluster = dir.join("cluster.yaml");
    if !cluster.exists() {
        std::fs::write(&cluster, CLUSTER).unwrap();
    }
    let out = tokio::process::Command::new(bin("cutover"))
        .args([
            "network",
            "plan",
            "--cluster",
            cluster.to_str().unwrap(),
            "--output",
            "json",
        ])
        .args(args)
        .env("PATH", path_env)
        // Make sure no other credential could be picked up.
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env_remove("AZURE_TENANT_ID")
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("MSI_ENDPOINT")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn real_arm_examples_read_through_the_azure_source() {
    let Some(fx) = e2e::shared_fixtures("azure-arm") else {
        return;
    };
    let data = ArmData {
        vnet: body(&fx, "VirtualNetworkGet.json"),
        subnets: body(&fx, "SubnetList.json")["value"]
            .as_array()
            .unwrap()
            .clone(),
        peerings: body(&fx, "VirtualNetworkPeeringList.json")["value"]
            .as_array()
            .unwrap()
            .clone(),
        page_size: 1,
        foreign_next_link: false,
    };
    let arm = FakeArm::start(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = fake_az(dir.path());
    let endpoint = format!("http://{}", arm.addr);
    let azure = [
        "--azure-subscription",
        "subid",
        "--resource-group",
        "rg1",
        "--vnet",
        "test-vnet",
        "--azure-endpoint",
        &endpoint,
        "--azure-credential",
        "cli",
    ];
    let (code, stdout, stderr) = network_plan(dir.path(), &path, &azure).await;
    assert_eq!(code, 1, "the examples leave no room: {stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["vnet"], "test-vnet");
    assert_eq!(report["fits"], false);
    // Both subnets of SubnetList.json (10.0.0.0/16 each) were read, across
    // two pages, and their overlap is a warning.
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("subnet1 (10.0.0.0/16) and subnet2 (10.0.0.0/16) overlap"),
        "{warnings}"
    );
    let subnet_pages = arm
        .requests()
        .iter()
        .filter(|r| r.contains("/subnets?"))
        .count();
    assert_eq!(subnet_pages, 2, "{:?}", arm.requests());
    // The peering's remote space (12.0.0.0/8) collides with the service CIDR.
    assert!(
        report["conflicts"]
            .to_string()
            .contains("peered range peer (12.0.0.0/8)"),
        "{}",
        report["conflicts"]
    );
    assert!(
        arm.requests()
            .iter()
            .all(|r| r.ends_with("Bearer fake-cli-token")),
        "{:?}",
        arm.requests()
    );

    // An inventory file adds what Azure does not know: here, more space.
    std::fs::write(
        dir.path().join("extra.yaml"),
        "vnets: [{name: test-vnet, address_spaces: [10.1.0.0/24]}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("cluster.yaml"),
        CLUSTER.replace("12.1.", "10.250."),
    )
    .unwrap();
    let extra = dir.path().join("extra.yaml");
    let mut args = azure.to_vec();
    args.extend(["--inventory", extra.to_str().unwrap()]);
    let (code, stdout, stderr) = network_plan(dir.path(), &path, &args).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["subnets"][0]["cidr"], "10.1.0.0/28");
    assert_eq!(report["subnets"][0]["required_addresses"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_errors_say_what_to_check_and_foreign_links_are_refused() {
    let data = ArmData {
        vnet: json!({"name": "v", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}),
        subnets: (0..3).map(|i| json!({"name": format!("s{i}"), "properties": {"addressPrefix": format!("10.0.{i}.0/24")}})).collect(),
        peerings: vec![],
        page_size: 2,
        foreign_next_link: true,
    };
    let arm = FakeArm::start(data).await;
    let dir = tempfile::tempdir().unwrap();
    let path = fake_az(dir.path());
    let endpoint = format!("http://{}", arm.addr);
    let run = |rg: &'static str, vnet: &'static str| {
        let (dir, path, endpoint) = (dir.path().to_owned(), path.clone(), endpoint.clone());
        async move {
            network_plan(
                &dir,
                &path,
                &[
                    "--azure-subscription",
                    "subid",
                    "--resource-group",
                    rg,
                    "--vnet",
                    vnet,
                    "--azure-endpoint",
                    &endpoint,
                    "--azure-credential",
                    "cli",
                ],
            )
            .await
        }
    };
    let (code, _, stderr) = run("forbidden-rg", "v").await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("(403)") && stderr.contains("grant it Reader"),
        "{stderr}"
    );
    let (code, _, stderr) = run("rg", "missing").await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("(404)") && stderr.contains("--vnet \"missing\""),
        "{stderr}"
    );
    let (code, _, stderr) = run("throttled-rg", "v").await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("(429)") && stderr.contains("wait a minute"),
        "{stderr}"
    );
    let (code, _, stderr) = run("rg", "v").await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("refused to follow a link to https://attacker.invalid"),
        "{stderr}"
    );
    assert!(arm.requests().iter().all(|r| !r.contains("attacker")));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_exit_2_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inv.yaml");
    let path = std::env::var("PATH").unwrap_or_default();
    let good_inventory = "vnets: [{name: v, address_spaces: [10.0.0.0/16], subnets: [{name: a, address_prefix: 10.0.0.0/24}, {name: b, address_prefix: 10.0.0.128/25}]}]\n";
    let cases = [
        (
            good_inventory.replace("10.0.0.128/25", "10.0.0.300/25"),
            CLUSTER.to_owned(),
            "vnets[0] (v).subnets[1] (b).address_prefix: \"10.0.0.300/25\" is not a CIDR",
        ),
        (
            good_inventory.to_owned(),
            CLUSTER.replace("azure_cni_overlay", "calico_magic"),
            "unknown variant `calico_magic`",
        ),
        (
            good_inventory.to_owned(),
            CLUSTER.replace("max_count: 3", "max_count: -3"),
            "node_pools[0].max_count",
        ),
    ];
    for (inv, cluster, expected) in cases {
        std::fs::write(&inventory, inv).unwrap();
        std::fs::write(dir.path().join("cluster.yaml"), cluster).unwrap();
        let (code, _, stderr) = network_plan(
            dir.path(),
            &path,
            &["--inventory", inventory.to_str().unwrap()],
        )
        .await;
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
    }
    // Overlapping subnets in the inventory (real data has them): a warning.
    std::fs::write(&inventory, good_inventory).unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), CLUSTER).unwrap();
    let (code, stdout, _) = network_plan(
        dir.path(),
        &path,
        &["--inventory", inventory.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0);
    assert!(stdout.contains("a (10.0.0.0/24) and b (10.0.0.128/25) overlap"));
}

#[tokio::test]
async fn the_example_files_plan_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tokio::process::Command::new(bin("cutover"))
        .current_dir(&root)
        .args([
            "network",
            "plan",
            "--inventory",
            "deploy/examples/network.yaml",
            "--cluster",
            "deploy/examples/cluster.yaml",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("fits: yes"));
}
