//! A toy key-value [`Application`] for the tests and the benchmark.
//!
//! Commands are text: `set <key> <value>`, `del <key>`, `reject <message>`. Responses are the
//! previous value (empty when there was none).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use cairn_raft::AppError;
use cairn_raft::Application;
use parking_lot::Mutex;
use redb::ReadableTable;
use redb::ReadableTableMetadata;
use redb::TableDefinition;

const KV: TableDefinition<'static, &'static str, &'static str> = TableDefinition::new("kv");

/// The toy application: a `kv` table plus an in-memory cache kept by `open`/`after_commit`.
#[derive(Default)]
pub struct KvApp {
    /// The cache, updated after each commit.
    pub cache: Mutex<BTreeMap<String, String>>,
    /// Entries passed to `after_commit`.
    pub committed: AtomicU64,
}

pub fn set(key: &str, value: &str) -> Vec<u8> {
    format!("set {key} {value}").into_bytes()
}

fn parse(command: &[u8]) -> Result<(&str, &str, &str), AppError> {
    let text = std::str::from_utf8(command).map_err(|_| AppError::Rejected("not utf-8".into()))?;
    let mut parts = text.splitn(3, ' ');
    let op = parts.next().unwrap_or_default();
    Ok((op, parts.next().unwrap_or_default(), parts.next().unwrap_or_default()))
}

impl KvApp {
    /// Reads a key from the committed state of `node`'s state machine.
    pub fn get(node: &cairn_raft::RaftNode, key: &str) -> Option<String> {
        node.read(|tx| {
            let table = tx.open_table(KV).ok()?;
            table.get(key).ok().flatten().map(|v| v.value().to_string())
        })
        .ok()
        .flatten()
    }

    /// Number of keys in `node`'s state machine.
    pub fn len(node: &cairn_raft::RaftNode) -> u64 {
        node.read(|tx| tx.open_table(KV).ok().and_then(|t| t.len().ok()).unwrap_or(0)).unwrap_or(0)
    }
}

impl Application for KvApp {
    fn open(&self, tx: &redb::ReadTransaction) -> Result<(), AppError> {
        let mut cache = self.cache.lock();
        cache.clear();
        let table = match tx.open_table(KV) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for item in table.iter()? {
            let (k, v) = item?;
            cache.insert(k.value().to_string(), v.value().to_string());
        }
        Ok(())
    }

    fn apply(&self, tx: &redb::WriteTransaction, _index: u64, command: &[u8]) -> Result<Vec<u8>, AppError> {
        let (op, key, value) = parse(command)?;
        let mut table = tx.open_table(KV)?;
        let previous = match op {
            "set" => table.insert(key, value)?.map(|v| v.value().to_string()),
            "del" => table.remove(key)?.map(|v| v.value().to_string()),
            "reject" => return Err(AppError::Rejected(format!("{key} {value}").trim().to_string())),
            other => return Err(AppError::Rejected(format!("unknown op {other:?}"))),
        };
        Ok(previous.unwrap_or_default().into_bytes())
    }

    fn after_commit(&self, applied: &[(u64, Vec<u8>)]) {
        let mut cache = self.cache.lock();
        for (_, command) in applied {
            if let Ok((op, key, value)) = parse(command) {
                match op {
                    "set" => {
                        cache.insert(key.to_string(), value.to_string());
                    }
                    "del" => {
                        cache.remove(key);
                    }
                    _ => {}
                }
            }
        }
        self.committed.fetch_add(applied.len() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self, tx: &redb::ReadTransaction, out: &mut Vec<u8>) -> Result<(), AppError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        match tx.open_table(KV) {
            Ok(table) => {
                for item in table.iter()? {
                    let (k, v) = item?;
                    pairs.push((k.value().to_string(), v.value().to_string()));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let bytes = cairn_raft::codec::encode("kv snapshot", &pairs).map_err(|e| AppError::Corrupt(e.to_string()))?;
        out.extend_from_slice(&bytes);
        Ok(())
    }

    fn restore(&self, tx: &redb::WriteTransaction, data: &[u8]) -> Result<(), AppError> {
        let pairs: Vec<(String, String)> =
            cairn_raft::codec::decode("kv snapshot", data).map_err(|e| AppError::Corrupt(e.to_string()))?;
        tx.delete_table(KV)?;
        let mut table = tx.open_table(KV)?;
        for (k, v) in &pairs {
            table.insert(k.as_str(), v.as_str())?;
        }
        Ok(())
    }
}
