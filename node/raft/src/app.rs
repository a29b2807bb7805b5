//! The application plug-in: what the replicated state machine does with a command.

/// An error from an [`Application`].
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The command is invalid. Deterministic: every node rejects it the same way, so it is not a
    /// fault. The writer receives [`Error::Rejected`](crate::Error::Rejected); Raft goes on.
    #[error("{0}")]
    Rejected(String),
    /// A storage failure. Fatal: the Raft node stops rather than diverge from its peers.
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
    /// Stored or snapshot data the application cannot read. Fatal, like [`AppError::Storage`].
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for AppError {
            fn from(e: $t) -> Self {
                AppError::Storage(e.into())
            }
        }
    )*};
}
from_redb!(redb::TableError, redb::StorageError, redb::TransactionError, redb::CommitError);

/// The replicated application: Cairn's config, persistent instances, users… implement it.
///
/// The state machine calls it inside its own redb transactions, on the database
/// `<data_dir>/raft/state.redb`. The application keeps its tables there; names starting with
/// `raft_` are reserved for the state machine. Its writes and the state machine's bookkeeping
/// (last applied log id, membership) commit in the same transaction, so a crash never leaves
/// one without the other.
///
/// # Correctness
///
/// - [`apply`](Self::apply) must be deterministic: same state + same command ⇒ same writes and
///   same result, on every node. No clocks, randomness or local configuration.
/// - On [`AppError::Rejected`] the state machine still commits whatever `apply` wrote before
///   returning; since every node does the same this stays consistent, but validate first.
/// - [`restore`](Self::restore) must replace the application's tables wholesale (clear, then
///   fill); it runs in one transaction with the state machine's own reset.
/// - The methods run on a blocking thread, never on an async task: they may block on I/O but
///   must not call back into the [`RaftNode`](crate::RaftNode).
pub trait Application: Send + Sync + 'static {
    /// Loads caches from the committed state. Called once at start, before any entry is applied,
    /// and again after a snapshot replaced the state.
    fn open(&self, tx: &redb::ReadTransaction) -> Result<(), AppError>;

    /// Applies the command of log entry `index` inside `tx`; returns the response for the writer.
    fn apply(&self, tx: &redb::WriteTransaction, index: u64, command: &[u8]) -> Result<Vec<u8>, AppError>;

    /// Called after the transaction holding a batch of applied entries committed, with the
    /// `(index, command)` of each entry that was applied (not rejected), in log order. Update
    /// caches and notify listeners here. Writers get their responses after this returns.
    /// Entries re-applied from the log at start-up (after a crash) come through here too.
    fn after_commit(&self, applied: &[(u64, Vec<u8>)]);

    /// Serializes the application's state as seen by `tx` for a Raft snapshot, appending it to
    /// `out` (which already holds the snapshot's header: write in place, do not build a copy).
    fn snapshot(&self, tx: &redb::ReadTransaction, out: &mut Vec<u8>) -> Result<(), AppError>;

    /// Replaces the application's state with the bytes [`snapshot`](Self::snapshot) appended.
    fn restore(&self, tx: &redb::WriteTransaction, data: &[u8]) -> Result<(), AppError>;
}
