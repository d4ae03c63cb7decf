//! The gRPC channels to the workers, by worker id. The scheduler's state
//! knows workers by id only; whoever carries out a dispatch or an effect
//! looks the channel up here, outside the state's lock.

use gridmr_net::auth::WorkerRpc;
use std::collections::HashMap;
use std::sync::Mutex;

/// Workers' channels.
#[derive(Default)]
pub(crate) struct WorkerPool {
    clients: Mutex<HashMap<String, WorkerRpc>>,
}

impl WorkerPool {
    /// Sets the channel of worker `id` (a worker that registers again gets
    /// its new address's).
    pub(crate) fn insert(&self, id: &str, client: WorkerRpc) {
        if let Ok(mut c) = self.clients.lock() {
            c.insert(id.to_owned(), client);
        }
    }

    /// The channel of worker `id` (a cheap clone of a shared connection).
    pub(crate) fn get(&self, id: &str) -> Option<WorkerRpc> {
        self.clients.lock().ok().and_then(|c| c.get(id).cloned())
    }
}
