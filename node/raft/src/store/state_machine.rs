//! [`StateMachineStore`]: openraft's `RaftStateMachine` on `state.redb` and the [`Application`].

use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use futures::Stream;
use futures::TryStreamExt;
use openraft::EntryPayload;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;
use parking_lot::Mutex;
use redb::Durability;
use redb::ReadableDatabase;
use redb::TableDefinition;

use super::open_database;
use super::snapshot;
use super::snapshot::SnapshotFile;
use crate::app::AppError;
use crate::app::Application;
use crate::codec::decode;
use crate::codec::encode;
use crate::error::Error;
use crate::error::Result;
use crate::error::to_io;
use crate::metrics::RaftStats;
use crate::types::LogId;
use crate::types::Reply;
use crate::types::Snapshot;
use crate::types::SnapshotMeta;
use crate::types::StoredMembership;
use crate::types::TypeConfig;

/// State machine bookkeeping: `format`, `last_applied`, `membership`.
const SM_META: TableDefinition<'static, &'static str, &'static [u8]> = TableDefinition::new("raft_sm_meta");
const LAST_APPLIED_KEY: &str = "last_applied";
const MEMBERSHIP_KEY: &str = "membership";

/// The replicated state machine: the application's tables plus Raft's bookkeeping, in one
/// redb database, and the current snapshot in `snapshot.bin` beside it.
#[derive(Clone)]
pub struct StateMachineStore {
    shared: Arc<SmShared>,
}

struct SmShared {
    db: redb::Database,
    path: PathBuf,
    app: Arc<dyn Application>,
    snapshot_file: SnapshotFile,
    /// Serializes snapshot builds and installs (the file and the state must agree).
    snapshot_lock: Mutex<()>,
    sync_interval: Duration,
    last_sync: Mutex<Instant>,
    stats: Arc<RaftStats>,
}

/// What one applied batch hands back to the async side.
type Responders = Vec<(openraft::storage::ApplyResponder<TypeConfig>, Reply)>;

impl StateMachineStore {
    /// Opens (or creates) the state machine in directory `dir` (files `state.redb`,
    /// `snapshot.bin`), fsyncing every commit, and lets the application load its caches.
    pub fn open(dir: &Path, app: Arc<dyn Application>) -> Result<Self> {
        Self::open_with(dir, app, Duration::ZERO, Arc::default())
    }

    pub(crate) fn open_with(
        dir: &Path,
        app: Arc<dyn Application>,
        sync_interval: Duration,
        stats: Arc<RaftStats>,
    ) -> Result<Self> {
        let path = dir.join(super::STATE_DB);
        let db = open_database(&path, SM_META)?;
        let rtx = db.begin_read().map_err(|e| Error::storage("read state machine", e))?;
        app.open(&rtx).map_err(|source| Error::Application { action: "open", source })?;
        drop(rtx);
        let shared = SmShared {
            db,
            path,
            app,
            snapshot_file: SnapshotFile::new(dir),
            snapshot_lock: Mutex::new(()),
            sync_interval,
            last_sync: Mutex::new(Instant::now()),
            stats,
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// Makes every commit so far durable (one fsync). Called on graceful shutdown.
    pub fn sync(&self) -> Result<()> {
        self.shared.sync()
    }

    /// Runs `f` on a read transaction of the state machine database: how the node reads the
    /// application's tables.
    pub fn read<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> T) -> Result<T> {
        let rtx = self.shared.db.begin_read().map_err(|e| Error::storage("read state machine", e))?;
        Ok(f(&rtx))
    }

    /// The database path (for diagnostics).
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl SmShared {
    fn sync(&self) -> Result<()> {
        let mut wtx = self.db.begin_write().map_err(|e| Error::storage("sync state machine", e))?;
        wtx.set_quick_repair(true);
        wtx.commit().map_err(|e| Error::storage("sync state machine", e))?;
        *self.last_sync.lock() = Instant::now();
        Ok(())
    }

    fn applied_state(&self) -> Result<(Option<LogId>, StoredMembership)> {
        let rtx = self.db.begin_read().map_err(|e| Error::storage("read applied state", e))?;
        read_applied(&rtx)
    }

    /// Applies one batch in one transaction; replies go out only after the commit.
    fn apply_batch(&self, items: Vec<EntryResponder<TypeConfig>>) -> Result<Responders> {
        let db_err = |e: redb::Error| Error::storage("apply", e);
        let started = Instant::now();
        let durable = {
            let mut last = self.last_sync.lock();
            let due = last.elapsed() >= self.sync_interval;
            if due {
                *last = Instant::now();
            }
            due
        };
        let mut wtx = self.db.begin_write().map_err(|e| db_err(e.into()))?;
        if !durable {
            wtx.set_durability(Durability::None).map_err(|e| db_err(e.into()))?;
        }
        wtx.set_quick_repair(true);
        let count = items.len() as u64;
        let mut responders = Vec::new();
        let mut applied = Vec::new();
        let mut last_applied = None;
        let mut membership = None;
        let mut rejected = 0;
        for (entry, responder) in items {
            let log_id = entry.log_id;
            last_applied = Some(log_id);
            let reply = match entry.payload {
                EntryPayload::Blank => Reply::default(),
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(log_id), m));
                    Reply::default()
                }
                EntryPayload::Normal(command) => match self.app.apply(&wtx, log_id.index(), &command.0) {
                    Ok(response) => {
                        applied.push((log_id.index(), command.0));
                        Reply::Applied(response)
                    }
                    Err(AppError::Rejected(message)) => {
                        rejected += 1;
                        Reply::Rejected(message)
                    }
                    Err(source) => return Err(Error::Application { action: "apply", source }),
                },
            };
            if let Some(r) = responder {
                responders.push((r, reply));
            }
        }
        {
            let mut meta = wtx.open_table(SM_META).map_err(|e| db_err(e.into()))?;
            let applied_bytes = encode("last applied", &last_applied)?;
            meta.insert(LAST_APPLIED_KEY, applied_bytes.as_slice()).map_err(|e| db_err(e.into()))?;
            if let Some(m) = &membership {
                let bytes = encode("membership", m)?;
                meta.insert(MEMBERSHIP_KEY, bytes.as_slice()).map_err(|e| db_err(e.into()))?;
            }
        }
        wtx.commit().map_err(|e| db_err(e.into()))?;
        self.app.after_commit(&applied);
        self.stats.apply_batch.observe(started.elapsed());
        RaftStats::add(&self.stats.applied_entries, count);
        RaftStats::add(&self.stats.rejected_commands, rejected);
        Ok(responders)
    }

    fn build_snapshot(&self) -> Result<Snapshot> {
        let _guard = self.snapshot_lock.lock();
        let rtx = self.db.begin_read().map_err(|e| Error::storage("read state for snapshot", e))?;
        let (last_log_id, last_membership) = read_applied(&rtx)?;
        let meta = SnapshotMeta { last_log_id, last_membership };
        let mut bytes = snapshot::begin(&meta)?;
        self.app.snapshot(&rtx, &mut bytes).map_err(|source| Error::Application { action: "snapshot", source })?;
        drop(rtx);
        self.snapshot_file.write(&bytes)?;
        RaftStats::add(&self.stats.snapshots_built, 1);
        self.stats.last_snapshot_bytes.store(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = bytes.len(), "built raft snapshot");
        Ok(Snapshot { meta, snapshot: bytes })
    }

    fn install_snapshot(&self, meta: &SnapshotMeta, bytes: Vec<u8>) -> Result<()> {
        let _guard = self.snapshot_lock.lock();
        let (inner, app) = snapshot::decode(&bytes)?;
        if inner.last_log_id != meta.last_log_id || inner.last_membership != meta.last_membership {
            return Err(Error::Decode { what: "snapshot", reason: "data does not match its metadata".into() });
        }
        // The file first: if we crash before the state commit, start-up installs it again.
        if !self.snapshot_file.holds(&bytes)? {
            self.snapshot_file.write(&bytes)?;
        }
        let mut wtx = self.db.begin_write().map_err(|e| Error::storage("install snapshot", e))?;
        wtx.set_quick_repair(true);
        self.app.restore(&wtx, app).map_err(|source| Error::Application { action: "restore", source })?;
        {
            let mut t = wtx.open_table(SM_META).map_err(|e| Error::storage("install snapshot", e))?;
            let applied = encode("last applied", &meta.last_log_id)?;
            let membership = encode("membership", &meta.last_membership)?;
            t.insert(LAST_APPLIED_KEY, applied.as_slice()).map_err(|e| Error::storage("install snapshot", e))?;
            t.insert(MEMBERSHIP_KEY, membership.as_slice()).map_err(|e| Error::storage("install snapshot", e))?;
        }
        wtx.commit().map_err(|e| Error::storage("install snapshot", e))?;
        *self.last_sync.lock() = Instant::now();
        let rtx = self.db.begin_read().map_err(|e| Error::storage("reload after snapshot", e))?;
        self.app.open(&rtx).map_err(|source| Error::Application { action: "open", source })?;
        RaftStats::add(&self.stats.snapshots_installed, 1);
        self.stats.last_snapshot_bytes.store(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = bytes.len(), "installed raft snapshot");
        Ok(())
    }

    fn current_snapshot(&self) -> Result<Option<Snapshot>> {
        let _guard = self.snapshot_lock.lock();
        let Some(bytes) = self.snapshot_file.read()? else { return Ok(None) };
        let (meta, _) = snapshot::decode(&bytes)?;
        Ok(Some(Snapshot { meta, snapshot: bytes }))
    }
}

fn read_applied(rtx: &redb::ReadTransaction) -> Result<(Option<LogId>, StoredMembership)> {
    let table = match rtx.open_table(SM_META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok((None, StoredMembership::default())),
        Err(e) => return Err(Error::storage("read applied state", e)),
    };
    let get = |key| -> Result<Option<Vec<u8>>> {
        Ok(table.get(key).map_err(|e| Error::storage("read applied state", e))?.map(|v| v.value().to_vec()))
    };
    let last_applied = match get(LAST_APPLIED_KEY)? {
        Some(b) => decode::<Option<LogId>>("last applied", &b)?,
        None => None,
    };
    let membership = match get(MEMBERSHIP_KEY)? {
        Some(b) => decode::<StoredMembership>("membership", &b)?,
        None => StoredMembership::default(),
    };
    Ok((last_applied, membership))
}

/// Runs blocking storage work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(to_io)?.map_err(to_io)
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        self.shared.applied_state().map_err(to_io)
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        let items: Vec<_> = entries.try_collect().await?;
        if items.is_empty() {
            return Ok(());
        }
        let shared = self.shared.clone();
        let responders =
            tokio::task::spawn_blocking(move || shared.apply_batch(items)).await.map_err(to_io)?.map_err(|e| {
                tracing::error!(error = %e, "state machine apply failed; the raft node stops");
                to_io(e)
            })?;
        for (responder, reply) in responders {
            responder.send(reply);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder { shared: self.shared.clone() }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Vec<u8>) -> io::Result<()> {
        let shared = self.shared.clone();
        let meta = meta.clone();
        blocking(move || shared.install_snapshot(&meta, snapshot)).await
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let shared = self.shared.clone();
        blocking(move || shared.current_snapshot()).await
    }
}

/// Builds a snapshot from a read transaction (concurrent with applies) and stores it durably.
pub struct SnapshotBuilder {
    shared: Arc<SmShared>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        let shared = self.shared.clone();
        blocking(move || shared.build_snapshot()).await
    }
}
