//! The config center's service layer: validates requests, turns writes into replicated
//! [`ConfigCommand`]s, serves reads from the committed in-memory view, and tells listeners
//! (gRPC connections and parked long polls) about committed changes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::configs::command::{ConfigCommand, ConfigOutcome};
use crate::configs::listeners::{Listeners, Spelled};
use crate::configs::longpoll::Listened;
use crate::configs::model::{ConfigItem, ConfigKey, ConfigMeta, HistoryRecord, Namespace};
use crate::configs::store::{Change, ConfigStore};
use crate::configs::validate;
use crate::error::{Error, Result};
use crate::replicate::{self, Replicator, StateRead, read_with};

/// A publish as received from a client (raw strings; validated here).
#[derive(Clone, Debug, Default)]
pub struct PublishInput {
    /// tenant / namespaceId as sent.
    pub namespace: String,
    /// group (empty → DEFAULT_GROUP).
    pub group: String,
    /// dataId.
    pub data_id: String,
    /// content.
    pub content: String,
    /// `type`.
    pub kind: String,
    /// `appName`.
    pub app_name: String,
    /// `desc`.
    pub desc: String,
    /// `config_tags` (comma separated).
    pub tags: String,
    /// `use`.
    pub usage: String,
    /// `effect`.
    pub effect: String,
    /// `schema`.
    pub schema: String,
    /// `encryptedDataKey`.
    pub encrypted_data_key: String,
    /// `casMd5` (empty = no CAS).
    pub cas_md5: String,
    /// `betaIps` (comma separated; empty = formal publish).
    pub beta_ips: String,
    /// `src_user`.
    pub src_user: String,
    /// Client IP.
    pub src_ip: String,
}

/// Now, in epoch milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The config center.
pub struct ConfigService {
    store: Arc<ConfigStore>,
    reader: Arc<dyn StateRead>,
    listeners: Listeners,
    replicator: Arc<dyn Replicator>,
    max_content: usize,
    notify: mpsc::UnboundedSender<ConfigKey>,
}

impl ConfigService {
    /// Creates the service; committed changes that gRPC listeners must hear of go to `notify`.
    /// `reader` reads the state-machine database the store's tables live in (history).
    pub fn new(
        store: Arc<ConfigStore>,
        reader: Arc<dyn StateRead>,
        replicator: Arc<dyn Replicator>,
        max_content: usize,
        notify: mpsc::UnboundedSender<ConfigKey>,
    ) -> Self {
        ConfigService { store, reader, listeners: Listeners::default(), replicator, max_content, notify }
    }

    /// History of a config, newest first: (total, page).
    pub fn history(&self, key: &ConfigKey, page_no: usize, page_size: usize) -> Result<(usize, Vec<HistoryRecord>)> {
        read_with(&*self.reader, |tx| self.store.history(tx, key, page_no, page_size))
    }

    /// One history record.
    pub fn history_record(&self, nid: u64) -> Result<Option<HistoryRecord>> {
        read_with(&*self.reader, |tx| self.store.history_record(tx, nid))
    }

    /// The record before `nid` of the same config.
    pub fn history_previous(&self, nid: u64) -> Result<Option<HistoryRecord>> {
        read_with(&*self.reader, |tx| self.store.history_previous(tx, nid))
    }

    /// The committed store.
    pub fn store(&self) -> &Arc<ConfigStore> {
        &self.store
    }

    /// The listener registry.
    pub fn listeners(&self) -> &Listeners {
        &self.listeners
    }

    /// Validates and builds a key (namespace may be empty = public).
    pub fn key(namespace: &str, group: &str, data_id: &str) -> Result<ConfigKey> {
        validate::namespace(namespace)?;
        let group = if group.is_empty() { crate::configs::model::DEFAULT_GROUP } else { group };
        validate::group(group)?;
        validate::data_id(data_id)?;
        Ok(ConfigKey::new(namespace, group, data_id))
    }

    fn require_namespace(&self, key: &ConfigKey) -> Result<()> {
        if self.store.namespace_exists(&key.namespace) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("namespaceId [ {} ] not exist", key.namespace)))
        }
    }

    /// A config as committed (callers pick the gray or formal view with `ConfigItem::view_for`).
    pub fn get(&self, key: &ConfigKey) -> Option<Arc<ConfigItem>> {
        self.store.get(key)
    }

    /// Publishes (insert, update, CAS update, or gray version).
    pub async fn publish(&self, input: PublishInput) -> Result<()> {
        let key = Self::key(&input.namespace, &input.group, &input.data_id)?;
        validate::content(&input.content, self.max_content)?;
        validate::descriptive(&input.desc, &input.usage, &input.effect, &input.schema)?;
        let tags = validate::tags(&input.tags)?;
        self.require_namespace(&key)?;
        let beta_ips: Vec<String> =
            input.beta_ips.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let cmd = ConfigCommand::Publish {
            key,
            content: input.content,
            meta: ConfigMeta {
                kind: validate::config_type(if input.kind.is_empty() { "text" } else { &input.kind }),
                app_name: input.app_name,
                desc: input.desc,
                tags,
                usage: input.usage,
                effect: input.effect,
                schema: input.schema,
                encrypted_data_key: input.encrypted_data_key,
            },
            cas_md5: Some(input.cas_md5).filter(|c| !c.is_empty()),
            beta_ips: if beta_ips.is_empty() { None } else { Some(beta_ips) },
            src_user: input.src_user,
            src_ip: input.src_ip,
            at_ms: now_ms(),
        };
        match replicate::config(&*self.replicator, cmd).await? {
            ConfigOutcome::Done { .. } => Ok(()),
            ConfigOutcome::CasMismatch => Err(Error::CasMismatch("publish failed: server md5 may have changed".into())),
            ConfigOutcome::NotFound => Err(Error::NotFound("config data not exist".into())),
            ConfigOutcome::Rejected(why) => Err(Error::InvalidParam(why)),
            other @ ConfigOutcome::Purged { .. } => {
                Err(Error::Storage { action: "publishing a config", message: format!("unexpected {other:?}") })
            }
        }
    }

    /// Removes a config (or its gray version); removing what does not exist succeeds, as in Nacos.
    pub async fn remove(&self, key: ConfigKey, beta_only: bool, src_user: String, src_ip: String) -> Result<()> {
        let cmd = ConfigCommand::Remove { key, beta_only, src_user, src_ip, at_ms: now_ms() };
        match replicate::config(&*self.replicator, cmd).await? {
            ConfigOutcome::Rejected(why) => Err(Error::InvalidParam(why)),
            _ => Ok(()),
        }
    }

    /// Deletes up to `limit` history records older than `before_ms` (epoch ms); returns how many.
    pub async fn purge_history(&self, before_ms: i64, limit: u32) -> Result<u32> {
        match replicate::config(&*self.replicator, ConfigCommand::PurgeHistory { before_ms, limit }).await? {
            ConfigOutcome::Purged { count } => Ok(count),
            other => Err(Error::Storage { action: "purging config history", message: format!("unexpected {other:?}") }),
        }
    }

    /// Creates a namespace.
    pub async fn create_namespace(&self, id: &str, name: &str, desc: &str) -> Result<()> {
        validate::namespace(id)?;
        if id.is_empty() {
            return Err(Error::InvalidParam("namespaceId must not be blank".into()));
        }
        let ns = Namespace { id: id.into(), name: name.into(), desc: desc.into(), created_ms: now_ms() };
        match replicate::config(&*self.replicator, ConfigCommand::CreateNamespace(ns)).await? {
            ConfigOutcome::Rejected(why) => Err(Error::Conflict(why)),
            _ => Ok(()),
        }
    }

    /// Updates a namespace's name and description.
    pub async fn update_namespace(&self, id: &str, name: &str, desc: &str) -> Result<()> {
        let cmd = ConfigCommand::UpdateNamespace { id: id.into(), name: name.into(), desc: desc.into() };
        match replicate::config(&*self.replicator, cmd).await? {
            ConfigOutcome::NotFound => Err(Error::NotFound(format!("namespaceId [ {id} ] not exist"))),
            ConfigOutcome::Rejected(why) => Err(Error::Conflict(why)),
            _ => Ok(()),
        }
    }

    /// Deletes an empty namespace.
    pub async fn delete_namespace(&self, id: &str) -> Result<()> {
        match replicate::config(&*self.replicator, ConfigCommand::DeleteNamespace { id: id.into() }).await? {
            ConfigOutcome::NotFound => Err(Error::NotFound(format!("namespaceId [ {id} ] not exist"))),
            ConfigOutcome::Rejected(why) => Err(Error::Conflict(why)),
            _ => Ok(()),
        }
    }

    /// md5 a client at `client_ip` should hold for `key` (`""` when the config does not exist).
    pub fn md5_for(&self, key: &ConfigKey, client_ip: &str) -> String {
        self.store.get(key).map(|i| i.view_for(client_ip).1.to_owned()).unwrap_or_default()
    }

    /// gRPC listen: registers the keys and returns those whose md5 differs from the client's.
    pub fn listen(&self, conn: u64, client_ip: &str, keys: Vec<(ConfigKey, Spelled, String)>) -> Vec<Spelled> {
        let regs: Vec<(ConfigKey, Spelled)> = keys.iter().map(|(k, s, _)| (k.clone(), s.clone())).collect();
        self.listeners.listen(conn, &regs);
        keys.into_iter().filter(|(k, _, md5)| &self.md5_for(k, client_ip) != md5).map(|(_, s, _)| s).collect()
    }

    /// HTTP long poll: answers at once with changed keys, or parks up to `hold` for a change.
    pub async fn long_poll(
        &self,
        listened: Vec<Listened>,
        client_ip: &str,
        hold: Option<Duration>,
    ) -> Result<Vec<Listened>> {
        let mut keyed = Vec::with_capacity(listened.len());
        for l in listened {
            let key = Self::key(l.tenant.as_deref().unwrap_or(""), &l.group, &l.data_id)?;
            keyed.push((key, l));
        }
        let changed = |keyed: &[(ConfigKey, Listened)]| -> Vec<Listened> {
            keyed.iter().filter(|(k, l)| self.md5_for(k, client_ip) != l.md5).map(|(_, l)| l.clone()).collect()
        };
        let now = changed(&keyed);
        let Some(hold) = hold.filter(|_| now.is_empty()) else { return Ok(now) };
        let mut guard = self.listeners.park(keyed.clone(), client_ip);
        // A change committed between the first check and parking is caught here.
        let now = changed(&keyed);
        if !now.is_empty() {
            return Ok(now);
        }
        match tokio::time::timeout(hold, &mut guard.rx).await {
            Ok(Ok(changed)) => Ok(changed),
            _ => Ok(Vec::new()),
        }
    }

    /// Called after a Raft batch committed: wakes long polls and queues gRPC notifications.
    pub fn on_committed(&self, changes: &[Change]) {
        for c in changes {
            if let Change::Config { key, md5_changed: true, .. } = c {
                self.listeners.wake_polls(key, |k, ip| self.md5_for(k, ip));
                let _ = self.notify.send(key.clone());
            }
        }
    }
}
