//! A fake Kubernetes API server for ConfigMaps, speaking the real protocol
//! the gateway's kube client uses: get, list and watch (JSON lines with
//! resourceVersions), and replace guarded by `resourceVersion` (409 on a
//! stale one; none at all replaces unconditionally, as the real one does).
//! Like RBAC limited by `resourceNames`, it refuses a list or watch without
//! a `metadata.name` field selector. It also lists EndpointSlices by their
//! `kubernetes.io/service-name` label, as the cutover engine finds a fleet
//! behind a headless Service.

use bytes::Bytes;
use futures_util::stream;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

type Body = BoxBody<Bytes, Infallible>;

#[derive(Default)]
struct Objects {
    resource_version: u64,
    /// (namespace, name) → ConfigMap object.
    configmaps: BTreeMap<(String, String), Value>,
    /// Every change, for watches that resume from a resourceVersion.
    history: Vec<(u64, &'static str, Value)>,
    /// (namespace, service) → the ready addresses of its one EndpointSlice.
    endpoint_slices: BTreeMap<(String, String), Vec<String>>,
}

pub struct FakeApiServer {
    pub addr: SocketAddr,
    objects: Arc<Mutex<Objects>>,
    events: broadcast::Sender<(u64, &'static str, Value)>,
    conflict_next_put: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
    server: Option<tokio::task::JoinHandle<()>>,
}

fn full(v: Value) -> Body {
    Full::new(Bytes::from(v.to_string())).boxed()
}

fn status(code: StatusCode, reason: &str, message: String) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(full(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
        })))
        .unwrap()
}

impl FakeApiServer {
    pub async fn start() -> FakeApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fake = FakeApiServer {
            addr,
            objects: Arc::default(),
            events: broadcast::channel(1024).0,
            conflict_next_put: Arc::default(),
            refused: Arc::default(),
            server: None,
        };
        fake.serve(listener);
        fake
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let handler = Arc::new(Handler {
            objects: self.objects.clone(),
            events: self.events.clone(),
            conflict_next_put: self.conflict_next_put.clone(),
            refused: self.refused.clone(),
        });
        self.server = Some(tokio::spawn(async move {
            // Connections live in this set: stopping the server ends them
            // all, as a dead API server would.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        }));
    }

    /// The API server goes away: the listener closes and every connection
    /// (watches included) is cut.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Comes back on the same address with the same objects.
    pub async fn restart(&mut self) {
        self.stop();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// Creates or replaces a ConfigMap as another writer would.
    pub fn put_configmap(&self, namespace: &str, name: &str, data: BTreeMap<String, String>) {
        let mut objects = self.objects.lock().unwrap();
        objects.resource_version += 1;
        let rv = objects.resource_version;
        let key = (namespace.to_owned(), name.to_owned());
        let kind = if objects.configmaps.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv.to_string(),
                         "uid": format!("uid-{namespace}-{name}"), "labels": {"app": "gateway"}},
            "data": data,
        });
        objects.configmaps.insert(key, object.clone());
        objects.history.push((rv, kind, object.clone()));
        let _ = self.events.send((rv, kind, object));
    }

    /// The Service `service` in `namespace` has these ready endpoints.
    pub fn put_endpoints(&self, namespace: &str, service: &str, addresses: &[&str]) {
        self.objects.lock().unwrap().endpoint_slices.insert(
            (namespace.to_owned(), service.to_owned()),
            addresses.iter().map(|a| a.to_string()).collect(),
        );
    }

    pub fn configmap(&self, namespace: &str, name: &str) -> Option<Value> {
        let objects = self.objects.lock().unwrap();
        objects
            .configmaps
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every version the ConfigMap has had, oldest first: what was written
    /// to the store, in order.
    pub fn versions(&self, namespace: &str, name: &str) -> Vec<Value> {
        let objects = self.objects.lock().unwrap();
        objects
            .history
            .iter()
            .map(|(_, _, o)| o)
            .filter(|o| o["metadata"]["namespace"] == namespace && o["metadata"]["name"] == name)
            .cloned()
            .collect()
    }

    /// The next replace answers 409, as if someone else wrote first.
    pub fn conflict_next_put(&self) {
        self.conflict_next_put.store(true, Ordering::SeqCst);
    }

    /// Lists or watches refused for lacking the name field selector.
    pub fn refused_requests(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// A kubeconfig whose one context points at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            r#"apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster: {{server: "http://{}"}}
users:
  - name: gateway
    user: {{token: fake-token}}
contexts:
  - name: fake
    context: {{cluster: fake, user: gateway, namespace: default}}
current-context: fake
"#,
            self.addr
        )
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Handler {
    objects: Arc<Mutex<Objects>>,
    events: broadcast::Sender<(u64, &'static str, Value)>,
    conflict_next_put: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
}

impl Handler {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let query: BTreeMap<String, String> =
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (req.method().clone(), parts.as_slice()) {
            (Method::GET, ["api", "v1", "namespaces", ns, "configmaps"]) => {
                let Some(name) = query
                    .get("fieldSelector")
                    .and_then(|f| f.strip_prefix("metadata.name="))
                else {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                    return status(
                        StatusCode::FORBIDDEN,
                        "Forbidden",
                        format!("configmaps is forbidden: cannot list resource \"configmaps\" in namespace \"{ns}\" without a metadata.name field selector"),
                    );
                };
                let (ns, name) = (ns.to_string(), name.to_owned());
                if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
                    let since: u64 = query
                        .get("resourceVersion")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    self.watch(ns, name, since)
                } else {
                    self.list(&ns, &name)
                }
            }
            (
                Method::GET,
                ["apis", "discovery.k8s.io", "v1", "namespaces", ns, "endpointslices"],
            ) => {
                let service = query
                    .get("labelSelector")
                    .and_then(|l| l.strip_prefix("kubernetes.io/service-name="))
                    .unwrap_or_default();
                self.endpoint_slices(ns, service)
            }
            (Method::GET, ["api", "v1", "namespaces", ns, "configmaps", name]) => {
                match self
                    .objects
                    .lock()
                    .unwrap()
                    .configmaps
                    .get(&(ns.to_string(), name.to_string()))
                {
                    Some(o) => Response::new(full(o.clone())),
                    None => status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("configmaps \"{name}\" not found"),
                    ),
                }
            }
            (Method::PUT, ["api", "v1", "namespaces", ns, "configmaps", name]) => {
                let (ns, name) = (ns.to_string(), name.to_string());
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
                    return status(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "malformed ConfigMap".into(),
                    );
                };
                self.replace(&ns, &name, &mut object)
            }
            _ => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("the fake has no {path}"),
            ),
        }
    }

    fn list(&self, ns: &str, name: &str) -> Response<Body> {
        let objects = self.objects.lock().unwrap();
        let items: Vec<Value> = objects
            .configmaps
            .get(&(ns.to_owned(), name.to_owned()))
            .cloned()
            .into_iter()
            .collect();
        Response::new(full(json!({
            "apiVersion": "v1", "kind": "ConfigMapList",
            "metadata": {"resourceVersion": objects.resource_version.to_string()},
            "items": items,
        })))
    }

    fn endpoint_slices(&self, ns: &str, service: &str) -> Response<Body> {
        let objects = self.objects.lock().unwrap();
        let items: Vec<Value> = objects
            .endpoint_slices
            .get(&(ns.to_owned(), service.to_owned()))
            .map(|addresses| {
                json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": format!("{service}-abcde"), "namespace": ns,
                                 "labels": {"kubernetes.io/service-name": service}},
                    "addressType": "IPv4",
                    "endpoints": addresses.iter().map(|a| json!({
                        "addresses": [a], "conditions": {"ready": true, "serving": true, "terminating": false},
                    })).collect::<Vec<_>>(),
                    "ports": [{"name": "admin", "port": 9090, "protocol": "TCP"}],
                })
            })
            .into_iter()
            .collect();
        Response::new(full(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList",
            "metadata": {"resourceVersion": objects.resource_version.to_string()},
            "items": items,
        })))
    }

    fn replace(&self, ns: &str, name: &str, object: &mut Value) -> Response<Body> {
        let conflict_message = format!(
            "Operation cannot be fulfilled on configmaps \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        );
        if self.conflict_next_put.swap(false, Ordering::SeqCst) {
            return status(StatusCode::CONFLICT, "Conflict", conflict_message);
        }
        let mut objects = self.objects.lock().unwrap();
        let key = (ns.to_owned(), name.to_owned());
        let Some(current) = objects.configmaps.get(&key) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("configmaps \"{name}\" not found"),
            );
        };
        // As the real API server: no resourceVersion is an unconditional
        // update (ConfigMaps allow it), a stale one is a conflict.
        let given = object["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if !given.is_empty() && given != current["metadata"]["resourceVersion"].as_str().unwrap() {
            return status(StatusCode::CONFLICT, "Conflict", conflict_message);
        }
        objects.resource_version += 1;
        let rv = objects.resource_version;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        objects.configmaps.insert(key, object.clone());
        objects.history.push((rv, "MODIFIED", object.clone()));
        let _ = self.events.send((rv, "MODIFIED", object.clone()));
        Response::new(full(object.clone()))
    }

    /// Events after `since`, then live ones, as JSON lines.
    fn watch(&self, ns: String, name: String, since: u64) -> Response<Body> {
        let mut live = self.events.subscribe();
        let backlog: Vec<_> = self
            .objects
            .lock()
            .unwrap()
            .history
            .iter()
            .filter(|(rv, ..)| *rv > since)
            .cloned()
            .collect();
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        tokio::spawn(async move {
            let matches = |o: &Value| {
                o["metadata"]["namespace"] == ns.as_str() && o["metadata"]["name"] == name.as_str()
            };
            let mut sent = since;
            for (rv, kind, object) in backlog {
                if matches(&object) {
                    let line = json!({"type": kind, "object": object}).to_string() + "\n";
                    if tx.send(Bytes::from(line)).await.is_err() {
                        return;
                    }
                }
                sent = rv;
            }
            while let Ok((rv, kind, object)) = live.recv().await {
                if rv > sent && matches(&object) {
                    let line = json!({"type": kind, "object": object}).to_string() + "\n";
                    if tx.send(Bytes::from(line)).await.is_err() {
                        return;
                    }
                }
            }
        });
        let frames = stream::unfold(rx, |mut rx| async move {
            let chunk = rx.recv().await?;
            Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
        });
        Response::builder()
            .header("content-type", "application/json")
            .body(StreamBody::new(frames).boxed())
            .unwrap()
    }
}
