//! The replicas in service, as a load balancer with readiness probes sees
//! them: a killed replica leaves at once, a restarted one comes back when
//! `/readyz` says so. The client load picks from it per request, and a
//! small TCP load balancer (where the plan's smoke checks go) per
//! connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub struct Ring {
    /// Per replica: its proxy address and a client with a fresh
    /// connection pool, while in service.
    slots: Mutex<Vec<Option<(SocketAddr, reqwest::Client)>>>,
    next: AtomicUsize,
    /// When each replica was killed and taken out of service.
    kills: Mutex<Vec<KillWindow>>,
}

/// A replica killed at `killed`, out of service from `removed`: requests
/// sent to it before `removed` that were still open at `killed` were in
/// flight on a dying process.
#[derive(Clone, Copy, Debug)]
pub struct KillWindow {
    pub replica: usize,
    pub killed: Instant,
    pub removed: Instant,
}

impl Ring {
    pub fn new(replicas: usize) -> Ring {
        Ring {
            slots: Mutex::new(vec![None; replicas]),
            next: AtomicUsize::new(0),
            kills: Mutex::new(Vec::new()),
        }
    }

    pub fn add(&self, replica: usize, proxy: SocketAddr) {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap();
        self.slots.lock().unwrap()[replica] = Some((proxy, client));
    }

    /// Takes a replica out after it was killed at `killed`.
    pub fn remove_killed(&self, replica: usize, killed: Instant) {
        self.slots.lock().unwrap()[replica] = None;
        self.kills.lock().unwrap().push(KillWindow {
            replica,
            killed,
            removed: Instant::now(),
        });
    }

    /// The next replica in service, round robin.
    pub fn pick(&self) -> Option<(usize, SocketAddr, reqwest::Client)> {
        let slots = self.slots.lock().unwrap();
        for _ in 0..slots.len() {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % slots.len();
            if let Some((addr, client)) = &slots[i] {
                return Some((i, *addr, client.clone()));
            }
        }
        None
    }

    pub fn in_service(&self) -> Vec<usize> {
        let slots = self.slots.lock().unwrap();
        (0..slots.len()).filter(|&i| slots[i].is_some()).collect()
    }

    pub fn kills(&self) -> Vec<KillWindow> {
        self.kills.lock().unwrap().clone()
    }
}

/// A TCP load balancer on a fresh loopback port: each connection goes to
/// the next replica in service.
pub async fn serve_load_balancer(ring: std::sync::Arc<Ring>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let Some((_, upstream, _)) = ring.pick() else {
                continue; // nothing in service: the connection closes
            };
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    addr
}
