//! Storage: the Raft log and the state machine, on redb, plus the snapshot file.
//!
//! # On-disk layout (`<data_dir>/raft/`)
//!
//! | file | what |
//! |---|---|
//! | `node-id` | this node's id ([`NodeIdentity`](crate::NodeIdentity)) |
//! | `log.redb` | the log: table `raft_log` (index → entry) and `raft_log_meta` (`format`, `vote`, `committed`, `purged`) |
//! | `state.redb` | the state machine: table `raft_sm_meta` (`format`, `last_applied`, `membership`) and the application's tables |
//! | `snapshot.bin` | the current snapshot ([`snapshot`] describes the format) |
//!
//! Values are postcard ([`crate::codec`]). Each database carries a `format` record (currently
//! [`FORMAT_VERSION`]); opening a database of another version fails with
//! [`Error::Format`] instead of misreading it.
//!
//! # Two databases
//!
//! redb has one writer at a time per database. The log and the state machine are written by
//! different openraft tasks (appends by the core, applies by the state-machine worker), so they
//! live in separate files and never wait on each other.
//!
//! # Durability
//!
//! - **Log** ([`LogStore`]): every append, vote, truncation and purge is committed with
//!   `Durability::Immediate` (fsync) by a dedicated writer thread, which folds all operations
//!   queued meanwhile into one transaction (group commit). openraft's `IOFlushed` callback and
//!   vote acknowledgements fire only after that commit returned. Appended entries are readable
//!   at once from an in-memory overlay until their commit lands.
//! - **State machine** ([`StateMachineStore`]): one redb transaction per applied batch, holding
//!   the application's writes *and* `last_applied`/membership, so apply is atomic. Those commits
//!   are fsynced at most every [`RaftConfig::state_machine_sync_interval`]: a crash may roll the
//!   state machine back to its last fsynced commit, never to a torn state. That is safe because
//!   the log is the source of truth: the committed log id is saved with the log, and on restart
//!   openraft re-applies `last_applied+1 ..= committed` from the log before the node serves
//!   (see `StorageHelper::get_initial_state`). The log is only purged up to a snapshot, and the
//!   snapshot file is fsynced before openraft learns of it; if the state machine is older than
//!   the snapshot after a crash, openraft installs the snapshot first.
//!
//! [`RaftConfig::state_machine_sync_interval`]: crate::RaftConfig::state_machine_sync_interval

mod log_reader;
mod log_store;
mod log_writer;
pub mod snapshot;
mod state_machine;

use std::path::Path;

pub use log_reader::LogReader;
pub use log_store::LogStore;
use redb::ReadableDatabase;
use redb::TableDefinition;
pub use state_machine::StateMachineStore;

use crate::error::Error;
use crate::error::Result;

/// The on-disk format version of `log.redb`, `state.redb` and `snapshot.bin`.
pub const FORMAT_VERSION: u32 = 1;

/// The log database file name.
pub const LOG_DB: &str = "log.redb";
/// The state machine database file name.
pub const STATE_DB: &str = "state.redb";

pub(crate) const FORMAT_KEY: &str = "format";

/// Page cache of each redb database.
pub const PAGE_CACHE_BYTES: usize = 8 << 20;

/// Opens (or creates) a redb database and checks, or stamps, its format version.
pub(crate) fn open_database(
    path: &Path,
    meta: TableDefinition<'static, &'static str, &'static [u8]>,
) -> Result<redb::Database> {
    // redb's default page cache may grow to 1 GiB; the node keeps its hot data in memory itself,
    // so a small cache keeps the resident set small without slowing the log or the state machine.
    let db = redb::Database::builder()
        .set_cache_size(PAGE_CACHE_BYTES)
        .create(path)
        .map_err(|e| Error::storage("open database", e))?;
    let found = {
        let rtx = db.begin_read().map_err(|e| Error::storage("read format", e))?;
        match rtx.open_table(meta) {
            Ok(t) => t.get(FORMAT_KEY).map_err(|e| Error::storage("read format", e))?.map(|v| v.value().to_vec()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(Error::storage("read format", e)),
        }
    };
    match found {
        Some(bytes) => {
            let found = <[u8; 4]>::try_from(bytes.as_slice()).map(u32::from_le_bytes).unwrap_or(u32::MAX);
            if found != FORMAT_VERSION {
                return Err(Error::Format { path: path.to_path_buf(), found, expected: FORMAT_VERSION });
            }
        }
        None => {
            let mut wtx = db.begin_write().map_err(|e| Error::storage("stamp format", e))?;
            wtx.set_quick_repair(true);
            {
                let mut t = wtx.open_table(meta).map_err(|e| Error::storage("stamp format", e))?;
                t.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes().as_slice())
                    .map_err(|e| Error::storage("stamp format", e))?;
            }
            wtx.commit().map_err(|e| Error::storage("stamp format", e))?;
        }
    }
    Ok(db)
}
