//! Which history records belong to which config: an in-memory index over the `config_history`
//! table, rebuilt from that table when the store loads.
//!
//! It replaces an on-disk index table (`config_history_by_key`, config key + nid → nid). Records
//! of one config are written at scattered places in such a table, so every publish copied and
//! rewrote a whole B-tree page for one ~60-byte entry: the most expensive write of applying a
//! publish (measured with `cargo bench --bench config_apply`). In memory, an entry costs 8 bytes.
//! The price is a scan of the history table at start-up and after installing a snapshot.

use std::collections::{HashMap, VecDeque};

use crate::configs::model::ConfigKey;

/// A change to the index made by an applied command; it takes effect when its transaction
/// commits.
#[derive(Clone, Debug)]
pub(crate) enum IndexOp {
    /// Record `nid` of `key` was written.
    Add(ConfigKey, u64),
    /// Record `nid` of `key` was deleted.
    Remove(ConfigKey, u64),
}

/// History record ids (`nid`) of each config, ascending.
#[derive(Default)]
pub(crate) struct HistoryIndex {
    by_key: HashMap<ConfigKey, VecDeque<u64>>,
}

impl HistoryIndex {
    /// Applies committed changes in order.
    pub(crate) fn apply(&mut self, ops: impl IntoIterator<Item = IndexOp>) {
        for op in ops {
            match op {
                IndexOp::Add(key, nid) => self.add(key, nid),
                IndexOp::Remove(key, nid) => self.remove(&key, nid),
            }
        }
    }

    /// Adds record `nid` of `key` (records usually arrive in increasing order: appended).
    pub(crate) fn add(&mut self, key: ConfigKey, nid: u64) {
        let nids = self.by_key.entry(key).or_default();
        match nids.back() {
            Some(&last) if last >= nid => {
                if let Err(at) = nids.binary_search(&nid) {
                    nids.insert(at, nid);
                }
            }
            _ => nids.push_back(nid),
        }
    }

    /// Removes record `nid` of `key` (a purge takes the oldest, at the front).
    pub(crate) fn remove(&mut self, key: &ConfigKey, nid: u64) {
        let Some(nids) = self.by_key.get_mut(key) else { return };
        if nids.front() == Some(&nid) {
            nids.pop_front();
        } else if let Ok(at) = nids.binary_search(&nid) {
            nids.remove(at);
        }
        if nids.is_empty() {
            self.by_key.remove(key);
        }
    }

    /// `(total, page)`: how many records `key` has, and the `nid`s of page `page_no` (1-based)
    /// of `page_size`, newest first.
    pub(crate) fn page(&self, key: &ConfigKey, page_no: usize, page_size: usize) -> (usize, Vec<u64>) {
        let Some(nids) = self.by_key.get(key) else { return (0, Vec::new()) };
        let skip = page_no.saturating_sub(1).saturating_mul(page_size);
        (nids.len(), nids.iter().rev().skip(skip).take(page_size).copied().collect())
    }

    /// The record of `key` just before `nid`.
    pub(crate) fn previous(&self, key: &ConfigKey, nid: u64) -> Option<u64> {
        let nids = self.by_key.get(key)?;
        let at = nids.partition_point(|&n| n < nid);
        at.checked_sub(1).map(|i| nids[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_newest_first_previous_and_purge_from_the_front() {
        let a = ConfigKey::new("", "G", "a");
        let b = ConfigKey::new("", "G", "b");
        let mut ix = HistoryIndex::default();
        ix.apply([1, 2, 4, 7, 9].map(|n| IndexOp::Add(a.clone(), n)));
        ix.add(b.clone(), 3);
        ix.add(a.clone(), 5); // out of order (a snapshot's rows are sorted, but be safe)
        ix.add(a.clone(), 5); // twice: once
        assert_eq!(ix.page(&a, 1, 3), (6, vec![9, 7, 5]));
        assert_eq!(ix.page(&a, 2, 3), (6, vec![4, 2, 1]));
        assert_eq!(ix.page(&a, 3, 3), (6, vec![]));
        assert_eq!(ix.page(&ConfigKey::new("", "G", "none"), 1, 3), (0, vec![]));
        assert_eq!(ix.previous(&a, 7), Some(5));
        assert_eq!(ix.previous(&a, 6), Some(5), "previous of a nid not in the index");
        assert_eq!(ix.previous(&a, 1), None);
        assert_eq!(ix.previous(&b, 3), None);
        ix.apply([IndexOp::Remove(a.clone(), 1), IndexOp::Remove(a.clone(), 4), IndexOp::Remove(b.clone(), 3)]);
        assert_eq!(ix.page(&a, 1, 10), (4, vec![9, 7, 5, 2]));
        assert_eq!(ix.page(&b, 1, 10), (0, vec![]));
        assert!(!ix.by_key.contains_key(&b), "an emptied config leaves the index");
    }
}
