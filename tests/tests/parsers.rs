//! Every parser that takes outside input, fed mutated and random input:
//! none panics, and every refusal says where (a field, a line, a layer).
//!
//! Seeds are the shipped examples and, for Helm and ARM, the real public
//! documents in `../shared/fixtures` (skipped where absent). The mutations
//! insert, delete, replace and repeat bytes, favouring the characters that
//! carry structure in YAML and JSON.
//!
//! `PROPTEST_CASES` sets the cases per parser (proptest's default, 256, in
//! CI); the long form is `PROPTEST_CASES=10000 cargo test -p e2e --test parsers`.

use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, TestRunner};
use std::io::{Read, Write};
use std::path::Path;

const STRUCTURE: &[u8] = b":-[]{},\"' \n\t0123456789.#&*!|>%@`\\/";

/// A few edits of `seed`.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![any::<u8>(), proptest::sample::select(STRUCTURE)];
    let len = seed.len().max(1);
    proptest::collection::vec((0..len, byte, 0u8..4), 1..8).prop_map(move |edits| {
        let mut bytes = seed.clone();
        for (at, byte, op) in edits {
            let at = at.min(bytes.len());
            match op {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                2 if at < bytes.len() => bytes[at] = byte,
                _ => {
                    // Repeat a piece: duplicated keys, nested structure.
                    let end = (at + usize::from(byte % 48)).min(bytes.len());
                    let piece = bytes[at..end].to_vec();
                    bytes.splice(at..at, piece);
                }
            }
        }
        bytes
    })
}

/// Mutations of any of `seeds`, or random bytes.
fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let seeded = proptest::sample::select(seeds).prop_flat_map(mutated);
    prop_oneof![4 => seeded, 1 => proptest::collection::vec(any::<u8>(), 0..256)]
}

/// Runs `check` on `strategy`'s values, as many as `PROPTEST_CASES` says.
fn run<S: Strategy>(strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(RunConfig {
        failure_persistence: None,
        ..RunConfig::default()
    });
    if let Err(e) = runner.run(&strategy, check) {
        panic!("{e}");
    }
}

/// An error names where: a serde location, or a leading `field:` (a path
/// without spaces, such as `routes[0].blue.endpoints[1]`).
fn names_where(error: &str) -> bool {
    error.contains(" line ")
        || error
            .split(": ")
            .next()
            .is_some_and(|at| !at.is_empty() && !at.contains(' ') && at.len() < error.len())
}

fn repo(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)).unwrap()
}

#[test]
fn gateway_config() {
    let dir = tempfile::tempdir().unwrap();
    // Names resolve from this (empty) file only: no mutated name ever
    // reaches a real resolver.
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "").unwrap();
    let file = dir.path().join("gateway.yaml");
    run(
        inputs(vec![repo("deploy/examples/gateway.yaml")]),
        |bytes| {
            // `Config::load` is parse, then validate; they run apart here
            // to point the resolver at the hosts file first.
            let text = String::from_utf8_lossy(&bytes);
            let errors = match serde_yaml_ng::from_str::<gateway::config::Config>(&text) {
                Err(_) => {
                    std::fs::write(&file, &bytes).unwrap();
                    let e = gateway::config::Config::load(&file).expect_err("does not parse");
                    prop_assert_eq!(&e.file, &file);
                    e.errors
                }
                Ok(mut config) => {
                    config.dns.hosts_file = Some(hosts.clone());
                    config.validate()
                }
            };
            for e in &errors {
                prop_assert!(names_where(e), "says not where: {e}");
            }
            Ok(())
        },
    );
}

#[test]
fn cutover_plan() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.yaml");
    let seeds = vec![
        repo("deploy/examples/plan.yaml"),
        repo("deploy/kubernetes/cutover-staged/plan.yaml"),
    ];
    run(inputs(seeds), |bytes| {
        std::fs::write(&file, &bytes).unwrap();
        if let Err(e) = cutover::plan::Plan::load(&file) {
            prop_assert_eq!(&e.file, &file);
            for problem in &e.errors {
                prop_assert!(
                    names_where(problem) || problem.starts_with("cannot read"),
                    "says not where: {problem}"
                );
            }
        }
        Ok(())
    });
}

#[test]
fn journal_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    // A real journal: records of every shape a run writes.
    let records = [
        r#"{"time":"2026-12-02T10:00:00.000Z","actor":"ana@host","event":"converged","step":0}"#,
        r#"{"time":"2026-12-02T10:00:01.000Z","actor":"ana@host","event":"stage_waiting","stage":1,"name":"prod","not_before":"2026-12-09T10:00:01.000Z"}"#,
        r#"{"time":"2026-12-02T10:00:02.000Z","actor":"ben@host","event":"control","command":"pause","reason":null}"#,
        r#"{"time":"2026-12-02T10:00:03.000Z","actor":"ana@host","event":"applied","step":1,"green_percent":25.0,"generations":[["http://a",4]]}"#,
    ];
    run(
        (0..records.len(), mutated(records[1].as_bytes().to_vec())),
        |(damaged, line)| {
            let mut text = Vec::new();
            for (i, r) in records.iter().enumerate() {
                text.extend_from_slice(if i == damaged { &line } else { r.as_bytes() });
                text.push(b'\n');
            }
            std::fs::write(&path, &text).unwrap();
            let read = cutover::journal::read_all(&path)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            // One damaged line costs at most that line.
            prop_assert!(
                read.len() >= records.len() - 1,
                "{} of {}",
                read.len(),
                records.len()
            );
            Ok(())
        },
    );
}

/// The Helm payload inside a release Secret: base64, gzip, JSON.
fn helm_payload(json: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json).unwrap();
    base64::engine::general_purpose::STANDARD
        .encode(gz.finish().unwrap())
        .into_bytes()
}

#[test]
fn helm_release_payloads() {
    let Some(dir) = e2e::shared_fixtures("helm") else {
        return;
    };
    let secret: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("secret.json")).unwrap()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64
        .decode(secret["data"]["release"].as_str().unwrap())
        .unwrap();
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&b64.decode(payload.trim_ascii()).unwrap()[..])
        .read_to_end(&mut json)
        .unwrap();
    assert!(cutover::preflight::sources::decode_release(&payload).is_ok());
    let layers = ["not base64", "not gzip", "not a Helm release"];
    // The release JSON damaged (the manifest inside it too), then encoded
    // as Helm does; or the payload itself damaged.
    let damaged = prop_oneof![
        mutated(json).prop_map(|j| helm_payload(&j)),
        inputs(vec![payload]),
    ];
    run(damaged, |bytes| {
        if let Err(e) = cutover::preflight::sources::decode_release(&bytes) {
            prop_assert!(layers.iter().any(|l| e.starts_with(l)), "which layer? {e}");
        }
        Ok(())
    });
}

#[test]
fn arm_responses() {
    use azure_mgmt_network::package_2024_03::models;
    let Some(dir) = e2e::shared_fixtures("azure-arm") else {
        return;
    };
    let body = |file: &str| {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        serde_json::to_vec(&doc["responses"]["200"]["body"]).unwrap()
    };
    let seeds = vec![
        body("VirtualNetworkGet.json"),
        body("VirtualNetworkGetWithSubnetDelegation.json"),
        body("SubnetList.json"),
        body("VirtualNetworkPeeringList.json"),
    ];
    // What the planner's Azure client parses each response into.
    run(inputs(seeds), |bytes| {
        let results = [
            serde_json::from_slice::<models::VirtualNetwork>(&bytes).err(),
            serde_json::from_slice::<models::SubnetListResult>(&bytes).err(),
            serde_json::from_slice::<models::VirtualNetworkPeeringListResult>(&bytes).err(),
        ];
        for e in results.into_iter().flatten() {
            prop_assert!(e.line() > 0 || e.is_eof(), "{e}");
        }
        Ok(())
    });
}

#[test]
fn gateway_state_file() {
    let seed = br#"{"generation":7,"routes":{"web":2500,"api":0},"changes":[]}"#.to_vec();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.json");
    let store = gateway::state::FileStore::new(path.clone());
    run(inputs(vec![seed]), |bytes| {
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = store.load() {
            let e = e.to_string();
            prop_assert!(
                e.contains(&path.display().to_string()) && e.contains("line "),
                "{e}"
            );
        }
        Ok(())
    });
}

/// Admin request bodies, through a running gateway: a body is applied
/// (200), refused naming the field or the body (400), or stale (409);
/// never a 5xx, and a refused call changes nothing.
#[test]
fn admin_request_bodies() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let blue = e2e::Backend::start("blue");
    let green = e2e::Backend::start("green");
    let gw = e2e::Gateway::start(&e2e::one_route_config(&[&blue], &[&green], ""));
    let calls: Vec<(&str, &str, &str)> = vec![
        (
            "PUT",
            "/v1/splits",
            r#"{"routes": {"web": 25}, "actor": "ana", "reason": "step 2"}"#,
        ),
        (
            "PUT",
            "/v1/routes/web/split",
            r#"{"green_percent": 12.5, "expected_generation": 1}"#,
        ),
        (
            "PUT",
            "/v1/lock",
            r#"{"holder": "ana@host/pid1", "ttl_seconds": 30, "take_over": false}"#,
        ),
        ("POST", "/v1/lock/release", r#"{"holder": "ana@host/pid1"}"#),
    ];
    let client = reqwest::Client::new();
    let state = || {
        rt.block_on(async {
            let state: serde_json::Value = e2e::get_json(&client, &gw.admin_url("/v1/state")).await;
            (
                state["generation"].clone(),
                state["routes"]["web"]["green_percent"].clone(),
                state["lock"].clone(),
            )
        })
    };
    let strategy =
        (0..calls.len()).prop_flat_map(|i| (Just(i), mutated(calls[i].2.as_bytes().to_vec())));
    run(strategy, |(i, body)| {
        let (method, path, _) = calls[i];
        let before = state();
        let (status, answer) = rt.block_on(async {
            let method = http::Method::from_bytes(method.as_bytes()).unwrap();
            let r = client
                .request(method, gw.admin_url(path))
                .bearer_auth(e2e::TOKEN)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
        prop_assert!([200, 400, 409].contains(&status), "{status} {answer}");
        if status != 200 {
            prop_assert_eq!(state(), before, "a refused call changed the state");
        }
        if status == 400 {
            let error: serde_json::Value = serde_json::from_str(&answer).unwrap();
            let error = error["error"].as_str().unwrap_or_default();
            prop_assert!(names_where(error), "says not where: {error}");
        }
        Ok(())
    });
}
