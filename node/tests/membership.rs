//! Raft membership through the admin API (`/cairn/v1/raft/*`) with real processes: nodes on
//! 127.0.0.1 ..= 127.0.0.5 with the same HTTP port. A 3-node cluster forms from a static
//! `--members` list; a 4th node joins as a learner and is promoted; leadership is transferred;
//! the old leader is removed; with one voter killed, a removal that would leave no reachable
//! majority is refused while removing the dead voter is allowed; a 5th node joins, is removed
//! as a learner, re-added and promoted. Every acknowledged config reads back identically from
//! every live member at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

const GROUP: &str = "MEMB";

#[path = "common/process.rs"]
mod process;

use process::TestNode as Member;

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn wait_ready(c: &reqwest::Client, m: &Member, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = c.get(format!("{}/nacos/v1/console/health/readiness", m.base())).send().await;
        if r.is_ok_and(|r| r.status().is_success()) {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{} not ready within {limit:?}", m.base());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Status and body (JSON when it parses, else the text as a JSON string).
async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get(c: &reqwest::Client, m: &Member, path: &str) -> (u16, Value) {
    call(c.get(format!("{}{path}", m.base()))).await
}

async fn post(c: &reqwest::Client, m: &Member, path: &str) -> (u16, Value) {
    call(c.post(format!("{}{path}", m.base()))).await
}

async fn me(c: &reqwest::Client, m: &Member) -> Value {
    let (status, v) = get(c, m, "/cairn/v1/raft/self").await;
    assert_eq!(status, 200, "{}: /self → {v}", m.base());
    v
}

async fn members(c: &reqwest::Client, m: &Member) -> Value {
    let (status, v) = get(c, m, "/cairn/v1/raft/members").await;
    assert_eq!(status, 200, "{}: /members → {v}", m.base());
    v
}

fn member_by_id(view: &Value, id: u64) -> Option<&Value> {
    view["members"].as_array().expect("members array").iter().find(|m| m["id"].as_u64() == Some(id))
}

/// The roles in a members view, by id.
fn roles(view: &Value) -> BTreeMap<u64, String> {
    view["members"]
        .as_array()
        .expect("members array")
        .iter()
        .map(|m| (m["id"].as_u64().expect("id"), m["role"].as_str().expect("role").to_owned()))
        .collect()
}

/// Polls the members view on `m` until `pred` holds; returns the view and how long it took.
async fn wait_members(
    c: &reqwest::Client,
    m: &Member,
    what: &str,
    limit: Duration,
    pred: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let v = members(c, m).await;
        if pred(&v) {
            return (v, start.elapsed());
        }
        assert!(start.elapsed() < limit, "{}: {what} not reached within {limit:?}: {v:#}", m.base());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every member healthy with lag 0 (the leader's view).
fn all_settled(v: &Value) -> bool {
    v["members"].as_array().is_some_and(|ms| ms.iter().all(|m| m["healthy"] == true && m["lag"] == 0))
}

async fn publish(c: &reqwest::Client, m: &Member, data_id: &str, content: &str) -> bool {
    let form = [("dataId", data_id), ("group", GROUP), ("content", content)];
    match c.post(format!("{}/nacos/v1/cs/configs", m.base())).form(&form).send().await {
        Ok(r) => r.status().is_success() && r.text().await.is_ok_and(|t| t == "true"),
        Err(_) => false,
    }
}

/// Publishes `n` configs with `prefix` round-robin over `targets`; every one must be acknowledged.
async fn publish_all(
    c: &reqwest::Client,
    targets: &[&Member],
    prefix: &str,
    n: usize,
    acked: &mut BTreeMap<String, String>,
) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let m = targets[i % targets.len()];
        let (k, v) = (format!("{prefix}-{i}"), format!("{prefix} value {i} via {} ✓", m.ip));
        assert!(publish(c, m, &k, &v).await, "publish {k} via {}", m.base());
        acked.insert(k, v);
    }
    start.elapsed()
}

async fn read(c: &reqwest::Client, m: &Member, data_id: &str) -> Option<String> {
    let url = format!("{}/nacos/v1/cs/configs?dataId={data_id}&group={GROUP}", m.base());
    let r = c.get(url).send().await.ok()?;
    if r.status().is_success() { r.text().await.ok() } else { None }
}

/// Every acknowledged config reads back identically from `m` (allowing `limit` to catch up).
async fn assert_all_there(c: &reqwest::Client, m: &Member, acked: &BTreeMap<String, String>, limit: Duration) {
    let deadline = Instant::now() + limit;
    for (k, v) in acked {
        loop {
            let got = read(c, m, k).await;
            if got.as_deref() == Some(v.as_str()) {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {k} = {got:?}, expected {v:?}", m.base());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `/self` on `m` until it reports itself as the leader.
async fn wait_leader_role(c: &reqwest::Client, m: &Member, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let v = me(c, m).await;
        if v["role"] == "leader" && v["leader"] == v["id"] {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{} did not become leader within {limit:?}: {v}", m.base());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every live node agrees on one leader and term; returns the leader's index.
async fn agreed_leader(c: &reqwest::Client, nodes: &[Member], ids: &[u64], limit: Duration) -> usize {
    let start = Instant::now();
    loop {
        let mut views = Vec::new();
        for n in nodes.iter().filter(|n| n.alive()) {
            views.push(me(c, n).await);
        }
        let first = &views[0];
        let agree = first["leader"].is_u64()
            && views.iter().all(|v| v["leader"] == first["leader"] && v["term"] == first["term"]);
        if agree {
            let leader = first["leader"].as_u64().unwrap();
            if let Some(ix) = ids.iter().position(|id| *id == leader) {
                return ix;
            }
        }
        assert!(start.elapsed() < limit, "no agreed leader within {limit:?}: {views:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn error_text(v: &Value) -> String {
    v["error"].as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

#[tokio::test]
async fn membership_admin_scale_up_transfer_scale_down_and_quorum_refusal() {
    let t0 = Instant::now();
    let ips: Vec<String> = (1..=5).map(|i| format!("127.0.0.{i}")).collect();
    let ip_refs: Vec<std::net::Ipv4Addr> = ips.iter().map(|ip| ip.parse().unwrap()).collect();
    let port = cairn_compat::free_port_on(&ip_refs);
    let initial = ips[..3].iter().map(|ip| format!("{ip}:{port}")).collect::<Vec<_>>().join(",");
    // Nodes 4 and 5 join later: their lists hold the initial members plus themselves, so they
    // never bootstrap (127.0.0.1 sorts first) and wait for the leader to contact them.
    let mut nodes: Vec<Member> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let list = if i < 3 { initial.clone() } else { format!("{initial},{ip}:{port}") };
            Member::new("memb", ip, port, &["--members", &list])
        })
        .collect();
    let c = client();
    let mut acked = BTreeMap::new();

    // ---- 1. A 3-node cluster forms. ----
    for n in &mut nodes[..3] {
        n.start();
    }
    for n in &nodes[..3] {
        wait_ready(&c, n, Duration::from_secs(30)).await;
    }
    eprintln!("[{:>6.2?}] 3-node cluster ready", t0.elapsed());
    let mut ids = Vec::new();
    for n in &nodes[..3] {
        let v = me(&c, n).await;
        assert_eq!(v["httpAddress"], n.addr(), "{v}");
        assert_eq!(v["clusterAddress"], format!("{}:{}", n.ip, port + 1001), "{v}");
        ids.push(v["id"].as_u64().expect("numeric id"));
    }
    let distinct: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "node ids must be distinct: {ids:?}");
    let leader = agreed_leader(&c, &nodes[..3], &ids, Duration::from_secs(10)).await;
    eprintln!("[{:>6.2?}] leader is node {} ({}); ids {ids:?}", t0.elapsed(), leader + 1, ids[leader]);
    let took = publish_all(&c, &[&nodes[0], &nodes[1], &nodes[2]], "initial", 30, &mut acked).await;
    eprintln!("[{:>6.2?}] 30 publishes round-robin in {took:?}", t0.elapsed());

    let (view, took) = wait_members(&c, &nodes[leader], "3 settled members", Duration::from_secs(5), |v| {
        v["members"].as_array().is_some_and(|m| m.len() == 3) && all_settled(v)
    })
    .await;
    eprintln!("[{:>6.2?}] leader's members view settled (lag 0, healthy) after {took:?}", t0.elapsed());
    let expected: BTreeMap<u64, String> =
        ids.iter().enumerate().map(|(i, id)| (*id, if i == leader { "leader" } else { "voter" }.to_owned())).collect();
    assert_eq!(roles(&view), expected, "{view:#}");
    assert_eq!(view["nodeId"], ids[leader]);
    assert_eq!(view["leader"], ids[leader]);
    for (i, n) in nodes[..3].iter().enumerate() {
        let m = member_by_id(&view, ids[i]).unwrap();
        assert_eq!(m["address"], n.addr(), "{m}");
        assert_eq!(m["matchedIndex"], view["lastLogIndex"], "{m}");
    }
    let follower = (leader + 1) % 3;
    let fview = members(&c, &nodes[follower]).await;
    assert_eq!(roles(&fview), expected, "a follower sees the same membership: {fview:#}");
    for m in fview["members"].as_array().unwrap() {
        assert!(m["healthy"].is_null(), "a follower has no health view: {m}");
        assert!(m["lag"].is_null(), "a follower has no lag view: {m}");
    }

    // ---- 2. Scale up: node 4 joins as a learner, catches up, is promoted. ----
    let (status, v) = post(&c, &nodes[leader], &format!("/cairn/v1/raft/learners?address={}:{port}", ips[4])).await;
    assert_eq!(status, 400, "adding an address nobody listens on is refused: {v}");
    assert!(error_text(&v).contains("cannot reach"), "{v}");

    nodes[3].start();
    // Node 4 is not ready on its own: it has no leader until one contacts it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, v) = get(&c, &nodes[3], "/cairn/v1/raft/self").await;
    assert_eq!(status, 200, "{v}");
    assert!(v["leader"].is_null(), "a node that was never added knows no leader: {v}");
    let id4 = v["id"].as_u64().unwrap();
    assert!(!ids.contains(&id4), "node 4 has a fresh id");
    let (status, _) = get(&c, &nodes[3], "/nacos/v1/console/health/readiness").await;
    assert_ne!(status, 200, "node 4 must not be ready before it joins");

    let add4 = format!("/cairn/v1/raft/learners?address={}", nodes[3].addr());
    let (status, v) = post(&c, &nodes[follower], &add4).await;
    assert_eq!(status, 409, "a follower refuses membership changes: {v}");
    assert_eq!(v["leader"], ids[leader], "{v}");
    assert_eq!(v["leaderAddress"], nodes[leader].addr(), "{v}");

    let t_add = Instant::now();
    let (status, v) = post(&c, &nodes[leader], &add4).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["id"], id4, "the learner's id is asked from it: {v}");
    eprintln!("[{:>6.2?}] learner {id4} added in {:?}", t0.elapsed(), t_add.elapsed());
    let view = members(&c, &nodes[leader]).await;
    assert_eq!(member_by_id(&view, id4).map(|m| m["role"].clone()), Some("learner".into()), "{view:#}");
    assert_eq!(member_by_id(&view, id4).unwrap()["address"], nodes[3].addr());
    // Adding it again is harmless (it is not a voter yet).
    let (status, v) = post(&c, &nodes[leader], &add4).await;
    assert_eq!((status, &v["id"]), (200, &Value::from(id4)), "{v}");
    let took = wait_ready(&c, &nodes[3], Duration::from_secs(10)).await;
    let mut missing = 0;
    for (k, v) in &acked {
        missing += usize::from(read(&c, &nodes[3], k).await.as_deref() != Some(v.as_str()));
    }
    eprintln!(
        "[{:>6.2?}] node 4 ready {took:?} after being added ({missing} of {} configs not yet readable then)",
        t0.elapsed(),
        acked.len()
    );
    assert_all_there(&c, &nodes[3], &acked, Duration::from_secs(10)).await;
    eprintln!("[{:>6.2?}] node 4 serves every config written before it joined", t0.elapsed());
    let (_, took) = wait_members(&c, &nodes[leader], "learner caught up", Duration::from_secs(5), |v| {
        member_by_id(v, id4).is_some_and(|m| m["healthy"] == true && m["lag"] == 0)
    })
    .await;
    eprintln!("[{:>6.2?}] learner healthy with lag 0 after a further {took:?}", t0.elapsed());

    let (status, v) = post(&c, &nodes[leader], "/cairn/v1/raft/promote?id=4242").await;
    assert_eq!(status, 400, "promoting an unknown node is refused: {v}");
    assert!(error_text(&v).contains("not a learner"), "{v}");
    let (status, v) = post(&c, &nodes[follower], &format!("/cairn/v1/raft/promote?id={id4}")).await;
    assert_eq!(status, 409, "{v}");
    let t_promote = Instant::now();
    let (status, v) = post(&c, &nodes[leader], &format!("/cairn/v1/raft/promote?id={id4}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    eprintln!("[{:>6.2?}] learner promoted in {:?}", t0.elapsed(), t_promote.elapsed());
    ids.push(id4);
    let view = members(&c, &nodes[leader]).await;
    assert_eq!(member_by_id(&view, id4).unwrap()["role"], "voter", "{view:#}");
    assert_eq!(roles(&view).values().filter(|r| *r == "voter").count(), 3, "{view:#}");
    // Promoting a voter again is a no-op; so is adding a voter as a learner refused.
    let (status, v) = post(&c, &nodes[leader], &format!("/cairn/v1/raft/promote?id={id4}")).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = post(&c, &nodes[leader], &add4).await;
    assert_eq!(status, 400, "a voter cannot be re-added as a learner: {v}");
    let took = publish_all(&c, &[&nodes[3], &nodes[leader]], "four", 10, &mut acked).await;
    eprintln!("[{:>6.2?}] 10 publishes on the 4-voter cluster in {took:?}", t0.elapsed());

    // ---- 3. Transfer leadership. ----
    let old = leader;
    let target = (old + 1) % 3;
    let (status, v) = post(&c, &nodes[old], "/cairn/v1/raft/transfer-leader?to=4242").await;
    assert_eq!(status, 400, "transfer to an unknown node is refused: {v}");
    let (status, v) = post(&c, &nodes[target], &format!("/cairn/v1/raft/transfer-leader?to={}", ids[target])).await;
    assert_eq!(status, 409, "only the leader transfers: {v}");
    let (status, v) = post(&c, &nodes[old], &format!("/cairn/v1/raft/transfer-leader?to={}", ids[target])).await;
    assert_eq!(status, 200, "{v}");
    let took = wait_leader_role(&c, &nodes[target], Duration::from_secs(5)).await;
    eprintln!("[{:>6.2?}] leadership moved from node {} to node {} in {took:?}", t0.elapsed(), old + 1, target + 1);
    let leader = agreed_leader(&c, &nodes[..4], &ids, Duration::from_secs(5)).await;
    assert_eq!(leader, target);
    let v = me(&c, &nodes[old]).await;
    assert_ne!(v["role"], "leader", "{v}");
    let (status, v) = post(&c, &nodes[old], "/cairn/v1/raft/promote?id=1").await;
    assert_eq!(status, 409, "the old leader now answers with the new leader: {v}");
    assert_eq!(v["leaderAddress"], nodes[target].addr(), "{v}");

    // ---- 4. Scale down: the leader refuses to remove itself; the old leader is removed. ----
    let (status, v) = post(&c, &nodes[leader], &format!("/cairn/v1/raft/remove?id={}", ids[leader])).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_text(&v).contains("transfer leadership before removing"), "{v}");
    let (_, took) =
        wait_members(&c, &nodes[leader], "new leader sees every member", Duration::from_secs(5), all_settled).await;
    eprintln!("[{:>6.2?}] new leader's view settled after {took:?}", t0.elapsed());
    let t_remove = Instant::now();
    let (status, v) = post(&c, &nodes[leader], &format!("/cairn/v1/raft/remove?id={}", ids[old])).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    eprintln!("[{:>6.2?}] node {} removed in {:?}", t0.elapsed(), old + 1, t_remove.elapsed());
    let view = members(&c, &nodes[leader]).await;
    assert!(member_by_id(&view, ids[old]).is_none(), "{view:#}");
    let r = roles(&view);
    assert_eq!(r.len(), 3, "{view:#}");
    assert_eq!(r.values().filter(|r| *r == "voter").count(), 2, "{view:#}");
    assert_eq!(r[&ids[leader]], "leader");
    // Removing a node that is not a member is a no-op.
    let (status, v) = post(&c, &nodes[leader], &format!("/cairn/v1/raft/remove?id={}", ids[old])).await;
    assert_eq!(status, 200, "{v}");
    // The removed node is shut down, as an operator would.
    nodes[old].kill9();
    let live: Vec<usize> = (0..4).filter(|i| nodes[*i].alive()).collect();
    let targets: Vec<&Member> = live.iter().map(|i| &nodes[*i]).collect();
    let took = publish_all(&c, &targets, "three", 12, &mut acked).await;
    eprintln!("[{:>6.2?}] 12 publishes after the removal in {took:?}", t0.elapsed());

    // ---- 5. Quorum refusal: with C dead, removing B would leave A and C (1 of 2 reachable). ----
    let a = leader;
    let others: Vec<usize> = live.iter().copied().filter(|i| *i != a).collect();
    let (b, dead) = (others[0], others[1]);
    eprintln!("[{:>6.2?}] A = node {}, B = node {}, C = node {} (killed)", t0.elapsed(), a + 1, b + 1, dead + 1);
    nodes[dead].kill9();
    let killed = Instant::now();
    // Right after the kill, C's last heartbeat ack is still recent; the leader must not count
    // it as reachable on that basis, or the removal would commit a joint configuration that
    // needs C and wedge the cluster until C returns.
    let t_refuse = Instant::now();
    let (status, v) = post(&c, &nodes[a], &format!("/cairn/v1/raft/remove?id={}", ids[b])).await;
    assert_eq!(status, 400, "removing B right after C died must be refused: {v}");
    assert!(error_text(&v).contains("reachable majority"), "{v}");
    eprintln!("[{:>6.2?}] removal of B refused {:?} after C's SIGKILL", t0.elapsed(), t_refuse.elapsed());
    let (view, _) = wait_members(&c, &nodes[a], "C unhealthy", Duration::from_secs(8), |v| {
        member_by_id(v, ids[dead]).is_some_and(|m| m["healthy"] == false)
    })
    .await;
    eprintln!("[{:>6.2?}] C shown healthy:false {:?} after SIGKILL", t0.elapsed(), killed.elapsed());
    assert_eq!(member_by_id(&view, ids[b]).unwrap()["healthy"], true, "{view:#}");
    assert_eq!(member_by_id(&view, ids[a]).unwrap()["healthy"], true, "{view:#}");
    let (status, v) = post(&c, &nodes[a], &format!("/cairn/v1/raft/remove?id={}", ids[b])).await;
    assert_eq!(status, 400, "removing B would leave no reachable majority: {v}");
    assert!(error_text(&v).contains("reachable majority"), "{v}");
    let (status, v) = post(&c, &nodes[a], &format!("/cairn/v1/raft/transfer-leader?to={}", ids[dead])).await;
    assert_eq!(status, 400, "transfer to an unreachable voter is refused: {v}");
    let view = members(&c, &nodes[a]).await;
    assert_eq!(roles(&view).len(), 3, "the refused removal changed nothing: {view:#}");
    assert_eq!(member_by_id(&view, ids[dead]).unwrap()["healthy"], false, "{view:#}");
    let t_remove = Instant::now();
    let (status, v) = post(&c, &nodes[a], &format!("/cairn/v1/raft/remove?id={}", ids[dead])).await;
    assert_eq!(status, 200, "removing the dead voter leaves A and B, both reachable: {v}");
    eprintln!("[{:>6.2?}] dead node {} removed in {:?}", t0.elapsed(), dead + 1, t_remove.elapsed());
    let view = members(&c, &nodes[a]).await;
    let r = roles(&view);
    assert_eq!(r.len(), 2, "{view:#}");
    assert_eq!((r[&ids[a]].as_str(), r[&ids[b]].as_str()), ("leader", "voter"), "{view:#}");
    let took = publish_all(&c, &[&nodes[a], &nodes[b]], "two", 10, &mut acked).await;
    eprintln!("[{:>6.2?}] 10 publishes on the 2-voter cluster in {took:?}", t0.elapsed());

    // ---- Node 5 joins, is removed as a learner, re-added and promoted: 3 voters again. ----
    nodes[4].start();
    let add5 = format!("/cairn/v1/raft/learners?address={}", nodes[4].addr());
    let t_add = Instant::now();
    let (status, v) = loop {
        // Its cluster port may not be bound yet.
        let (status, v) = post(&c, &nodes[a], &add5).await;
        if status != 400 || t_add.elapsed() > Duration::from_secs(10) {
            break (status, v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200, "{v}");
    let id5 = v["id"].as_u64().unwrap();
    eprintln!("[{:>6.2?}] node 5 added as learner {id5} after {:?}", t0.elapsed(), t_add.elapsed());
    wait_ready(&c, &nodes[4], Duration::from_secs(10)).await;
    let (status, v) = post(&c, &nodes[a], &format!("/cairn/v1/raft/remove?id={id5}")).await;
    assert_eq!(status, 200, "removing a learner: {v}");
    let view = members(&c, &nodes[a]).await;
    assert!(member_by_id(&view, id5).is_none(), "{view:#}");
    let (status, v) = post(&c, &nodes[a], &add5).await;
    assert_eq!(status, 200, "re-adding a removed learner: {v}");
    assert_eq!(v["id"], id5, "{v}");
    let took = publish_all(&c, &[&nodes[a], &nodes[b]], "five", 6, &mut acked).await;
    eprintln!("[{:>6.2?}] 6 publishes with the learner back in {took:?}", t0.elapsed());
    let (_, took) = wait_members(&c, &nodes[a], "node 5 caught up", Duration::from_secs(5), |v| {
        member_by_id(v, id5).is_some_and(|m| m["healthy"] == true && m["lag"] == 0)
    })
    .await;
    eprintln!("[{:>6.2?}] re-added learner caught up after {took:?}", t0.elapsed());
    let (status, v) = post(&c, &nodes[a], &format!("/cairn/v1/raft/promote?id={id5}")).await;
    assert_eq!(status, 200, "{v}");
    ids.push(id5);
    let (view, _) = wait_members(&c, &nodes[a], "3 settled voters", Duration::from_secs(5), all_settled).await;
    let r = roles(&view);
    assert_eq!(r.len(), 3, "{view:#}");
    assert_eq!(r[&id5], "voter", "{view:#}");

    // ---- 6. Every acknowledged config reads back identically from every live node. ----
    let live: Vec<&Member> = nodes.iter().filter(|n| n.alive()).collect();
    assert_eq!(live.len(), 3);
    let leader_view = members(&c, &nodes[a]).await;
    for n in &live {
        assert_all_there(&c, n, &acked, Duration::from_secs(10)).await;
        let v = me(&c, n).await;
        assert_eq!(v["leader"], ids[a], "{}: {v}", n.base());
        assert_eq!(v["term"], leader_view["term"], "{}: {v}", n.base());
    }
    eprintln!("[{:>6.2?}] {} configs identical on {} live nodes; done", t0.elapsed(), acked.len(), live.len());
}
