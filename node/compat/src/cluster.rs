//! A 3-node `cairn-node` cluster for tests: nodes on 127.0.0.1, .2 and .3 with the same ports
//! and a static `--members` list; every node's data directory is removed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::node_proc::{http_get_status, node_binary};

/// A running cluster.
pub struct Cluster {
    children: Vec<Child>,
    dirs: Vec<PathBuf>,
    /// HTTP port shared by all nodes.
    pub port: u16,
    /// Node addresses.
    pub ips: Vec<std::net::Ipv4Addr>,
}

/// A port P with P, P+1000 and P+1001 free on each of `ips` (the three ports of a node).
///
/// P is taken below the kernel's ephemeral range (`ip_local_port_range`), so an outgoing
/// connection of some other test can never occupy P+1000 or P+1001 between this probe and the
/// node's bind. Ports handed out earlier in this process are never handed out again, so tests
/// running in parallel get disjoint triples (a probe alone cannot see a port that another test
/// has picked but whose node has not bound it yet).
pub fn free_port_on(ips: &[std::net::Ipv4Addr]) -> u16 {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()))
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_low.saturating_sub(1002).max(10_100));
    let span = high - low;
    let seed = std::process::id().wrapping_mul(7919)
        ^ SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for k in 0..span {
        let p = (low + seed.wrapping_add(k) % span) as u16;
        let triple = [p, p + 1000, p + 1001];
        if triple.iter().any(|q| handed.contains(q)) {
            continue;
        }
        let free = ips.iter().all(|ip| triple.iter().all(|q| TcpListener::bind((*ip, *q)).is_ok()));
        if free {
            handed.extend(triple);
            return p;
        }
    }
    panic!("no free port triple (P, P+1000, P+1001) in {low}..{high} on {ips:?}");
}

impl Cluster {
    /// Starts three nodes and waits (≤ 40 s) until every one is ready (a leader is known).
    pub fn start3() -> Cluster {
        let ips: Vec<std::net::Ipv4Addr> = (1..=3).map(|i| std::net::Ipv4Addr::new(127, 0, 0, i)).collect();
        let port = free_port_on(&ips);
        let members = ips.iter().map(|ip| format!("{ip}:{port}")).collect::<Vec<_>>().join(",");
        let bin = node_binary();
        let mut children = Vec::new();
        let mut dirs = Vec::new();
        for ip in &ips {
            let dir = std::env::temp_dir().join(format!("cairn-cluster-{}-{port}-{ip}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let child = Command::new(&bin)
                .args(["--bind", &ip.to_string(), "--http-port", &port.to_string(), "--members", &members])
                .arg("--data-dir")
                .arg(&dir)
                .env("CAIRN_LOG", std::env::var("CAIRN_TEST_LOG").unwrap_or_else(|_| "warn".into()))
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn cairn-node");
            children.push(child);
            dirs.push(dir);
        }
        let cluster = Cluster { children, dirs, port, ips };
        let deadline = Instant::now() + Duration::from_secs(40);
        for ip in &cluster.ips {
            while http_get_status(*ip, port, "/nacos/v1/console/health/readiness") != Some(200) {
                assert!(Instant::now() < deadline, "cluster node {ip} not ready");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        cluster
    }

    /// `ip:P` of node `i` (what clients are given).
    pub fn server_addr(&self, i: usize) -> String {
        format!("{}:{}", self.ips[i], self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
