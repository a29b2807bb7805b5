//! The receiving side of Distro: copies of other nodes' clients, kept in the registry under
//! [`ClientId::Remote`], renewed by their owners' verifications and expired without them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::wire::{Origin, SyncBatch, Verify, VerifyReply};
use crate::naming::{ClientId, Registry};

/// One copied client (or the tombstone of a removed one).
struct Copy {
    revision: u64,
    verified: Instant,
    removed: bool,
}

/// The copies held for one owner incarnation.
struct OwnerCopies {
    incarnation: u64,
    clients: HashMap<String, Copy>,
}

/// Copies of every other node's clients.
pub struct Replicas {
    registry: Arc<Registry>,
    owners: Mutex<HashMap<String, OwnerCopies>>,
}

fn remote_id(owner: &str, incarnation: u64, id: &str) -> ClientId {
    ClientId::Remote(format!("{owner}|{incarnation}|{id}").into())
}

impl Replicas {
    /// Empty; copies go into `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Replicas { registry, owners: Mutex::default() }
    }

    /// The copies of `origin`'s owner, reset when the owner restarted (a newer incarnation);
    /// `None` for a message from an older incarnation than the one already seen (stale).
    fn owner<'a>(&self, owners: &'a mut HashMap<String, OwnerCopies>, origin: &Origin) -> Option<&'a mut OwnerCopies> {
        let entry = owners
            .entry(origin.owner.clone())
            .or_insert_with(|| OwnerCopies { incarnation: origin.incarnation, clients: HashMap::new() });
        if origin.incarnation < entry.incarnation {
            return None;
        }
        if origin.incarnation > entry.incarnation {
            for (id, c) in entry.clients.drain() {
                if !c.removed {
                    self.registry.client_gone(&remote_id(&origin.owner, entry.incarnation, &id));
                }
            }
            entry.incarnation = origin.incarnation;
        }
        Some(entry)
    }

    /// Applies an owner's changes; returns how many clients changed here.
    pub fn apply_sync(&self, batch: SyncBatch) -> usize {
        let now = Instant::now();
        let mut owners = self.owners.lock();
        let Some(copies) = self.owner(&mut owners, &batch.origin) else {
            return 0;
        };
        let (owner, inc) = (&batch.origin.owner, copies.incarnation);
        let mut changed = 0;
        for c in batch.upserts {
            match copies.clients.get_mut(&c.id) {
                Some(old) if old.revision >= c.revision => {
                    old.verified = now;
                    continue;
                }
                _ => {}
            }
            self.registry.replace_client(&remote_id(owner, inc, &c.id), c.services);
            copies.clients.insert(c.id, Copy { revision: c.revision, verified: now, removed: false });
            changed += 1;
        }
        for r in batch.removals {
            if copies.clients.get(&r.id).is_some_and(|old| old.revision > r.revision) {
                continue;
            }
            self.registry.client_gone(&remote_id(owner, inc, &r.id));
            copies.clients.insert(r.id, Copy { revision: r.revision, verified: now, removed: true });
            changed += 1;
        }
        changed
    }

    /// Renews the copies an owner still holds at the same revision, drops copies it no longer
    /// holds, and answers which clients must be re-sent.
    pub fn apply_verify(&self, v: Verify) -> VerifyReply {
        let now = Instant::now();
        let mut owners = self.owners.lock();
        let Some(copies) = self.owner(&mut owners, &v.origin) else {
            return VerifyReply::default();
        };
        let (owner, inc) = (&v.origin.owner, copies.incarnation);
        // Anything newer than the newest revision listed changed after the owner built this
        // verification (a sync overtook it): leave it alone.
        let horizon = v.clients.iter().map(|(_, r)| *r).max().unwrap_or(0);
        let mut missing = Vec::new();
        let mut listed = HashSet::with_capacity(v.clients.len());
        for (id, rev) in &v.clients {
            listed.insert(id.as_str());
            match copies.clients.get_mut(id) {
                Some(c) if !c.removed && c.revision == *rev => c.verified = now,
                Some(c) if c.revision > *rev => {}
                _ => missing.push(id.clone()),
            }
        }
        let gone: Vec<String> = copies
            .clients
            .iter()
            .filter(|(id, c)| !listed.contains(id.as_str()) && c.revision <= horizon)
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(c) = copies.clients.remove(&id)
                && !c.removed
            {
                self.registry.client_gone(&remote_id(owner, inc, &id));
            }
        }
        VerifyReply { missing }
    }

    /// Drops copies not verified for `after` (their owner is gone or unreachable) and old
    /// tombstones; returns how many live copies expired.
    pub fn expire(&self, now: Instant, after: Duration) -> usize {
        let mut expired = 0;
        let mut owners = self.owners.lock();
        for (owner, copies) in owners.iter_mut() {
            let inc = copies.incarnation;
            copies.clients.retain(|id, c| {
                if now.saturating_duration_since(c.verified) < after {
                    return true;
                }
                if !c.removed {
                    self.registry.client_gone(&remote_id(owner, inc, id));
                    expired += 1;
                }
                false
            });
        }
        owners.retain(|_, c| !c.clients.is_empty());
        expired
    }

    /// Live copies held (all owners).
    pub fn count(&self) -> usize {
        self.owners.lock().values().map(|o| o.clients.values().filter(|c| !c.removed).count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::{ClientCopy, Removal};
    use super::*;
    use crate::naming::{DirtySet, Instance, ServiceKey, Settings};

    fn registry() -> Arc<Registry> {
        let metrics = crate::metrics::Metrics::new(prometheus::Registry::new()).unwrap();
        let settings = Settings {
            beat_timeout: Duration::from_secs(15),
            delete_timeout: Duration::from_secs(30),
            empty_service_clean: Duration::from_secs(60),
        };
        Arc::new(Registry::new(settings, metrics, Arc::new(DirtySet::default())))
    }

    fn inst(port: u16) -> Instance {
        Instance::sample("10.0.0.1", port)
    }

    fn origin(inc: u64) -> Origin {
        Origin { owner: "n1:8848".into(), incarnation: inc }
    }

    fn copy(id: &str, rev: u64, port: u16) -> ClientCopy {
        ClientCopy { id: id.into(), revision: rev, services: vec![(ServiceKey::new("", "G", "s"), vec![inst(port)])] }
    }

    fn ports(r: &Registry) -> Vec<u16> {
        let sel = r.query(&ServiceKey::new("", "G", "s"), &[], false).unwrap_or_default();
        let mut p: Vec<u16> = sel.hosts.iter().map(|i| i.port).collect();
        p.sort();
        p
    }

    #[test]
    fn sync_orders_by_revision_and_incarnation() {
        let reg = registry();
        let reps = Replicas::new(reg.clone());
        reps.apply_sync(SyncBatch { origin: origin(5), upserts: vec![copy("c1", 2, 80)], removals: vec![] });
        // An older revision of the same client is ignored.
        reps.apply_sync(SyncBatch { origin: origin(5), upserts: vec![copy("c1", 1, 81)], removals: vec![] });
        assert_eq!(ports(&reg), [80]);
        // A removal older than the copy is ignored; a newer one removes it.
        reps.apply_sync(SyncBatch {
            origin: origin(5),
            upserts: vec![],
            removals: vec![Removal { id: "c1".into(), revision: 1 }],
        });
        assert_eq!(ports(&reg), [80]);
        reps.apply_sync(SyncBatch {
            origin: origin(5),
            upserts: vec![copy("c2", 4, 82)],
            removals: vec![Removal { id: "c1".into(), revision: 3 }],
        });
        assert_eq!(ports(&reg), [82]);
        // A restarted owner (newer incarnation) replaces everything of the old one; the old
        // incarnation's late messages are ignored.
        reps.apply_sync(SyncBatch { origin: origin(9), upserts: vec![copy("c1", 1, 90)], removals: vec![] });
        assert_eq!(ports(&reg), [90]);
        reps.apply_sync(SyncBatch { origin: origin(5), upserts: vec![copy("c7", 9, 91)], removals: vec![] });
        assert_eq!(ports(&reg), [90]);
        assert_eq!(reps.count(), 1);
    }

    #[test]
    fn verify_renews_drops_and_reports_missing() {
        let reg = registry();
        let reps = Replicas::new(reg.clone());
        reps.apply_sync(SyncBatch {
            origin: origin(1),
            upserts: vec![copy("a", 1, 1), copy("b", 2, 2), copy("late", 9, 9)],
            removals: vec![],
        });
        let reply = reps.apply_verify(Verify {
            origin: origin(1),
            clients: vec![("a".into(), 1), ("c".into(), 3), ("b".into(), 5)],
        });
        // `c` unknown and `b` outdated must be re-sent; `late` (revision above the horizon)
        // overtook the verification and stays.
        assert_eq!(reply.missing, ["c", "b"]);
        assert_eq!(ports(&reg), [1, 2, 9]);
        let reply = reps.apply_verify(Verify { origin: origin(1), clients: vec![("a".into(), 1), ("b".into(), 10)] });
        assert_eq!(reply.missing, ["b"]);
        // `late` (9 <= horizon 10, not listed) is gone at the owner.
        assert_eq!(ports(&reg), [1, 2]);
        // Nothing verified for long: everything expires.
        assert_eq!(reps.expire(Instant::now() + Duration::from_secs(60), Duration::from_secs(15)), 2);
        assert!(ports(&reg).is_empty());
        assert_eq!(reps.count(), 0);
    }
}
