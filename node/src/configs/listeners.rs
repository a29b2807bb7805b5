//! Who listens to which config: gRPC connections (`ConfigBatchListenRequest`) and parked HTTP
//! long polls. Keys are canonical; each listener keeps the key as it sent it, because clients
//! match notifications against their own (tenant "" vs "public") spelling.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;

use crate::configs::longpoll::Listened;
use crate::configs::model::ConfigKey;

/// How a client spelled a key it listens to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Spelled {
    /// dataId.
    pub data_id: String,
    /// group.
    pub group: String,
    /// tenant as sent.
    pub tenant: String,
}

struct Waiter {
    listened: Vec<(ConfigKey, Listened)>,
    /// The client's IP: what it sees of a config depends on it (gray versions).
    client_ip: String,
    tx: Mutex<Option<oneshot::Sender<Vec<Listened>>>>,
}

/// Listener registry.
#[derive(Default)]
pub struct Listeners {
    grpc: RwLock<HashMap<ConfigKey, HashMap<u64, Spelled>>>,
    by_conn: Mutex<HashMap<u64, HashSet<ConfigKey>>>,
    polls: Mutex<HashMap<ConfigKey, HashMap<u64, Arc<Waiter>>>>,
    next_waiter: AtomicU64,
}

/// A parked long poll; dropping it unregisters the waiter.
pub struct PollGuard<'a> {
    listeners: &'a Listeners,
    id: u64,
    keys: Vec<ConfigKey>,
    /// Fires with the changed keys.
    pub rx: oneshot::Receiver<Vec<Listened>>,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        let mut polls = self.listeners.polls.lock();
        for k in &self.keys {
            if let Some(m) = polls.get_mut(k) {
                m.remove(&self.id);
                if m.is_empty() {
                    polls.remove(k);
                }
            }
        }
    }
}

impl Listeners {
    /// Adds gRPC listens of a connection.
    pub fn listen(&self, conn: u64, keys: &[(ConfigKey, Spelled)]) {
        let mut grpc = self.grpc.write();
        let mut by_conn = self.by_conn.lock();
        let mine = by_conn.entry(conn).or_default();
        for (k, s) in keys {
            grpc.entry(k.clone()).or_default().insert(conn, s.clone());
            mine.insert(k.clone());
        }
    }

    /// Removes gRPC listens of a connection.
    pub fn unlisten(&self, conn: u64, keys: &[ConfigKey]) {
        let mut grpc = self.grpc.write();
        let mut by_conn = self.by_conn.lock();
        for k in keys {
            if let Some(m) = grpc.get_mut(k) {
                m.remove(&conn);
                if m.is_empty() {
                    grpc.remove(k);
                }
            }
            if let Some(mine) = by_conn.get_mut(&conn) {
                mine.remove(k);
            }
        }
    }

    /// Drops everything a connection listened to.
    pub fn conn_gone(&self, conn: u64) {
        let keys: Vec<ConfigKey> =
            self.by_conn.lock().remove(&conn).map(|s| s.into_iter().collect()).unwrap_or_default();
        let mut grpc = self.grpc.write();
        for k in keys {
            if let Some(m) = grpc.get_mut(&k) {
                m.remove(&conn);
                if m.is_empty() {
                    grpc.remove(&k);
                }
            }
        }
    }

    /// gRPC listeners of a key, with their spelling.
    pub fn grpc_listeners(&self, key: &ConfigKey) -> Vec<(u64, Spelled)> {
        self.grpc.read().get(key).map(|m| m.iter().map(|(c, s)| (*c, s.clone())).collect()).unwrap_or_default()
    }

    /// Number of gRPC listen registrations.
    pub fn grpc_count(&self) -> usize {
        self.grpc.read().values().map(HashMap::len).sum()
    }

    /// Number of parked long polls.
    pub fn poll_count(&self) -> usize {
        self.polls.lock().values().map(HashMap::len).sum()
    }

    /// Parks a long poll of a client at `client_ip` on `listened`; the guard's receiver fires on
    /// the first change of what that client sees.
    pub fn park(&self, listened: Vec<(ConfigKey, Listened)>, client_ip: &str) -> PollGuard<'_> {
        let id = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let keys: Vec<ConfigKey> = listened.iter().map(|(k, _)| k.clone()).collect();
        let waiter = Arc::new(Waiter { listened, client_ip: client_ip.to_owned(), tx: Mutex::new(Some(tx)) });
        let mut polls = self.polls.lock();
        for k in &keys {
            polls.entry(k.clone()).or_default().insert(id, waiter.clone());
        }
        PollGuard { listeners: self, id, keys, rx }
    }

    /// Answers the long polls waiting on `key` whose client now sees another md5 than it sent;
    /// `view(key, client_ip)` is the md5 a client sees. The others stay parked (as Nacos, a gray
    /// release wakes only its beta IPs, and a formal change does not wake them).
    pub fn wake_polls(&self, key: &ConfigKey, view: impl Fn(&ConfigKey, &str) -> String) {
        let waiters: Vec<(u64, Arc<Waiter>)> =
            self.polls.lock().get(key).map(|m| m.iter().map(|(id, w)| (*id, w.clone())).collect()).unwrap_or_default();
        let mut woken = Vec::new();
        for (id, w) in waiters {
            let md5 = view(key, &w.client_ip);
            let changed: Vec<Listened> =
                w.listened.iter().filter(|(k, l)| k == key && l.md5 != md5).map(|(_, l)| l.clone()).collect();
            if !changed.is_empty() {
                woken.push((id, w, changed));
            }
        }
        if woken.is_empty() {
            return;
        }
        {
            let mut polls = self.polls.lock();
            if let Some(m) = polls.get_mut(key) {
                for (id, _, _) in &woken {
                    m.remove(id);
                }
                if m.is_empty() {
                    polls.remove(key);
                }
            }
        }
        for (_, w, changed) in woken {
            if let Some(tx) = w.tx.lock().take() {
                let _ = tx.send(changed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spelled(t: &str) -> Spelled {
        Spelled { data_id: "d".into(), group: "g".into(), tenant: t.into() }
    }

    #[test]
    fn grpc_listen_unlisten_and_conn_gone() {
        let l = Listeners::default();
        let k = ConfigKey::new("", "g", "d");
        l.listen(1, &[(k.clone(), spelled(""))]);
        l.listen(2, &[(k.clone(), spelled("public"))]);
        assert_eq!(l.grpc_listeners(&k).len(), 2);
        l.unlisten(1, std::slice::from_ref(&k));
        assert_eq!(l.grpc_listeners(&k), vec![(2, spelled("public"))]);
        l.conn_gone(2);
        assert_eq!(l.grpc_count(), 0);
    }

    #[tokio::test]
    async fn long_poll_wakes_and_guard_cleans_up() {
        let l = Listeners::default();
        let k = ConfigKey::new("", "g", "d");
        let lst = Listened { data_id: "d".into(), group: "g".into(), md5: String::new(), tenant: None };
        let guard = l.park(vec![(k.clone(), lst.clone())], "10.0.0.1");
        assert_eq!(l.poll_count(), 1);
        // What the client sees did not change: it stays parked.
        l.wake_polls(&k, |_, _| String::new());
        assert_eq!(l.poll_count(), 1);
        l.wake_polls(&k, |_, ip| format!("md5-for-{ip}"));
        assert_eq!(l.poll_count(), 0);
        let mut guard = guard;
        let changed = (&mut guard.rx).await.unwrap();
        assert_eq!(changed, vec![lst.clone()]);
        let guard = l.park(vec![(k.clone(), lst)], "10.0.0.1");
        drop(guard);
        assert_eq!(l.poll_count(), 0);
    }
}
