//! Member discovery with real processes on 127.0.0.x (same HTTP port on every address):
//! - `file:`: a 3-node cluster forms from a cluster.conf; appending a 4th line adds a 4th node
//!   live (auto-join: learner, then voter, holding every config written before); removing the
//!   line takes it out of `/nacos/v1/core/cluster/nodes` but not out of Raft; a killed member
//!   turns SUSPICIOUS, then DOWN, and UP again after a restart.
//! - `dns:`: two nodes, one resolving A records and one SRV records from a tiny DNS responder
//!   the test runs on 127.0.0.1, form a cluster; the member lists follow the changed answers.
//! - `k8s:`: see `k8s_members_follow_pods` (a real kube-apiserver from `cairn-kube-testkit`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const GROUP: &str = "DISC";
/// Member probe interval given to the nodes (ms): fast enough to see SUSPICIOUS → DOWN quickly.
const PROBE_MS: &str = "200";

#[path = "common/process.rs"]
mod process;

/// A node probing its members every [`PROBE_MS`].
type Node = process::TestNode;

fn node(tag: &str, ip: &str, port: u16, args: &[&str]) -> Node {
    Node::new(&format!("disc-{tag}"), ip, port, &[&["--member-probe-ms", PROBE_MS][..], args].concat())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn wait_ready(c: &reqwest::Client, n: &Node, limit: Duration) {
    let start = Instant::now();
    loop {
        let r = c.get(format!("{}/nacos/v1/console/health/readiness", n.base())).send().await;
        if r.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(start.elapsed() < limit, "{} not ready within {limit:?}", n.base());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_json(c: &reqwest::Client, n: &Node, path: &str) -> Value {
    let r = c.get(format!("{}{path}", n.base())).send().await.expect("request");
    assert!(r.status().is_success(), "{}{path}: {}", n.base(), r.status());
    r.json().await.expect("json")
}

/// `/nacos/v1/core/cluster/nodes` as address → member object.
async fn cluster_nodes(c: &reqwest::Client, n: &Node) -> std::collections::BTreeMap<String, Value> {
    let v = get_json(c, n, "/nacos/v1/core/cluster/nodes").await;
    assert_eq!(v["code"], 200, "{v}");
    v["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|m| (m["address"].as_str().expect("address").to_owned(), m.clone()))
        .collect()
}

/// Polls the cluster view of `n` until `pred` holds; returns the view.
async fn wait_nodes(
    c: &reqwest::Client,
    n: &Node,
    what: &str,
    limit: Duration,
    pred: impl Fn(&std::collections::BTreeMap<String, Value>) -> bool,
) -> std::collections::BTreeMap<String, Value> {
    let start = Instant::now();
    loop {
        let v = cluster_nodes(c, n).await;
        if pred(&v) {
            return v;
        }
        assert!(start.elapsed() < limit, "{}: {what} not reached within {limit:?}: {v:#?}", n.base());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn state_of(v: &std::collections::BTreeMap<String, Value>, addr: &str) -> Option<String> {
    v.get(addr).and_then(|m| m["state"].as_str()).map(str::to_owned)
}

/// Raft roles by HTTP address, from `/cairn/v1/raft/members` of `n`.
async fn raft_roles(c: &reqwest::Client, n: &Node) -> std::collections::BTreeMap<String, String> {
    let v = get_json(c, n, "/cairn/v1/raft/members").await;
    v["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| (m["address"].as_str().unwrap().to_owned(), m["role"].as_str().unwrap().to_owned()))
        .collect()
}

async fn leader_of(c: &reqwest::Client, nodes: &[&Node]) -> usize {
    let start = Instant::now();
    loop {
        for (i, n) in nodes.iter().enumerate() {
            let v = get_json(c, n, "/cairn/v1/raft/self").await;
            if v["role"] == "leader" {
                return i;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn publish(c: &reqwest::Client, n: &Node, data_id: &str, content: &str) {
    let form = [("dataId", data_id), ("group", GROUP), ("content", content)];
    let r = c.post(format!("{}/nacos/v1/cs/configs", n.base())).form(&form).send().await.expect("publish");
    assert!(r.status().is_success(), "publish {data_id} via {}: {}", n.base(), r.status());
    assert_eq!(r.text().await.unwrap(), "true");
}

async fn read(c: &reqwest::Client, n: &Node, data_id: &str) -> Option<String> {
    let url = format!("{}/nacos/v1/cs/configs?dataId={data_id}&group={GROUP}", n.base());
    let r = c.get(url).send().await.ok()?;
    if r.status().is_success() { r.text().await.ok() } else { None }
}

fn write_conf(path: &Path, lines: &[String]) {
    // Write then rename, as config management tools do, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("# cairn members\n{}\n", lines.join("\n"))).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn file_members_form_grow_shrink_and_track_health() {
    let t0 = Instant::now();
    let ips: Vec<String> = (1..=4).map(|i| format!("127.0.0.{i}")).collect();
    let v4: Vec<Ipv4Addr> = ips.iter().map(|ip| ip.parse().unwrap()).collect();
    let port = cairn_compat::free_port_on(&v4);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("cluster.conf");
    let conf_arg = format!("file:{}", conf.display());
    // The first three lines; the default port applies to a line without one.
    write_conf(&conf, &[format!("{}:{port}", ips[0]), ips[1].clone(), format!("{}:{port}  # third", ips[2])]);
    let mut nodes: Vec<Node> = ips.iter().map(|ip| node("file", ip, port, &["--members", &conf_arg])).collect();
    let c = client();
    for n in &mut nodes[..3] {
        n.start();
    }
    for n in &nodes[..3] {
        wait_ready(&c, n, Duration::from_secs(30)).await;
    }
    let formed = t0.elapsed();
    let roles = raft_roles(&c, &nodes[0]).await;
    assert_eq!(roles.len(), 3, "all three formed one cluster: {roles:?}");
    assert!(roles.values().all(|r| r == "leader" || r == "voter"), "{roles:?}");
    let view = wait_nodes(&c, &nodes[1], "3 members UP", Duration::from_secs(10), |v| {
        v.len() == 3 && v.values().all(|m| m["state"] == "UP")
    })
    .await;
    assert!(view.contains_key(&nodes[2].addr()), "{view:?}");
    let first = &view[&nodes[0].addr()];
    assert_eq!(first["ip"], "127.0.0.1");
    assert_eq!(first["port"], port);
    assert!(first["extendInfo"]["raftMetaData"]["id"].is_u64(), "discovered Raft members carry their id: {first}");

    for i in 0..20 {
        publish(&c, &nodes[i % 3], &format!("before-{i}"), &format!("value {i}")).await;
    }

    // Grow: a 4th line, then the 4th node. Auto-join adds it as a learner and promotes it.
    let mut lines: Vec<String> = ips[..4].iter().map(|ip| format!("{ip}:{port}")).collect();
    write_conf(&conf, &lines);
    nodes[3].start();
    let grow = Instant::now();
    let leader = leader_of(&c, &[&nodes[0], &nodes[1], &nodes[2]]).await;
    let new_addr = nodes[3].addr();
    let mut seen_learner = false;
    loop {
        let roles = raft_roles(&c, &nodes[leader]).await;
        match roles.get(&new_addr).map(String::as_str) {
            Some("learner") => seen_learner = true,
            Some("voter") => break,
            _ => {}
        }
        assert!(grow.elapsed() < Duration::from_secs(30), "4th node not promoted: {roles:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let joined = grow.elapsed();
    wait_ready(&c, &nodes[3], Duration::from_secs(20)).await;
    for i in 0..20 {
        let got = read(&c, &nodes[3], &format!("before-{i}")).await;
        assert_eq!(got.as_deref(), Some(format!("value {i}").as_str()), "4th node holds before-{i}");
    }
    wait_nodes(&c, &nodes[0], "4 members UP", Duration::from_secs(10), |v| {
        v.len() == 4 && v.values().all(|m| m["state"] == "UP")
    })
    .await;

    // Shrink the list: the member leaves the member list everywhere, but keeps its Raft seat.
    lines.pop();
    write_conf(&conf, &lines);
    for n in &nodes[..3] {
        wait_nodes(&c, n, "4th member gone from the list", Duration::from_secs(10), |v| {
            v.len() == 3 && !v.contains_key(&new_addr)
        })
        .await;
    }
    let roles = raft_roles(&c, &nodes[leader]).await;
    assert_eq!(roles.get(&new_addr).map(String::as_str), Some("voter"), "never removed from Raft: {roles:?}");

    // Health: kill a non-leader member; SUSPICIOUS, then DOWN (3 failed probes), then UP again.
    let victim = (0..3).find(|i| *i != leader).unwrap();
    let observer = (0..3).find(|i| *i != victim).unwrap();
    let victim_addr = nodes[victim].addr();
    nodes[victim].kill9();
    let killed = Instant::now();
    let mut states = Vec::<String>::new();
    let mut max_fail = 0;
    loop {
        let v = cluster_nodes(&c, &nodes[observer]).await;
        let s = state_of(&v, &victim_addr).expect("victim still listed");
        max_fail = max_fail.max(v[&victim_addr]["failAccessCnt"].as_u64().unwrap_or(0));
        if states.last() != Some(&s) {
            states.push(s.clone());
        }
        if s == "DOWN" {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "victim never DOWN: {states:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let down_after = killed.elapsed();
    assert!(states.contains(&"SUSPICIOUS".to_owned()), "SUSPICIOUS before DOWN: {states:?}");
    assert!(max_fail >= 3, "failAccessCnt counts failed probes: {max_fail}");
    nodes[victim].start();
    wait_nodes(&c, &nodes[observer], "victim UP again", Duration::from_secs(20), |v| {
        state_of(v, &victim_addr).as_deref() == Some("UP") && v[&victim_addr]["failAccessCnt"] == 0
    })
    .await;
    wait_ready(&c, &nodes[victim], Duration::from_secs(20)).await;
    println!(
        "file: formed in {formed:?}; 4th node voter after {joined:?} (learner seen: {seen_learner}); victim DOWN after {down_after:?} ({states:?}); total {:?}",
        t0.elapsed()
    );
}

/// A tiny authoritative DNS responder on UDP: A answers for `a_name` and SRV answers for
/// `srv_name`, both read from shared lists the test changes; NXDOMAIN for any other name.
struct DnsResponder {
    addr: SocketAddr,
    a: Arc<Mutex<Vec<Ipv4Addr>>>,
    srv: Arc<Mutex<Vec<(String, u16)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsResponder {
    async fn start(a_name: &str, srv_name: &str) -> DnsResponder {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let a = Arc::new(Mutex::new(Vec::new()));
        let srv = Arc::new(Mutex::new(Vec::new()));
        let (a2, srv2) = (a.clone(), srv.clone());
        let (a_name, srv_name) = (a_name.to_lowercase(), srv_name.to_lowercase());
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else { return };
                let a = a2.lock().unwrap().clone();
                let srv = srv2.lock().unwrap().clone();
                if let Some(reply) = dns_answer(&buf[..n], &a_name, &a, &srv_name, &srv) {
                    let _ = sock.send_to(&reply, peer).await;
                }
            }
        });
        DnsResponder { addr, a, srv, task }
    }
}

fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// Builds the reply to one query (`None` for garbage).
fn dns_answer(q: &[u8], a_name: &str, a: &[Ipv4Addr], srv_name: &str, srv: &[(String, u16)]) -> Option<Vec<u8>> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    // The question: labels, then type and class.
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question_end = i + 4;
    q.get(..question_end)?;
    let name = labels.join(".");
    let mut answers: Vec<(u16, Vec<u8>)> = Vec::new();
    let known = name == a_name || name == srv_name;
    if name == a_name && qtype == 1 {
        answers.extend(a.iter().map(|ip| (1, ip.octets().to_vec())));
    }
    if name == srv_name && qtype == 33 {
        for (target, port) in srv {
            let mut rdata = vec![0, 10, 0, 100];
            rdata.extend_from_slice(&port.to_be_bytes());
            encode_name(target, &mut rdata);
            answers.push((33, rdata));
        }
    }
    let mut r = Vec::with_capacity(512);
    r.extend_from_slice(&q[0..2]); // id
    let rd = q[2] & 0x01;
    r.push(0x84 | rd); // QR, AA, RD copied
    r.push(if known { 0x80 } else { 0x83 }); // RA; NOERROR or NXDOMAIN
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&q[12..question_end]);
    for (rtype, rdata) in answers {
        r.extend_from_slice(&[0xC0, 0x0C]); // the question's name
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes()); // IN
        r.extend_from_slice(&1u32.to_be_bytes()); // TTL 1 s
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(&rdata);
    }
    Some(r)
}

#[tokio::test]
async fn dns_members_follow_a_and_srv_answers() {
    let t0 = Instant::now();
    let ips: Vec<Ipv4Addr> = (1..=3).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect();
    let port = cairn_compat::free_port_on(&ips);
    let dns = DnsResponder::start("cairn.test", "_http._tcp.cairn.test").await;
    *dns.a.lock().unwrap() = ips[..2].to_vec();
    *dns.srv.lock().unwrap() = ips[..2].iter().map(|ip| (format!("{ip}."), port)).collect();
    let server = dns.addr.to_string();
    let common = ["--dns-server", &server, "--dns-refresh-ms", "200"];
    // Node 1 resolves A records, node 2 SRV records: the same two members either way.
    let mut a_node = node("dns", "127.0.0.1", port, &[&["--members", "dns:cairn.test"][..], &common].concat());
    let mut srv_node =
        node("dns", "127.0.0.2", port, &[&["--members", "dns:_http._tcp.cairn.test"][..], &common].concat());
    let c = client();
    a_node.start();
    srv_node.start();
    wait_ready(&c, &a_node, Duration::from_secs(30)).await;
    wait_ready(&c, &srv_node, Duration::from_secs(30)).await;
    let roles = raft_roles(&c, &a_node).await;
    assert_eq!(roles.len(), 2, "the two discovered nodes formed one cluster: {roles:?}");
    let two = |v: &std::collections::BTreeMap<String, Value>| {
        v.len() == 2 && v.contains_key(&a_node.addr()) && v.contains_key(&srv_node.addr())
    };
    wait_nodes(&c, &a_node, "2 members via A", Duration::from_secs(10), two).await;
    wait_nodes(&c, &srv_node, "2 members via SRV", Duration::from_secs(10), two).await;

    // A third address appears in DNS (nothing listens there): listed, then SUSPICIOUS/DOWN.
    let third = format!("127.0.0.3:{port}");
    dns.a.lock().unwrap().push(ips[2]);
    dns.srv.lock().unwrap().push((format!("{}.", ips[2]), port));
    for n in [&a_node, &srv_node] {
        wait_nodes(&c, n, "3rd member listed and DOWN", Duration::from_secs(10), |v| {
            v.len() == 3 && state_of(v, &third).as_deref() == Some("DOWN")
        })
        .await;
    }
    // It leaves DNS: it leaves the member lists; a name without records gives only this node.
    dns.a.lock().unwrap().pop();
    dns.srv.lock().unwrap().pop();
    for n in [&a_node, &srv_node] {
        wait_nodes(&c, n, "3rd member gone", Duration::from_secs(10), two).await;
    }
    dns.srv.lock().unwrap().clear();
    wait_nodes(&c, &srv_node, "SRV node alone in its list", Duration::from_secs(10), |v| {
        v.keys().next().is_some_and(|k| *k == srv_node.addr()) && !v.contains_key(&a_node.addr())
    })
    .await;
    // Raft keeps both: discovery never removes a voter.
    assert_eq!(raft_roles(&c, &a_node).await.len(), 2);
    println!("dns: total {:?}", t0.elapsed());
}

mod k8s {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    use kube::Api;
    use kube::api::{DeleteParams, ObjectMeta, PostParams};

    const NS: &str = "cairn-disc";

    async fn create<K>(api: &Api<K>, obj: &K)
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        api.create(&PostParams::default(), obj).await.expect("create");
    }

    fn pod(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([("app".to_owned(), "x".to_owned())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container { name: "node".into(), image: Some("cairn".into()), ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The node's identity may only get, list and watch Pods in its namespace (the documented RBAC).
    async fn least_privilege_kubeconfig(cp: &cairn_kube_testkit::ControlPlane) -> PathBuf {
        let client = cp.client();
        let meta = |name: &str| ObjectMeta { name: Some(name.into()), ..Default::default() };
        create(
            &Api::<ServiceAccount>::namespaced(client.clone(), NS),
            &ServiceAccount { metadata: meta("cairn"), ..Default::default() },
        )
        .await;
        create(
            &Api::<Role>::namespaced(client.clone(), NS),
            &Role {
                metadata: meta("cairn-members"),
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["pods".into()]),
                    verbs: vec!["get".into(), "list".into(), "watch".into()],
                    ..Default::default()
                }]),
            },
        )
        .await;
        create(
            &Api::<RoleBinding>::namespaced(client.clone(), NS),
            &RoleBinding {
                metadata: meta("cairn-members"),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: "cairn-members".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: "cairn".into(),
                    namespace: Some(NS.into()),
                    ..Default::default()
                }]),
            },
        )
        .await;
        cp.service_account_kubeconfig(NS, "cairn").await.expect("service account kubeconfig")
    }

    #[tokio::test]
    async fn k8s_members_follow_pods() {
        let Some(tools) = cairn_kube_testkit::tools() else { return };
        let t0 = Instant::now();
        let cp = cairn_kube_testkit::ControlPlane::start(&tools, Default::default()).await.expect("control plane");
        cp.create_namespace(NS).await.expect("namespace");
        let kubeconfig = least_privilege_kubeconfig(&cp).await;
        let started = t0.elapsed();
        let client = cp.client();
        let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
        let ips: Vec<Ipv4Addr> = [1, 2, 3].iter().map(|i| Ipv4Addr::new(127, 0, 0, *i)).collect();
        let port = cairn_compat::free_port_on(&ips[..1]);
        let running = |ip: &Ipv4Addr| cairn_kube_testkit::PodState::running(ip.to_string(), false);

        // This node's own Pod, with its IP: the node discovers itself and forms a cluster.
        create(&pods, &pod("x-0")).await;
        cairn_kube_testkit::set_pod_status(&client, NS, "x-0", running(&ips[0])).await.expect("status x-0");
        // A Pod with another label is never a member.
        let mut other = pod("other");
        other.metadata.labels = Some([("app".to_owned(), "y".to_owned())].into());
        create(&pods, &other).await;
        cairn_kube_testkit::set_pod_status(&client, NS, "other", running(&ips[2])).await.expect("status other");

        let mut node = node("k8s", "127.0.0.1", port, &["--members", "k8s:app=x", "--auto-join=false"]);
        node.envs.push(("KUBECONFIG".into(), kubeconfig.display().to_string()));
        node.envs.push(("CAIRN_NAMESPACE".into(), NS.into()));
        node.start();
        let c = super::client();
        wait_ready(&c, &node, Duration::from_secs(30)).await;
        let v = wait_nodes(&c, &node, "self discovered", Duration::from_secs(10), |v| v.len() == 1).await;
        assert_eq!(v[&node.addr()]["extendInfo"]["podName"], "x-0", "{v:?}");

        // A new Pod is no member until it has an IP.
        create(&pods, &pod("x-1")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(cluster_nodes(&c, &node).await.len(), 1, "a Pod without an IP is not a member");
        cairn_kube_testkit::set_pod_status(&client, NS, "x-1", running(&ips[1])).await.expect("status x-1");
        let second = format!("{}:{port}", ips[1]);
        let v = wait_nodes(&c, &node, "x-1 listed", Duration::from_secs(10), |v| v.contains_key(&second)).await;
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[&second]["extendInfo"]["podName"], "x-1");
        // Nothing serves at x-1's address: its probes fail.
        wait_nodes(&c, &node, "x-1 DOWN", Duration::from_secs(10), |v| state_of(v, &second).as_deref() == Some("DOWN"))
            .await;

        // A terminated Pod leaves; a deleted Pod leaves.
        create(&pods, &pod("x-2")).await;
        cairn_kube_testkit::set_pod_status(&client, NS, "x-2", running(&ips[2])).await.expect("status x-2");
        let third = format!("{}:{port}", ips[2]);
        wait_nodes(&c, &node, "x-2 listed", Duration::from_secs(10), |v| v.len() == 3 && v.contains_key(&third)).await;
        let failed = cairn_kube_testkit::PodState {
            phase: cairn_kube_testkit::PodPhase::Failed,
            pod_ip: Some(ips[2].to_string()),
            ready: false,
        };
        cairn_kube_testkit::set_pod_status(&client, NS, "x-2", failed).await.expect("status x-2 failed");
        wait_nodes(&c, &node, "failed x-2 gone", Duration::from_secs(10), |v| !v.contains_key(&third)).await;
        pods.delete("x-1", &DeleteParams::default()).await.expect("delete x-1");
        let v = wait_nodes(&c, &node, "x-1 gone", Duration::from_secs(10), |v| !v.contains_key(&second)).await;
        assert_eq!(v.keys().collect::<Vec<_>>(), [&node.addr()], "only this node's Pod is left");
        println!("k8s: control plane in {started:?}; total {:?}", t0.elapsed());
    }
}
