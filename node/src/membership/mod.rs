//! Cluster membership: who the members of this node's cluster are, and how healthy they look.
//!
//! A *provider* (see [`provider`]) yields the member set — standalone (this node only), a static
//! list, a hot-reloaded `file:` (cluster.conf format), `dns:` (A or SRV records, re-resolved) or
//! `k8s:` (a watch of the namespace's Pods matching a label selector). [`Membership`] publishes
//! the current set as a [`tokio::sync::watch`] and keeps the health of every member
//! ([`MemberState`]: UP → SUSPICIOUS → DOWN, probed over HTTP, see [`health`]).
//!
//! The member set is what the node *discovers*; it is not the Raft configuration. Raft voters
//! change only through explicit membership changes (the admin API, or [`autojoin`] adding and
//! promoting discovered members; voters are never removed automatically).

pub mod autojoin;
pub mod dns;
pub mod health;
pub mod k8s;
pub mod provider;
pub mod spec;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::Result;

pub use health::{MemberHealth, MemberState};
pub use spec::MembersSpec;

/// One cluster member.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    /// The member's HTTP address, `host:http_port` (client gRPC is port+1000, cluster gRPC port+1001).
    pub address: String,
    /// The member's name when the provider knows one (the Pod name for `k8s:`).
    pub name: Option<String>,
}

impl Member {
    /// A member known only by its address.
    pub fn new(address: impl Into<String>) -> Member {
        Member { address: address.into(), name: None }
    }
}

/// A member set: sorted by address, one entry per address, always containing this node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSet {
    members: Vec<Member>,
}

impl MemberSet {
    /// Builds a set from `members` plus `self_address` (added when missing): sorted by address,
    /// deduplicated (the first entry of an address wins, preferring one with a name).
    pub fn new(self_address: &str, members: impl IntoIterator<Item = Member>) -> MemberSet {
        let mut by_addr: BTreeMap<String, Member> = BTreeMap::new();
        for m in members {
            match by_addr.get_mut(&m.address) {
                Some(old) if old.name.is_none() => *old = m,
                Some(_) => {}
                None => {
                    by_addr.insert(m.address.clone(), m);
                }
            }
        }
        by_addr.entry(self_address.to_owned()).or_insert_with(|| Member::new(self_address));
        MemberSet { members: by_addr.into_values().collect() }
    }

    /// The members, sorted by address.
    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.members.iter()
    }

    /// The members' addresses, sorted.
    pub fn addresses(&self) -> Vec<String> {
        self.members.iter().map(|m| m.address.clone()).collect()
    }

    /// Whether `address` (`host:http_port`) is a member.
    pub fn contains(&self, address: &str) -> bool {
        self.get(address).is_some()
    }

    /// The member at `address`.
    pub fn get(&self, address: &str) -> Option<&Member> {
        self.members.binary_search_by(|m| m.address.as_str().cmp(address)).ok().map(|i| &self.members[i])
    }

    /// Number of members (at least 1: this node).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false (a set contains this node); present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// The node's view of its cluster members and their health. Cheap to clone (an [`Arc`] inside).
#[derive(Clone)]
pub struct Membership {
    inner: Arc<Inner>,
}

struct Inner {
    self_address: String,
    spec: MembersSpec,
    /// The published member set (this node always included).
    set: watch::Sender<Arc<MemberSet>>,
    /// What the provider discovered, exactly (this node not added); `None` until its first answer.
    discovered: watch::Sender<Option<Arc<Vec<Member>>>>,
    /// Health of every member but this node, by address.
    health: watch::Sender<Arc<BTreeMap<String, MemberHealth>>>,
}

impl Membership {
    /// Starts membership for `config`: the provider of `--members` and the health prober, both
    /// running until `cancel` fires. Fails when `--members` is invalid or the provider cannot be
    /// set up (e.g. no Kubernetes configuration for `k8s:`).
    pub async fn start(config: &Config, cancel: CancellationToken) -> Result<Membership> {
        let spec = MembersSpec::parse(config)?;
        let membership = Membership::new(config.self_address(), spec.clone());
        let provider = provider::create(&spec, config).await?;
        let sink = provider::Sink::new(membership.clone());
        let c = cancel.clone();
        tokio::spawn(async move { provider.run(sink, c).await });
        let prober = health::Prober::new(membership.clone(), health::ProbeSettings::from_config(config));
        tokio::spawn(prober.run(cancel));
        Ok(membership)
    }

    /// A membership holding only this node, with no provider or prober running (tests, tools).
    pub fn new(self_address: String, spec: MembersSpec) -> Membership {
        let set = MemberSet::new(&self_address, []);
        Membership {
            inner: Arc::new(Inner {
                self_address,
                spec,
                set: watch::Sender::new(Arc::new(set)),
                discovered: watch::Sender::new(None),
                health: watch::Sender::new(Arc::new(BTreeMap::new())),
            }),
        }
    }

    /// This node's address, `advertise-host:http-port`.
    pub fn self_address(&self) -> &str {
        &self.inner.self_address
    }

    /// How members are found (`--members`).
    pub fn spec(&self) -> &MembersSpec {
        &self.inner.spec
    }

    /// The current member set.
    pub fn current(&self) -> Arc<MemberSet> {
        self.inner.set.borrow().clone()
    }

    /// A receiver that sees every change of the member set (not health changes: see
    /// [`subscribe_health`](Self::subscribe_health)).
    pub fn subscribe(&self) -> watch::Receiver<Arc<MemberSet>> {
        self.inner.set.subscribe()
    }

    /// The state of the member at `address`: this node is always [`MemberState::Up`]; a member
    /// not yet probed is `Up` (as Nacos starts members); an address that is not a member is
    /// [`MemberState::Down`].
    pub fn state(&self, address: &str) -> MemberState {
        if address == self.inner.self_address {
            return MemberState::Up;
        }
        if !self.current().contains(address) {
            return MemberState::Down;
        }
        self.health(address).map_or(MemberState::Up, |h| h.state)
    }

    /// Health record of a member other than this node (`None` before its first probe or when
    /// it is not a member).
    pub fn health(&self, address: &str) -> Option<MemberHealth> {
        self.inner.health.borrow().get(address).cloned()
    }

    /// A receiver that sees every change of member health (state or failure count), by address.
    pub fn subscribe_health(&self) -> watch::Receiver<Arc<BTreeMap<String, MemberHealth>>> {
        self.inner.health.subscribe()
    }

    /// The current members' addresses except this node's, sorted.
    pub fn peers(&self) -> Vec<String> {
        self.current().iter().filter(|m| m.address != self.inner.self_address).map(|m| m.address.clone()).collect()
    }

    /// Whether the set comes from discovery (`file:`, `dns:`, `k8s:`) rather than being fixed.
    pub fn is_discovered(&self) -> bool {
        self.inner.spec.is_discovered()
    }

    /// Waits for the provider's first answer and returns what it discovered (this node not
    /// added); `None` when `cancel` fires first.
    pub async fn first_discovery(&self, cancel: &CancellationToken) -> Option<Arc<Vec<Member>>> {
        let mut rx = self.inner.discovered.subscribe();
        tokio::select! {
            r = rx.wait_for(Option::is_some) => r.ok().and_then(|v| v.clone()),
            _ = cancel.cancelled() => None,
        }
    }

    /// What the provider discovered most recently (this node not added); `None` before its
    /// first answer.
    pub fn discovered(&self) -> Option<Arc<Vec<Member>>> {
        self.inner.discovered.borrow().clone()
    }

    /// Replaces the member set with what a provider discovered. Health records of members that
    /// left are dropped. Used by providers (through [`provider::Sink`]) and tests.
    pub fn publish(&self, discovered: Vec<Member>) {
        let set = MemberSet::new(&self.inner.self_address, discovered.iter().cloned());
        self.inner.discovered.send_replace(Some(Arc::new(discovered)));
        let changed = self.inner.set.send_if_modified(|cur| {
            if **cur == set {
                return false;
            }
            *cur = Arc::new(set.clone());
            true
        });
        if changed {
            tracing::info!(members = ?set.addresses(), "member set changed");
            self.inner.health.send_if_modified(|h| {
                let before = h.len();
                let kept: BTreeMap<_, _> =
                    h.iter().filter(|(a, _)| set.contains(a)).map(|(a, v)| (a.clone(), v.clone())).collect();
                let dropped = kept.len() != before;
                if dropped {
                    *h = Arc::new(kept);
                }
                dropped
            });
        }
    }

    /// Records a probe result for `address` (ignored when it is not a member any more).
    pub(crate) fn record_probe(&self, address: &str, ok: bool) {
        if !self.current().contains(address) || address == self.inner.self_address {
            return;
        }
        self.inner.health.send_if_modified(|h| {
            let old = h.get(address).cloned().unwrap_or_default();
            let new = old.clone().after_probe(ok);
            if new == old && h.contains_key(address) {
                return false;
            }
            if new.state != old.state {
                tracing::info!(member = address, from = %old.state, to = %new.state, "member state changed");
            }
            let mut m = (**h).clone();
            m.insert(address.to_owned(), new);
            *h = Arc::new(m);
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_set_sorted_deduplicated_with_self() {
        let s = MemberSet::new(
            "10.0.0.2:8848",
            [
                Member::new("10.0.0.3:8848"),
                Member::new("10.0.0.1:8848"),
                Member { address: "10.0.0.3:8848".into(), name: Some("c".into()) },
            ],
        );
        assert_eq!(s.addresses(), ["10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848"]);
        assert_eq!(s.get("10.0.0.3:8848").and_then(|m| m.name.as_deref()), Some("c"));
        assert!(s.contains("10.0.0.2:8848") && !s.contains("10.0.0.4:8848"));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn publish_notifies_only_on_change_and_tracks_health() {
        let m = Membership::new("a:1".into(), MembersSpec::Standalone);
        let mut rx = m.subscribe();
        assert_eq!(m.current().addresses(), ["a:1"]);
        m.publish(vec![Member::new("b:1")]);
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        m.publish(vec![Member::new("b:1")]);
        assert!(!rx.has_changed().unwrap());
        assert_eq!(m.peers(), ["b:1"]);
        assert_eq!(m.state("b:1"), MemberState::Up);
        m.record_probe("b:1", false);
        assert_eq!(m.state("b:1"), MemberState::Suspicious);
        m.record_probe("b:1", false);
        m.record_probe("b:1", false);
        assert_eq!(m.state("b:1"), MemberState::Down);
        assert_eq!(m.health("b:1").map(|h| h.failures), Some(3));
        m.record_probe("b:1", true);
        assert_eq!(m.state("b:1"), MemberState::Up);
        m.record_probe("zz:1", false);
        assert_eq!(m.state("zz:1"), MemberState::Down);
        m.publish(vec![]);
        assert!(m.health("b:1").is_none());
        assert_eq!(m.state("a:1"), MemberState::Up);
    }
}
