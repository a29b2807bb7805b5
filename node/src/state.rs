//! The [`cairn_raft::Application`] of a node: applies replicated [`Command`]s to the config
//! store and to persistent naming data. Commands and responses are JSON in the Raft log:
//! human-inspectable, and config contents are text anyway.

use std::sync::Arc;

use cairn_raft::{AppError, Application};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::configs::service::ConfigService;
use crate::configs::store::ConfigStore;
use crate::error::{Error, Result};
use crate::naming::persist::NamingPersist;
use crate::replicate::{Command, Replicator, Response, StateRead};

/// Snapshot of every application table.
#[derive(Serialize, Deserialize, Default)]
struct Snapshot {
    configs: Vec<u8>,
    naming: Vec<u8>,
}

/// The node's Raft application.
pub struct NodeState {
    configs: Arc<ConfigStore>,
    naming: NamingPersist,
    service: std::sync::OnceLock<std::sync::Weak<ConfigService>>,
}

impl NodeState {
    /// Creates the application over the given stores.
    pub fn new(configs: Arc<ConfigStore>, naming: NamingPersist) -> Self {
        NodeState { configs, naming, service: std::sync::OnceLock::new() }
    }

    /// Connects the service that is told about committed changes (set once, after start).
    pub fn attach(&self, service: &Arc<ConfigService>) {
        let _ = self.service.set(Arc::downgrade(service));
    }
}

fn corrupt(e: impl std::fmt::Display) -> AppError {
    AppError::Corrupt(e.to_string())
}

fn storage(e: Error) -> AppError {
    AppError::Corrupt(e.to_string())
}

impl Application for NodeState {
    fn open(&self, tx: &redb::ReadTransaction) -> Result<(), AppError> {
        self.configs.load(tx).map_err(storage)?;
        self.naming.load(tx).map_err(storage)
    }

    fn apply(&self, tx: &redb::WriteTransaction, index: u64, command: &[u8]) -> Result<Vec<u8>, AppError> {
        let cmd: Command =
            serde_json::from_slice(command).map_err(|e| AppError::Rejected(format!("undecodable command: {e}")))?;
        let resp = match cmd {
            Command::Config(c) => Response::Config(self.configs.apply(tx, index, &c).map_err(storage)?),
            Command::Naming(c) => Response::Naming(self.naming.apply(tx, &c).map_err(storage)?),
        };
        serde_json::to_vec(&resp).map_err(corrupt)
    }

    fn after_commit(&self, _applied: &[(u64, Vec<u8>)]) {
        self.naming.committed();
        let changes = self.configs.committed();
        if let Some(svc) = self.service.get().and_then(std::sync::Weak::upgrade) {
            svc.on_committed(&changes);
        }
    }

    fn snapshot(&self, tx: &redb::ReadTransaction) -> Result<Vec<u8>, AppError> {
        let snap = Snapshot {
            configs: self.configs.snapshot(tx).map_err(storage)?,
            naming: self.naming.snapshot(tx).map_err(storage)?,
        };
        crate::tables::to_blob(&snap).map_err(storage)
    }

    fn restore(&self, tx: &redb::WriteTransaction, data: &[u8]) -> Result<(), AppError> {
        let snap: Snapshot =
            if data.is_empty() { Snapshot::default() } else { crate::tables::from_blob(data).map_err(storage)? };
        self.configs.restore(tx, &snap.configs).map_err(storage)?;
        self.naming.restore(tx, &snap.naming).map_err(storage)
    }
}

/// Writes through, and reads from, the node's Raft.
pub struct RaftReplicator {
    raft: Arc<cairn_raft::RaftNode>,
}

impl RaftReplicator {
    /// Wraps a started Raft node.
    pub fn new(raft: Arc<cairn_raft::RaftNode>) -> Self {
        RaftReplicator { raft }
    }
}

impl StateRead for RaftReplicator {
    fn read(&self, f: &mut dyn FnMut(&redb::ReadTransaction)) -> Result<()> {
        self.raft.read(|tx| f(tx)).map_err(|e| Error::Storage { action: "reading state", message: e.to_string() })
    }
}

impl Replicator for RaftReplicator {
    fn replicate(&self, cmd: Command) -> BoxFuture<'_, Result<Response>> {
        Box::pin(async move {
            let bytes = serde_json::to_vec(&cmd).map_err(|e| Error::Malformed(e.to_string()))?;
            let out = self.raft.write(bytes).await.map_err(|e| Error::Unavailable(e.to_string()))?;
            serde_json::from_slice::<Response>(&out)
                .map_err(|e| Error::Storage { action: "decoding a Raft response", message: e.to_string() })
        })
    }
}
