//! The config state machine: applies [`ConfigCommand`]s inside a redb write transaction (so a
//! Raft batch is atomic with `last_applied`), keeps every config in memory for reads, and
//! reports what changed once the transaction is committed.
//!
//! Tables: `configs` (key → item JSON), `config_history` (nid → record JSON), `namespaces`
//! (id → namespace JSON). Which records belong to which config is kept in memory
//! ([`HistoryIndex`]); databases written before that still hold a `config_history_by_key`
//! table, which the first applied command deletes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::configs::command::{ConfigCommand, ConfigOutcome};
use crate::configs::history_index::{HistoryIndex, IndexOp};
use crate::configs::model::{Beta, ConfigItem, ConfigKey, HistoryRecord, Namespace, OpType, md5_hex};
use crate::error::Result;
use crate::naming::model::PUBLIC_NAMESPACE;
use crate::tables::{TableRows, append_blob, from_blob, from_json, get_json, open_for_snapshot, storage, to_json};

const CONFIGS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("configs");
const HISTORY: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("config_history");
/// The on-disk history index of earlier versions (config key␟nid → nid); deleted when found.
const LEGACY_HISTORY_BY_KEY: TableDefinition<'static, &str, u64> = TableDefinition::new("config_history_by_key");
const NAMESPACES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("namespaces");

const SEP: char = '\u{1f}';

fn key_str(k: &ConfigKey) -> String {
    format!("{}{SEP}{}{SEP}{}", k.namespace, k.group, k.data_id)
}

fn key_from_str(s: &str) -> Option<ConfigKey> {
    let mut it = s.split(SEP);
    let (ns, g, d) = (it.next()?, it.next()?, it.next()?);
    Some(ConfigKey::new(ns, g, d))
}

/// The config command being applied, as its history records need it: the transaction, the log
/// index (the history id), the key and who made the change when.
#[derive(Clone, Copy)]
struct Origin<'a> {
    tx: &'a WriteTransaction,
    nid: u64,
    key: &'a ConfigKey,
    src_user: &'a str,
    src_ip: &'a str,
    at_ms: i64,
}

/// A change made visible by a committed transaction.
#[derive(Clone, Debug)]
pub enum Change {
    /// A config was written or removed; `md5_changed` = listeners must be told.
    Config {
        /// Which.
        key: ConfigKey,
        /// New state (`None` = removed).
        item: Option<Arc<ConfigItem>>,
        /// Whether what clients see changed.
        md5_changed: bool,
    },
    /// A namespace was created, updated or deleted.
    Namespace {
        /// Id.
        id: String,
        /// New state (`None` = deleted).
        ns: Option<Namespace>,
    },
}

/// Everything the tables hold, as a Raft snapshot carries it (rows borrowed from the snapshot).
#[derive(Deserialize, Default)]
struct Dump<'a> {
    #[serde(borrow)]
    configs: Vec<(&'a str, &'a [u8])>,
    #[serde(borrow)]
    history: Vec<(u64, &'a [u8])>,
    #[serde(borrow)]
    namespaces: Vec<(&'a str, &'a [u8])>,
}

/// The tables, encoded as [`Dump`] straight from a read transaction.
#[derive(Serialize)]
struct DumpOut<'a> {
    configs: TableRows<'a, &'static str>,
    history: TableRows<'a, u64>,
    namespaces: TableRows<'a, &'static str>,
}

/// What the commands applied in the current transaction changed, visible once it commits.
#[derive(Default)]
struct Pending {
    /// In order, for the in-memory view and for notification.
    changes: Vec<Change>,
    /// History index changes, in order.
    index: Vec<IndexOp>,
    /// Each config's state as of the last command applied (`None` = removed), read by later
    /// commands of the same transaction instead of the committed view.
    items: HashMap<ConfigKey, Option<Arc<ConfigItem>>>,
}

/// The config state machine and its in-memory read view.
#[derive(Default)]
pub struct ConfigStore {
    cache: RwLock<HashMap<ConfigKey, Arc<ConfigItem>>>,
    namespaces: RwLock<BTreeMap<String, Namespace>>,
    history_index: RwLock<HistoryIndex>,
    pending: Mutex<Pending>,
    /// The database still holds [`LEGACY_HISTORY_BY_KEY`].
    legacy_index: AtomicBool,
}

impl ConfigStore {
    /// Creates an empty store (call [`ConfigStore::load`] to fill it from disk).
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads the in-memory view from committed tables.
    pub fn load(&self, tx: &ReadTransaction) -> Result<()> {
        let mut cache = HashMap::new();
        if let Ok(t) = tx.open_table(CONFIGS) {
            for row in t.iter().map_err(|e| storage("reading configs")(e.into()))? {
                let (k, v) = row.map_err(|e| storage("reading configs")(e.into()))?;
                if let Some(key) = key_from_str(k.value()) {
                    cache.insert(key, Arc::new(from_json::<ConfigItem>(v.value(), "reading configs")?));
                }
            }
        }
        let mut namespaces = BTreeMap::new();
        if let Ok(t) = tx.open_table(NAMESPACES) {
            for row in t.iter().map_err(|e| storage("reading namespaces")(e.into()))? {
                let (k, v) = row.map_err(|e| storage("reading namespaces")(e.into()))?;
                namespaces.insert(k.value().to_owned(), from_json::<Namespace>(v.value(), "reading namespaces")?);
            }
        }
        let mut index = HistoryIndex::default();
        if let Ok(t) = tx.open_table(HISTORY) {
            /// The field of a stored [`HistoryRecord`] the index needs.
            #[derive(Deserialize)]
            struct Keyed {
                key: ConfigKey,
            }
            for row in t.iter().map_err(|e| storage("reading history")(e.into()))? {
                let (nid, v) = row.map_err(|e| storage("reading history")(e.into()))?;
                index.add(from_json::<Keyed>(v.value(), "reading history")?.key, nid.value());
            }
        }
        let legacy = tx.open_table(LEGACY_HISTORY_BY_KEY).is_ok();
        *self.cache.write() = cache;
        *self.namespaces.write() = namespaces;
        *self.history_index.write() = index;
        self.legacy_index.store(legacy, Ordering::Relaxed);
        Ok(())
    }

    /// A config as of the commands applied so far in the current transaction.
    fn current(&self, key: &ConfigKey) -> Option<Arc<ConfigItem>> {
        match self.pending.lock().items.get(key) {
            Some(item) => item.clone(),
            None => self.get(key),
        }
    }

    /// Records that the current transaction changed `key` to `item`.
    fn stage(&self, key: &ConfigKey, item: Option<Arc<ConfigItem>>, md5_changed: bool) {
        let mut pending = self.pending.lock();
        pending.items.insert(key.clone(), item.clone());
        pending.changes.push(Change::Config { key: key.clone(), item, md5_changed });
    }

    /// A config as committed.
    pub fn get(&self, key: &ConfigKey) -> Option<Arc<ConfigItem>> {
        self.cache.read().get(key).cloned()
    }

    /// Number of configs.
    pub fn count(&self) -> usize {
        self.cache.read().len()
    }

    /// All configs of a namespace (for listings), sorted by group and dataId.
    pub fn list(&self, namespace: &str) -> Vec<(ConfigKey, Arc<ConfigItem>)> {
        let mut v: Vec<_> = self
            .cache
            .read()
            .iter()
            .filter(|(k, _)| &*k.namespace == namespace)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Known namespaces (the public one is implicit and not stored).
    pub fn namespaces(&self) -> Vec<Namespace> {
        self.namespaces.read().values().cloned().collect()
    }

    /// Whether a namespace exists (public always does).
    pub fn namespace_exists(&self, id: &str) -> bool {
        id.is_empty() || id == PUBLIC_NAMESPACE || self.namespaces.read().contains_key(id)
    }

    /// Applies one command at log `index` inside `tx`. Several commands in one transaction see
    /// each other: configs are read from the changes staged so far, then the committed view;
    /// namespaces through `tx`. The in-memory view changes only in [`Self::committed`].
    pub fn apply(&self, tx: &WriteTransaction, index: u64, cmd: &ConfigCommand) -> Result<ConfigOutcome> {
        if self.legacy_index.swap(false, Ordering::Relaxed) {
            tx.delete_table(LEGACY_HISTORY_BY_KEY).map_err(|e| storage("deleting the old history index")(e.into()))?;
        }
        match cmd {
            ConfigCommand::Publish { key, content, meta, cas_md5, beta_ips, src_user, src_ip, at_ms } => {
                let current = self.current(key);
                if let (Some(cas), Some(cur)) = (cas_md5.as_deref().filter(|c| !c.is_empty()), &current)
                    && cur.md5 != cas
                {
                    return Ok(ConfigOutcome::CasMismatch);
                }
                let md5 = md5_hex(content);
                let current = current.map(Arc::unwrap_or_clone);
                let (item, op, recorded, changed) = match (beta_ips, current) {
                    (Some(ips), Some(mut cur)) => {
                        let changed = cur.beta.as_ref().is_none_or(|b| b.md5 != md5 || &b.ips != ips);
                        cur.beta = Some(Beta {
                            ips: ips.clone(),
                            content: content.clone(),
                            md5: md5.clone(),
                            modified_ms: *at_ms,
                        });
                        (cur, OpType::Update, (content.clone(), md5.clone()), changed)
                    }
                    (Some(_), None) => {
                        return Ok(ConfigOutcome::Rejected(
                            "a gray (beta) version needs the config to exist: publish it first".into(),
                        ));
                    }
                    (None, Some(cur)) => {
                        let changed = cur.md5 != md5;
                        let previous = (cur.content.clone(), cur.md5.clone());
                        let item = ConfigItem {
                            content: content.clone(),
                            md5: md5.clone(),
                            meta: meta.clone(),
                            src_user: src_user.clone(),
                            src_ip: src_ip.clone(),
                            modified_ms: *at_ms,
                            ..cur
                        };
                        (item, OpType::Update, previous, changed)
                    }
                    (None, None) => {
                        let item = ConfigItem {
                            id: index,
                            content: content.clone(),
                            md5: md5.clone(),
                            meta: meta.clone(),
                            src_user: src_user.clone(),
                            src_ip: src_ip.clone(),
                            created_ms: *at_ms,
                            modified_ms: *at_ms,
                            beta: None,
                        };
                        (item, OpType::Insert, (content.clone(), md5.clone()), true)
                    }
                };
                let mut configs = tx.open_table(CONFIGS).map_err(|e| storage("opening configs")(e.into()))?;
                configs
                    .insert(key_str(key).as_str(), to_json(&item).as_slice())
                    .map_err(|e| storage("writing a config")(e.into()))?;
                drop(configs);
                let publish_type = if beta_ips.is_some() { "gray" } else { "formal" };
                let origin = Origin { tx, nid: index, key, src_user, src_ip, at_ms: *at_ms };
                self.record_history(&origin, &item, op, recorded, publish_type)?;
                self.stage(key, Some(Arc::new(item)), changed);
                Ok(ConfigOutcome::Done { changed })
            }
            ConfigCommand::Remove { key, beta_only, src_user, src_ip, at_ms } => {
                let current = self.current(key);
                let Some(mut cur) = current.map(Arc::unwrap_or_clone) else { return Ok(ConfigOutcome::NotFound) };
                let mut configs = tx.open_table(CONFIGS).map_err(|e| storage("opening configs")(e.into()))?;
                let ks = key_str(key);
                let origin = Origin { tx, nid: index, key, src_user, src_ip, at_ms: *at_ms };
                if *beta_only {
                    let Some(beta) = cur.beta.take() else { return Ok(ConfigOutcome::NotFound) };
                    configs
                        .insert(ks.as_str(), to_json(&cur).as_slice())
                        .map_err(|e| storage("writing a config")(e.into()))?;
                    drop(configs);
                    self.record_history(&origin, &cur, OpType::Delete, (beta.content, beta.md5), "gray")?;
                    self.stage(key, Some(Arc::new(cur)), true);
                } else {
                    configs.remove(ks.as_str()).map_err(|e| storage("removing a config")(e.into()))?;
                    drop(configs);
                    let previous = (cur.content.clone(), cur.md5.clone());
                    self.record_history(&origin, &cur, OpType::Delete, previous, "formal")?;
                    self.stage(key, None, true);
                }
                Ok(ConfigOutcome::Done { changed: true })
            }
            ConfigCommand::CreateNamespace(ns) => {
                let mut t = tx.open_table(NAMESPACES).map_err(|e| storage("opening namespaces")(e.into()))?;
                if ns.id == PUBLIC_NAMESPACE
                    || t.get(ns.id.as_str()).map_err(|e| storage("reading a namespace")(e.into()))?.is_some()
                {
                    return Ok(ConfigOutcome::Rejected(format!("namespace {} already exists", ns.id)));
                }
                t.insert(ns.id.as_str(), to_json(ns).as_slice())
                    .map_err(|e| storage("writing a namespace")(e.into()))?;
                self.pending.lock().changes.push(Change::Namespace { id: ns.id.clone(), ns: Some(ns.clone()) });
                Ok(ConfigOutcome::Done { changed: true })
            }
            ConfigCommand::UpdateNamespace { id, name, desc } => {
                let mut t = tx.open_table(NAMESPACES).map_err(|e| storage("opening namespaces")(e.into()))?;
                let current: Option<Namespace> = get_json(&t, id.as_str(), "reading a namespace")?;
                let Some(mut ns) = current else { return Ok(ConfigOutcome::NotFound) };
                ns.name = name.clone();
                ns.desc = desc.clone();
                t.insert(id.as_str(), to_json(&ns).as_slice()).map_err(|e| storage("writing a namespace")(e.into()))?;
                self.pending.lock().changes.push(Change::Namespace { id: id.clone(), ns: Some(ns) });
                Ok(ConfigOutcome::Done { changed: true })
            }
            ConfigCommand::DeleteNamespace { id } => {
                let configs = tx.open_table(CONFIGS).map_err(|e| storage("opening configs")(e.into()))?;
                let prefix = format!("{id}{SEP}");
                let mut range = configs.range(prefix.as_str()..).map_err(|e| storage("reading configs")(e.into()))?;
                let non_empty = match range.next() {
                    Some(Ok((k, _))) => k.value().starts_with(&prefix),
                    _ => false,
                };
                drop(range);
                drop(configs);
                if non_empty {
                    return Ok(ConfigOutcome::Rejected(format!("namespace {id} still holds configs")));
                }
                let mut t = tx.open_table(NAMESPACES).map_err(|e| storage("opening namespaces")(e.into()))?;
                if t.remove(id.as_str()).map_err(|e| storage("removing a namespace")(e.into()))?.is_none() {
                    return Ok(ConfigOutcome::NotFound);
                }
                self.pending.lock().changes.push(Change::Namespace { id: id.clone(), ns: None });
                Ok(ConfigOutcome::Done { changed: true })
            }
            ConfigCommand::PurgeHistory { before_ms, limit } => self.purge_history(tx, *before_ms, *limit),
        }
    }

    /// Deletes history records older than `before_ms`, oldest (lowest `nid`) first, stopping at
    /// the first newer record or after `limit`. Records are in `nid` (log) order, which follows
    /// time up to the skew between the members' clocks; a stray older record behind a newer one
    /// goes in a later round. A record that does not decode stops the purge (it is kept and logged).
    fn purge_history(&self, tx: &WriteTransaction, before_ms: i64, limit: u32) -> Result<ConfigOutcome> {
        /// The fields of a stored [`HistoryRecord`] the purge needs.
        #[derive(Deserialize)]
        struct Dated {
            key: ConfigKey,
            modified_ms: i64,
        }
        let mut h = tx.open_table(HISTORY).map_err(|e| storage("opening history")(e.into()))?;
        let mut doomed = Vec::new();
        for row in h.iter().map_err(|e| storage("reading history")(e.into()))? {
            if doomed.len() >= limit as usize {
                break;
            }
            let (nid, v) = row.map_err(|e| storage("reading history")(e.into()))?;
            match serde_json::from_slice::<Dated>(v.value()) {
                Ok(d) if d.modified_ms < before_ms => doomed.push((nid.value(), d.key)),
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(nid = nid.value(), error = %e, "history purge stops at an undecodable record");
                    break;
                }
            }
        }
        let count = doomed.len() as u32;
        let mut pending = self.pending.lock();
        for (nid, key) in doomed {
            h.remove(nid).map_err(|e| storage("purging history")(e.into()))?;
            pending.index.push(IndexOp::Remove(key, nid));
        }
        Ok(ConfigOutcome::Purged { count })
    }

    /// Writes the history record (op, recorded content and its md5, publish type) of a change to
    /// `item`, made by the command that `origin` describes.
    fn record_history(
        &self,
        origin: &Origin<'_>,
        item: &ConfigItem,
        op: OpType,
        (content, md5): (String, String),
        publish_type: &str,
    ) -> Result<()> {
        let Origin { tx, nid, key, src_user, src_ip, at_ms } = *origin;
        let rec = HistoryRecord {
            nid,
            id: item.id,
            key: key.clone(),
            md5,
            content,
            app_name: item.meta.app_name.clone(),
            src_user: src_user.to_owned(),
            src_ip: src_ip.to_owned(),
            op,
            publish_type: publish_type.to_owned(),
            modified_ms: at_ms,
        };
        let mut h = tx.open_table(HISTORY).map_err(|e| storage("opening history")(e.into()))?;
        h.insert(nid, to_json(&rec).as_slice()).map_err(|e| storage("writing history")(e.into()))?;
        self.pending.lock().index.push(IndexOp::Add(rec.key, nid));
        Ok(())
    }

    /// Makes the changes of a committed transaction visible; returns them for notification.
    pub fn committed(&self) -> Vec<Change> {
        let Pending { changes, index, items: _ } = std::mem::take(&mut *self.pending.lock());
        if !index.is_empty() {
            self.history_index.write().apply(index);
        }
        if changes.is_empty() {
            return changes;
        }
        let mut cache = self.cache.write();
        let mut namespaces = self.namespaces.write();
        for c in &changes {
            match c {
                Change::Config { key, item: Some(item), .. } => {
                    cache.insert(key.clone(), item.clone());
                }
                Change::Config { key, item: None, .. } => {
                    cache.remove(key);
                }
                Change::Namespace { id, ns: Some(ns) } => {
                    namespaces.insert(id.clone(), ns.clone());
                }
                Change::Namespace { id, ns: None } => {
                    namespaces.remove(id);
                }
            }
        }
        changes
    }

    /// Drops uncommitted changes (the transaction was aborted).
    pub fn aborted(&self) {
        *self.pending.lock() = Pending::default();
    }

    /// History of one config, newest first, paged (1-based). Returns (total, page).
    pub fn history(
        &self,
        tx: &ReadTransaction,
        key: &ConfigKey,
        page_no: usize,
        page_size: usize,
    ) -> Result<(usize, Vec<HistoryRecord>)> {
        let (total, nids) = self.history_index.read().page(key, page_no, page_size);
        let mut out = Vec::new();
        for nid in nids {
            if let Some(r) = self.history_record(tx, nid)? {
                out.push(r);
            }
        }
        Ok((total, out))
    }

    /// One history record by `nid`.
    pub fn history_record(&self, tx: &ReadTransaction, nid: u64) -> Result<Option<HistoryRecord>> {
        let Ok(h) = tx.open_table(HISTORY) else { return Ok(None) };
        match h.get(nid).map_err(|e| storage("reading history")(e.into()))? {
            Some(v) => Ok(Some(from_json(v.value(), "reading history")?)),
            None => Ok(None),
        }
    }

    /// The record before `nid` of the same config (`/history/previous`).
    pub fn history_previous(&self, tx: &ReadTransaction, nid: u64) -> Result<Option<HistoryRecord>> {
        let Some(rec) = self.history_record(tx, nid)? else { return Ok(None) };
        let prev = self.history_index.read().previous(&rec.key, nid);
        match prev {
            Some(p) => self.history_record(tx, p),
            None => Ok(None),
        }
    }

    /// Appends every table to `out` as a byte string (Raft snapshot); rows are read while encoding.
    pub fn snapshot(&self, tx: &ReadTransaction, out: &mut Vec<u8>) -> Result<()> {
        let configs = open_for_snapshot(tx, CONFIGS)?;
        let history = open_for_snapshot(tx, HISTORY)?;
        let namespaces = open_for_snapshot(tx, NAMESPACES)?;
        let dump = DumpOut {
            configs: TableRows(configs.as_ref()),
            history: TableRows(history.as_ref()),
            namespaces: TableRows(namespaces.as_ref()),
        };
        append_blob(&dump, out)
    }

    /// Replaces every table with a snapshot's content; call [`Self::load`] after commit.
    pub fn restore(&self, tx: &WriteTransaction, data: &[u8]) -> Result<()> {
        let dump: Dump<'_> = if data.is_empty() { Dump::default() } else { from_blob(data)? };
        for name in [CONFIGS, NAMESPACES] {
            tx.delete_table(name).map_err(|e| storage("restoring snapshot")(e.into()))?;
        }
        tx.delete_table(HISTORY).map_err(|e| storage("restoring snapshot")(e.into()))?;
        tx.delete_table(LEGACY_HISTORY_BY_KEY).map_err(|e| storage("restoring snapshot")(e.into()))?;
        let mut c = tx.open_table(CONFIGS).map_err(|e| storage("restoring snapshot")(e.into()))?;
        for (k, v) in &dump.configs {
            c.insert(*k, *v).map_err(|e| storage("restoring snapshot")(e.into()))?;
        }
        let mut h = tx.open_table(HISTORY).map_err(|e| storage("restoring snapshot")(e.into()))?;
        for (nid, v) in &dump.history {
            h.insert(*nid, *v).map_err(|e| storage("restoring snapshot")(e.into()))?;
        }
        let mut n = tx.open_table(NAMESPACES).map_err(|e| storage("restoring snapshot")(e.into()))?;
        for (k, v) in &dump.namespaces {
            n.insert(*k, *v).map_err(|e| storage("restoring snapshot")(e.into()))?;
        }
        *self.pending.lock() = Pending::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
