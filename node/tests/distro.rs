//! Distro with real processes: members on 127.0.0.1 ..= 127.0.0.5 (same HTTP port) found
//! through a `file:` member list.
//!
//! - v1 heartbeat clients: writes sent to any member are forwarded to the member owning the
//!   service and replicated to every member; a beat through a non-owner is answered by the
//!   owner; when the owner is killed, its copies expire everywhere and the service moves to a
//!   live member.
//! - gRPC clients (the Rust `nacos-sdk`): a client whose member is killed reconnects to another
//!   member and re-registers; every member then shows its instance exactly once, before and
//!   after the dead member's copy expires.
//! - A fifth member joining a running 4-member cluster holds every instance by the time it
//!   reports ready.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

const EXPIRE_MS: u64 = 2_000;

#[path = "common/process.rs"]
mod process;

use process::TestNode as Member;

/// A member found through the members file, with fast Distro timings and v1 instances that
/// never expire by themselves during the test.
fn member(ip: Ipv4Addr, port: u16, members_file: &std::path::Path) -> Member {
    let members = format!("file:{}", members_file.display());
    let expire = EXPIRE_MS.to_string();
    Member::new(
        "distro",
        &ip.to_string(),
        port,
        &[
            "--members",
            &members,
            "--bootstrap-expect",
            "3",
            "--distro-verify-ms",
            "500",
            "--distro-expire-ms",
            &expire,
            "--member-probe-ms",
            "300",
            "--beat-timeout-ms",
            "600000",
            "--ip-delete-timeout-ms",
            "600000",
        ],
    )
}

struct Cluster {
    members: Vec<Member>,
    file: PathBuf,
    http: reqwest::Client,
}

impl Cluster {
    /// `n` members listed in a fresh members file, all started and ready.
    async fn start(n: u8) -> Cluster {
        let ips: Vec<Ipv4Addr> = (1..=5).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect();
        let port = cairn_compat::free_port_on(&ips);
        let file = std::env::temp_dir().join(format!("cairn-distro-{}-{port}.conf", std::process::id()));
        let members: Vec<Member> = ips.iter().map(|ip| member(*ip, port, &file)).collect();
        let mut c = Cluster {
            members,
            file,
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
        };
        c.write_file(n as usize);
        for m in c.members.iter_mut().take(n as usize) {
            m.start();
        }
        for i in 0..n as usize {
            c.wait_ready(i, Duration::from_secs(40)).await;
        }
        c
    }

    fn write_file(&self, n: usize) {
        let lines: Vec<String> = self.members.iter().take(n).map(Member::addr).collect();
        std::fs::write(&self.file, format!("# test members\n{}\n", lines.join("\n"))).expect("write members file");
    }

    async fn wait_ready(&self, i: usize, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let url = format!("{}/nacos/v1/console/health/readiness", self.members[i].base());
            if self.http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
                return start.elapsed();
            }
            assert!(start.elapsed() < limit, "{} not ready within {limit:?}", self.members[i].base());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn register(&self, via: usize, service: &str, ip: &str, port: u16) {
        let r = self
            .http
            .post(format!("{}/nacos/v1/ns/instance", self.members[via].base()))
            .form(&[("serviceName", service), ("ip", ip), ("port", &port.to_string()), ("ephemeral", "true")])
            .send()
            .await
            .expect("register");
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert!(status.is_success() && body == "ok", "register {service} {ip}:{port} via {via}: {status} {body}");
    }

    /// The `ip:port` of every instance of `service` listed by member `i`.
    async fn hosts(&self, i: usize, service: &str) -> Vec<String> {
        let url = format!("{}/nacos/v1/ns/instance/list?serviceName={service}", self.members[i].base());
        let Ok(r) = self.http.get(url).send().await else { return vec!["<unreachable>".into()] };
        let v: Value = r.json().await.unwrap_or_default();
        let mut out: Vec<String> = v["hosts"]
            .as_array()
            .map(|a| a.iter().map(|h| format!("{}:{}", h["ip"].as_str().unwrap_or("?"), h["port"])).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Polls until member `i` lists exactly `want` for `service`; returns how long it took.
    async fn wait_hosts(&self, i: usize, service: &str, want: &[String], limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let got = self.hosts(i, service).await;
            if got == want {
                return start.elapsed();
            }
            assert!(start.elapsed() < limit, "member {i}: {service} lists {got:?}, want {want:?} (after {limit:?})");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// gRPC connections registered on member `i` (from its metrics).
    async fn grpc_connections(&self, i: usize) -> f64 {
        let Ok(r) = self.http.get(format!("{}/metrics", self.members[i].base())).send().await else { return 0.0 };
        let text = r.text().await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("cairn_grpc_connections "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The member owning a service's v1 clients: FNV-1a of `namespace/group@@service` over the
/// sorted live members (the documented, stable rule).
fn owner_of(service: &str, members: &[String]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("public/DEFAULT_GROUP@@{service}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % members.len() as u64) as usize
}

fn endpoints(ips: &[&str], port: u16) -> Vec<String> {
    let mut v: Vec<String> = ips.iter().map(|ip| format!("{ip}:{port}")).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_clients_are_forwarded_replicated_and_expire_with_their_owner() {
    let mut c = Cluster::start(3).await;
    let services: Vec<String> = (0..6).map(|i| format!("distro-v1-{i}")).collect();
    // Every service registered through every member in turn: forwarded to its owner.
    for (n, s) in services.iter().enumerate() {
        for (k, ip) in ["10.1.0.1", "10.1.0.2", "10.1.0.3"].iter().enumerate() {
            c.register((n + k) % 3, s, ip, 8080).await;
        }
    }
    let want = endpoints(&["10.1.0.1", "10.1.0.2", "10.1.0.3"], 8080);
    for s in &services {
        for i in 0..3 {
            c.wait_hosts(i, s, &want, Duration::from_secs(3)).await;
        }
    }

    // A beat through a member that does not own the service is answered by the owner.
    let addrs: Vec<String> = c.members.iter().take(3).map(Member::addr).collect();
    let s0 = &services[0];
    let owner = owner_of(s0, &addrs);
    let other = (owner + 1) % 3;
    let r = c
        .http
        .put(format!("{}/nacos/v1/ns/instance/beat", c.members[other].base()))
        .form(&[("serviceName", s0.as_str()), ("ip", "10.1.0.1"), ("port", "8080")])
        .send()
        .await
        .expect("beat");
    let v: Value = r.json().await.expect("beat reply");
    assert_eq!(v["code"], 10200, "beat via a non-owner: {v}");

    // Kill the owner of s0: its clients' copies expire on the survivors; services of the
    // survivors keep their instances.
    c.members[owner].kill9();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != owner).collect();
    for &i in &survivors {
        let took = c.wait_hosts(i, s0, &[], Duration::from_millis(EXPIRE_MS + 3_000)).await;
        eprintln!("member {i}: copies of the dead owner's clients expired after {took:?}");
    }
    for s in services.iter().filter(|s| owner_of(s, &addrs) != owner) {
        for &i in &survivors {
            assert_eq!(c.hosts(i, s).await, want, "member {i} lost {s}, owned by a live member");
        }
    }
    // Once the dead member is DOWN, its services belong to live members: writes work again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    c.register(survivors[0], s0, "10.1.0.9", 9090).await;
    for &i in &survivors {
        c.wait_hosts(i, s0, &endpoints(&["10.1.0.9"], 9090), Duration::from_secs(3)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_client_moves_to_another_member_and_is_listed_once() {
    let mut c = Cluster::start(3).await;
    let h = cairn_compat::rust_harness();
    let servers: Vec<String> = c.members.iter().take(3).map(Member::addr).collect();
    let mut hold = h.spawn(&servers.join(","), "hold", &["distro-grpc", "127.0.0.1", "7401"]);
    assert!(hold.wait_line("REGISTERED", Duration::from_secs(60)).is_some(), "hold failed: {:?}", hold.seen);
    let want = endpoints(&["127.0.0.1"], 7401);
    for i in 0..3 {
        c.wait_hosts(i, "distro-grpc", &want, Duration::from_secs(3)).await;
    }
    let mut connected = None;
    for i in 0..3 {
        if c.grpc_connections(i).await >= 1.0 {
            connected = Some(i);
        }
    }
    let first = connected.expect("the client is connected to some member");
    c.members[first].kill9();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != first).collect();
    // The client reconnects elsewhere and re-registers; every survivor lists the instance
    // exactly once the whole time, before and after the dead member's copy expires.
    let deadline = Instant::now() + Duration::from_millis(EXPIRE_MS + 4_000);
    while Instant::now() < deadline {
        for &i in &survivors {
            let got = c.hosts(i, "distro-grpc").await;
            assert!(got.is_empty() || got == want, "member {i} lists {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for &i in &survivors {
        c.wait_hosts(i, "distro-grpc", &want, Duration::from_secs(10)).await;
    }
    let mut now_on = Vec::new();
    for &i in &survivors {
        if c.grpc_connections(i).await >= 1.0 {
            now_on.push(i);
        }
    }
    assert_eq!(now_on.len(), 1, "the client should be connected to one survivor: {now_on:?}");
    drop(hold);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_member_holds_every_instance_when_ready() {
    let mut c = Cluster::start(4).await;
    let (services, per) = (20usize, 100u16);
    for s in 0..services {
        for k in 0..per {
            c.register(s % 4, &format!("distro-join-{s}"), "10.2.0.1", 10_000 + k).await;
        }
    }
    let want: Vec<String> = {
        let mut v: Vec<String> = (0..per).map(|k| format!("10.2.0.1:{}", 10_000 + k)).collect();
        v.sort();
        v
    };
    for s in 0..services {
        c.wait_hosts(2, &format!("distro-join-{s}"), &want, Duration::from_secs(3)).await;
    }
    c.write_file(5);
    c.members[4].start();
    let took = c.wait_ready(4, Duration::from_secs(40)).await;
    eprintln!("the 5th member became ready {took:?} after it started");
    for s in 0..services {
        let got = c.hosts(4, &format!("distro-join-{s}")).await;
        assert_eq!(got.len(), want.len(), "the new member was ready without all of distro-join-{s}");
    }
}
