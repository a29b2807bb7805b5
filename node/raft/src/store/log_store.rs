//! [`LogStore`]: openraft's `RaftLogStorage` on `log.redb`.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use openraft::LogState;
use openraft::OptionalSend;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::log_reader::LogReader;
use super::log_writer::LOG_META;
use super::log_writer::LOG_TABLE;
use super::log_writer::LogOp;
use super::log_writer::LogShared;
use super::log_writer::{self};
use super::open_database;
use crate::codec::encode;
use crate::error::Error;
use crate::error::Result;
use crate::error::to_io;
use crate::metrics::RaftStats;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::TypeConfig;
use crate::types::Vote;

/// The Raft log: entries, vote, committed and purged log ids, in one redb database.
///
/// Writes go to a dedicated thread that group-commits them (see [`crate::store`]); dropping the
/// store finishes the queued writes and closes the database.
pub struct LogStore {
    shared: Arc<LogShared>,
    tx: Option<mpsc::Sender<LogOp>>,
    writer: Option<JoinHandle<()>>,
}

impl LogStore {
    /// Opens (or creates) the log database at `path`, with quick repair on and replication
    /// batches of at most 32 MiB.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, true, 32 << 20, Arc::default())
    }

    /// `read_budget`: most bytes of entries per replication message.
    pub(crate) fn open_with(
        path: &Path,
        quick_repair: bool,
        read_budget: usize,
        stats: Arc<RaftStats>,
    ) -> Result<Self> {
        let db = open_database(path, LOG_META)?;
        let wtx = db.begin_write().map_err(|e| Error::storage("create log table", e))?;
        wtx.open_table(LOG_TABLE).map_err(|e| Error::storage("create log table", e))?;
        wtx.commit().map_err(|e| Error::storage("create log table", e))?;
        let mem = log_writer::load(&db)?;
        let shared = Arc::new(LogShared { db, mem: Mutex::new(mem), read_budget });
        let (tx, rx) = mpsc::channel();
        let thread_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("cairn-raft-log".into())
            .spawn(move || log_writer::run(thread_shared, rx, stats, quick_repair))
            .map_err(|e| Error::io("spawn log writer thread", path, e))?;
        Ok(Self { shared, tx: Some(tx), writer: Some(writer) })
    }

    fn send(&self, op: LogOp) -> io::Result<()> {
        let tx = self.tx.as_ref().ok_or_else(|| io::Error::other("log store closed"))?;
        tx.send(op).map_err(|_| io::Error::other("log writer thread is gone"))
    }

    async fn send_and_wait(&self, op: LogOp, rx: oneshot::Receiver<io::Result<()>>) -> io::Result<()> {
        self.send(op)?;
        rx.await.map_err(|_| io::Error::other("log writer thread dropped a request"))?
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("raft log writer thread panicked");
        }
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let mem = self.shared.mem.lock();
        Ok(LogState { last_purged_log_id: mem.last_purged, last_log_id: mem.last_log_id })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader { shared: self.shared.clone() }
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        let encoded = encode("vote", vote).map_err(to_io)?;
        let (done, rx) = oneshot::channel();
        self.send_and_wait(LogOp::Vote { encoded, vote: *vote, done }, rx).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        self.shared.mem.lock().committed = committed;
        if let Some(c) = committed {
            // Rides along with the next fsynced append; losing it in a crash only means
            // re-applying fewer entries at start-up.
            self.send(LogOp::Committed { encoded: encode("committed log id", &c).map_err(to_io)? })?;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.shared.mem.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        {
            let mut mem = self.shared.mem.lock();
            for entry in entries {
                encoded.push((entry.log_id, encode("log entry", &entry).map_err(to_io)?));
                mem.last_log_id = Some(entry.log_id);
                mem.pending.insert(entry.index(), entry);
            }
        }
        if encoded.is_empty() {
            callback.io_completed(Ok(()));
            return Ok(());
        }
        self.send(LogOp::Append { entries: encoded, callback })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |l| l.index() + 1);
        {
            let mut mem = self.shared.mem.lock();
            mem.truncate_from(from);
            match last_log_id {
                Some(keep) if mem.last_log_id > Some(keep) => mem.last_log_id = Some(keep),
                Some(_) => {}
                None => mem.last_log_id = mem.last_purged,
            }
        }
        let (done, rx) = oneshot::channel();
        self.send_and_wait(LogOp::Truncate { from, done }, rx).await
    }

    async fn purge(&mut self, upto: LogId) -> io::Result<()> {
        {
            let mut mem = self.shared.mem.lock();
            mem.last_purged = Some(upto);
            if mem.last_log_id < Some(upto) {
                mem.last_log_id = Some(upto);
            }
            mem.purge_upto(upto.index());
        }
        let encoded = encode("purged log id", &upto).map_err(to_io)?;
        let (done, rx) = oneshot::channel();
        self.send_and_wait(LogOp::Purge { upto, encoded, done }, rx).await
    }
}

#[cfg(test)]
mod tests {
    use openraft::RaftLogReader;
    use openraft::entry::RaftEntry;
    use openraft::storage::IOFlushed;
    use openraft::storage::RaftLogStorage;
    use openraft::type_config::TypeConfigExt;

    use super::*;
    use crate::store::log_writer::RECENT_ENTRIES;
    use crate::types::Command;

    fn entry(index: u64, bytes: usize) -> Entry {
        Entry::new_normal(openraft::testing::log_id::<TypeConfig>(1, 1, index), Command(vec![7; bytes]))
    }

    #[tokio::test]
    async fn appends_are_readable_and_replication_reads_are_size_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.redb");
        let mut store = LogStore::open_with(&path, false, 3_000, Arc::default()).expect("open");
        let (tx, rx) = TypeConfig::oneshot();
        store.append((1..=10).map(|i| entry(i, 1_000)), IOFlushed::signal(tx)).await.expect("append");
        // Readable as soon as append returns, flushed or not.
        let mut reader = store.get_log_reader().await;
        assert_eq!(reader.try_get_log_entries(1..=10).await.expect("read").len(), 10);
        rx.await.expect("callback").expect("flushed");
        let capped = reader.limited_get_log_entries(1, 11).await.expect("read");
        assert!((1..10).contains(&capped.len()), "{} entries", capped.len());
        assert_eq!(capped[0].index(), 1);
        drop((reader, store));
        // Reopened: the flushed entries and the log state are there.
        let mut store = LogStore::open(&path).expect("reopen");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id.map(|l| l.index()), Some(10));
        let mut reader = store.get_log_reader().await;
        assert_eq!(reader.try_get_log_entries(5..8).await.expect("read").len(), 3);
        assert_eq!(reader.limited_get_log_entries(3, 4).await.expect("read").len(), 1);
    }

    /// Reads stitch redb and the in-memory tail (flushed entries kept for the state machine,
    /// then unflushed ones) together in order, through eviction, truncation and purge.
    #[tokio::test]
    async fn reads_span_redb_and_the_in_memory_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store =
            LogStore::open_with(&dir.path().join("log.redb"), false, 1 << 20, Arc::default()).expect("open");
        let n = RECENT_ENTRIES as u64 + 900;
        let (tx, rx) = TypeConfig::oneshot();
        store.append((1..=n).map(|i| entry(i, 16)), IOFlushed::signal(tx)).await.expect("append");
        rx.await.expect("callback").expect("flushed");
        {
            let mem = store.shared.mem.lock();
            assert!(mem.pending.is_empty());
            assert_eq!(mem.recent.len(), RECENT_ENTRIES, "the oldest flushed entries left memory");
        }
        let mut reader = store.get_log_reader().await;
        let indexes = |v: Vec<Entry>| v.iter().map(|e| e.index()).collect::<Vec<_>>();
        assert_eq!(indexes(reader.try_get_log_entries(1..=n).await.expect("read")), (1..=n).collect::<Vec<_>>());
        assert_eq!(indexes(reader.try_get_log_entries(890..910).await.expect("read")), (890..910).collect::<Vec<_>>());

        // Truncate inside the in-memory tail, then append a new term there.
        store.truncate_after(Some(openraft::testing::log_id::<TypeConfig>(1, 1, n - 10))).await.expect("truncate");
        let (tx, rx) = TypeConfig::oneshot();
        let newer = |i| Entry::new_normal(openraft::testing::log_id::<TypeConfig>(2, 1, i), Command(vec![9; 16]));
        store.append((n - 9..=n - 5).map(newer), IOFlushed::signal(tx)).await.expect("append");
        let got = reader.try_get_log_entries(n - 12..).await.expect("read");
        let terms: Vec<_> = got.iter().map(|e| (e.index(), e.log_id.leader_id.term)).collect();
        let want: Vec<_> = (n - 12..=n - 10).map(|i| (i, 1)).chain((n - 9..=n - 5).map(|i| (i, 2))).collect();
        assert_eq!(terms, want);
        rx.await.expect("callback").expect("flushed");
        assert_eq!(reader.try_get_log_entries(n - 12..).await.expect("read").len(), 8);

        // Purge into the in-memory tail.
        store.purge(openraft::testing::log_id::<TypeConfig>(1, 1, n - 20)).await.expect("purge");
        let got = indexes(reader.try_get_log_entries(n - 19..).await.expect("read"));
        assert_eq!(got, (n - 19..=n - 5).collect::<Vec<_>>());
        assert!(store.shared.mem.lock().recent.keys().all(|&i| i > n - 20));
    }
}
