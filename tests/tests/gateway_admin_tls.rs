//! The admin API over TLS with client certificates, so a fleet in another
//! cluster or network is driven safely: without a certificate the CA signed
//! no handshake completes; `cutover` with the plan's `admin_tls` drives it.

use e2e::fake_k8s::TestCa;
use e2e::{one_route_config, Backend, Cutover, Gateway};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_over_mutual_tls_takes_only_clients_with_a_certificate() {
    let blue = Backend::start("blue");
    let green = Backend::start("green");
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ca_file = write("ca.pem", &ca.pem());
    let (cert, key) = ca.leaf_named("gateway admin");
    let (cert_file, key_file) = (write("admin.crt", &cert), write("admin.key", &key));
    let (client_cert, client_key) = ca.leaf_named("operator ana");
    let client_cert_file = write("ana.crt", &client_cert);
    let client_key_file = write("ana.key", &client_key);
    let config = one_route_config(&[&blue], &[&green], "").replace(
        "admin: {address: \"{admin}\"}",
        &format!(
            "admin: {{address: \"{{admin}}\", tls: {{cert_file: \"{cert_file}\", key_file: \"{key_file}\", client_ca_file: \"{ca_file}\"}}}}"
        ),
    );
    let gw = Gateway::start(&config);
    let state_url = format!("https://{}/v1/state", gw.admin);
    let trusting = || {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
    };

    // Plain HTTP gets no answer; TLS without a client certificate neither.
    assert!(reqwest::get(gw.admin_url("/v1/state")).await.is_err());
    let anonymous = trusting().build().unwrap();
    let refused = anonymous.get(&state_url).send().await;
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );

    // With the operator's certificate the API answers.
    let identity =
        reqwest::Identity::from_pkcs8_pem(client_cert.as_bytes(), client_key.as_bytes()).unwrap();
    let ana = trusting().identity(identity).build().unwrap();
    let state: Value = e2e::get_json(&ana, &state_url).await;
    assert_eq!(state["routes"]["web"]["green_percent"], 0.0);

    // cutover drives it through the plan's admin_tls.
    let plan = write(
        "plan.yaml",
        &format!(
            r#"fleet:
  admin_urls: ["https://{admin}"]
  proxy_url: "http://{proxy}"
  admin_tls: {{ca_file: "{ca_file}", client_cert_file: "{client_cert_file}", client_key_file: "{client_key_file}"}}
routes: [web]
steps: [{{green_percent: 100, hold: 1s}}]
"#,
            admin = gw.admin,
            proxy = gw.proxy
        ),
    );
    let cutover = Cutover::new(dir.path());
    let (code, _, stderr) = cutover.emergency("green", ["--plan", &plan], "drill").await;
    assert_eq!(code, 0, "{stderr}");
    let state: Value = e2e::get_json(&ana, &state_url).await;
    assert_eq!(state["routes"]["web"]["green_percent"], 100.0, "{state}");
}
