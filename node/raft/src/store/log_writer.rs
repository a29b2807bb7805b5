//! The log's writer thread: group commit of queued log operations, fsync, then completion.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use openraft::EntryPayload;
use openraft::storage::IOFlushed;
use parking_lot::Mutex;
use redb::Durability;
use redb::ReadableTable;
use redb::TableDefinition;
use tokio::sync::oneshot;

use crate::error::to_io;
use crate::metrics::RaftStats;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::TypeConfig;
use crate::types::Vote;

/// Index → postcard-encoded entry.
pub(crate) const LOG_TABLE: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("raft_log");
/// Log metadata: `format`, `vote`, `committed`, `purged`.
pub(crate) const LOG_META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("raft_log_meta");

pub(crate) const VOTE_KEY: &str = "vote";
pub(crate) const COMMITTED_KEY: &str = "committed";
pub(crate) const PURGED_KEY: &str = "purged";

/// Most operations folded into one transaction.
const MAX_GROUP: usize = 4096;

/// Most entries kept in memory once redb has them ([`LogMem::recent`]).
pub(crate) const RECENT_ENTRIES: usize = 4096;
/// Most bytes (roughly) of entries kept in memory once redb has them.
const RECENT_BYTES: usize = 8 << 20;

/// The in-memory side of the log, shared by the store, its readers and the writer thread.
pub(crate) struct LogShared {
    pub(crate) db: redb::Database,
    pub(crate) mem: Mutex<LogMem>,
    /// Most bytes of entries handed out for one replication message.
    pub(crate) read_budget: usize,
}

/// What the log looks like including operations not yet committed to redb.
#[derive(Default)]
pub(crate) struct LogMem {
    pub(crate) vote: Option<Vote>,
    pub(crate) committed: Option<LogId>,
    pub(crate) last_purged: Option<LogId>,
    pub(crate) last_log_id: Option<LogId>,
    /// Appended entries whose transaction has not committed yet (readable at once, as openraft
    /// requires; moved to `recent` by the writer once redb has them).
    pub(crate) pending: BTreeMap<u64, Entry>,
    /// The newest entries redb already has, just below `pending` (bounded by
    /// [`RECENT_ENTRIES`] and [`RECENT_BYTES`]): the state machine applies an entry right after
    /// it is flushed, and reads it from here instead of decoding it back from redb.
    pub(crate) recent: BTreeMap<u64, Entry>,
    recent_bytes: usize,
}

impl LogMem {
    /// Copies of the in-memory entries with index in `start..end` (`None` = unbounded), in
    /// order. They are a contiguous tail of the log: redb holds everything before the first.
    pub(crate) fn overlay(&self, start: u64, end: Option<u64>) -> Vec<Entry> {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let range = (Bound::Included(start), upper);
        self.recent.range(range).chain(self.pending.range(range)).map(|(_, e)| e.clone()).collect()
    }

    /// Forgets in-memory entries with index `>= from` (a truncation).
    pub(crate) fn truncate_from(&mut self, from: u64) {
        self.pending.split_off(&from);
        self.forget_recent(|i| i >= from);
    }

    /// Forgets in-memory entries with index `<= upto` (a purge).
    pub(crate) fn purge_upto(&mut self, upto: u64) {
        self.pending.retain(|&i, _| i > upto);
        self.forget_recent(|i| i <= upto);
    }

    /// Drops the entries of `recent` whose index matches `doomed`, keeping `recent_bytes` true.
    fn forget_recent(&mut self, doomed: impl Fn(u64) -> bool) {
        let bytes = &mut self.recent_bytes;
        self.recent.retain(|&i, e| {
            let gone = doomed(i);
            if gone {
                *bytes -= entry_weight(e);
            }
            !gone
        });
    }

    /// Entry `log_id` is in redb now: it moves from `pending` to `recent` (unless a truncation
    /// already replaced it), and the oldest of `recent` beyond its bounds are dropped.
    fn flushed(&mut self, log_id: &LogId) {
        let index = log_id.index();
        let entry = match self.pending.entry(index) {
            btree_map::Entry::Occupied(e) if e.get().log_id == *log_id => e.remove(),
            _ => return,
        };
        self.recent_bytes += entry_weight(&entry);
        self.recent.insert(index, entry);
        while self.recent.len() > RECENT_ENTRIES || self.recent_bytes > RECENT_BYTES {
            let Some((_, e)) = self.recent.pop_first() else { break };
            self.recent_bytes -= entry_weight(&e);
        }
    }
}

/// Roughly the encoded size of an entry.
pub(crate) fn entry_weight(entry: &Entry) -> usize {
    match &entry.payload {
        EntryPayload::Normal(command) => command.0.len() + 32,
        _ => 256,
    }
}

/// One queued write.
pub(crate) enum LogOp {
    /// Entries as `(log id, encoded entry)`; `callback` fires after the fsync.
    Append { entries: Vec<(LogId, Vec<u8>)>, callback: IOFlushed<TypeConfig> },
    /// A vote, acknowledged after the fsync.
    Vote { encoded: Vec<u8>, vote: Vote, done: oneshot::Sender<io::Result<()>> },
    /// The committed log id: optional durability, nobody waits for it.
    Committed { encoded: Vec<u8> },
    /// Delete entries with index `>= from`.
    Truncate { from: u64, done: oneshot::Sender<io::Result<()>> },
    /// Delete entries with index `<= upto.index` and record `upto` as purged.
    Purge { upto: LogId, encoded: Vec<u8>, done: oneshot::Sender<io::Result<()>> },
}

impl LogOp {
    fn needs_fsync(&self) -> bool {
        !matches!(self, LogOp::Committed { .. })
    }
}

/// Runs until every sender is gone, then returns (after finishing what was queued).
pub(crate) fn run(shared: Arc<LogShared>, rx: mpsc::Receiver<LogOp>, stats: Arc<RaftStats>, quick_repair: bool) {
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first];
        while ops.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let durable = ops.iter().any(LogOp::needs_fsync);
        let started = Instant::now();
        let result = commit(&shared.db, &ops, durable, quick_repair);
        if durable {
            stats.log_flush.observe(started.elapsed());
            RaftStats::add(&stats.log_flushes, 1);
        }
        if result.is_ok() {
            settle(&shared, &ops, &stats);
        } else if let Err(e) = &result {
            tracing::error!(error = %e, "raft log commit failed");
        }
        complete(ops, &result);
    }
}

fn commit(db: &redb::Database, ops: &[LogOp], durable: bool, quick_repair: bool) -> Result<(), redb::Error> {
    let mut wtx = db.begin_write()?;
    if !durable {
        wtx.set_durability(Durability::None)?;
    }
    wtx.set_quick_repair(quick_repair && durable);
    {
        let mut log = wtx.open_table(LOG_TABLE)?;
        let mut meta = wtx.open_table(LOG_META)?;
        for op in ops {
            match op {
                LogOp::Append { entries, .. } => {
                    for (log_id, bytes) in entries {
                        log.insert(log_id.index(), bytes.as_slice())?;
                    }
                }
                LogOp::Vote { encoded, .. } => {
                    meta.insert(VOTE_KEY, encoded.as_slice())?;
                }
                LogOp::Committed { encoded } => {
                    meta.insert(COMMITTED_KEY, encoded.as_slice())?;
                }
                LogOp::Truncate { from, .. } => {
                    log.retain_in(*from.., |_, _| false)?;
                }
                LogOp::Purge { upto, encoded, .. } => {
                    meta.insert(PURGED_KEY, encoded.as_slice())?;
                    log.retain_in(..=upto.index(), |_, _| false)?;
                }
            }
        }
    }
    wtx.commit()?;
    Ok(())
}

/// After the commit: entries now in redb leave the overlay; the vote becomes visible.
fn settle(shared: &LogShared, ops: &[LogOp], stats: &RaftStats) {
    let mut mem = shared.mem.lock();
    for op in ops {
        match op {
            LogOp::Append { entries, .. } => {
                RaftStats::add(&stats.log_entries_appended, entries.len() as u64);
                for (log_id, _) in entries {
                    mem.flushed(log_id);
                }
            }
            LogOp::Vote { vote, .. } => mem.vote = Some(*vote),
            LogOp::Committed { .. } | LogOp::Truncate { .. } | LogOp::Purge { .. } => {}
        }
    }
}

/// Reports the outcome to every waiter, in queue order.
fn complete(ops: Vec<LogOp>, result: &Result<(), redb::Error>) {
    let outcome = || result.as_ref().map(|_| ()).map_err(to_io);
    for op in ops {
        match op {
            LogOp::Append { callback, .. } => callback.io_completed(outcome()),
            LogOp::Vote { done, .. } | LogOp::Truncate { done, .. } | LogOp::Purge { done, .. } => {
                let _ = done.send(outcome());
            }
            LogOp::Committed { .. } => {}
        }
    }
}

/// Reads what a freshly opened log database holds into a [`LogMem`].
pub(crate) fn load(db: &redb::Database) -> Result<LogMem, crate::Error> {
    use redb::ReadableDatabase;

    use crate::codec::decode;
    use crate::error::Error;

    let rtx = db.begin_read().map_err(|e| Error::storage("read log", e))?;
    let meta = rtx.open_table(LOG_META).map_err(|e| Error::storage("read log meta", e))?;
    let get = |key: &str| -> Result<Option<Vec<u8>>, Error> {
        Ok(meta.get(key).map_err(|e| Error::storage("read log meta", e))?.map(|v| v.value().to_vec()))
    };
    let vote = get(VOTE_KEY)?.map(|b| decode::<Vote>("vote", &b)).transpose()?;
    let committed = get(COMMITTED_KEY)?.map(|b| decode::<LogId>("committed log id", &b)).transpose()?;
    let last_purged = get(PURGED_KEY)?.map(|b| decode::<LogId>("purged log id", &b)).transpose()?;
    let log = match rtx.open_table(LOG_TABLE) {
        Ok(t) => Some(t),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(Error::storage("read log", e)),
    };
    let last_entry = match &log {
        Some(t) => t.last().map_err(|e| Error::storage("read last log entry", e))?,
        None => None,
    };
    let last_log_id = match last_entry {
        Some((_, v)) => Some(decode::<Entry>("log entry", v.value())?.log_id),
        None => last_purged,
    };
    Ok(LogMem { vote, committed, last_purged, last_log_id, ..LogMem::default() })
}
