//! Reading the log: the in-memory tail (entries not yet in redb, and the newest that are), then
//! redb for everything before it.

use std::fmt::Debug;
use std::io;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use redb::ReadableDatabase;

use super::log_writer::LOG_TABLE;
use super::log_writer::LogShared;
use super::log_writer::entry_weight;
use crate::codec::decode;
use crate::error::to_io;
use crate::types::Entry;
use crate::types::TypeConfig;
use crate::types::Vote;

/// A read handle on the log, used by openraft's replication and apply tasks.
#[derive(Clone)]
pub struct LogReader {
    pub(crate) shared: Arc<LogShared>,
}

impl LogShared {
    /// Entries in `range`, in order: the overlay is copied first, then redb is read below the
    /// overlay's first index. An entry committed (and dropped from the overlay) in between is
    /// in redb by then, so nothing is missed.
    pub(crate) fn read_range(&self, range: impl RangeBounds<u64>) -> io::Result<Vec<Entry>> {
        self.read_range_limited(range, usize::MAX)
    }

    /// Like [`read_range`](Self::read_range), but stops once the entries read weigh more than
    /// `budget` bytes (always returning at least one entry of a non-empty range).
    pub(crate) fn read_range_limited(&self, range: impl RangeBounds<u64>, budget: usize) -> io::Result<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e.checked_add(1),
            Bound::Excluded(e) => Some(*e),
            Bound::Unbounded => None,
        };
        if end.is_some_and(|e| e <= start) {
            return Ok(Vec::new());
        }
        let overlay: Vec<Entry> = self.mem.lock().overlay(start, end);
        let db_end = match (overlay.first().map(|e| e.index()), end) {
            (Some(p), Some(e)) => Some(p.min(e)),
            (Some(p), None) => Some(p),
            (None, e) => e,
        };
        let mut out = Vec::new();
        let mut weight = 0usize;
        if db_end.is_none_or(|e| e > start) {
            let rtx = self.db.begin_read().map_err(to_io)?;
            let table = rtx.open_table(LOG_TABLE).map_err(to_io)?;
            let iter = match db_end {
                Some(e) => table.range(start..e),
                None => table.range(start..),
            }
            .map_err(to_io)?;
            for item in iter {
                if weight > budget {
                    return Ok(out);
                }
                let (_, v) = item.map_err(to_io)?;
                weight += v.value().len();
                out.push(decode::<Entry>("log entry", v.value()).map_err(to_io)?);
            }
        }
        for entry in overlay {
            if weight > budget {
                break;
            }
            weight += entry_weight(&entry);
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        self.shared.read_range(range)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        Ok(self.shared.mem.lock().vote)
    }

    /// Caps a replication batch by size as well as count, so an AppendEntries message stays
    /// under the gRPC message limit however large the commands are.
    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        self.shared.read_range_limited(start..end, self.shared.read_budget)
    }
}
