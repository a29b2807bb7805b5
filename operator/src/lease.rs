//! Leader election through a `coordination.k8s.io/v1` Lease, so that several operator replicas are
//! safe: only the holder reconciles.
//!
//! The holder renews every third of the lease duration. Another replica takes the lease over only
//! when the record (holder, renew time, resourceVersion) has not changed for a whole lease duration
//! *as measured by its own clock* — comparing the holder's timestamps with the local clock would make
//! the election depend on clock skew. Updates carry the resourceVersion they read (optimistic
//! concurrency), so two replicas never both win. On shutdown the holder releases the lease (empty
//! holder), so a successor takes over at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// One replica's side of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// Last record seen held by someone else, and when it was first seen (local clock).
    observed: Option<(String, Instant)>,
}

impl LeaderElector {
    /// An elector for Lease `name` in `api`'s namespace.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Self { api, name: name.to_owned(), identity: identity.to_owned(), duration, observed: None }
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Tries to acquire or renew the lease once; `Ok(true)` when this replica holds it afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool> {
        let now = MicroTime(Timestamp::now());
        let current = self.api.get_opt(&self.name).await.map_err(Error::kube(format!("get Lease {}", self.name)))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.lease_seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(Error::kube(format!("create Lease {}", self.name))(e)),
            };
        };
        let spec = lease.spec.get_or_insert_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.as_deref() != Some(self.identity.as_str()) {
            let record =
                format!("{holder:?}/{:?}/{:?}", spec.renew_time.as_ref().map(|t| t.0), lease.metadata.resource_version);
            let since = match &self.observed {
                Some((r, at)) if *r == record => *at,
                _ => {
                    self.observed = Some((record, Instant::now()));
                    Instant::now()
                }
            };
            let their_duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.duration, Duration::from_secs);
            if holder.is_some() && since.elapsed() < their_duration {
                return Ok(false);
            }
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(self.lease_seconds());
        spec.renew_time = Some(now);
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => {
                self.observed = None;
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(Error::kube(format!("update Lease {}", self.name))(e)),
        }
    }

    /// Gives the lease up if this replica holds it.
    pub async fn release(&self) -> Result<()> {
        let Some(mut lease) =
            self.api.get_opt(&self.name).await.map_err(Error::kube(format!("get Lease {}", self.name)))?
        else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
            Err(e) => Err(Error::kube(format!("release Lease {}", self.name))(e)),
        }
    }

    /// Runs the election until `shutdown` (then releases the lease) or until leadership, once held, is
    /// lost (then returns [`Error::LeaseLost`]). `leader` follows whether this replica holds the lease.
    pub async fn run(mut self, leader: watch::Sender<bool>, shutdown: CancellationToken) -> Result<()> {
        let renew_every = self.duration / 3;
        let retry_every = (self.duration / 5).max(Duration::from_millis(500));
        // Renewals failing for this long mean another replica may take over: stop acting first.
        let renew_deadline = self.duration * 2 / 3;
        let mut last_renew: Option<Instant> = None;
        loop {
            let held = match self.try_acquire_or_renew().await {
                Ok(true) => {
                    last_renew = Some(Instant::now());
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.name, "leader election request failed");
                    last_renew.is_some_and(|t| t.elapsed() < renew_deadline)
                }
            };
            let was = *leader.borrow();
            if was && !held {
                leader.send_replace(false);
                return Err(Error::LeaseLost(self.name.clone()));
            }
            if held && !was {
                tracing::info!(lease = %self.name, identity = %self.identity, "acquired leadership");
                leader.send_replace(true);
            }
            let wait = if held { renew_every } else { retry_every };
            tokio::select! {
                _ = shutdown.cancelled() => {
                    if *leader.borrow() {
                        leader.send_replace(false);
                        if let Err(e) = self.release().await {
                            tracing::warn!(error = %e, "releasing the lease failed");
                        }
                    }
                    return Ok(());
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
