//! The owning side of Distro: revisions of this node's clients and the messages that carry
//! them to peers (changes, verifications, snapshots).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::wire::{ClientCopy, Origin, Removal, SyncBatch, Verify};
use crate::naming::{ClientId, Registry};

/// The id of a local client on the wire (`c<conn>`, `b<ip:port>`); `None` for clients Distro
/// does not replicate (persistent ones live in Raft; remote ones belong to other nodes).
pub fn wire_id(c: &ClientId) -> Option<String> {
    match c {
        ClientId::Conn(n) => Some(format!("c{n}")),
        ClientId::Beat(a) => Some(format!("b{a}")),
        ClientId::Persistent(_) | ClientId::Remote(_) => None,
    }
}

/// The local client behind a wire id.
pub fn local_id(id: &str) -> Option<ClientId> {
    match id.split_at_checked(1)? {
        ("c", n) => n.parse().ok().map(ClientId::Conn),
        ("b", a) => Some(ClientId::Beat(a.into())),
        _ => None,
    }
}

/// This node's clients and their revisions.
pub struct Owned {
    registry: Arc<Registry>,
    origin: Origin,
    state: Mutex<Revisions>,
}

#[derive(Default)]
struct Revisions {
    next: u64,
    /// Current revision of every local client that publishes something.
    current: HashMap<String, u64>,
}

impl Revisions {
    fn bump(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

impl Owned {
    /// Starts tracking the registry's local clients as `origin`.
    pub fn new(registry: Arc<Registry>, origin: Origin) -> Self {
        registry.set_tracking(true);
        Owned { registry, origin, state: Mutex::default() }
    }

    /// Who this node is on the wire.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The clients changed since the last call, at new revisions (empty batch: nothing changed).
    pub fn take_changes(&self) -> SyncBatch {
        let changed = self.registry.take_changed();
        let mut batch = self.batch();
        if changed.is_empty() {
            return batch;
        }
        let mut st = self.state.lock();
        for c in changed {
            let Some(id) = wire_id(&c) else { continue };
            let services = self.registry.client_data(&c);
            let revision = st.bump();
            if services.is_empty() {
                if st.current.remove(&id).is_some() {
                    batch.removals.push(Removal { id, revision });
                }
            } else {
                st.current.insert(id.clone(), revision);
                batch.upserts.push(ClientCopy { id, revision, services });
            }
        }
        batch
    }

    /// Current copies of `ids` (as asked by a peer's verification reply); ids that no longer
    /// publish anything become removals.
    pub fn copies(&self, ids: &[String]) -> SyncBatch {
        let mut batch = self.batch();
        let st = self.state.lock();
        for id in ids {
            let data = local_id(id).map(|c| self.registry.client_data(&c)).unwrap_or_default();
            match st.current.get(id) {
                Some(&revision) if !data.is_empty() => {
                    batch.upserts.push(ClientCopy { id: id.clone(), revision, services: data })
                }
                _ => batch.removals.push(Removal { id: id.clone(), revision: st.next }),
            }
        }
        batch
    }

    /// Every client with its revision, for peers to renew their copies.
    pub fn verify(&self) -> Verify {
        let st = self.state.lock();
        Verify { origin: self.origin.clone(), clients: st.current.iter().map(|(id, r)| (id.clone(), *r)).collect() }
    }

    /// Every client's current copy, in batches of at most `per` clients.
    pub fn snapshot(&self, per: usize) -> Vec<SyncBatch> {
        let ids: Vec<String> = self.state.lock().current.keys().cloned().collect();
        ids.chunks(per.max(1)).map(|chunk| self.copies(chunk)).filter(|b| !b.upserts.is_empty()).collect()
    }

    /// Number of clients this node owns with data.
    pub fn count(&self) -> usize {
        self.state.lock().current.len()
    }

    fn batch(&self) -> SyncBatch {
        SyncBatch { origin: self.origin.clone(), upserts: Vec::new(), removals: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ids_round_trip() {
        for c in [ClientId::Conn(42), ClientId::Beat("10.0.0.1:80".into())] {
            assert_eq!(local_id(&wire_id(&c).unwrap()), Some(c));
        }
        assert_eq!(wire_id(&ClientId::Persistent("a:1".into())), None);
        assert_eq!(local_id("x1"), None);
        assert_eq!(local_id("cnotanumber"), None);
        assert_eq!(local_id(""), None);
    }
}
