//! A 3-node `cairn-node` cluster for tests: nodes on 127.0.0.1, .2 and .3 with the same ports
//! and a static `--members` list; every node's data directory is removed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
pub fn free_port_on(ips: &[std::net::Ipv4Addr]) -> u16 {
    'outer: loop {
        let p = TcpListener::bind("127.0.0.1:0").expect("probe").local_addr().expect("addr").port();
        if !(1024..=64000).contains(&p) {
            continue;
        }
        for ip in ips {
            for q in [p, p + 1000, p + 1001] {
                if TcpListener::bind((*ip, q)).is_err() {
                    continue 'outer;
                }
            }
        }
        return p;
    }
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
