//! The set of services whose subscribers need a push: deduplicated, with the time of the first
//! change so the dispatcher can report change-to-push latency.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::naming::model::ServiceKey;

/// What to push: the service and, for a targeted re-push, one connection only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PushTask {
    /// The changed service.
    pub key: ServiceKey,
    /// `Some(conn)`: push to this subscriber only (first push after subscribe, or a retry).
    pub only: Option<u64>,
}

/// A deduplicating queue of push tasks with a wake-up signal.
#[derive(Default)]
pub struct DirtySet {
    pending: Mutex<HashMap<PushTask, Instant>>,
    notify: Notify,
}

impl DirtySet {
    /// Marks a task; a task already pending keeps its first change time.
    pub fn mark(&self, task: PushTask) {
        self.pending.lock().entry(task).or_insert_with(Instant::now);
        self.notify.notify_one();
    }

    /// Takes everything pending.
    pub fn drain(&self) -> Vec<(PushTask, Instant)> {
        self.pending.lock().drain().collect()
    }

    /// Waits until something is marked.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}
