//! `cutover network plan --emit az`: the script runs in a real shell
//! against a stand-in `az` that records its arguments, and every flag it
//! passes is one that `az` documents (tests/fixtures/az, transcribed from
//! the Azure CLI reference) with a value it accepts; the values are the
//! ranges the plan proved free.

use e2e::bin;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A documented parameter: its names and what it takes.
#[derive(Debug)]
enum Takes {
    Switch,
    Value,
    OneOf(Vec<String>),
}

/// `az`'s documented parameters of one command, by every name.
fn documented(file: &str) -> BTreeMap<String, Takes> {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/az").join(file)).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let names: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| w.starts_with('-'))
            .collect();
        let takes = match words.last() {
            Some(&"VALUE") => Takes::Value,
            Some(w) if w.starts_with('{') => Takes::OneOf(
                w.trim_matches(['{', '}'])
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
            ),
            _ => Takes::Switch,
        };
        for name in &names[1..] {
            out.insert((*name).to_owned(), clone(&takes));
        }
        out.insert(names[0].to_owned(), takes);
    }
    out
}

fn clone(t: &Takes) -> Takes {
    match t {
        Takes::Switch => Takes::Switch,
        Takes::Value => Takes::Value,
        Takes::OneOf(v) => Takes::OneOf(v.clone()),
    }
}

async fn cutover(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(bin("cutover"))
        .current_dir(repo())
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `script` in bash with a recording `az` first on PATH; each call's
/// arguments, in order.
fn run_script(dir: &Path, script: &str, env: &[(&str, &str)]) -> (bool, String, Vec<Vec<String>>) {
    let az = dir.join("az");
    let log = dir.join("az.log");
    std::fs::write(&az, "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\037' \"$a\"; done >> \"$AZ_LOG\"\necho >> \"$AZ_LOG\"\n").unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = std::fs::remove_file(&log);
    let out = std::process::Command::new("bash")
        .args(["-euc", script])
        .env(
            "PATH",
            format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("AZ_LOG", &log)
        .env_remove("SUBSCRIPTION")
        .env_remove("RESOURCE_GROUP")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            l.split('\x1f')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        calls,
    )
}

/// Checks one call against the documented parameters; returns its
/// options as name → value.
fn check_call(call: &[String]) -> BTreeMap<String, String> {
    let head: Vec<&str> = call.iter().take(4).map(String::as_str).collect();
    let (words, file) = match head[..] {
        ["aks", "create", ..] => (2, "aks-create.txt"),
        ["aks", "nodepool", "add", ..] => (3, "aks-nodepool-add.txt"),
        ["network", "vnet", "subnet", "create"] => (4, "network-vnet-subnet-create.txt"),
        _ => panic!("an az command the fixtures do not hold: {call:?}"),
    };
    let documented = documented(file);
    let mut options = BTreeMap::new();
    let mut rest = call[words..].iter().peekable();
    while let Some(flag) = rest.next() {
        let takes = documented.get(flag.as_str()).unwrap_or_else(|| {
            panic!(
                "{flag} is not an `az {}` parameter: {call:?}",
                call[..words].join(" ")
            )
        });
        let value = match takes {
            Takes::Switch => String::new(),
            Takes::Value | Takes::OneOf(_) => {
                let v = rest
                    .next()
                    .unwrap_or_else(|| panic!("{flag} needs a value"));
                assert!(!v.starts_with("--"), "{flag} needs a value, got {v}");
                v.clone()
            }
        };
        if let Takes::OneOf(allowed) = takes {
            assert!(
                allowed.contains(&value),
                "{flag} {value}: az takes one of {allowed:?}"
            );
        }
        assert!(
            options.insert(flag.clone(), value).is_none(),
            "{flag} twice"
        );
    }
    options
}

#[tokio::test]
async fn the_example_plan_emits_az_calls_az_documents_with_the_proved_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let plan = [
        "network",
        "plan",
        "--inventory",
        "deploy/examples/network.yaml",
        "--cluster",
    ];
    let (code, json, _) =
        cutover(&[&plan[..], &["deploy/examples/cluster.yaml", "-o", "json"]].concat()).await;
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&json).unwrap();
    let (code, script, stderr) =
        cutover(&[&plan[..], &["deploy/examples/cluster.yaml", "--emit", "az"]].concat()).await;
    assert_eq!(code, 0, "{stderr}");

    // Without the subscription and resource group the script stops first.
    let (ok, stderr, calls) = run_script(dir.path(), &script, &[]);
    assert!(!ok && calls.is_empty(), "{stderr}");
    assert!(
        stderr.contains("set RESOURCE_GROUP") || stderr.contains("set SUBSCRIPTION"),
        "{stderr}"
    );

    let env = [("SUBSCRIPTION", "0000-sub"), ("RESOURCE_GROUP", "rg-net")];
    let (ok, stderr, calls) = run_script(dir.path(), &script, &env);
    assert!(ok, "{stderr}\n{script}");
    let subnets = report["subnets"].as_array().unwrap();
    assert_eq!(
        calls.len(),
        subnets.len() + 3,
        "the subnets, the cluster, two more pools:\n{script}"
    );
    for (call, subnet) in calls.iter().zip(subnets) {
        let o = check_call(call);
        assert_eq!(o["--address-prefixes"], subnet["cidr"].as_str().unwrap());
        assert_eq!(o["--name"], subnet["name"].as_str().unwrap());
        assert_eq!(o["--vnet-name"], "vnet-prod-weu");
        assert_eq!(o["--resource-group"], "rg-net");
    }
    let create = check_call(&calls[subnets.len()]);
    assert_eq!(create["--network-plugin"], "azure");
    assert_eq!(create["--network-plugin-mode"], "overlay");
    assert_eq!(create["--pod-cidr"], "100.65.0.0/16");
    assert_eq!(create["--service-cidr"], "10.101.0.0/16");
    assert_eq!(create["--dns-service-ip"], "10.101.0.10");
    assert_eq!(create["--max-pods"], "30");
    assert_eq!(
        create["--vnet-subnet-id"],
        "/subscriptions/0000-sub/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet-prod-weu/subnets/aks-green-nodes"
    );
    let apps = check_call(&calls[subnets.len() + 1]);
    assert_eq!(
        (
            apps["--name"].as_str(),
            apps["--max-pods"].as_str(),
            apps["--max-count"].as_str()
        ),
        ("apps", "110", "60")
    );
    assert_eq!(apps["--vnet-subnet-id"], create["--vnet-subnet-id"]);
    assert_eq!(apps["--max-surge"], "33%", "the surge the plan counted");
}

#[tokio::test]
async fn a_pod_subnet_cluster_gets_its_pod_subnet_and_a_plan_that_does_not_fit_emits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo().join("deploy/examples/cluster.yaml")).unwrap();
    let pod_subnet = dir.path().join("cilium.yaml");
    std::fs::write(
        &pod_subnet,
        example
            .replace(
                "network_plugin: azure_cni_overlay",
                "network_plugin: cilium_pod_subnet",
            )
            .replace("pod_cidr: 100.65.0.0/16", ""),
    )
    .unwrap();
    let args = [
        "network",
        "plan",
        "--inventory",
        "deploy/examples/network.yaml",
        "--emit",
        "az",
        "--cluster",
    ];
    let (code, script, stderr) =
        cutover(&[&args[..], &[pod_subnet.to_str().unwrap()]].concat()).await;
    assert_eq!(code, 0, "{stderr}");
    let (ok, stderr, calls) = run_script(
        dir.path(),
        &script,
        &[("SUBSCRIPTION", "s"), ("RESOURCE_GROUP", "g")],
    );
    assert!(ok, "{stderr}");
    let create = calls
        .iter()
        .map(|c| check_call(c))
        .find(|o| o.contains_key("--network-plugin"))
        .unwrap();
    assert_eq!(create["--network-dataplane"], "cilium");
    assert!(create["--pod-subnet-id"].ends_with("/subnets/aks-green-pods"));
    assert!(!create.contains_key("--pod-cidr") && !create.contains_key("--network-plugin-mode"));

    let huge = dir.path().join("huge.yaml");
    std::fs::write(&huge, example.replace("max_count: 60", "max_count: 60000")).unwrap();
    let (code, stdout, stderr) = cutover(&[&args[..], &[huge.to_str().unwrap()]].concat()).await;
    assert_eq!(code, 1);
    assert!(!stdout.contains("az "), "{stdout}");
    assert!(
        stderr.contains("no commands emitted: the plan does not fit"),
        "{stderr}"
    );
}
