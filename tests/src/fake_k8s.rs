//! A fake Kubernetes API server over TLS (as real clusters are), serving
//! canned GET responses: discovery documents (from files named like the
//! shared fixtures, `apis__apps__v1.json` = `GET /apis/apps/v1`), `/version`,
//! and object lists and objects. Anything else is a 404 `Status`.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A CA for the fake clusters; kubeconfigs trust it.
pub struct TestCa {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: OpenSSL takes a leaf whose issuer equals its
        // subject for a self-signed certificate.
        params
            .distinguished_name
            .push(DnType::CommonName, "fake cluster CA");
        TestCa {
            ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    pub fn pem(&self) -> String {
        self.ca.pem()
    }

    fn leaf(&self) -> (String, String) {
        self.leaf_named("fake kube-apiserver")
    }

    /// A certificate (PEM) and its PKCS#8 key (PEM) for 127.0.0.1 and
    /// localhost, signed by this CA: a server's or a client's.
    pub fn leaf_named(&self, common_name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// `(kind, plural, namespaced)` of a served resource.
pub type Kind<'a> = (&'a str, &'a str, bool);

pub struct FakeCluster {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Value>>>,
}

impl FakeCluster {
    /// Starts a cluster reporting Kubernetes 1.`minor`.
    pub async fn start(ca: &TestCa, minor: u32) -> FakeCluster {
        let (cert, key) = ca.leaf();
        let routes: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        routes.lock().unwrap().insert(
            "/version".into(),
            json!({"major": "1", "minor": minor.to_string(), "gitVersion": format!("v1.{minor}.3"), "platform": "linux/amd64"}),
        );
        let served = routes.clone();
        let addr = crate::tls::serve(crate::tls::acceptor(&cert, &key, false), move |tls| {
            let routes = served.clone();
            async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let routes = routes.clone();
                    async move { Ok::<_, Infallible>(answer(&routes, req)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            }
        })
        .await;
        FakeCluster { addr, routes }
    }

    pub fn serve(&self, path: &str, body: Value) {
        self.routes.lock().unwrap().insert(path.to_owned(), body);
    }

    /// Every discovery document in `dir` (`api__v1.json` → `/api/v1`).
    pub fn serve_discovery_dir(&self, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            if stem.starts_with("aggregated") {
                continue;
            }
            let url = format!("/{}", stem.replace("__", "/"));
            self.serve(
                &url,
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap(),
            );
        }
    }

    /// Serves `GET /apis/{gv}` for each group version with its kinds,
    /// as an old cluster would: `(group_version, [(kind, plural, namespaced)])`.
    pub fn serve_group_versions(&self, gvs: &[(&str, &[Kind])]) {
        for (gv, kinds) in gvs {
            let resources: Vec<Value> = kinds
                .iter()
                .map(|(kind, plural, namespaced)| json!({"name": plural, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]}))
                .collect();
            let prefix = if gv.contains('/') { "/apis" } else { "/api" };
            self.serve(&format!("{prefix}/{gv}"), json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}));
        }
    }

    /// A list at `collection` (e.g. `/apis/apps/v1/namespaces/shop/deployments`)
    /// and each item at `collection/name`.
    pub fn serve_objects(&self, collection: &str, list_kind: &str, items: Vec<Value>) {
        for item in &items {
            let name = item["metadata"]["name"].as_str().unwrap();
            self.serve(&format!("{collection}/{name}"), item.clone());
        }
        self.serve(
            collection,
            json!({"kind": list_kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}),
        );
    }

    /// A kubeconfig context entry for this cluster.
    pub fn kubeconfig_entry(&self, name: &str, ca: &TestCa) -> (String, String) {
        use base64::Engine;
        let ca_data = base64::engine::general_purpose::STANDARD.encode(ca.pem());
        (
            format!("  - name: {name}\n    cluster: {{server: \"https://{}\", certificate-authority-data: {ca_data}}}\n", self.addr),
            format!("  - name: {name}\n    context: {{cluster: {name}, user: operator}}\n"),
        )
    }
}

/// A kubeconfig with one context per `(name, cluster)`, plus extra
/// `(name, server)` contexts that point anywhere (e.g. a closed port).
pub fn kubeconfig(
    ca: &TestCa,
    clusters: &[(&str, &FakeCluster)],
    extra: &[(&str, String)],
) -> String {
    use base64::Engine;
    let mut cluster_entries = String::new();
    let mut contexts = String::new();
    for (name, c) in clusters {
        let (cl, cx) = c.kubeconfig_entry(name, ca);
        cluster_entries.push_str(&cl);
        contexts.push_str(&cx);
    }
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca.pem());
    for (name, server) in extra {
        cluster_entries.push_str(&format!("  - name: {name}\n    cluster: {{server: \"{server}\", certificate-authority-data: {ca_data}}}\n"));
        contexts.push_str(&format!(
            "  - name: {name}\n    context: {{cluster: {name}, user: operator}}\n"
        ));
    }
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{cluster_entries}contexts:\n{contexts}users:\n  - name: operator\n    user: {{token: test-token}}\ncurrent-context: {}\n",
        clusters.first().map(|c| c.0).unwrap_or("none")
    )
}

fn answer(routes: &Mutex<HashMap<String, Value>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let found = routes.lock().unwrap().get(path).cloned();
    let (status, body) = match found {
        Some(v) if req.method() == http::Method::GET => (StatusCode::OK, v),
        _ => (
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": format!("the server could not find the requested resource ({path})"), "reason": "NotFound", "code": 404}),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}
