//! The [`cairn_raft::Application`] of a node: applies replicated [`Command`]s to the config
//! store and to persistent naming data. Commands and responses are JSON in the Raft log:
//! human-inspectable, and config contents are text anyway.

use std::sync::Arc;

use cairn_raft::{AppError, Application};
use futures::future::BoxFuture;
use serde::Deserialize;

use crate::configs::service::ConfigService;
use crate::configs::store::ConfigStore;
use crate::error::{Error, Result};
use crate::naming::persist::NamingPersist;
use crate::replicate::{Command, Replicator, Response, StateRead};

/// Snapshot of every application table: two byte strings, the config store's and persistent
/// naming's (each written in place by their `snapshot`, borrowed here on restore).
#[derive(Deserialize, Default)]
struct Snapshot<'a> {
    #[serde(borrow)]
    configs: &'a [u8],
    #[serde(borrow)]
    naming: &'a [u8],
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

    fn snapshot(&self, tx: &redb::ReadTransaction, out: &mut Vec<u8>) -> Result<(), AppError> {
        self.configs.snapshot(tx, out).map_err(storage)?;
        self.naming.snapshot(tx, out).map_err(storage)
    }

    fn restore(&self, tx: &redb::WriteTransaction, data: &[u8]) -> Result<(), AppError> {
        let snap: Snapshot<'_> =
            if data.is_empty() { Snapshot::default() } else { crate::tables::from_blob(data).map_err(storage)? };
        self.configs.restore(tx, snap.configs).map_err(storage)?;
        self.naming.restore(tx, snap.naming).map_err(storage)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use redb::ReadableDatabase;

    use super::*;
    use crate::configs::command::ConfigCommand;
    use crate::configs::model::{ConfigKey, ConfigMeta};
    use crate::metrics::Metrics;
    use crate::naming::persist::NamingCommand;
    use crate::naming::{DirtySet, Instance, Registry, ServiceKey, Settings};

    fn node_state() -> (NodeState, Arc<ConfigStore>, Arc<Registry>) {
        let settings = Settings {
            beat_timeout: Duration::from_secs(15),
            delete_timeout: Duration::from_secs(30),
            empty_service_clean: Duration::from_secs(60),
        };
        let registry = Arc::new(Registry::new(
            settings,
            Metrics::new(prometheus::Registry::new()).unwrap(),
            Arc::new(DirtySet::default()),
        ));
        let configs = Arc::new(ConfigStore::new());
        (NodeState::new(configs.clone(), NamingPersist::new(registry.clone())), configs, registry)
    }

    fn db(name: &str) -> (std::path::PathBuf, redb::Database) {
        let path = std::env::temp_dir().join(format!("cairn-state-{}-{name}.redb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let db = redb::Database::create(&path).unwrap();
        (path, db)
    }

    fn apply(app: &NodeState, db: &redb::Database, index: u64, cmd: Command) -> Response {
        let tx = db.begin_write().unwrap();
        let out = app.apply(&tx, index, &serde_json::to_vec(&cmd).unwrap()).unwrap();
        tx.commit().unwrap();
        app.after_commit(&[]);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn snapshot_restores_configs_and_persistent_naming() {
        let (app, _, _) = node_state();
        let (p1, db1) = db("a");
        let key = ConfigKey::new("", "G", "app.yaml");
        let publish = ConfigCommand::Publish {
            key: key.clone(),
            content: "a: ✓".into(),
            meta: ConfigMeta::default(),
            cas_md5: None,
            beta_ips: None,
            src_user: String::new(),
            src_ip: String::new(),
            at_ms: 1,
        };
        apply(&app, &db1, 1, Command::Config(publish));
        let svc = ServiceKey::new("", "", "persist");
        let inst = Instance {
            ephemeral: false,
            metadata: BTreeMap::from([("k".to_string(), "v".to_string())]).into(),
            ..Instance::sample("10.0.0.1", 80)
        };
        apply(&app, &db1, 2, Command::Naming(NamingCommand::Register { key: svc.clone(), instance: inst }));
        let mut snap = Vec::new();
        app.snapshot(&db1.begin_read().unwrap(), &mut snap).unwrap();

        // A fresh node restores the snapshot and opens it: everything is back, in memory too.
        let (app2, configs2, registry2) = node_state();
        let (p2, db2) = db("b");
        let tx = db2.begin_write().unwrap();
        app2.restore(&tx, &snap).unwrap();
        tx.commit().unwrap();
        app2.open(&db2.begin_read().unwrap()).unwrap();
        assert_eq!(configs2.get(&key).unwrap().content, "a: ✓");
        let hosts = registry2.query(&svc, &[], false).unwrap().hosts;
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].metadata.get("k"), Some("v"));
        assert!(!hosts[0].ephemeral);
        for p in [p1, p2] {
            let _ = std::fs::remove_file(p);
        }
    }
}
