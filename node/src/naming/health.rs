//! Active health checks of persistent instances. Every `interval` the node probes the persistent
//! instances of the services it is responsible for (standalone: all) and, after `threshold`
//! consecutive results contrary to the stored health, replicates the new verdict through Raft —
//! so every node pushes the same health.
//!
//! Checker per instance: metadata `healthChecker.type` = `TCP` (default: connect within the
//! timeout), `HTTP` (GET `healthChecker.path`, default `/`; 200 is healthy) or `NONE`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::naming::model::{Instance, ServiceKey};
use crate::naming::persist::NamingCommand;
use crate::naming::registry::Registry;
use crate::replicate::{self, Replicator};

/// Decides whether this node checks a service (exactly one node per service in a cluster).
pub type Responsible = Arc<dyn Fn(&ServiceKey) -> bool + Send + Sync>;

/// The checker for a service among sorted `members`: FNV-1a of `namespace/group@@service`
/// modulo the member count — stable across nodes and versions.
pub fn responsible_member<'a>(key: &ServiceKey, members: &'a [String]) -> Option<&'a String> {
    if members.is_empty() {
        return None;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}/{}", key.namespace, key.grouped_name()).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    members.get((h % members.len() as u64) as usize)
}

/// Checker settings.
#[derive(Clone, Debug)]
pub struct HealthSettings {
    /// Time between rounds.
    pub interval: Duration,
    /// Connect / response timeout of one probe.
    pub timeout: Duration,
    /// Consecutive contrary results before the health flips.
    pub threshold: u32,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings { interval: Duration::from_secs(5), timeout: Duration::from_millis(500), threshold: 3 }
    }
}

type InstanceKey = (ServiceKey, String, u16, String);

/// Probes one instance; `None` when it is not checked (`NONE`).
pub async fn probe(inst: &Instance, timeout: Duration) -> Option<bool> {
    let kind = inst.metadata.get("healthChecker.type").map(|s| s.to_ascii_uppercase()).unwrap_or_else(|| "TCP".into());
    let addr = format!("{}:{}", inst.ip, inst.port);
    match kind.as_str() {
        "NONE" => None,
        "HTTP" => {
            let path = inst.metadata.get("healthChecker.path").unwrap_or("/").to_owned();
            let check = async {
                let mut s = TcpStream::connect(&addr).await.ok()?;
                let req = format!(
                    "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Cairn-Health-Checker\r\nConnection: close\r\n\r\n"
                );
                s.write_all(req.as_bytes()).await.ok()?;
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).await.ok()?;
                let head = std::str::from_utf8(&buf[..n]).ok()?;
                Some(head.split_whitespace().nth(1) == Some("200"))
            };
            Some(tokio::time::timeout(timeout, check).await.ok().flatten().unwrap_or(false))
        }
        _ => Some(matches!(tokio::time::timeout(timeout, TcpStream::connect(&addr)).await, Ok(Ok(_)))),
    }
}

/// Runs rounds until `cancel` fires.
pub async fn run(
    registry: Arc<Registry>,
    replicator: Arc<dyn Replicator>,
    responsible: Responsible,
    settings: HealthSettings,
    cancel: CancellationToken,
) {
    let mut streak: HashMap<InstanceKey, u32> = HashMap::new();
    let mut tick = tokio::time::interval(settings.interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let targets: Vec<_> = registry.persistent_instances().into_iter().filter(|(k, _)| responsible(k)).collect();
        let results = futures::future::join_all(targets.iter().map(|(_, i)| probe(i, settings.timeout))).await;
        let mut seen = std::collections::HashSet::new();
        for ((key, inst), result) in targets.iter().zip(results) {
            let id: InstanceKey = (key.clone(), inst.ip.clone(), inst.port, inst.cluster.to_string());
            seen.insert(id.clone());
            let Some(ok) = result else { continue };
            if ok == inst.healthy {
                streak.remove(&id);
                continue;
            }
            let n = streak.entry(id.clone()).or_insert(0);
            *n += 1;
            if *n < settings.threshold {
                continue;
            }
            streak.remove(&id);
            let cmd = NamingCommand::SetHealth {
                key: key.clone(),
                ip: inst.ip.clone(),
                port: inst.port,
                cluster: inst.cluster.to_string(),
                healthy: ok,
            };
            if let Err(e) = replicate::naming(&*replicator, cmd).await {
                tracing::warn!(error = %e, ?key, ip = %inst.ip, port = inst.port, "could not record a health change");
            }
        }
        streak.retain(|k, _| seen.contains(k));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn inst(port: u16, meta: &[(&str, &str)]) -> Instance {
        Instance {
            ephemeral: false,
            metadata: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>().into(),
            ..Instance::sample("127.0.0.1", port)
        }
    }

    #[test]
    fn exactly_one_member_per_service() {
        let members: Vec<String> = ["a:1", "b:1", "c:1"].iter().map(|s| s.to_string()).collect();
        let mut hits = std::collections::HashMap::new();
        for i in 0..300 {
            let k = ServiceKey::new("", "", &format!("svc{i}"));
            let m = responsible_member(&k, &members).unwrap();
            assert_eq!(responsible_member(&k, &members).unwrap(), m, "stable");
            *hits.entry(m.clone()).or_insert(0) += 1;
        }
        assert_eq!(hits.len(), 3, "spread over every member: {hits:?}");
        assert!(responsible_member(&ServiceKey::new("", "", "x"), &[]).is_none());
    }

    #[tokio::test]
    async fn tcp_and_http_probes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let ok = std::str::from_utf8(&buf[..n]).unwrap_or("").starts_with("GET /ok ");
                let status = if ok { "200 OK" } else { "503 Service Unavailable" };
                let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
            }
        });
        let t = Duration::from_millis(500);
        assert_eq!(probe(&inst(port, &[]), t).await, Some(true));
        assert_eq!(
            probe(&inst(port, &[("healthChecker.type", "HTTP"), ("healthChecker.path", "/ok")]), t).await,
            Some(true)
        );
        assert_eq!(
            probe(&inst(port, &[("healthChecker.type", "HTTP"), ("healthChecker.path", "/bad")]), t).await,
            Some(false)
        );
        assert_eq!(probe(&inst(port, &[("healthChecker.type", "none")]), t).await, None);
        // A closed port fails.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert_eq!(probe(&inst(closed, &[]), t).await, Some(false));
    }
}
