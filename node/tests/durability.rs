//! Durability through Raft with real processes: every write acknowledged to a client survives
//! `kill -9` — of a standalone node, of a 3-node cluster's leader in the middle of a publish
//! stream (nodes on 127.0.0.1, .2 and .3 with the same ports), and of the whole cluster; and
//! history retention deletes the same expired records on every member.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cairn-node");

struct Member {
    ip: String,
    port: u16,
    dir: PathBuf,
    members: Option<String>,
    child: Option<Child>,
}

impl Member {
    fn new(ip: &str, port: u16, tag: &str, members: Option<String>) -> Member {
        let dir = std::env::temp_dir().join(format!("cairn-dur-{}-{tag}-{ip}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Member { ip: ip.into(), port, dir, members, child: None }
    }

    fn start(&mut self) {
        self.start_with(&[]);
    }

    fn start_with(&mut self, extra: &[&str]) {
        let mut cmd = Command::new(BIN);
        cmd.args(extra);
        cmd.args(["--bind", &self.ip, "--http-port", &self.port.to_string(), "--log", "warn"])
            .arg("--data-dir")
            .arg(&self.dir);
        if let Some(m) = &self.members {
            cmd.args(["--members", m]);
        }
        self.child = Some(cmd.stdin(Stdio::null()).spawn().expect("spawn cairn-node"));
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn base(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap()
}

/// A port P with P, P+1000 and P+1001 free on each of `ips`.
fn free_port(ips: &[&str]) -> u16 {
    let ips: Vec<std::net::Ipv4Addr> = ips.iter().map(|ip| ip.parse().expect("IPv4")).collect();
    cairn_compat::free_port_on(&ips)
}

async fn wait_ready(m: &Member, limit: Duration) {
    let c = client();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(r) = c.get(format!("{}/nacos/v1/console/health/readiness", m.base())).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} not ready within {limit:?}", m.base());
}

async fn publish(c: &reqwest::Client, m: &Member, data_id: &str, content: &str) -> bool {
    let form = [("dataId", data_id), ("group", "DUR"), ("content", content)];
    match c.post(format!("{}/nacos/v1/cs/configs", m.base())).form(&form).send().await {
        Ok(r) => r.status().is_success() && r.text().await.is_ok_and(|t| t == "true"),
        Err(_) => false,
    }
}

async fn read(c: &reqwest::Client, m: &Member, data_id: &str) -> Option<String> {
    let r = c.get(format!("{}/nacos/v1/cs/configs?dataId={data_id}&group=DUR", m.base())).send().await.ok()?;
    if r.status().is_success() { r.text().await.ok() } else { None }
}

/// Every acknowledged write reads back identically from `m` (allowing `limit` to catch up).
async fn assert_all_there(m: &Member, acked: &BTreeMap<String, String>, limit: Duration) {
    let c = client();
    let deadline = Instant::now() + limit;
    for (k, v) in acked {
        loop {
            let got = read(&c, m, k).await;
            if got.as_deref() == Some(v.as_str()) {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {k} = {got:?}, expected {v:?}", m.base());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn is_leader(m: &Member) -> bool {
    let Ok(r) = client().get(format!("{}/metrics", m.base())).send().await else { return false };
    r.text().await.is_ok_and(|t| t.lines().any(|l| l == "cairn_raft_is_leader 1"))
}

#[tokio::test]
async fn standalone_survives_kill9() {
    let port = free_port(&["127.0.0.1"]);
    let mut m = Member::new("127.0.0.1", port, "solo", None);
    m.start();
    wait_ready(&m, Duration::from_secs(20)).await;
    let c = client();
    let mut acked = BTreeMap::new();
    for i in 0..200 {
        let (k, v) = (format!("solo-{i}"), format!("value {i} ✓"));
        assert!(publish(&c, &m, &k, &v).await, "publish {k}");
        acked.insert(k, v);
    }
    m.kill9();
    m.start();
    wait_ready(&m, Duration::from_secs(20)).await;
    assert_all_there(&m, &acked, Duration::from_secs(5)).await;
}

/// Starts a 3-node cluster on 127.0.0.1, .2 and .3 (same ports) with `extra` flags, and waits
/// until every member is ready.
async fn start_cluster(tag: &str, extra: &[&str]) -> Vec<Member> {
    let ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    let port = free_port(&ips);
    let members = ips.iter().map(|ip| format!("{ip}:{port}")).collect::<Vec<_>>().join(",");
    let mut nodes: Vec<Member> = ips.iter().map(|ip| Member::new(ip, port, tag, Some(members.clone()))).collect();
    for n in &mut nodes {
        n.start_with(extra);
    }
    for n in &nodes {
        wait_ready(n, Duration::from_secs(30)).await;
    }
    nodes
}

#[tokio::test]
async fn cluster_keeps_every_acknowledged_publish_through_leader_kill_and_full_restart() {
    let mut nodes = start_cluster("cluster", &[]).await;

    // A stream of publishes, round-robin over the nodes (followers forward to the leader).
    let c = client();
    let mut acked = BTreeMap::new();
    let (mut killed_at, mut restarted) = (None, false);
    let start = Instant::now();
    let mut i = 0usize;
    while start.elapsed() < Duration::from_secs(12) {
        let target = i % nodes.len();
        if nodes[target].child.is_some() {
            let (k, v) = (format!("c-{i}"), format!("payload-{i}"));
            if publish(&c, &nodes[target], &k, &v).await {
                acked.insert(k, v);
            }
        }
        i += 1;
        if killed_at.is_none() && start.elapsed() > Duration::from_secs(2) {
            let mut leader = None;
            for (ix, n) in nodes.iter().enumerate() {
                if is_leader(n).await {
                    leader = Some(ix);
                }
            }
            let leader = leader.expect("a leader");
            nodes[leader].kill9();
            killed_at = Some((leader, Instant::now()));
        }
        if let Some((ix, at)) = killed_at
            && !restarted
            && at.elapsed() > Duration::from_secs(3)
        {
            nodes[ix].start();
            restarted = true;
        }
    }
    assert!(restarted, "the leader was killed and restarted");
    assert!(acked.len() > 50, "only {} publishes were acknowledged", acked.len());
    eprintln!("{} of {i} publishes acknowledged across the leader kill", acked.len());
    for n in &nodes {
        wait_ready(n, Duration::from_secs(30)).await;
        assert_all_there(n, &acked, Duration::from_secs(10)).await;
    }

    // Whole-cluster kill -9 and restart: nothing acknowledged is lost.
    for n in &mut nodes {
        n.kill9();
    }
    for n in &mut nodes {
        n.start();
    }
    for n in &nodes {
        wait_ready(n, Duration::from_secs(30)).await;
        assert_all_there(n, &acked, Duration::from_secs(10)).await;
    }
}

async fn list_hosts(m: &Member, service: &str) -> Vec<serde_json::Value> {
    let url = format!("{}/nacos/v1/ns/instance/list?serviceName={service}", m.base());
    let v: serde_json::Value = client().get(url).send().await.unwrap().json().await.unwrap();
    v["hosts"].as_array().cloned().unwrap_or_default()
}

async fn wait_health(m: &Member, service: &str, want: bool, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let hosts = list_hosts(m, service).await;
        if hosts.len() == 1 && hosts[0]["healthy"] == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "health never became {want}: {hosts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn persistent_instances_are_health_checked_and_survive_kill9() {
    let port = free_port(&["127.0.0.1"]);
    let mut m = Member::new("127.0.0.1", port, "persist", None);
    m.start_with(&["--health-check-interval-ms", "200"]);
    wait_ready(&m, Duration::from_secs(20)).await;

    // A persistent instance pointing at a port we control.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tport = target.local_addr().unwrap().port().to_string();
    let form = [("serviceName", "pers"), ("ip", "127.0.0.1"), ("port", tport.as_str()), ("ephemeral", "false")];
    let r = client().post(format!("{}/nacos/v1/ns/instance", m.base())).form(&form).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
    let hosts = list_hosts(&m, "pers").await;
    assert_eq!(hosts[0]["ephemeral"], false);
    wait_health(&m, "pers", true, Duration::from_secs(5)).await;

    // The target goes away: after 3 failed TCP checks the instance turns unhealthy (via Raft).
    drop(target);
    let took = wait_health(&m, "pers", false, Duration::from_secs(5)).await;
    eprintln!("persistent instance marked unhealthy after {took:?}");
    // It comes back.
    let _target = std::net::TcpListener::bind(("127.0.0.1", tport.parse::<u16>().unwrap())).unwrap();
    wait_health(&m, "pers", true, Duration::from_secs(5)).await;

    // Service settings go through Raft too.
    let form = [("serviceName", "pers"), ("protectThreshold", "0.6"), ("metadata", "{\"team\":\"core\"}")];
    let r = client().put(format!("{}/nacos/v1/ns/service", m.base())).form(&form).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");

    // Persistent instances, their health and service settings live in Raft: kill -9 and restart keeps them.
    let mut m = m;
    m.kill9();
    m.start_with(&["--health-check-interval-ms", "200"]);
    wait_ready(&m, Duration::from_secs(20)).await;
    let hosts = list_hosts(&m, "pers").await;
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    assert_eq!(hosts[0]["port"].as_u64(), Some(tport.parse().unwrap()));
    let svc: serde_json::Value = client()
        .get(format!("{}/nacos/v1/ns/service?serviceName=pers", m.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(svc["protectThreshold"], 0.6, "{svc}");
    assert_eq!(svc["metadata"]["team"], "core", "{svc}");
    // Deregister through Raft.
    let r = client()
        .delete(format!("{}/nacos/v1/ns/instance?serviceName=pers&ip=127.0.0.1&port={tport}&ephemeral=false", m.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
    assert!(list_hosts(&m, "pers").await.is_empty());
}

/// Total history records of `data_id` (group `DUR`) as member `m` sees them.
async fn history_total(c: &reqwest::Client, m: &Member, data_id: &str) -> Option<u64> {
    let url =
        format!("{}/nacos/v1/cs/history?search=accurate&dataId={data_id}&group=DUR&pageNo=1&pageSize=10", m.base());
    let v: serde_json::Value = c.get(url).send().await.ok()?.json().await.ok()?;
    v["totalCount"].as_u64()
}

/// Waits until `m` holds `want` history records of `aging`, failing at `deadline`.
async fn wait_history(c: &reqwest::Client, m: &Member, want: u64, deadline: Instant) {
    loop {
        let total = history_total(c, m, "aging").await;
        if total == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{}: history {total:?}, expected {want}", m.base());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Config history past its retention (here 0.0001 days = 8.6 s) is purged through Raft: the
/// leader's purge commands delete the same records on every member, and the configs stay.
#[tokio::test]
async fn cluster_purges_expired_history_on_every_member() {
    let nodes = start_cluster(
        "purge",
        &["--config-history-retention-days", "0.0001", "--config-history-purge-interval-ms", "200"],
    )
    .await;
    let c = client();
    let published = Instant::now();
    for (i, n) in nodes.iter().enumerate() {
        assert!(publish(&c, n, "aging", &format!("v{i}")).await, "publish through {}", n.base());
    }
    // Every member applies the three records (followers may lag the leader a little), then
    // purges them.
    for n in &nodes {
        wait_history(&c, n, 3, published + Duration::from_secs(8)).await;
    }
    for n in &nodes {
        wait_history(&c, n, 0, published + Duration::from_secs(25)).await;
        assert_eq!(read(&c, n, "aging").await.as_deref(), Some("v2"), "{}", n.base());
    }
    assert!(published.elapsed() >= Duration::from_secs(8), "purged before the 8.6 s retention");
}
