//! Member providers: one trait, one implementation per `--members` form. A provider runs until
//! cancelled and reports every member set it finds through a [`Sink`]; it never fails the node:
//! trouble (an unreadable file, a DNS timeout, a lost watch) is logged and the last good set kept.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::spec::{MembersSpec, parse_cluster_conf};
use super::{Member, Membership};
use crate::config::Config;
use crate::error::Result;

/// Where a provider reports member sets.
#[derive(Clone)]
pub struct Sink {
    membership: Membership,
}

impl Sink {
    /// A sink publishing into `membership`.
    pub fn new(membership: Membership) -> Sink {
        Sink { membership }
    }

    /// Reports the complete set discovered now (this node need not be in it).
    pub fn publish(&self, members: Vec<Member>) {
        self.membership.publish(members);
    }
}

/// A source of member sets.
pub trait Provider: Send + 'static {
    /// Reports member sets into `sink` until `cancel` fires.
    fn run(self: Box<Self>, sink: Sink, cancel: CancellationToken) -> BoxFuture<'static, ()>;
}

/// Creates the provider for `spec`.
pub async fn create(spec: &MembersSpec, config: &Config) -> Result<Box<dyn Provider>> {
    Ok(match spec {
        MembersSpec::Standalone => Box::new(Fixed(vec![Member::new(config.self_address())])),
        MembersSpec::Static(list) => Box::new(Fixed(list.iter().map(Member::new).collect())),
        MembersSpec::File(path) => {
            Box::new(FileProvider { path: path.clone(), default_port: config.http_port, poll: Duration::from_secs(1) })
        }
        MembersSpec::Dns(name) => Box::new(super::dns::DnsProvider::new(name.clone(), config)?),
        MembersSpec::K8s(selector) => Box::new(super::k8s::K8sProvider::new(selector.clone(), config).await?),
    })
}

/// A set that never changes: standalone and static lists.
pub struct Fixed(pub Vec<Member>);

impl Provider for Fixed {
    fn run(self: Box<Self>, sink: Sink, _cancel: CancellationToken) -> BoxFuture<'static, ()> {
        Box::pin(async move { sink.publish(self.0) })
    }
}

/// `file:<path>`: a cluster.conf file, re-read every `poll` (content compared, so an edit that
/// keeps the mtime is seen too). A missing or unparsable file keeps the last good set.
pub struct FileProvider {
    /// The file.
    pub path: PathBuf,
    /// Port of entries without one (this node's HTTP port).
    pub default_port: u16,
    /// Re-read interval.
    pub poll: Duration,
}

impl Provider for FileProvider {
    fn run(self: Box<Self>, sink: Sink, cancel: CancellationToken) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut last_text: Option<String> = None;
            let mut last_problem: Option<String> = None;
            loop {
                let problem = match tokio::fs::read_to_string(&self.path).await {
                    Ok(text) if last_text.as_deref() == Some(text.as_str()) => None,
                    Ok(text) => match parse_cluster_conf(&text, self.default_port) {
                        Ok(list) => {
                            tracing::debug!(path = %self.path.display(), members = ?list, "member file read");
                            sink.publish(list.into_iter().map(Member::new).collect());
                            last_text = Some(text);
                            None
                        }
                        Err(e) => Some(format!("unparsable ({e}); keeping the last good member set")),
                    },
                    Err(e) => Some(format!("unreadable ({e}); keeping the last good member set")),
                };
                if problem.is_some() && problem != last_problem {
                    tracing::warn!(path = %self.path.display(), "member file {}", problem.as_deref().unwrap_or(""));
                } else if problem.is_none() && last_problem.is_some() {
                    tracing::info!(path = %self.path.display(), "member file readable again");
                }
                last_problem = problem;
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_provider_hot_reloads_and_keeps_last_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.conf");
        std::fs::write(&path, "127.0.0.1:8848\n127.0.0.2\n").unwrap();
        let m = Membership::new("127.0.0.1:8848".into(), MembersSpec::File(path.clone()));
        let cancel = CancellationToken::new();
        let p = Box::new(FileProvider { path: path.clone(), default_port: 8848, poll: Duration::from_millis(20) });
        tokio::spawn(p.run(Sink::new(m.clone()), cancel.clone()));
        let mut rx = m.subscribe();
        let wait = |rx: &mut tokio::sync::watch::Receiver<std::sync::Arc<super::super::MemberSet>>, n: usize| {
            let mut rx = rx.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|s| s.len() == n))
                    .await
                    .unwrap()
                    .unwrap()
                    .addresses()
            }
        };
        assert_eq!(wait(&mut rx, 2).await, ["127.0.0.1:8848", "127.0.0.2:8848"]);
        std::fs::write(&path, "127.0.0.1:8848\n127.0.0.2\n# new\n127.0.0.3:8848\n").unwrap();
        assert_eq!(wait(&mut rx, 3).await.len(), 3);
        std::fs::write(&path, "127.0.0.1:8848\nnot a member\n").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(m.current().len(), 3, "an unparsable file keeps the last good set");
        std::fs::remove_file(&path).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(m.current().len(), 3, "a missing file keeps the last good set");
        std::fs::write(&path, "127.0.0.1:8848\n").unwrap();
        assert_eq!(wait(&mut rx, 1).await, ["127.0.0.1:8848"]);
        cancel.cancel();
    }
}
