//! Replicas sharing a Kubernetes store follow it: every document the watch
//! delivers goes through the same snapshot swap as a local change.

use crate::control::Gateway;
use crate::state::Store;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;

pub struct FollowStore {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl BackgroundService for FollowStore {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Store::Kubernetes(store) = self.gateway.store() else {
            return; // local stores have nobody else writing to them
        };
        let mut documents = store.watch();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                doc = documents.recv() => match doc {
                    Some(doc) => self.gateway.adopt(doc).await,
                    None => return,
                },
            }
        }
    }
}
