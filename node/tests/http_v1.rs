//! HTTP v1 integration tests: each test starts the real `cairn-node` binary on loopback and drives
//! its Nacos v1 HTTP API (naming, service, operator, health, cluster, metrics), the v1 UDP push
//! channel for 1.x clients, and SIGTERM shutdown.

mod common;

use common::http::{Pairs, TestNode};
use common::{assert_bad_request, sample, wait_until};
use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::UdpSocket;

const INSTANCE: &str = "/nacos/v1/ns/instance";
const LIST: &str = "/nacos/v1/ns/instance/list";
const BEAT: &str = "/nacos/v1/ns/instance/beat";
const SERVICE: &str = "/nacos/v1/ns/service";
const SERVICE_LIST: &str = "/nacos/v1/ns/service/list";

impl TestNode {
    fn start(extra: &[&str]) -> TestNode {
        TestNode::start_with_timeout(extra, Duration::from_secs(20))
    }

    /// A call that must answer 200 with the body `ok`.
    async fn ok(&self, method: Method, path: &str, query: Pairs<'_>, form: Option<Pairs<'_>>) {
        self.expect_body(method, path, query, form, "ok").await;
    }

    /// Registers with a form body.
    async fn register(&self, form: Pairs<'_>) {
        self.ok(Method::POST, INSTANCE, &[], Some(form)).await;
    }

    async fn list(&self, query: Pairs<'_>) -> Value {
        self.json(LIST, query).await
    }

    async fn hosts(&self, query: Pairs<'_>) -> Vec<Value> {
        self.list(query).await["hosts"].as_array().expect("hosts array").clone()
    }

    /// `None` when the instance is not listed, else its `healthy` flag.
    async fn health_of(&self, service: &str, ip: &str, port: u16) -> Option<bool> {
        self.hosts(&[("serviceName", service)])
            .await
            .iter()
            .find(|h| h["ip"] == ip && h["port"] == port)
            .map(|h| h["healthy"].as_bool().expect("healthy is a bool"))
    }

    async fn beat(&self, query: Pairs<'_>) -> Value {
        let (status, body) = self.call(Method::PUT, BEAT, query, None).await;
        assert_eq!(status, StatusCode::OK, "beat {query:?}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("beat: not JSON ({e}): {body}"))
    }

    async fn assert_ready(&self) {
        let (status, body) = self.call(Method::GET, "/nacos/v1/console/health/readiness", &[], None).await;
        assert_eq!(status, StatusCode::OK, "readiness: {body}");
    }
}

/// Polls `cond` every 100 ms until it holds; returns the time since `since`, or `None` after `limit`.
async fn wait_for<F, Fut>(since: Instant, limit: Duration, cond: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_until(since, limit, Duration::from_millis(100), cond).await
}

// ---------------------------------------------------------------------------------------------
// 1. /nacos/v1/ns/instance
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_crud_shapes_and_visibility() {
    let node = TestNode::start(&[]);

    // Register with a form body, with metadata JSON and a weight.
    node.register(&[
        ("serviceName", "crud"),
        ("ip", "10.0.0.1"),
        ("port", "8080"),
        ("weight", "2.5"),
        ("metadata", r#"{"zone":"z1","ver":"1"}"#),
    ])
    .await;
    // Register with query parameters only (no body).
    node.ok(
        Method::POST,
        INSTANCE,
        &[("serviceName", "crud"), ("ip", "10.0.0.2"), ("port", "8081"), ("clusterName", "c2")],
        None,
    )
    .await;

    // GET: the Nacos shape.
    let got = node.json(INSTANCE, &[("serviceName", "crud"), ("ip", "10.0.0.1"), ("port", "8080")]).await;
    assert_eq!(got["service"], "DEFAULT_GROUP@@crud");
    assert_eq!(got["ip"], "10.0.0.1");
    assert_eq!(got["port"], 8080);
    assert_eq!(got["clusterName"], "DEFAULT");
    assert_eq!(got["weight"], 2.5);
    assert_eq!(got["healthy"], true);
    assert_eq!(got["instanceId"], "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@crud");
    assert_eq!(got["metadata"], json!({"zone":"z1","ver":"1"}));
    let got2 = node
        .json(INSTANCE, &[("serviceName", "crud"), ("ip", "10.0.0.2"), ("port", "8081"), ("clusterName", "c2")])
        .await;
    assert_eq!(got2["instanceId"], "10.0.0.2#8081#c2#DEFAULT_GROUP@@crud");
    assert_eq!(got2["weight"], 1.0);
    assert_eq!(got2["metadata"], json!({}));
    // The same endpoint in another cluster is a different instance.
    let (status, _) =
        node.call(Method::GET, INSTANCE, &[("serviceName", "crud"), ("ip", "10.0.0.2"), ("port", "8081")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let hosts = node.hosts(&[("serviceName", "crud")]).await;
    assert_eq!(hosts.len(), 2, "{hosts:?}");

    // PUT changes weight and metadata.
    node.ok(
        Method::PUT,
        INSTANCE,
        &[],
        Some(&[
            ("serviceName", "crud"),
            ("ip", "10.0.0.1"),
            ("port", "8080"),
            ("weight", "7"),
            ("metadata", r#"{"zone":"z2"}"#),
        ]),
    )
    .await;
    let got = node.json(INSTANCE, &[("serviceName", "crud"), ("ip", "10.0.0.1"), ("port", "8080")]).await;
    assert_eq!(got["weight"], 7.0);
    assert_eq!(got["metadata"], json!({"zone":"z2"}));
    let listed = node.hosts(&[("serviceName", "crud")]).await;
    let h = listed.iter().find(|h| h["ip"] == "10.0.0.1").expect("listed");
    assert_eq!(h["weight"], 7.0);
    assert_eq!(h["metadata"], json!({"zone":"z2"}));

    // PATCH changes only what it is given.
    node.ok(
        Method::PATCH,
        INSTANCE,
        &[("serviceName", "crud"), ("ip", "10.0.0.1"), ("port", "8080"), ("metadata", r#"{"zone":"z3"}"#)],
        None,
    )
    .await;
    let got = node.json(INSTANCE, &[("serviceName", "crud"), ("ip", "10.0.0.1"), ("port", "8080")]).await;
    assert_eq!(got["weight"], 7.0);
    assert_eq!(got["metadata"], json!({"zone":"z3"}));

    // Updating an unknown instance fails.
    let (status, body) = node
        .call(
            Method::PUT,
            INSTANCE,
            &[("serviceName", "crud"), ("ip", "10.9.9.9"), ("port", "1"), ("weight", "2")],
            None,
        )
        .await;
    assert!(status.is_client_error(), "update of unknown instance: {status} {body}");

    // enabled=false hides the instance from /instance/list, but it is still held.
    node.ok(
        Method::PUT,
        INSTANCE,
        &[],
        Some(&[("serviceName", "crud"), ("ip", "10.0.0.1"), ("port", "8080"), ("enabled", "false")]),
    )
    .await;
    let listed = node.hosts(&[("serviceName", "crud")]).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["ip"], "10.0.0.2");
    let got = node.json(INSTANCE, &[("serviceName", "crud"), ("ip", "10.0.0.1"), ("port", "8080")]).await;
    assert_eq!(got["ip"], "10.0.0.1");
    node.ok(
        Method::PUT,
        INSTANCE,
        &[],
        Some(&[("serviceName", "crud"), ("ip", "10.0.0.1"), ("port", "8080"), ("enabled", "true")]),
    )
    .await;
    assert_eq!(node.hosts(&[("serviceName", "crud")]).await.len(), 2);

    // Registering disabled from the start hides it too.
    node.register(&[("serviceName", "crud"), ("ip", "10.0.0.3"), ("port", "8082"), ("enabled", "false")]).await;
    let listed = node.hosts(&[("serviceName", "crud")]).await;
    assert_eq!(listed.len(), 2, "disabled instance listed: {listed:?}");
    assert!(listed.iter().all(|h| h["ip"] != "10.0.0.3"));

    // DELETE removes.
    node.ok(Method::DELETE, INSTANCE, &[("serviceName", "crud"), ("ip", "10.0.0.1"), ("port", "8080")], None).await;
    let (status, _) =
        node.call(Method::GET, INSTANCE, &[("serviceName", "crud"), ("ip", "10.0.0.1"), ("port", "8080")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let listed = node.hosts(&[("serviceName", "crud")]).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["ip"], "10.0.0.2");
    // DELETE with a form body, in the right cluster.
    node.ok(
        Method::DELETE,
        INSTANCE,
        &[],
        Some(&[("serviceName", "crud"), ("ip", "10.0.0.2"), ("port", "8081"), ("clusterName", "c2")]),
    )
    .await;
    assert!(node.hosts(&[("serviceName", "crud")]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_namespaces_and_groups() {
    let node = TestNode::start(&[]);

    // "" and "public" are one namespace.
    node.register(&[("namespaceId", ""), ("serviceName", "ns"), ("ip", "10.0.1.1"), ("port", "80")]).await;
    for ns in [None, Some(""), Some("public")] {
        let mut q = vec![("serviceName", "ns")];
        if let Some(ns) = ns {
            q.push(("namespaceId", ns));
        }
        let hosts = node.hosts(&q).await;
        assert_eq!(hosts.len(), 1, "namespace {ns:?}: {hosts:?}");
        assert_eq!(hosts[0]["ip"], "10.0.1.1");
    }
    node.register(&[("namespaceId", "public"), ("serviceName", "ns"), ("ip", "10.0.1.2"), ("port", "80")]).await;
    assert_eq!(node.hosts(&[("serviceName", "ns"), ("namespaceId", "")]).await.len(), 2);
    let got =
        node.json(INSTANCE, &[("serviceName", "ns"), ("ip", "10.0.1.2"), ("port", "80"), ("namespaceId", "")]).await;
    assert_eq!(got["ip"], "10.0.1.2");

    // Another namespace is isolated.
    node.register(&[("namespaceId", "dev"), ("serviceName", "ns"), ("ip", "10.0.1.9"), ("port", "80")]).await;
    let dev = node.hosts(&[("serviceName", "ns"), ("namespaceId", "dev")]).await;
    assert_eq!(dev.len(), 1, "{dev:?}");
    assert_eq!(dev[0]["ip"], "10.0.1.9");
    let public = node.hosts(&[("serviceName", "ns")]).await;
    assert_eq!(public.len(), 2);
    assert!(public.iter().all(|h| h["ip"] != "10.0.1.9"));
    let (status, _) =
        node.call(Method::GET, INSTANCE, &[("serviceName", "ns"), ("ip", "10.0.1.9"), ("port", "80")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "dev instance visible from public");
    // Deleting in public does not touch dev.
    node.ok(Method::DELETE, INSTANCE, &[("serviceName", "ns"), ("ip", "10.0.1.9"), ("port", "80")], None).await;
    assert_eq!(node.hosts(&[("serviceName", "ns"), ("namespaceId", "dev")]).await.len(), 1);

    // groupName given separately, or as group@@svc in serviceName: the same service.
    node.register(&[("groupName", "g1"), ("serviceName", "grp"), ("ip", "10.0.2.1"), ("port", "81")]).await;
    node.register(&[("serviceName", "g1@@grp"), ("ip", "10.0.2.2"), ("port", "82")]).await;
    let v = node.list(&[("serviceName", "g1@@grp")]).await;
    assert_eq!(v["name"], "g1@@grp");
    assert_eq!(v["groupName"], "g1");
    assert_eq!(v["hosts"].as_array().unwrap().len(), 2, "{v}");
    let v = node.list(&[("serviceName", "grp"), ("groupName", "g1")]).await;
    assert_eq!(v["name"], "g1@@grp");
    assert_eq!(v["hosts"].as_array().unwrap().len(), 2, "{v}");
    for h in v["hosts"].as_array().unwrap() {
        assert_eq!(h["serviceName"], "g1@@grp");
    }
    // The default group holds nothing under that name.
    assert!(node.hosts(&[("serviceName", "grp")]).await.is_empty());
    let got = node.json(INSTANCE, &[("serviceName", "g1@@grp"), ("ip", "10.0.2.1"), ("port", "81")]).await;
    assert_eq!(got["service"], "g1@@grp");
    assert_eq!(got["instanceId"], "10.0.2.1#81#DEFAULT#g1@@grp");
    node.ok(
        Method::DELETE,
        INSTANCE,
        &[("serviceName", "grp"), ("groupName", "g1"), ("ip", "10.0.2.2"), ("port", "82")],
        None,
    )
    .await;
    assert_eq!(node.hosts(&[("serviceName", "g1@@grp")]).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 2. /nacos/v1/ns/instance/list
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_list_shape_and_filters() {
    let node = TestNode::start(&[]);
    node.register(&[("serviceName", "lst"), ("ip", "10.1.0.1"), ("port", "80"), ("clusterName", "c1")]).await;
    node.register(&[("serviceName", "lst"), ("ip", "10.1.0.2"), ("port", "80"), ("clusterName", "c2")]).await;
    node.register(&[
        ("serviceName", "lst"),
        ("ip", "10.1.0.3"),
        ("port", "80"),
        ("clusterName", "c2"),
        ("healthy", "false"),
    ])
    .await;

    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let v = node.list(&[("serviceName", "lst")]).await;
    assert_eq!(v["name"], "DEFAULT_GROUP@@lst");
    assert_eq!(v["groupName"], "DEFAULT_GROUP");
    assert_eq!(v["clusters"], "");
    assert_eq!(v["cacheMillis"], 10000);
    assert_eq!(v["checksum"], "");
    assert_eq!(v["allIPs"], false);
    assert_eq!(v["reachProtectionThreshold"], false);
    assert_eq!(v["valid"], true);
    let ref1 = v["lastRefTime"].as_i64().expect("lastRefTime is a number");
    assert!((ref1 - before).abs() < 60_000, "lastRefTime {ref1} is not now ({before})");
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    let h = hosts.iter().find(|h| h["ip"] == "10.1.0.1").unwrap();
    assert_eq!(h["instanceId"], "10.1.0.1#80#c1#DEFAULT_GROUP@@lst");
    assert_eq!(h["port"], 80);
    assert_eq!(h["weight"], 1.0);
    assert_eq!(h["healthy"], true);
    assert_eq!(h["enabled"], true);
    assert_eq!(h["ephemeral"], true);
    assert_eq!(h["clusterName"], "c1");
    assert_eq!(h["serviceName"], "DEFAULT_GROUP@@lst");
    assert_eq!(h["metadata"], json!({}));
    assert_eq!(h["instanceHeartBeatInterval"], 5000);
    assert_eq!(h["instanceHeartBeatTimeOut"], 15000);
    assert_eq!(h["ipDeleteTimeout"], 30000);
    assert_eq!(h["instanceIdGenerator"], "simple");
    let unhealthy = hosts.iter().find(|h| h["ip"] == "10.1.0.3").unwrap();
    assert_eq!(unhealthy["healthy"], false);

    // lastRefTime strictly increases (clients drop ServiceInfo that is not newer).
    let ref2 = node.list(&[("serviceName", "lst")]).await["lastRefTime"].as_i64().unwrap();
    assert!(ref2 > ref1, "lastRefTime did not increase: {ref1} then {ref2}");

    // clusters filter, echoed back.
    let v = node.list(&[("serviceName", "lst"), ("clusters", "c1")]).await;
    assert_eq!(v["clusters"], "c1");
    let ips: Vec<&str> = v["hosts"].as_array().unwrap().iter().map(|h| h["ip"].as_str().unwrap()).collect();
    assert_eq!(ips, ["10.1.0.1"]);
    let v = node.list(&[("serviceName", "lst"), ("clusters", "c2")]).await;
    assert_eq!(v["hosts"].as_array().unwrap().len(), 2);
    let v = node.list(&[("serviceName", "lst"), ("clusters", "c1,c2")]).await;
    assert_eq!(v["clusters"], "c1,c2");
    assert_eq!(v["hosts"].as_array().unwrap().len(), 3);
    let v = node.list(&[("serviceName", "lst"), ("clusters", "nope")]).await;
    assert!(v["hosts"].as_array().unwrap().is_empty());

    // healthyOnly (no service metadata, so no protection).
    let v = node.list(&[("serviceName", "lst"), ("healthyOnly", "true")]).await;
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{v}");
    assert!(hosts.iter().all(|h| h["healthy"] == true));
    assert_eq!(v["reachProtectionThreshold"], false);
    let v = node.list(&[("serviceName", "lst"), ("healthyOnly", "true"), ("clusters", "c2")]).await;
    let ips: Vec<&str> = v["hosts"].as_array().unwrap().iter().map(|h| h["ip"].as_str().unwrap()).collect();
    assert_eq!(ips, ["10.1.0.2"]);
    assert_eq!(node.hosts(&[("serviceName", "lst"), ("healthyOnly", "false")]).await.len(), 3);

    // Unknown service: 200 with no hosts.
    let v = node.list(&[("serviceName", "nothing-here"), ("groupName", "gx")]).await;
    assert_eq!(v["name"], "gx@@nothing-here");
    assert_eq!(v["groupName"], "gx");
    assert_eq!(v["hosts"], json!([]));
    assert_eq!(v["cacheMillis"], 10000);
    assert_eq!(v["valid"], true);
}

// ---------------------------------------------------------------------------------------------
// 3. /nacos/v1/ns/instance/beat
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beat_unknown_and_reregister() {
    let node = TestNode::start(&[]);

    // Unknown instance, no `beat` JSON: 20404.
    let r = node.beat(&[("serviceName", "bt"), ("ip", "10.2.0.1"), ("port", "9000")]).await;
    assert_eq!(r, json!({"clientBeatInterval": 5000, "code": 20404, "lightBeatEnabled": true}));
    assert!(node.hosts(&[("serviceName", "bt")]).await.is_empty(), "a 20404 beat must not register");

    // With `beat` JSON (as the 1.x Java client sends it): re-registered, 10200.
    let beat_json = json!({
        "cluster": "DEFAULT", "ip": "10.2.0.1", "metadata": {"k": "v"}, "period": 5000, "port": 9000,
        "scheduled": false, "serviceName": "DEFAULT_GROUP@@bt", "stopped": false, "weight": 3.0
    })
    .to_string();
    let r = node.beat(&[("serviceName", "DEFAULT_GROUP@@bt"), ("beat", &beat_json)]).await;
    assert_eq!(r, json!({"clientBeatInterval": 5000, "code": 10200, "lightBeatEnabled": true}));
    let hosts = node.hosts(&[("serviceName", "bt")]).await;
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    assert_eq!(hosts[0]["ip"], "10.2.0.1");
    assert_eq!(hosts[0]["port"], 9000);
    assert_eq!(hosts[0]["weight"], 3.0);
    assert_eq!(hosts[0]["metadata"], json!({"k": "v"}));
    assert_eq!(hosts[0]["healthy"], true);

    // A light beat of the now-known instance: 10200.
    let r = node.beat(&[("serviceName", "bt"), ("ip", "10.2.0.1"), ("port", "9000")]).await;
    assert_eq!(r["code"], 10200);
    // A beat for the wrong cluster is not that instance.
    let r = node.beat(&[("serviceName", "bt"), ("ip", "10.2.0.1"), ("port", "9000"), ("clusterName", "other")]).await;
    assert_eq!(r["code"], 20404);

    // The per-instance interval is echoed in the reply.
    node.register(&[
        ("serviceName", "bt"),
        ("ip", "10.2.0.2"),
        ("port", "9000"),
        ("metadata", r#"{"preserved.heart.beat.interval":"1500"}"#),
    ])
    .await;
    let r = node.beat(&[("serviceName", "bt"), ("ip", "10.2.0.2"), ("port", "9000")]).await;
    assert_eq!(r, json!({"clientBeatInterval": 1500, "code": 10200, "lightBeatEnabled": true}));

    // An interval longer than the timeout is refused.
    let (status, body) = node
        .call(
            Method::POST,
            INSTANCE,
            &[],
            Some(&[
                ("serviceName", "bt"),
                ("ip", "10.2.0.3"),
                ("port", "9000"),
                ("metadata", r#"{"preserved.heart.beat.interval":"20000","preserved.heart.beat.timeout":"10000"}"#),
            ]),
        )
        .await;
    assert_bad_request(status, &body, "heart beat", "interval > timeout");
    // A malformed `beat` parameter is a 400.
    let (status, body) = node.call(Method::PUT, BEAT, &[("serviceName", "bt"), ("beat", "{not json")], None).await;
    assert_bad_request(status, &body, "beat", "malformed beat JSON");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beat_expiry_with_node_flags() {
    let node = TestNode::start(&["--beat-timeout-ms", "1000", "--ip-delete-timeout-ms", "3000"]);
    let n = &node;
    let (svc, ip, port) = ("hb", "10.3.0.1", 7000);

    let sent = Instant::now();
    node.register(&[("serviceName", svc), ("ip", ip), ("port", "7000")]).await;
    let registered = Instant::now();
    assert_eq!(node.health_of(svc, ip, port).await, Some(true));

    // Unhealthy after the beat timeout (never before it), within a sweep plus slack.
    let limit = Duration::from_millis(1000 + 2500);
    wait_for(registered, limit, move || async move { n.health_of(svc, ip, port).await == Some(false) })
        .await
        .expect("instance never turned unhealthy");
    assert!(
        sent.elapsed() >= Duration::from_millis(1000),
        "unhealthy before the 1 s beat timeout: {:?}",
        sent.elapsed()
    );
    // Unhealthy ones are dropped by healthyOnly but still held.
    assert!(node.hosts(&[("serviceName", svc), ("healthyOnly", "true")]).await.is_empty());
    let got = node.json(INSTANCE, &[("serviceName", svc), ("ip", ip), ("port", "7000")]).await;
    assert_eq!(got["healthy"], false);

    // Beating again makes it healthy at once.
    let beat_sent = Instant::now();
    let r = node.beat(&[("serviceName", svc), ("ip", ip), ("port", "7000")]).await;
    let beat_done = Instant::now();
    assert_eq!(r["code"], 10200);
    assert_eq!(node.health_of(svc, ip, port).await, Some(true));

    // Silent again: unhealthy, then removed after the delete timeout (never before it).
    wait_for(beat_done, Duration::from_millis(3000 + 2500), move || async move {
        n.health_of(svc, ip, port).await == Some(false)
    })
    .await
    .expect("instance never turned unhealthy after the second silence");
    wait_for(beat_done, Duration::from_millis(3000 + 2500), move || async move {
        n.health_of(svc, ip, port).await.is_none()
    })
    .await
    .expect("instance was never removed");
    assert!(
        beat_sent.elapsed() >= Duration::from_millis(3000),
        "removed before the 3 s delete timeout: {:?}",
        beat_sent.elapsed()
    );
    let (status, _) =
        node.call(Method::GET, INSTANCE, &[("serviceName", svc), ("ip", ip), ("port", "7000")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The removal is reflected in the counts, and a light beat now asks to re-register.
    let m = node.json("/nacos/v1/ns/operator/metrics", &[("onlyStatus", "false")]).await;
    assert_eq!(m["instanceCount"], 0, "{m}");
    assert_eq!(sample(&node.text("/metrics").await, "cairn_naming_instances", &[]), Some(0.0));
    let r = node.beat(&[("serviceName", svc), ("ip", ip), ("port", "7000")]).await;
    assert_eq!(r["code"], 20404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beat_defaults_and_metadata_overrides() {
    // No timing flags: Nacos defaults (15 s / 30 s) for plain instances; metadata overrides per instance.
    let node = TestNode::start(&[]);
    let n = &node;
    node.register(&[("serviceName", "dflt"), ("ip", "10.4.0.1"), ("port", "80")]).await;
    node.register(&[
        ("serviceName", "dflt"),
        ("ip", "10.4.0.2"),
        ("port", "80"),
        (
            "metadata",
            r#"{"preserved.heart.beat.interval":"500","preserved.heart.beat.timeout":"1000","preserved.ip.delete.timeout":"2000"}"#,
        ),
    ])
    .await;
    let registered = Instant::now();
    let hosts = node.hosts(&[("serviceName", "dflt")]).await;
    let fast = hosts.iter().find(|h| h["ip"] == "10.4.0.2").expect("listed");
    assert_eq!(fast["instanceHeartBeatInterval"], 500);
    assert_eq!(fast["instanceHeartBeatTimeOut"], 1000);
    assert_eq!(fast["ipDeleteTimeout"], 2000);
    let r = node.beat(&[("serviceName", "dflt"), ("ip", "10.4.0.2"), ("port", "80")]).await;
    assert_eq!(r["clientBeatInterval"], 500);
    let beat_done = Instant::now();

    // The overridden instance expires quickly…
    wait_for(beat_done, Duration::from_millis(2000 + 2500), move || async move {
        n.health_of("dflt", "10.4.0.2", 80).await.is_none()
    })
    .await
    .expect("instance with preserved.ip.delete.timeout=2000 was never removed");
    // …while the plain one is still there and healthy (the defaults are not tiny).
    if registered.elapsed() < Duration::from_millis(2200) {
        tokio::time::sleep(Duration::from_millis(2200) - registered.elapsed()).await;
    }
    assert_eq!(node.health_of("dflt", "10.4.0.1", 80).await, Some(true), "default beat timeout is too short");
}

// ---------------------------------------------------------------------------------------------
// 4. /nacos/v1/ns/service and /service/list
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_crud() {
    let node = TestNode::start(&[]);

    node.ok(
        Method::POST,
        SERVICE,
        &[],
        Some(&[("serviceName", "svc1"), ("protectThreshold", "0.3"), ("metadata", r#"{"owner":"team-a"}"#)]),
    )
    .await;
    let (status, body) = node.call(Method::POST, SERVICE, &[], Some(&[("serviceName", "svc1")])).await;
    assert_bad_request(status, &body, "already exists", "second create");

    let s = node.json(SERVICE, &[("serviceName", "svc1")]).await;
    assert_eq!(s["namespaceId"], "public");
    assert_eq!(s["groupName"], "DEFAULT_GROUP");
    assert_eq!(s["name"], "svc1");
    assert_eq!(s["protectThreshold"], 0.3, "{s}");
    assert_eq!(s["metadata"], json!({"owner":"team-a"}));
    assert!(s["selector"].is_object(), "{s}");
    assert_eq!(s["selector"]["type"], "none");
    assert_eq!(s["clusters"], json!([]));

    // Clusters appear with instances.
    node.register(&[("serviceName", "svc1"), ("ip", "10.5.0.1"), ("port", "80"), ("clusterName", "cA")]).await;
    let s = node.json(SERVICE, &[("serviceName", "svc1")]).await;
    let clusters: Vec<&str> = s["clusters"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(clusters, ["cA"]);

    // PUT updates threshold and metadata.
    node.ok(
        Method::PUT,
        SERVICE,
        &[],
        Some(&[("serviceName", "svc1"), ("protectThreshold", "0.5"), ("metadata", r#"{"owner":"team-b","x":"1"}"#)]),
    )
    .await;
    let s = node.json(SERVICE, &[("serviceName", "svc1")]).await;
    assert_eq!(s["protectThreshold"], 0.5);
    assert_eq!(s["metadata"], json!({"owner":"team-b","x":"1"}));
    // PUT of a threshold out of range, or of an unknown service, fails.
    let (status, body) =
        node.call(Method::PUT, SERVICE, &[("serviceName", "svc1"), ("protectThreshold", "1.5")], None).await;
    assert_bad_request(status, &body, "protectThreshold", "threshold 1.5");
    let (status, body) =
        node.call(Method::PUT, SERVICE, &[("serviceName", "nope"), ("protectThreshold", "0.1")], None).await;
    assert!(status.is_client_error(), "PUT unknown service: {status} {body}");

    // DELETE is refused while the service has instances.
    let (status, body) = node.call(Method::DELETE, SERVICE, &[("serviceName", "svc1")], None).await;
    assert_bad_request(status, &body, "not empty", "delete non-empty service");
    assert_eq!(node.json(SERVICE, &[("serviceName", "svc1")]).await["name"], "svc1");
    node.ok(
        Method::DELETE,
        INSTANCE,
        &[("serviceName", "svc1"), ("ip", "10.5.0.1"), ("port", "80"), ("clusterName", "cA")],
        None,
    )
    .await;
    node.ok(Method::DELETE, SERVICE, &[("serviceName", "svc1")], None).await;
    let (status, body) = node.call(Method::GET, SERVICE, &[("serviceName", "svc1")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "GET after delete: {body}");
    let (status, _) = node.call(Method::DELETE, SERVICE, &[("serviceName", "svc1")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "second delete");
    // It can be created again.
    node.ok(Method::POST, SERVICE, &[("serviceName", "svc1")], None).await;
    assert_eq!(node.json(SERVICE, &[("serviceName", "svc1")]).await["protectThreshold"], 0.0);

    // Group and namespace in the address.
    node.ok(Method::POST, SERVICE, &[("serviceName", "svc2"), ("groupName", "gs"), ("namespaceId", "dev")], None).await;
    let s = node.json(SERVICE, &[("serviceName", "gs@@svc2"), ("namespaceId", "dev")]).await;
    assert_eq!(s["namespaceId"], "dev");
    assert_eq!(s["groupName"], "gs");
    assert_eq!(s["name"], "svc2");
    let (status, _) = node.call(Method::GET, SERVICE, &[("serviceName", "gs@@svc2")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "dev service visible in public");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_list_paging_and_groups() {
    let node = TestNode::start(&[]);
    for name in ["s3", "s1", "s5", "s2", "s4"] {
        node.ok(Method::POST, SERVICE, &[("serviceName", name), ("groupName", "G2")], None).await;
    }
    // One implicit service (from a registration) in the default group, one in another namespace.
    node.register(&[("serviceName", "d1"), ("ip", "10.6.0.1"), ("port", "80")]).await;
    node.ok(Method::POST, SERVICE, &[("serviceName", "d2"), ("namespaceId", "ns2")], None).await;

    let v = node.json(SERVICE_LIST, &[("groupName", "G2"), ("pageNo", "1"), ("pageSize", "2")]).await;
    assert_eq!(v["count"], 5, "{v}");
    assert_eq!(v["doms"], json!(["s1", "s2"]));
    let v = node.json(SERVICE_LIST, &[("groupName", "G2"), ("pageNo", "2"), ("pageSize", "2")]).await;
    assert_eq!(v["doms"], json!(["s3", "s4"]));
    let v = node.json(SERVICE_LIST, &[("groupName", "G2"), ("pageNo", "3"), ("pageSize", "2")]).await;
    assert_eq!(v["count"], 5);
    assert_eq!(v["doms"], json!(["s5"]));
    let v = node.json(SERVICE_LIST, &[("groupName", "G2"), ("pageNo", "4"), ("pageSize", "2")]).await;
    assert_eq!(v["count"], 5);
    assert_eq!(v["doms"], json!([]));

    // Default group (no groupName): only d1.
    let v = node.json(SERVICE_LIST, &[("pageNo", "1"), ("pageSize", "10")]).await;
    assert_eq!(v, json!({"count": 1, "doms": ["d1"]}));
    let v = node.json(SERVICE_LIST, &[("groupName", "DEFAULT_GROUP"), ("namespaceId", "public")]).await;
    assert_eq!(v["doms"], json!(["d1"]));
    let v = node.json(SERVICE_LIST, &[("namespaceId", "ns2")]).await;
    assert_eq!(v, json!({"count": 1, "doms": ["d2"]}));
    let v = node.json(SERVICE_LIST, &[("groupName", "empty-group")]).await;
    assert_eq!(v, json!({"count": 0, "doms": []}));
}

// ---------------------------------------------------------------------------------------------
// 5. Protect threshold
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_threshold() {
    let node = TestNode::start(&[]);

    // Explicit service with threshold 0.6; 1 healthy + 2 unhealthy (1/3 ≤ 0.6).
    node.ok(Method::POST, SERVICE, &[], Some(&[("serviceName", "prot"), ("protectThreshold", "0.6")])).await;
    node.register(&[("serviceName", "prot"), ("ip", "10.7.0.1"), ("port", "80")]).await;
    node.register(&[("serviceName", "prot"), ("ip", "10.7.0.2"), ("port", "80"), ("healthy", "false")]).await;
    node.register(&[("serviceName", "prot"), ("ip", "10.7.0.3"), ("port", "80"), ("healthy", "false")]).await;
    let got = node.json(INSTANCE, &[("serviceName", "prot"), ("ip", "10.7.0.2"), ("port", "80")]).await;
    assert_eq!(got["healthy"], false, "healthy=false on register is not honoured");

    let v = node.list(&[("serviceName", "prot"), ("healthyOnly", "true")]).await;
    assert_eq!(v["reachProtectionThreshold"], true, "{v}");
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{v}");
    assert!(hosts.iter().all(|h| h["healthy"] == true), "{v}");

    // Lower the threshold below the healthy share: protection off, only the healthy one.
    node.ok(Method::PUT, SERVICE, &[("serviceName", "prot"), ("protectThreshold", "0.2")], None).await;
    let v = node.list(&[("serviceName", "prot"), ("healthyOnly", "true")]).await;
    assert_eq!(v["reachProtectionThreshold"], false, "{v}");
    let ips: Vec<&str> = v["hosts"].as_array().unwrap().iter().map(|h| h["ip"].as_str().unwrap()).collect();
    assert_eq!(ips, ["10.7.0.1"]);
    let v = node.list(&[("serviceName", "prot")]).await;
    assert_eq!(v["hosts"].as_array().unwrap().iter().filter(|h| h["healthy"] == false).count(), 2);

    // Implicit service: no protection until the service gets metadata (Nacos applies it only
    // when ServiceMetadata exists); PUT /service on it then turns protection on.
    node.register(&[("serviceName", "prot2"), ("ip", "10.7.1.1"), ("port", "80")]).await;
    node.register(&[("serviceName", "prot2"), ("ip", "10.7.1.2"), ("port", "80"), ("healthy", "false")]).await;
    node.register(&[("serviceName", "prot2"), ("ip", "10.7.1.3"), ("port", "80"), ("healthy", "false")]).await;
    let v = node.list(&[("serviceName", "prot2"), ("healthyOnly", "true")]).await;
    assert_eq!(v["reachProtectionThreshold"], false);
    assert_eq!(v["hosts"].as_array().unwrap().len(), 1);
    node.ok(Method::PUT, SERVICE, &[("serviceName", "prot2"), ("protectThreshold", "0.6")], None).await;
    let v = node.list(&[("serviceName", "prot2"), ("healthyOnly", "true")]).await;
    assert_eq!(v["reachProtectionThreshold"], true, "{v}");
    assert_eq!(v["hosts"].as_array().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// 6. Operator metrics, health, cluster view, Prometheus
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_health_cluster_and_metrics() {
    let node = TestNode::start(&[]);
    node.register(&[("serviceName", "m1"), ("ip", "10.8.0.1"), ("port", "80")]).await;
    node.register(&[("serviceName", "m1"), ("ip", "10.8.0.2"), ("port", "80")]).await;
    node.register(&[("serviceName", "m2"), ("ip", "10.8.0.3"), ("port", "80")]).await;
    // A rejected request, to see the error result in the request counter.
    let (status, _) =
        node.call(Method::POST, INSTANCE, &[("serviceName", "m1"), ("ip", "10.8.0.9"), ("port", "-1")], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(node.json("/nacos/v1/ns/operator/metrics", &[]).await, json!({"status": "UP"}));
    let m = node.json("/nacos/v1/ns/operator/metrics", &[("onlyStatus", "false")]).await;
    assert_eq!(m["status"], "UP");
    assert_eq!(m["serviceCount"], 2, "{m}");
    assert_eq!(m["instanceCount"], 3, "{m}");
    assert_eq!(m["subscribeCount"], 0, "{m}");
    assert_eq!(m["clientCount"], 3, "{m}");
    assert_eq!(m["ephemeralIpPortClientCount"], 3, "{m}");

    for path in ["/nacos/v1/console/health/liveness", "/nacos/v1/console/health/readiness"] {
        let (status, body) = node.call(Method::GET, path, &[], None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }

    let c = node.json("/nacos/v1/core/cluster/nodes", &[]).await;
    assert_eq!(c["code"], 200, "{c}");
    let members = c["data"].as_array().expect("data array");
    assert_eq!(members.len(), 1, "{c}");
    assert_eq!(members[0]["state"], "UP");
    assert_eq!(members[0]["address"], format!("127.0.0.1:{}", node.proc.http_port));
    assert_eq!(members[0]["ip"], "127.0.0.1");
    assert_eq!(members[0]["port"], node.proc.http_port);

    let text = node.text("/metrics").await;
    assert_eq!(sample(&text, "cairn_naming_instances", &[]), Some(3.0), "{text}");
    assert_eq!(sample(&text, "cairn_naming_services", &[]), Some(2.0));
    let registers = sample(
        &text,
        "cairn_requests_total",
        &[("transport", "http"), ("type", "POST /nacos/v1/ns/instance"), ("result", "ok")],
    );
    assert_eq!(registers, Some(3.0), "{text}");
    let errors = sample(
        &text,
        "cairn_requests_total",
        &[("transport", "http"), ("type", "POST /nacos/v1/ns/instance"), ("result", "error")],
    );
    assert_eq!(errors, Some(1.0), "{text}");

    let nacos = node.text("/nacos/actuator/prometheus").await;
    assert_eq!(sample(&nacos, "nacos_monitor", &[("module", "naming"), ("name", "ipCount")]), Some(3.0), "{nacos}");
    assert_eq!(sample(&nacos, "nacos_monitor", &[("module", "naming"), ("name", "serviceCount")]), Some(2.0));
    assert!(!nacos.contains("cairn_"), "cairn_ families on the Nacos endpoint: {nacos}");

    // Counts follow removals.
    node.ok(Method::DELETE, INSTANCE, &[("serviceName", "m1"), ("ip", "10.8.0.1"), ("port", "80")], None).await;
    let text = node.text("/metrics").await;
    assert_eq!(sample(&text, "cairn_naming_instances", &[]), Some(2.0));
    let nacos = node.text("/nacos/actuator/prometheus").await;
    assert_eq!(sample(&nacos, "nacos_monitor", &[("module", "naming"), ("name", "ipCount")]), Some(2.0));
}

// ---------------------------------------------------------------------------------------------
// 7. Validation and limits
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_are_400_with_a_message() {
    let node = TestNode::start(&[]);
    let long_name = "x".repeat(513);
    let ok_long_name = "y".repeat(512);
    let base = [("serviceName", "val"), ("ip", "10.9.0.1"), ("port", "80")];
    let with = |k: &'static str, v: &'static str| -> Vec<(&'static str, &'static str)> {
        let mut p: Vec<_> = base.iter().copied().filter(|(bk, _)| *bk != k).collect();
        p.push((k, v));
        p
    };
    let without =
        |k: &str| -> Vec<(&'static str, &'static str)> { base.iter().copied().filter(|(bk, _)| *bk != k).collect() };

    #[allow(clippy::type_complexity)]
    let mut cases: Vec<(&str, Vec<(&str, &str)>, &str)> = vec![
        ("port 70000", with("port", "70000"), "port"),
        ("port -1", with("port", "-1"), "port"),
        ("port abc", with("port", "abc"), "port"),
        ("missing port", without("port"), "port"),
        ("missing ip", without("ip"), "ip"),
        ("blank ip", with("ip", " "), "ip"),
        ("empty serviceName", with("serviceName", ""), "serviceName"),
        ("missing serviceName", without("serviceName"), "serviceName"),
        ("serviceName with /", with("serviceName", "a/b"), "serviceName"),
        ("serviceName with @@ in the bare name", with("serviceName", "g@@a@@b"), "serviceName"),
        ("serviceName group@@ only", with("serviceName", "g@@"), "serviceName"),
        ("bad groupName", with("groupName", "bad group!"), "groupName"),
        ("bad cluster name", with("clusterName", "a b"), "clusterName"),
        ("cluster name with slash", with("clusterName", "a/b"), "clusterName"),
        ("weight -1", with("weight", "-1"), "weight"),
        ("weight 20000", with("weight", "20000"), "weight"),
        ("weight NaN", with("weight", "NaN"), "weight"),
        ("metadata not JSON", with("metadata", "{not json"), "metadata"),
        ("metadata plain text", with("metadata", "just text"), "metadata"),
        ("bad namespace", with("namespaceId", "a/b"), "namespaceId"),
        ("healthy maybe", with("healthy", "maybe"), "healthy"),
    ];
    let long = {
        let mut p: Vec<(&str, &str)> = without("serviceName");
        p.push(("serviceName", &long_name));
        p
    };
    cases.push(("513-char serviceName", long, "serviceName"));

    for (what, params, hint) in &cases {
        // As a form body and as query parameters.
        let (status, body) = node.call(Method::POST, INSTANCE, &[], Some(params)).await;
        assert_bad_request(status, &body, hint, &format!("register (form) {what}"));
        let (status, body) = node.call(Method::POST, INSTANCE, params, None).await;
        assert_bad_request(status, &body, hint, &format!("register (query) {what}"));
    }
    // Nothing of that was registered.
    assert!(node.hosts(&[("serviceName", "val")]).await.is_empty());
    let m = node.json("/nacos/v1/ns/operator/metrics", &[("onlyStatus", "false")]).await;
    assert_eq!(m["instanceCount"], 0, "a rejected request left an instance: {m}");

    // Updates validate too.
    node.register(&base).await;
    for (what, params, hint) in [
        ("weight -1", with("weight", "-1"), "weight"),
        ("weight NaN", with("weight", "NaN"), "weight"),
        ("metadata not JSON", with("metadata", "{not json"), "metadata"),
        ("port 70000", with("port", "70000"), "port"),
    ] {
        let (status, body) = node.call(Method::PUT, INSTANCE, &params, None).await;
        assert_bad_request(status, &body, hint, &format!("update {what}"));
    }
    let got = node.json(INSTANCE, &base).await;
    assert_eq!(got["weight"], 1.0);

    // Query parameters of the list.
    let (status, body) = node.call(Method::GET, LIST, &[("serviceName", "val"), ("healthyOnly", "maybe")], None).await;
    assert_bad_request(status, &body, "healthyOnly", "healthyOnly=maybe");
    let (status, body) = node.call(Method::GET, LIST, &[("serviceName", "")], None).await;
    assert_bad_request(status, &body, "serviceName", "list without serviceName");
    let (status, body) = node.call(Method::GET, LIST, &[("serviceName", &long_name)], None).await;
    assert_bad_request(status, &body, "serviceName", "list 513-char serviceName");
    let (status, body) = node.call(Method::POST, SERVICE, &[("serviceName", "a/b")], None).await;
    assert_bad_request(status, &body, "serviceName", "create service a/b");
    let (status, body) =
        node.call(Method::POST, SERVICE, &[("serviceName", "thr"), ("protectThreshold", "abc")], None).await;
    assert_bad_request(status, &body, "protectThreshold", "protectThreshold=abc");
    let (status, body) = node.call(Method::GET, SERVICE_LIST, &[("pageNo", "x")], None).await;
    assert_bad_request(status, &body, "pageNo", "pageNo=x");

    // The boundary: 512 characters are fine.
    node.register(&[("serviceName", &ok_long_name), ("ip", "10.9.0.2"), ("port", "80")]).await;
    assert_eq!(node.hosts(&[("serviceName", &ok_long_name)]).await.len(), 1);
    node.assert_ready().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413_and_node_keeps_serving() {
    let node = TestNode::start(&[]);
    let limit = 10 * 1024 * 1024;
    let mut body = String::from("serviceName=big&ip=10.10.0.1&port=80&metadata=");
    body.push_str(&"a".repeat(limit + 1024 - body.len()));
    assert!(body.len() > limit);
    node.assert_body_too_large(INSTANCE, body).await;

    node.assert_ready().await;
    assert!(node.hosts(&[("serviceName", "big")]).await.is_empty());
    // Normal requests still work on a fresh connection.
    node.register(&[("serviceName", "big"), ("ip", "10.10.0.1"), ("port", "80")]).await;
    assert_eq!(node.hosts(&[("serviceName", "big")]).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 8. UDP push for 1.x clients
// ---------------------------------------------------------------------------------------------

/// One received push: (lastRefTime, parsed ServiceInfo, sender).
async fn recv_push(sock: &UdpSocket, limit: Duration) -> Option<(u64, Value, std::net::SocketAddr)> {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = tokio::time::timeout(limit, sock.recv_from(&mut buf)).await.ok()?.expect("udp recv");
    let packet: Value = serde_json::from_slice(&buf[..n]).unwrap_or_else(|e| panic!("push is not JSON ({e})"));
    assert_eq!(packet["type"], "dom", "{packet}");
    let ref_time = packet["lastRefTime"].as_u64().unwrap_or_else(|| panic!("lastRefTime is not a number: {packet}"));
    let data = packet["data"].as_str().unwrap_or_else(|| panic!("data is not a string: {packet}"));
    let info: Value =
        serde_json::from_str(data).unwrap_or_else(|e| panic!("data is not ServiceInfo JSON ({e}): {data}"));
    Some((ref_time, info, from))
}

async fn udp_metric(node: &TestNode, result: &str) -> f64 {
    sample(&node.text("/metrics").await, "cairn_naming_pushes_total", &[("channel", "udp"), ("result", result)])
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_push_ack_and_retry() {
    let node = TestNode::start(&[]);
    let n = &node;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_port = sock.local_addr().unwrap().port().to_string();

    let v = node.list(&[("serviceName", "udp"), ("udpPort", &udp_port), ("clientIP", "127.0.0.1")]).await;
    assert_eq!(v["hosts"], json!([]));
    assert!(recv_push(&sock, Duration::from_millis(300)).await.is_none(), "push before any change");

    node.register(&[("serviceName", "udp"), ("ip", "10.11.0.1"), ("port", "8080")]).await;
    let (ref1, info, from) = recv_push(&sock, Duration::from_secs(5)).await.expect("no push after register");
    assert_eq!(info["name"], "DEFAULT_GROUP@@udp", "{info}");
    assert_eq!(info["cacheMillis"], 10000);
    let hosts = info["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{info}");
    assert_eq!(hosts[0]["ip"], "10.11.0.1");
    assert_eq!(hosts[0]["port"], 8080);
    assert_eq!(from.ip().to_string(), "127.0.0.1");

    // Acknowledge: no re-send.
    let ack = json!({"type": "push-ack", "lastRefTime": ref1.to_string(), "data": ""}).to_string();
    sock.send_to(ack.as_bytes(), from).await.unwrap();
    if let Some((r, info, _)) = recv_push(&sock, Duration::from_millis(1500)).await {
        panic!("re-send after ack: lastRefTime {r} (acked {ref1}): {info}");
    }
    let start = Instant::now();
    wait_for(start, Duration::from_secs(2), move || async move { udp_metric(n, "ok").await == 1.0 })
        .await
        .expect("cairn_naming_pushes_total{channel=\"udp\",result=\"ok\"} did not reach 1");

    // Deregister, never ack: the same packet is re-sent, three attempts in all.
    node.ok(Method::DELETE, INSTANCE, &[("serviceName", "udp"), ("ip", "10.11.0.1"), ("port", "8080")], None).await;
    let (ref2, info, _) = recv_push(&sock, Duration::from_secs(5)).await.expect("no push after deregister");
    assert_ne!(ref2, ref1);
    assert_eq!(info["hosts"], json!([]), "{info}");
    let first = Instant::now();
    let mut resends = Vec::new();
    while let Some((r, info, _)) = recv_push(&sock, Duration::from_millis(4500).saturating_sub(first.elapsed())).await {
        assert_eq!(r, ref2, "unexpected other push: {info}");
        assert_eq!(info["hosts"], json!([]));
        resends.push(first.elapsed());
    }
    assert!(!resends.is_empty(), "an unacknowledged push was never re-sent");
    assert_eq!(resends.len(), 2, "expected 3 attempts in all, got re-sends at {resends:?}");
    assert!(resends[0] >= Duration::from_millis(800), "re-sent too early: {resends:?}");
    let start = Instant::now();
    wait_for(start, Duration::from_secs(3), move || async move { udp_metric(n, "timeout").await == 1.0 })
        .await
        .expect("the unacknowledged push was not counted as timeout");
    assert_eq!(udp_metric(&node, "ok").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_subscriber_expires_without_list_calls() {
    let node = TestNode::start(&["--udp-subscriber-ttl-ms", "1000"]);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_port = sock.local_addr().unwrap().port().to_string();
    let sub = [("serviceName", "ttl"), ("udpPort", udp_port.as_str()), ("clientIP", "127.0.0.1")];

    node.list(&sub).await;
    let text = node.text("/metrics").await;
    assert_eq!(sample(&text, "cairn_naming_subscribers", &[]), Some(1.0));
    tokio::time::sleep(Duration::from_millis(1700)).await;
    node.register(&[("serviceName", "ttl"), ("ip", "10.12.0.1"), ("port", "80")]).await;
    if let Some((_, info, _)) = recv_push(&sock, Duration::from_millis(1200)).await {
        panic!("push to an expired subscriber: {info}");
    }
    assert_eq!(sample(&node.text("/metrics").await, "cairn_naming_subscribers", &[]), Some(0.0));

    // Listing again renews the subscription.
    node.list(&sub).await;
    node.register(&[("serviceName", "ttl"), ("ip", "10.12.0.2"), ("port", "80")]).await;
    let (r, info, from) = recv_push(&sock, Duration::from_secs(5)).await.expect("no push after renewing");
    assert_eq!(info["hosts"].as_array().unwrap().len(), 2, "{info}");
    let ack = json!({"type": "push-ack", "lastRefTime": r.to_string(), "data": ""}).to_string();
    sock.send_to(ack.as_bytes(), from).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 9. SIGTERM
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_cleanly() {
    let mut node = TestNode::start(&[]);
    node.register(&[("serviceName", "term"), ("ip", "10.13.0.1"), ("port", "80")]).await;
    // The client keeps its idle keep-alive connection open across the signal.
    assert_eq!(node.hosts(&[("serviceName", "term")]).await.len(), 1);
    let started = Instant::now();
    let status = tokio::task::block_in_place(|| node.proc.terminate(Duration::from_secs(8)))
        .expect("cairn-node did not exit within 8 s of SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
    assert!(
        node.http.get(format!("{}/nacos/v1/console/health/liveness", node.base)).send().await.is_err(),
        "still serving"
    );
}
