//! Config-center HTTP integration tests: each test starts the real `cairn-node` binary on loopback
//! and drives the Nacos config API over HTTP: v1 `/nacos/v1/cs/configs` (CRUD, CAS, gray, search,
//! validation), history, long polling on `/configs/listener`, the v2 open API, namespaces,
//! durability across `kill -9`, and the config metrics.

mod common;

use common::http::{Api, Pairs, Resp, TestNode};
use common::{assert_bad_request, sample, wait_until};
use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CONFIGS: &str = "/nacos/v1/cs/configs";
const LISTENER: &str = "/nacos/v1/cs/configs/listener";
const HISTORY: &str = "/nacos/v1/cs/history";
const HISTORY_PREVIOUS: &str = "/nacos/v1/cs/history/previous";
const V2_CONFIG: &str = "/nacos/v2/cs/config";
const NAMESPACES: &str = "/nacos/v1/console/namespaces";
const G: &str = "DEFAULT_GROUP";

impl Api {
    /// A call that must answer 200 `true`.
    async fn ok_true(&self, method: Method, path: &str, query: Pairs<'_>, form: Option<Pairs<'_>>) {
        self.expect_body(method, path, query, form, "true").await;
    }

    /// v1 publish with a form body; must answer `true`.
    async fn publish(&self, form: Pairs<'_>) {
        self.ok_true(Method::POST, CONFIGS, &[], Some(form)).await;
    }

    /// v1 publish of `content` to `dataId` in the default group of the public namespace.
    async fn put(&self, data_id: &str, content: &str) {
        self.publish(&[("dataId", data_id), ("group", G), ("content", content)]).await;
    }

    /// v1 GET of a config.
    async fn get(&self, query: Pairs<'_>) -> Resp {
        self.send(Method::GET, CONFIGS, query, None, &[]).await
    }

    /// v1 GET that must find the config; returns its content.
    async fn content(&self, query: Pairs<'_>) -> String {
        let r = self.get(query).await;
        assert_eq!(r.status, StatusCode::OK, "GET {query:?}: {}", r.body);
        r.body
    }

    /// v1 GET that must answer 404 "config data not exist".
    async fn absent(&self, query: Pairs<'_>) {
        let r = self.get(query).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "GET {query:?} should be absent: {}", r.body);
        assert_eq!(r.body, "config data not exist");
    }

    async fn create_namespace(&self, id: &str, name: &str) {
        self.ok_true(Method::POST, NAMESPACES, &[], Some(&[("customNamespaceId", id), ("namespaceName", name)])).await;
    }

    /// POST `/configs/listener` with `Listening-Configs` = `listening`.
    async fn poll(&self, listening: &str, headers: Pairs<'_>) -> Resp {
        self.send(Method::POST, LISTENER, &[], Some(&[("Listening-Configs", listening)]), headers).await
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        sample(&self.text("/metrics").await, name, labels)
    }

    async fn nacos_metric(&self, name: &str) -> Option<f64> {
        sample(&self.text("/nacos/actuator/prometheus").await, "nacos_monitor", &[("module", "config"), ("name", name)])
    }

    /// v1 history page of a config.
    async fn history(&self, data_id: &str, tenant: &str, page_no: &str, page_size: &str) -> Value {
        self.json(
            HISTORY,
            &[
                ("search", "accurate"),
                ("dataId", data_id),
                ("group", G),
                ("tenant", tenant),
                ("pageNo", page_no),
                ("pageSize", page_size),
            ],
        )
        .await
    }
}

impl TestNode {
    fn start(extra: &[&str]) -> TestNode {
        // Longer than the longest long-poll hold (29.5 s).
        TestNode::start_with_timeout(extra, Duration::from_secs(40))
    }
}

fn md5_hex(s: &str) -> String {
    format!("{:x}", md5::compute(s.as_bytes()))
}

/// A `Listening-Configs` record: `dataId␂group␂md5␁`.
fn rec(data_id: &str, group: &str, md5: &str) -> String {
    format!("{data_id}\u{2}{group}\u{2}{md5}\u{1}")
}

/// A `Listening-Configs` record with a tenant: `dataId␂group␂md5␂tenant␁`.
fn rec_t(data_id: &str, group: &str, md5: &str, tenant: &str) -> String {
    format!("{data_id}\u{2}{group}\u{2}{md5}\u{2}{tenant}\u{1}")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Parses an RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into epoch seconds, checking
/// every field including the weekday.
fn parse_http_date(s: &str) -> i64 {
    let f: Vec<&str> = s.split(' ').collect();
    assert_eq!(f.len(), 6, "not an IMF-fixdate: {s:?}");
    assert!(f[0].len() == 4 && f[0].ends_with(','), "weekday field: {s:?}");
    assert_eq!(f[5], "GMT", "{s:?}");
    assert_eq!(f[1].len(), 2, "day is two digits: {s:?}");
    let d: i64 = f[1].parse().unwrap();
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = months.iter().position(|m| *m == f[2]).unwrap_or_else(|| panic!("month: {s:?}")) as i64 + 1;
    let y: i64 = f[3].parse().unwrap();
    let hms: Vec<i64> = f[4].split(':').map(|x| x.parse().unwrap()).collect();
    assert!(f[4].len() == 8 && hms.len() == 3, "time: {s:?}");
    // Days from civil (Howard Hinnant).
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    assert_eq!(&f[0][..3], weekday, "weekday does not match the date: {s:?}");
    days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

/// Polls `cond` every 50 ms until it holds; `None` after `limit`.
async fn wait_for<F, Fut>(limit: Duration, cond: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_until(Instant::now(), limit, Duration::from_millis(50), cond).await
}

/// A history record's `id` (nid): Nacos serialises longs of ConfigInfo as strings.
fn nid(v: &Value) -> u64 {
    match &v["id"] {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("id is not a number: {v}")),
        Value::Number(n) => n.as_u64().unwrap(),
        other => panic!("id missing: {other} in {v}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. /nacos/v1/cs/configs
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_publish_get_delete_headers_and_content() {
    let node = TestNode::start(&[]);

    // Publish (form) and read back with the Nacos headers.
    let before = now_ms();
    node.publish(&[("dataId", "app.yaml"), ("group", G), ("content", "a: 1\nb: two"), ("type", "yaml")]).await;
    let r = node.get(&[("dataId", "app.yaml"), ("group", G)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, "a: 1\nb: two");
    assert_eq!(r.header("Config-Type"), Some("yaml"));
    assert_eq!(r.header("Content-MD5"), Some(md5_hex("a: 1\nb: two").as_str()));
    assert_eq!(md5_hex("a: 1\nb: two").len(), 32);
    assert!(r.header("Cache-Control").is_some_and(|v| v.contains("no-cache")), "{:?}", r.headers);
    assert_eq!(r.header("Pragma"), Some("no-cache"));
    assert!(r.header("isBeta").is_none(), "isBeta on a formal config");
    let lm = parse_http_date(r.header("Last-Modified").expect("Last-Modified"));
    assert!((lm * 1000 - before).abs() < 60_000, "Last-Modified {lm} is not now ({before})");
    assert!(r.header("content-type").is_some_and(|v| v.starts_with("text/plain")), "{:?}", r.headers);
    // Last-Modified is the config's modifyTime (to the second).
    let detail = node.json(CONFIGS, &[("dataId", "app.yaml"), ("group", G), ("show", "all")]).await;
    assert_eq!(lm, detail["modifyTime"].as_i64().expect("modifyTime") / 1000, "{detail}");

    // The group defaults to DEFAULT_GROUP on publish and read.
    node.publish(&[("dataId", "nogroup.txt"), ("content", "x")]).await;
    assert_eq!(node.content(&[("dataId", "nogroup.txt"), ("group", G)]).await, "x");
    assert_eq!(node.content(&[("dataId", "nogroup.txt")]).await, "x");
    // Other groups are other configs.
    node.absent(&[("dataId", "nogroup.txt"), ("group", "OTHER")]).await;

    // Update replaces the content and md5.
    node.publish(&[("dataId", "app.yaml"), ("group", G), ("content", "a: 2"), ("type", "yaml")]).await;
    let r = node.get(&[("dataId", "app.yaml"), ("group", G)]).await;
    assert_eq!(r.body, "a: 2");
    assert_eq!(r.header("Content-MD5"), Some(md5_hex("a: 2").as_str()));

    // Types: known ones kept, unknown → text, absent → text.
    node.publish(&[("dataId", "t.json"), ("group", G), ("content", "{}"), ("type", "json")]).await;
    assert_eq!(node.get(&[("dataId", "t.json"), ("group", G)]).await.header("Config-Type"), Some("json"));
    node.publish(&[("dataId", "t.exe"), ("group", G), ("content", "MZ"), ("type", "exe")]).await;
    assert_eq!(node.get(&[("dataId", "t.exe"), ("group", G)]).await.header("Config-Type"), Some("text"));
    node.publish(&[("dataId", "t.none"), ("group", G), ("content", "n")]).await;
    assert_eq!(node.get(&[("dataId", "t.none"), ("group", G)]).await.header("Config-Type"), Some("text"));

    // Unicode round-trips, with the md5 of the UTF-8 bytes.
    let uni = "名字: 值\némoji: 🚀\nkey=Grüße";
    node.put("uni.properties", uni).await;
    let r = node.get(&[("dataId", "uni.properties"), ("group", G)]).await;
    assert_eq!(r.body, uni);
    assert_eq!(r.header("Content-MD5"), Some(md5_hex(uni).as_str()));
    // Characters that form encoding must escape, and line endings.
    let tricky = "a+b=c&d=%20e %zz\r\nline2\n\ttab;x=1?y#z\n";
    node.put("tricky.txt", tricky).await;
    let r = node.get(&[("dataId", "tricky.txt"), ("group", G)]).await;
    assert_eq!(r.body, tricky);
    assert_eq!(r.header("Content-MD5"), Some(md5_hex(tricky).as_str()));
    // Sent as query parameters instead of a body.
    node.ok_true(Method::POST, CONFIGS, &[("dataId", "q.txt"), ("group", G), ("content", tricky)], None).await;
    assert_eq!(node.content(&[("dataId", "q.txt"), ("group", G)]).await, tricky);

    // Absent config.
    node.absent(&[("dataId", "missing.yaml"), ("group", G)]).await;

    // Delete, then 404; deleting again (absent) still answers true.
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "app.yaml"), ("group", G)], None).await;
    node.absent(&[("dataId", "app.yaml"), ("group", G)]).await;
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "app.yaml"), ("group", G)], None).await;
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "never-was"), ("group", G)], None).await;
    // Delete with a form body.
    node.ok_true(Method::DELETE, CONFIGS, &[], Some(&[("dataId", "t.json"), ("group", G)])).await;
    node.absent(&[("dataId", "t.json"), ("group", G)]).await;
    // Others are untouched.
    assert_eq!(node.content(&[("dataId", "uni.properties"), ("group", G)]).await, uni);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_tenants_are_isolated_and_must_exist() {
    let node = TestNode::start(&[]);

    // "" and "public" are one namespace, on write and on read.
    node.publish(&[("dataId", "ns.txt"), ("group", G), ("tenant", ""), ("content", "A")]).await;
    for t in [None, Some(""), Some("public")] {
        let mut q = vec![("dataId", "ns.txt"), ("group", G)];
        if let Some(t) = t {
            q.push(("tenant", t));
        }
        assert_eq!(node.content(&q).await, "A", "tenant {t:?}");
    }
    node.publish(&[("dataId", "ns.txt"), ("group", G), ("tenant", "public"), ("content", "B")]).await;
    assert_eq!(node.content(&[("dataId", "ns.txt"), ("group", G), ("tenant", "")]).await, "B");
    assert_eq!(node.content(&[("dataId", "ns.txt"), ("group", G)]).await, "B");

    // A namespace that does not exist refuses writes and holds nothing.
    let (status, body) =
        node.call(Method::POST, CONFIGS, &[], Some(&[("dataId", "ns.txt"), ("tenant", "dev"), ("content", "C")])).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("not exist"), "{body}");
    node.absent(&[("dataId", "ns.txt"), ("group", G), ("tenant", "dev")]).await;

    // Create it: then it is a separate space.
    node.create_namespace("dev", "Dev").await;
    node.absent(&[("dataId", "ns.txt"), ("group", G), ("tenant", "dev")]).await;
    node.publish(&[("dataId", "ns.txt"), ("group", G), ("tenant", "dev"), ("content", "C")]).await;
    assert_eq!(node.content(&[("dataId", "ns.txt"), ("group", G), ("tenant", "dev")]).await, "C");
    assert_eq!(node.content(&[("dataId", "ns.txt"), ("group", G)]).await, "B");
    // `namespaceId` is accepted for v1 too when `tenant` is absent.
    assert_eq!(node.content(&[("dataId", "ns.txt"), ("group", G), ("namespaceId", "dev")]).await, "C");

    // Deleting in public leaves dev alone, and the other way round.
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "ns.txt"), ("group", G)], None).await;
    node.absent(&[("dataId", "ns.txt"), ("group", G)]).await;
    assert_eq!(node.content(&[("dataId", "ns.txt"), ("group", G), ("tenant", "dev")]).await, "C");
    node.put("ns.txt", "D").await;
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "ns.txt"), ("group", G), ("tenant", "dev")], None).await;
    node.absent(&[("dataId", "ns.txt"), ("group", G), ("tenant", "dev")]).await;
    assert_eq!(node.content(&[("dataId", "ns.txt"), ("group", G)]).await, "D");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_detail_and_search() {
    let node = TestNode::start(&[]);
    node.create_namespace("dev", "Dev").await;

    let before = now_ms();
    node.publish(&[
        ("dataId", "a.yaml"),
        ("group", "G1"),
        ("content", "k: v"),
        ("type", "yaml"),
        ("appName", "shop"),
        ("desc", "the a config"),
        ("config_tags", "t1,t2"),
        ("use", "u"),
        ("effect", "e"),
        ("schema", "s"),
        ("src_user", "alice"),
    ])
    .await;
    node.publish(&[("dataId", "b.yaml"), ("group", "G1"), ("content", "b")]).await;
    node.publish(&[("dataId", "app-c.properties"), ("group", "G2"), ("content", "c=1")]).await;
    node.publish(&[("dataId", "x.yaml"), ("group", "G1"), ("tenant", "dev"), ("content", "x")]).await;

    // show=all: the detail JSON.
    let d = node.json(CONFIGS, &[("dataId", "a.yaml"), ("group", "G1"), ("show", "all")]).await;
    assert_eq!(d["dataId"], "a.yaml", "{d}");
    assert_eq!(d["group"], "G1");
    assert_eq!(d["tenant"], "");
    assert_eq!(d["content"], "k: v");
    assert_eq!(d["md5"], md5_hex("k: v"));
    assert_eq!(d["type"], "yaml");
    assert_eq!(d["appName"], "shop");
    assert_eq!(d["desc"], "the a config");
    assert_eq!(d["configTags"], "t1,t2");
    assert_eq!(d["use"], "u");
    assert_eq!(d["effect"], "e");
    assert_eq!(d["schema"], "s");
    assert_eq!(d["createUser"], "alice");
    assert_eq!(d["createIp"], "127.0.0.1");
    assert!(!d["id"].as_str().expect("id is a string").is_empty(), "{d}");
    let created = d["createTime"].as_i64().expect("createTime");
    assert!((created - before).abs() < 60_000, "createTime {created} is not now");
    assert_eq!(d["modifyTime"], d["createTime"]);
    // An update keeps id and createTime, moves modifyTime.
    tokio::time::sleep(Duration::from_millis(5)).await;
    node.publish(&[("dataId", "a.yaml"), ("group", "G1"), ("content", "k: w"), ("type", "yaml")]).await;
    let d2 = node.json(CONFIGS, &[("dataId", "a.yaml"), ("group", "G1"), ("show", "all")]).await;
    assert_eq!(d2["id"], d["id"]);
    assert_eq!(d2["createTime"], d["createTime"]);
    assert!(d2["modifyTime"].as_i64().unwrap() > created, "{d2}");
    assert_eq!(d2["content"], "k: w");
    let dd = node.json(CONFIGS, &[("dataId", "x.yaml"), ("group", "G1"), ("tenant", "dev"), ("show", "all")]).await;
    assert_eq!(dd["tenant"], "dev", "{dd}");

    let data_ids = |page: &Value| -> Vec<String> {
        page["pageItems"].as_array().expect("pageItems").iter().map(|i| i["dataId"].as_str().unwrap().into()).collect()
    };

    // search=accurate.
    let p = node.json(CONFIGS, &[("search", "accurate"), ("dataId", "a.yaml"), ("group", "G1")]).await;
    assert_eq!(p["totalCount"], 1, "{p}");
    assert_eq!(p["pageNumber"], 1);
    assert_eq!(p["pagesAvailable"], 1);
    assert_eq!(p["pageItems"][0]["content"], "k: w");
    assert_eq!(p["pageItems"][0]["group"], "G1");
    let p = node.json(CONFIGS, &[("search", "accurate"), ("dataId", "a.yam"), ("group", "G1")]).await;
    assert_eq!(p["totalCount"], 0, "accurate must not match prefixes: {p}");
    assert_eq!(p["pageItems"], json!([]));
    let p = node.json(CONFIGS, &[("search", "accurate"), ("dataId", ""), ("group", "G1")]).await;
    let mut ids = data_ids(&p);
    ids.sort();
    assert_eq!(ids, ["a.yaml", "b.yaml"], "{p}");
    let p = node.json(CONFIGS, &[("search", "accurate"), ("dataId", ""), ("group", "")]).await;
    assert_eq!(p["totalCount"], 3, "{p}");
    // Paging.
    let q =
        |no: &'static str| [("search", "accurate"), ("dataId", ""), ("group", ""), ("pageNo", no), ("pageSize", "2")];
    let p1 = node.json(CONFIGS, &q("1")).await;
    assert_eq!(p1["totalCount"], 3, "{p1}");
    assert_eq!(p1["pagesAvailable"], 2);
    assert_eq!(p1["pageNumber"], 1);
    assert_eq!(p1["pageItems"].as_array().unwrap().len(), 2);
    let p2 = node.json(CONFIGS, &q("2")).await;
    assert_eq!(p2["pageNumber"], 2);
    assert_eq!(p2["pageItems"].as_array().unwrap().len(), 1, "{p2}");
    let mut all = data_ids(&p1);
    all.extend(data_ids(&p2));
    all.sort();
    assert_eq!(all, ["a.yaml", "app-c.properties", "b.yaml"]);
    // A tenant lists only its own.
    let p = node.json(CONFIGS, &[("search", "accurate"), ("dataId", ""), ("group", ""), ("tenant", "dev")]).await;
    assert_eq!(data_ids(&p), ["x.yaml"], "{p}");
    assert_eq!(p["pageItems"][0]["tenant"], "dev");

    // search=blur with `*` wildcards.
    let p = node.json(CONFIGS, &[("search", "blur"), ("dataId", "*yaml*"), ("group", "")]).await;
    let mut ids = data_ids(&p);
    ids.sort();
    assert_eq!(ids, ["a.yaml", "b.yaml"], "{p}");
    assert_eq!(p["totalCount"], 2);
    let p = node.json(CONFIGS, &[("search", "blur"), ("dataId", "app*"), ("group", "")]).await;
    assert_eq!(data_ids(&p), ["app-c.properties"], "{p}");
    let p = node.json(CONFIGS, &[("search", "blur"), ("dataId", ""), ("group", "G*")]).await;
    assert_eq!(p["totalCount"], 3, "{p}");
    let p = node.json(CONFIGS, &[("search", "blur"), ("dataId", "*yaml*"), ("group", ""), ("tenant", "dev")]).await;
    assert_eq!(data_ids(&p), ["x.yaml"], "{p}");
}

// ---------------------------------------------------------------------------------------------
// 2. CAS
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_publish_by_header_and_param() {
    let node = TestNode::start(&[]);
    node.put("cas.txt", "v1").await;
    let key = [("dataId", "cas.txt"), ("group", G)];

    // Header casMd5 with the right md5: applied.
    let m1 = md5_hex("v1");
    let r = node
        .send(
            Method::POST,
            CONFIGS,
            &[],
            Some(&[("dataId", "cas.txt"), ("group", G), ("content", "v2")]),
            &[("casMd5", m1.as_str())],
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "true"));
    assert_eq!(node.content(&key).await, "v2");

    // Header with a stale md5: 409, nothing changes.
    let r = node
        .send(
            Method::POST,
            CONFIGS,
            &[],
            Some(&[("dataId", "cas.txt"), ("group", G), ("content", "v3")]),
            &[("casMd5", m1.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("md5"), "{}", r.body);
    let got = node.get(&key).await;
    assert_eq!(got.body, "v2");
    assert_eq!(got.header("Content-MD5"), Some(md5_hex("v2").as_str()));

    // Form parameter casMd5: wrong, then right.
    let (status, body) = node
        .call(
            Method::POST,
            CONFIGS,
            &[],
            Some(&[("dataId", "cas.txt"), ("group", G), ("content", "v3"), ("casMd5", "0123")]),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("md5"), "{body}");
    assert_eq!(node.content(&key).await, "v2");
    let m2 = md5_hex("v2");
    node.publish(&[("dataId", "cas.txt"), ("group", G), ("content", "v3"), ("casMd5", &m2)]).await;
    assert_eq!(node.content(&key).await, "v3");

    // The history holds no trace of the refused writes: I, U, U.
    let h = node.history("cas.txt", "", "1", "10").await;
    assert_eq!(h["totalCount"], 3, "{h}");
}

// ---------------------------------------------------------------------------------------------
// 3. Gray (beta) release
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beta_publish_get_and_stop() {
    let node = TestNode::start(&[]);
    let key = [("dataId", "gray.yaml"), ("group", G)];
    let form = |c: &'static str| [("dataId", "gray.yaml"), ("group", G), ("content", c)];

    // Beta publish needs the formal config first.
    let r = node.send(Method::POST, CONFIGS, &[], Some(&form("beta")), &[("betaIps", "127.0.0.1")]).await;
    assert_bad_request(r.status, &r.body, "publish it first", "beta publish of a missing config");
    node.absent(&key).await;

    node.put("gray.yaml", "formal").await;
    // Two polls parked on the formal md5: one from 127.0.0.1 (a beta IP), one from 10.9.9.9.
    let listening = rec("gray.yaml", G, &md5_hex("formal"));
    let (api, l) = (node.api.clone(), listening.clone());
    let beta_poll = tokio::spawn(async move {
        let r = api.poll(&l, &[("Long-Pulling-Timeout", "30000")]).await;
        (r, Instant::now())
    });
    let (api, l) = (node.api.clone(), listening.clone());
    let other_poll = tokio::spawn(async move {
        let r = api.poll(&l, &[("Long-Pulling-Timeout", "30000"), ("X-Forwarded-For", "10.9.9.9")]).await;
        (r, Instant::now())
    });
    let n = &node;
    wait_for(
        Duration::from_secs(5),
        move || async move { n.metric("cairn_config_long_polls", &[]).await == Some(2.0) },
    )
    .await
    .expect("the two long polls did not park");

    let r = node.send(Method::POST, CONFIGS, &[], Some(&form("beta")), &[("betaIps", "127.0.0.1")]).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "true"));
    let published = Instant::now();

    // 127.0.0.1 sees the beta; another client (X-Forwarded-For) the formal content.
    let r = node.get(&key).await;
    assert_eq!(r.body, "beta");
    assert_eq!(r.header("isBeta"), Some("true"));
    assert_eq!(r.header("Content-MD5"), Some(md5_hex("beta").as_str()));
    let r = node.send(Method::GET, CONFIGS, &key, None, &[("X-Forwarded-For", "10.9.9.9")]).await;
    assert_eq!(r.body, "formal");
    assert!(r.header("isBeta").is_none());
    assert_eq!(r.header("Content-MD5"), Some(md5_hex("formal").as_str()));
    // The detail shows the formal config.
    let d = node.json(CONFIGS, &[("dataId", "gray.yaml"), ("group", G), ("show", "all")]).await;
    assert_eq!(d["content"], "formal", "{d}");

    // The beta client's poll is answered; the other client's view did not change.
    let (r, at) =
        tokio::time::timeout(Duration::from_secs(5), beta_poll).await.expect("beta poll not answered").unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "gray.yaml%02DEFAULT_GROUP%01\n");
    assert!(at.duration_since(published) < Duration::from_millis(1500));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!other_poll.is_finished(), "a client outside betaIps was told its config changed");
    // Short polls agree: the beta IP differs from formal, the other does not.
    assert_eq!(node.poll(&listening, &[]).await.body, "gray.yaml%02DEFAULT_GROUP%01\n");
    assert_eq!(node.poll(&listening, &[("X-Forwarded-For", "10.9.9.9")]).await.body, "");
    assert_eq!(node.poll(&rec("gray.yaml", G, &md5_hex("beta")), &[]).await.body, "");

    // Several IPs, comma separated.
    let r = node.send(Method::POST, CONFIGS, &[], Some(&form("beta2")), &[("betaIps", "10.1.1.1,10.1.1.2")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for (ip, want) in [("10.1.1.2", "beta2"), ("10.1.1.1", "beta2"), ("127.0.0.1", "formal"), ("10.9.9.9", "formal")] {
        let r = node.send(Method::GET, CONFIGS, &key, None, &[("X-Forwarded-For", ip)]).await;
        assert_eq!(r.body, want, "client {ip}");
    }

    // A formal change answers the other client's poll but not a beta client's: its view is the beta.
    let (api, l) = (node.api.clone(), rec("gray.yaml", G, &md5_hex("beta2")));
    let beta2_poll = tokio::spawn(async move {
        let r = api.poll(&l, &[("Long-Pulling-Timeout", "30000"), ("X-Forwarded-For", "10.1.1.2")]).await;
        (r, Instant::now())
    });
    wait_for(
        Duration::from_secs(5),
        move || async move { n.metric("cairn_config_long_polls", &[]).await == Some(2.0) },
    )
    .await
    .expect("the beta client's poll did not park");
    node.put("gray.yaml", "formal2").await;
    let published = Instant::now();
    let (r, at) =
        tokio::time::timeout(Duration::from_secs(5), other_poll).await.expect("other poll not answered").unwrap();
    assert_eq!(r.body, "gray.yaml%02DEFAULT_GROUP%01\n");
    assert!(at.duration_since(published) < Duration::from_millis(1500));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!beta2_poll.is_finished(), "a beta client was told of a formal change it does not see");
    let r = node.send(Method::GET, CONFIGS, &key, None, &[("X-Forwarded-For", "10.1.1.2")]).await;
    assert_eq!(r.body, "beta2");
    assert_eq!(node.send(Method::GET, CONFIGS, &key, None, &[("X-Forwarded-For", "10.9.9.9")]).await.body, "formal2");

    // Stop the beta: everyone sees the formal content, and the beta client's poll is answered.
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "gray.yaml"), ("group", G), ("beta", "true")], None).await;
    let stopped = Instant::now();
    let (r, at) = tokio::time::timeout(Duration::from_secs(5), beta2_poll)
        .await
        .expect("beta client's poll not answered")
        .unwrap();
    assert_eq!(r.body, "gray.yaml%02DEFAULT_GROUP%01\n");
    assert!(at.duration_since(stopped) < Duration::from_millis(1500));
    let r = node.send(Method::GET, CONFIGS, &key, None, &[("X-Forwarded-For", "10.1.1.2")]).await;
    assert_eq!(r.body, "formal2");
    assert!(r.header("isBeta").is_none());
    assert_eq!(r.header("Content-MD5"), Some(md5_hex("formal2").as_str()));
    let r = node.get(&key).await;
    assert_eq!(r.body, "formal2");
    assert!(r.header("isBeta").is_none());
    // Stopping a beta that is not there is fine.
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "gray.yaml"), ("group", G), ("beta", "true")], None).await;
    assert_eq!(node.content(&key).await, "formal2");
}

// ---------------------------------------------------------------------------------------------
// 4. Validation and limits
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_are_400_with_a_message() {
    let node = TestNode::start(&[]);
    let long_id = "x".repeat(257);
    let ok_long_id = "y".repeat(256);
    let long_desc = "d".repeat(129);
    let base = [("dataId", "val.txt"), ("group", G), ("content", "x")];
    let with = |k: &'static str, v: &str| -> Vec<(&'static str, String)> {
        let mut p: Vec<_> = base.iter().filter(|(bk, _)| *bk != k).map(|(a, b)| (*a, b.to_string())).collect();
        p.push((k, v.to_owned()));
        p
    };
    let without = |k: &str| -> Vec<(&'static str, String)> {
        base.iter().filter(|(bk, _)| *bk != k).map(|(a, b)| (*a, b.to_string())).collect()
    };
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Vec<(&str, String)>, &str)> = vec![
        ("empty dataId", with("dataId", ""), "dataId"),
        ("blank dataId", with("dataId", "   "), "dataId"),
        ("missing dataId", without("dataId"), "dataId"),
        ("dataId with a space", with("dataId", "a b"), "dataId"),
        ("dataId with a slash", with("dataId", "a/b"), "dataId"),
        ("dataId with a slash prefix", with("dataId", "../etc"), "dataId"),
        ("257-char dataId", with("dataId", &long_id), "dataId"),
        ("group with #", with("group", "g#1"), "group"),
        ("group with a space", with("group", "g 1"), "group"),
        ("empty content", with("content", ""), "content"),
        ("blank content", with("content", " \n\t "), "content"),
        ("missing content", without("content"), "content"),
        ("tenant with a slash", with("tenant", "a/b"), "tenant"),
        ("tenant with a space", with("tenant", "a b"), "tenant"),
        ("six config_tags", with("config_tags", "a,b,c,d,e,f"), "config_tags"),
        ("129-char desc", with("desc", &long_desc), "desc"),
    ];
    for (what, params, hint) in &cases {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = node.call(Method::POST, CONFIGS, &[], Some(&params)).await;
        assert_bad_request(status, &body, hint, &format!("publish (form) {what}"));
        let (status, body) = node.call(Method::POST, CONFIGS, &params, None).await;
        assert_bad_request(status, &body, hint, &format!("publish (query) {what}"));
    }
    // An unknown namespace is 404.
    let (status, body) = node
        .call(Method::POST, CONFIGS, &[], Some(&[("dataId", "val.txt"), ("tenant", "nope"), ("content", "x")]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.starts_with("caused: ") && body.contains("not exist"), "{body}");

    // Reads and deletes validate the key too.
    for (what, q, hint) in [
        ("get without dataId", vec![("group", G)], "dataId"),
        ("get dataId a/b", vec![("dataId", "a/b")], "dataId"),
        ("get group g#", vec![("dataId", "a"), ("group", "g#")], "group"),
        ("get tenant a/b", vec![("dataId", "a"), ("tenant", "a/b")], "tenant"),
    ] {
        let (status, body) = node.call(Method::GET, CONFIGS, &q, None).await;
        assert_bad_request(status, &body, hint, what);
    }
    let (status, body) = node.call(Method::DELETE, CONFIGS, &[("dataId", "a b")], None).await;
    assert_bad_request(status, &body, "dataId", "delete dataId with a space");
    let (status, body) = node.call(Method::DELETE, CONFIGS, &[("dataId", "a"), ("beta", "maybe")], None).await;
    assert_bad_request(status, &body, "beta", "delete beta=maybe");

    // Nothing of that was stored.
    let p = node.json(CONFIGS, &[("search", "accurate"), ("dataId", ""), ("group", "")]).await;
    assert_eq!(p["totalCount"], 0, "a rejected publish stored something: {p}");

    // The boundaries are fine: a 256-char dataId, 5 tags, every allowed punctuation character.
    node.publish(&[("dataId", &ok_long_id), ("group", G), ("content", "x")]).await;
    assert_eq!(node.content(&[("dataId", &ok_long_id), ("group", G)]).await, "x");
    node.publish(&[("dataId", "a:b-c_d.e"), ("group", "g:1-x_y.z"), ("content", "x"), ("config_tags", "a,b,c,d,e")])
        .await;
    assert_eq!(node.content(&[("dataId", "a:b-c_d.e"), ("group", "g:1-x_y.z")]).await, "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_limit_and_oversized_body() {
    // Content and body share one limit; 50 000 leaves room to send over-limit content in the query
    // string (URIs are capped at 64 KiB), which no body limit covers.
    let node = TestNode::start(&["--max-body-bytes", "50000"]);

    // A body over --max-body-bytes: 413 before anything is parsed.
    let mut body = String::from("dataId=big.txt&group=DEFAULT_GROUP&content=");
    body.push_str(&"a".repeat(150_000 - body.len()));
    node.assert_body_too_large(CONFIGS, body).await;

    // Content over the limit that arrives in the query string (no body limit applies): 400.
    let huge = "b".repeat(50_001);
    let (status, body) =
        node.call(Method::POST, CONFIGS, &[("dataId", "big.txt"), ("group", G), ("content", &huge)], None).await;
    assert_bad_request(status, &body, "content", "content over the limit");
    node.absent(&[("dataId", "big.txt"), ("group", G)]).await;

    // Content just under the limit, in a body that fits: stored and served whole.
    let fits = "c".repeat(49_000);
    node.put("big.txt", &fits).await;
    let r = node.get(&[("dataId", "big.txt"), ("group", G)]).await;
    assert_eq!(r.body.len(), 49_000);
    assert_eq!(r.body, fits);
    assert_eq!(r.header("Content-MD5"), Some(md5_hex(&fits).as_str()));
    assert_eq!(node.text("/nacos/v1/console/health/readiness").await, "OK");
}

// ---------------------------------------------------------------------------------------------
// 5. History
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_history_pages_detail_and_previous() {
    let node = TestNode::start(&[]);
    node.create_namespace("dev", "Dev").await;
    let before = now_ms();
    node.publish(&[("dataId", "hist.txt"), ("group", G), ("content", "v1"), ("appName", "app1")]).await;
    node.put("hist.txt", "v2").await;
    node.put("hist.txt", "v3").await;
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "hist.txt"), ("group", G)], None).await;
    // Another config with the same dataId in another namespace has its own history.
    node.publish(&[("dataId", "hist.txt"), ("group", G), ("tenant", "dev"), ("content", "dev1")]).await;

    let h = node.history("hist.txt", "", "1", "10").await;
    assert_eq!(h["totalCount"], 4, "{h}");
    assert_eq!(h["pageNumber"], 1);
    assert_eq!(h["pagesAvailable"], 1);
    let items = h["pageItems"].as_array().expect("pageItems");
    assert_eq!(items.len(), 4);
    // Newest first: D, U, U, I. U and D hold the content before the operation.
    let ops: Vec<&str> = items.iter().map(|i| i["opType"].as_str().unwrap()).collect();
    assert_eq!(ops, ["D", "U", "U", "I"], "{h}");
    let contents: Vec<&str> = items.iter().map(|i| i["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["v3", "v2", "v1", "v1"], "{h}");
    let nids: Vec<u64> = items.iter().map(nid).collect();
    assert!(nids.windows(2).all(|w| w[0] > w[1]), "nids not decreasing newest first: {nids:?}");
    for i in items {
        assert_eq!(i["dataId"], "hist.txt");
        assert_eq!(i["group"], G);
        assert_eq!(i["tenant"], "");
        assert_eq!(i["md5"], md5_hex(i["content"].as_str().unwrap()), "{i}");
        assert_eq!(i["srcIp"], "127.0.0.1");
        let t = i["lastModifiedTime"].as_i64().expect("lastModifiedTime");
        assert!((t - before).abs() < 60_000, "lastModifiedTime {t} is not now");
    }
    assert_eq!(items[3]["appName"], "app1");
    let times: Vec<i64> = items.iter().map(|i| i["lastModifiedTime"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "times not newest first: {times:?}");

    // Paging.
    let p1 = node.history("hist.txt", "", "1", "3").await;
    assert_eq!(p1["pagesAvailable"], 2, "{p1}");
    assert_eq!(p1["pageItems"].as_array().unwrap().len(), 3);
    let p2 = node.history("hist.txt", "", "2", "3").await;
    assert_eq!(p2["pageNumber"], 2);
    let p2 = p2["pageItems"].as_array().unwrap();
    assert_eq!(p2.len(), 1);
    assert_eq!(p2[0]["opType"], "I");
    assert_eq!(nid(&p2[0]), nids[3]);

    // The other namespace's history.
    let dev = node.history("hist.txt", "dev", "1", "10").await;
    assert_eq!(dev["totalCount"], 1, "{dev}");
    assert_eq!(dev["pageItems"][0]["content"], "dev1");
    assert_eq!(dev["pageItems"][0]["tenant"], "dev");
    // A config that never existed has an empty history.
    let none = node.history("never.txt", "", "1", "10").await;
    assert_eq!(none["totalCount"], 0, "{none}");
    assert_eq!(none["pageItems"], json!([]));

    // Detail by nid.
    let u_newest = nids[1].to_string();
    let d = node.json(HISTORY, &[("nid", &u_newest), ("dataId", "hist.txt"), ("group", G), ("tenant", "")]).await;
    assert_eq!(nid(&d), nids[1], "{d}");
    assert_eq!(d["opType"], "U");
    assert_eq!(d["content"], "v2");
    assert_eq!(d["dataId"], "hist.txt");
    let d = node.json(HISTORY, &[("nid", &u_newest)]).await;
    assert_eq!(d["content"], "v2");
    // A nid of another config, or unknown, is 404.
    let (status, body) =
        node.call(Method::GET, HISTORY, &[("nid", &u_newest), ("dataId", "other.txt"), ("group", G)], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = node.call(Method::GET, HISTORY, &[("nid", "999999")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = node.call(Method::GET, HISTORY, &[("nid", "abc")], None).await;
    assert_bad_request(status, &body, "nid", "nid=abc");

    // Previous: the record before, of the same config.
    let d_nid = nids[0].to_string();
    let prev = node.json(HISTORY_PREVIOUS, &[("id", &d_nid), ("dataId", "hist.txt"), ("group", G)]).await;
    assert_eq!(nid(&prev), nids[1], "{prev}");
    assert_eq!(prev["opType"], "U");
    assert_eq!(prev["content"], "v2");
    let prev = node.json(HISTORY_PREVIOUS, &[("id", &nids[1].to_string())]).await;
    assert_eq!(nid(&prev), nids[2]);
    let prev = node.json(HISTORY_PREVIOUS, &[("id", &nids[2].to_string())]).await;
    assert_eq!(nid(&prev), nids[3]);
    assert_eq!(prev["opType"], "I");
    let (status, body) = node.call(Method::GET, HISTORY_PREVIOUS, &[("id", &nids[3].to_string())], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing before the insert: {body}");

    // Missing parameters of the page query.
    let (status, body) = node.call(Method::GET, HISTORY, &[("search", "accurate"), ("dataId", "hist.txt")], None).await;
    assert_bad_request(status, &body, "group", "history without group");
}

// ---------------------------------------------------------------------------------------------
// 6. Long polling
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_immediate_answers_and_limits() {
    let node = TestNode::start(&[]);
    node.create_namespace("dev", "Dev").await;
    node.put("app.yaml", "v1").await;
    node.publish(&[("dataId", "app.yaml"), ("group", G), ("tenant", "dev"), ("content", "d1")]).await;
    let m1 = md5_hex("v1");
    let hold = [("Long-Pulling-Timeout", "30000")];

    // md5 differs: answered at once, even with a 30 s timeout.
    let t = Instant::now();
    let r = node.poll(&rec("app.yaml", G, "0000"), &hold).await;
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "app.yaml%02DEFAULT_GROUP%01\n");
    assert_eq!(r.header("Pragma"), Some("no-cache"));
    assert!(r.header("Cache-Control").is_some_and(|v| v.contains("no-cache")));
    // An empty md5 for an existing config is a change; for a missing one it is not.
    assert_eq!(node.poll(&rec("app.yaml", G, ""), &hold).await.body, "app.yaml%02DEFAULT_GROUP%01\n");
    assert_eq!(node.poll(&rec("missing.yaml", G, ""), &[]).await.body, "");
    assert_eq!(node.poll(&rec("missing.yaml", G, "abc"), &hold).await.body, "missing.yaml%02DEFAULT_GROUP%01\n");
    // The 4-field form answers with the tenant, as the client spelled it.
    let r = node.poll(&rec_t("app.yaml", G, &m1, "dev"), &hold).await;
    assert_eq!(r.body, "app.yaml%02DEFAULT_GROUP%02dev%01\n");
    assert_eq!(node.poll(&rec_t("app.yaml", G, &md5_hex("d1"), "dev"), &[]).await.body, "");
    assert_eq!(node.poll(&rec_t("app.yaml", G, &m1, ""), &[]).await.body, "");
    assert_eq!(node.poll(&rec_t("app.yaml", G, &m1, "public"), &[]).await.body, "");
    // Several keys: only the changed ones, in request order.
    let many = format!(
        "{}{}{}",
        rec("app.yaml", G, "stale"),
        rec_t("app.yaml", G, &md5_hex("d1"), "dev"),
        rec_t("app.yaml", G, "stale", "dev")
    );
    assert_eq!(node.poll(&many, &hold).await.body, "app.yaml%02DEFAULT_GROUP%01app.yaml%02DEFAULT_GROUP%02dev%01\n");

    // No-hangup: an immediate empty answer although nothing changed.
    let t = Instant::now();
    let r = node
        .poll(
            &rec("app.yaml", G, &m1),
            &[("Long-Pulling-Timeout", "30000"), ("Long-Pulling-Timeout-No-Hangup", "true")],
        )
        .await;
    assert!(t.elapsed() < Duration::from_secs(2), "no-hangup waited {:?}", t.elapsed());
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""));
    // No timeout header: a short poll, answered at once.
    let t = Instant::now();
    let r = node.poll(&rec("app.yaml", G, &m1), &[]).await;
    assert!(t.elapsed() < Duration::from_secs(2), "short poll waited {:?}", t.elapsed());
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""));

    // Malformed requests.
    let r = node.poll("only-one-field\u{1}", &hold).await;
    assert_bad_request(r.status, &r.body, "Listening-Configs", "one-field record");
    let r = node.poll("a\u{2}b\u{2}c\u{2}d\u{2}e\u{1}", &hold).await;
    assert_bad_request(r.status, &r.body, "Listening-Configs", "five-field record");
    let r = node.poll(&rec("a b", G, ""), &[]).await;
    assert_bad_request(r.status, &r.body, "dataId", "bad dataId in a record");
    let r = node.poll(&rec("a", G, ""), &[("Long-Pulling-Timeout", "soon")]).await;
    assert_bad_request(r.status, &r.body, "Long-Pulling-Timeout", "non-numeric timeout");
    let (status, body) = node.call(Method::POST, LISTENER, &[], Some(&[("other", "x")])).await;
    assert_bad_request(status, &body, "Listening-Configs", "no Listening-Configs");

    // 10 000 keys are fine; 10 001 are refused.
    let keys = |n: usize| -> String { (0..n).map(|i| rec(&format!("k{i}"), G, "")).collect() };
    let r = node.poll(&keys(10_000), &[]).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""), "10 000 keys");
    let r = node.poll(&keys(10_001), &hold).await;
    assert_bad_request(r.status, &r.body, "10000", "10 001 keys");
    assert_eq!(node.metric("cairn_config_long_polls", &[]).await, Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_parks_until_a_change() {
    let node = TestNode::start(&[]);
    node.put("lp.yaml", "v1").await;
    node.put("lp-del.yaml", "x").await;
    let m1 = md5_hex("v1");

    let spawn_poll = |listening: String| {
        let api = node.api.clone();
        tokio::spawn(async move {
            let r = api.poll(&listening, &[("Long-Pulling-Timeout", "30000")]).await;
            (r, Instant::now())
        })
    };
    // Two spellings of the same key, and a key that will be deleted.
    let plain = spawn_poll(rec("lp.yaml", G, &m1));
    let spelled = spawn_poll(rec_t("lp.yaml", G, &m1, "public"));
    let deleted = spawn_poll(rec("lp-del.yaml", G, &md5_hex("x")));
    let n = &node;
    wait_for(
        Duration::from_secs(5),
        move || async move { n.metric("cairn_config_long_polls", &[]).await == Some(3.0) },
    )
    .await
    .expect("cairn_config_long_polls did not show the 3 parked polls");
    assert_eq!(node.nacos_metric("longPolling").await, Some(3.0));

    // Nothing answers them: not time, not a republish of the same content, not another config.
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.put("lp.yaml", "v1").await;
    node.put("unrelated.yaml", "u").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!plain.is_finished() && !spelled.is_finished() && !deleted.is_finished(), "a poll was answered early");

    // A change answers both polls on that key within ~1 s, each in its own spelling.
    node.put("lp.yaml", "v2").await;
    let published = Instant::now();
    let (r, at) = tokio::time::timeout(Duration::from_secs(5), plain).await.expect("poll not answered").unwrap();
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "lp.yaml%02DEFAULT_GROUP%01\n"));
    let lag = at.duration_since(published);
    assert!(lag < Duration::from_millis(1500), "answered {lag:?} after the publish");
    let (r, at) = tokio::time::timeout(Duration::from_secs(5), spelled).await.expect("poll not answered").unwrap();
    assert_eq!(r.body, "lp.yaml%02DEFAULT_GROUP%02public%01\n");
    assert!(at.duration_since(published) < Duration::from_millis(1500));
    assert!(!deleted.is_finished());

    // A delete is a change too.
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "lp-del.yaml"), ("group", G)], None).await;
    let deleted_at = Instant::now();
    let (r, at) = tokio::time::timeout(Duration::from_secs(5), deleted).await.expect("poll not answered").unwrap();
    assert_eq!(r.body, "lp-del.yaml%02DEFAULT_GROUP%01\n");
    assert!(at.duration_since(deleted_at) < Duration::from_millis(1500));

    wait_for(
        Duration::from_secs(3),
        move || async move { n.metric("cairn_config_long_polls", &[]).await == Some(0.0) },
    )
    .await
    .expect("answered polls still counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_times_out_after_the_minimum_hold() {
    let node = TestNode::start(&[]);
    node.put("idle.yaml", "v1").await;
    let listening = rec("idle.yaml", G, &md5_hex("v1"));
    let start = Instant::now();
    // 10 000 ms, and a shorter timeout that is raised to the 10 s minimum.
    let n = &node;
    let (a, b, ()) = tokio::join!(
        node.poll(&listening, &[("Long-Pulling-Timeout", "10000")]),
        node.poll(&listening, &[("Long-Pulling-Timeout", "1000")]),
        async {
            wait_for(Duration::from_secs(5), move || async move {
                n.metric("cairn_config_long_polls", &[]).await == Some(2.0)
            })
            .await
            .expect("the polls did not park");
        }
    );
    let took = start.elapsed();
    for r in [&a, &b] {
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""));
    }
    assert!(took >= Duration::from_secs(9) && took <= Duration::from_secs(12), "held {took:?}");
    assert_eq!(node.metric("cairn_config_long_polls", &[]).await, Some(0.0));
}

// ---------------------------------------------------------------------------------------------
// 7. v2 open API
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_config_and_history() {
    let node = TestNode::start(&[]);
    let v2 = |r: (StatusCode, String)| -> (StatusCode, Value) {
        let v = serde_json::from_str(&r.1).unwrap_or_else(|e| panic!("v2 reply not JSON ({e}): {}", r.1));
        (r.0, v)
    };
    let key = [("dataId", "v2.yaml"), ("group", G), ("namespaceId", "")];

    let (s, v) = v2(node
        .call(
            Method::POST,
            V2_CONFIG,
            &[],
            Some(&[("dataId", "v2.yaml"), ("group", G), ("namespaceId", ""), ("content", "one"), ("type", "yaml")]),
        )
        .await);
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"code": 0, "message": "success", "data": true}));
    let (s, v) = v2(node.call(Method::GET, V2_CONFIG, &key, None).await);
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"code": 0, "message": "success", "data": "one"}));
    // The same config through v1.
    let r = node.get(&[("dataId", "v2.yaml"), ("group", G)]).await;
    assert_eq!(r.body, "one");
    assert_eq!(r.header("Config-Type"), Some("yaml"));
    node.publish(&[("dataId", "v2.yaml"), ("group", G), ("content", "two")]).await;
    assert_eq!(v2(node.call(Method::GET, V2_CONFIG, &key, None).await).1["data"], "two");

    // Absent: HTTP 404, code 20004.
    let (s, v) = v2(node.call(Method::GET, V2_CONFIG, &[("dataId", "nope.yaml"), ("group", G)], None).await);
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["code"], 20004, "{v}");
    // Bad parameters: HTTP 400, code 20002.
    for (what, form) in [
        ("dataId with a space", vec![("dataId", "a b"), ("group", G), ("content", "x")]),
        ("no content", vec![("dataId", "ok.yaml"), ("group", G)]),
        ("blank content", vec![("dataId", "ok.yaml"), ("group", G), ("content", "  ")]),
        ("bad namespaceId", vec![("dataId", "ok.yaml"), ("namespaceId", "a/b"), ("content", "x")]),
    ] {
        let (s, v) = v2(node.call(Method::POST, V2_CONFIG, &[], Some(&form)).await);
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {v}");
        assert_eq!(v["code"], 20002, "{what}: {v}");
        assert!(v["message"].is_string(), "{v}");
    }
    let (s, v) = v2(node.call(Method::GET, V2_CONFIG, &[("group", G)], None).await);
    assert_eq!((s, v["code"].clone()), (StatusCode::BAD_REQUEST, json!(20002)), "{v}");

    // namespaceId addresses namespaces (v2 does not read `tenant`).
    node.create_namespace("dev", "Dev").await;
    let (s, v) = v2(node
        .call(
            Method::POST,
            V2_CONFIG,
            &[],
            Some(&[("dataId", "v2.yaml"), ("group", G), ("namespaceId", "dev"), ("content", "dev")]),
        )
        .await);
    assert_eq!((s, v["data"].clone()), (StatusCode::OK, json!(true)), "{v}");
    assert_eq!(node.content(&[("dataId", "v2.yaml"), ("group", G), ("tenant", "dev")]).await, "dev");
    let dev_key = [("dataId", "v2.yaml"), ("group", G), ("namespaceId", "dev")];
    assert_eq!(v2(node.call(Method::GET, V2_CONFIG, &dev_key, None).await).1["data"], "dev");
    assert_eq!(v2(node.call(Method::GET, V2_CONFIG, &key, None).await).1["data"], "two");

    // DELETE.
    let (s, v) = v2(node.call(Method::DELETE, V2_CONFIG, &key, None).await);
    assert_eq!((s, v), (StatusCode::OK, json!({"code": 0, "message": "success", "data": true})));
    let (s, v) = v2(node.call(Method::GET, V2_CONFIG, &key, None).await);
    assert_eq!((s, v["code"].clone()), (StatusCode::NOT_FOUND, json!(20004)));
    assert_eq!(v2(node.call(Method::GET, V2_CONFIG, &dev_key, None).await).1["data"], "dev");

    // History: list, detail, previous.
    let (s, v) = v2(node
        .call(
            Method::GET,
            "/nacos/v2/cs/history/list",
            &[("dataId", "v2.yaml"), ("group", G), ("namespaceId", "")],
            None,
        )
        .await);
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["code"], 0);
    assert_eq!(v["message"], "success");
    let page = &v["data"];
    assert_eq!(page["totalCount"], 3, "{v}");
    assert_eq!(page["pageNumber"], 1);
    assert_eq!(page["pagesAvailable"], 1);
    let items = page["pageItems"].as_array().unwrap();
    let ops: Vec<&str> = items.iter().map(|i| i["opType"].as_str().unwrap()).collect();
    assert_eq!(ops, ["D", "U", "I"], "{v}");
    let contents: Vec<&str> = items.iter().map(|i| i["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["two", "one", "one"]);
    let nids: Vec<u64> = items.iter().map(nid).collect();
    let (s, v) = v2(node
        .call(
            Method::GET,
            "/nacos/v2/cs/history",
            &[("nid", &nids[1].to_string()), ("dataId", "v2.yaml"), ("group", G), ("namespaceId", "")],
            None,
        )
        .await);
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["code"], 0);
    assert_eq!(nid(&v["data"]), nids[1]);
    assert_eq!(v["data"]["opType"], "U");
    assert_eq!(v["data"]["content"], "one");
    let (s, v) = v2(node
        .call(
            Method::GET,
            "/nacos/v2/cs/history/previous",
            &[("id", &nids[0].to_string()), ("dataId", "v2.yaml"), ("group", G), ("namespaceId", "")],
            None,
        )
        .await);
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(nid(&v["data"]), nids[1], "{v}");
    let (s, v) = v2(node.call(Method::GET, "/nacos/v2/cs/history", &[("nid", "987654")], None).await);
    assert_eq!((s, v["code"].clone()), (StatusCode::NOT_FOUND, json!(20004)), "{v}");
    let (s, v) = v2(node.call(Method::GET, "/nacos/v2/cs/history", &[("nid", "x")], None).await);
    assert_eq!((s, v["code"].clone()), (StatusCode::BAD_REQUEST, json!(20002)), "{v}");
    let (s, v) =
        v2(node.call(Method::GET, "/nacos/v2/cs/history/previous", &[("id", &nids[2].to_string())], None).await);
    assert_eq!((s, v["code"].clone()), (StatusCode::NOT_FOUND, json!(20004)), "{v}");
    let (s, v) = v2(node
        .call(
            Method::GET,
            "/nacos/v2/cs/history/list",
            &[("dataId", "v2.yaml"), ("group", G), ("namespaceId", "dev")],
            None,
        )
        .await);
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["totalCount"], 1, "{v}");
}

// ---------------------------------------------------------------------------------------------
// 8. Namespaces
// ---------------------------------------------------------------------------------------------

async fn ns_list(api: &Api) -> Vec<Value> {
    let v = api.json(NAMESPACES, &[]).await;
    assert_eq!(v["code"], 200, "{v}");
    v["data"].as_array().expect("data array").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_crud() {
    let node = TestNode::start(&[]);
    let list = || ns_list(&node.api);

    let l = list().await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0]["namespace"], "");
    assert_eq!(l[0]["namespaceShowName"], "public");
    assert_eq!(l[0]["type"], 0);
    assert_eq!(l[0]["configCount"], 0);
    assert!(l[0]["quota"].as_u64().is_some_and(|q| q > 0), "{l:?}");

    // Create with a custom id, and with a generated one.
    node.ok_true(
        Method::POST,
        NAMESPACES,
        &[],
        Some(&[("customNamespaceId", "dev"), ("namespaceName", "Dev"), ("namespaceDesc", "development")]),
    )
    .await;
    node.ok_true(Method::POST, NAMESPACES, &[], Some(&[("namespaceName", "Auto")])).await;
    let l = list().await;
    assert_eq!(l.len(), 3, "{l:?}");
    assert_eq!(l[0]["namespace"], "", "public first: {l:?}");
    let dev = l.iter().find(|n| n["namespace"] == "dev").expect("dev listed");
    assert_eq!(dev["namespaceShowName"], "Dev");
    assert_eq!(dev["namespaceDesc"], "development");
    assert_eq!(dev["type"], 2);
    assert_eq!(dev["configCount"], 0);
    let auto = l.iter().find(|n| n["namespaceShowName"] == "Auto").expect("auto listed");
    let auto_id = auto["namespace"].as_str().expect("auto id").to_owned();
    assert!(!auto_id.is_empty() && auto_id != "public" && auto_id != "dev", "{auto}");
    assert_eq!(auto["type"], 2);
    // The generated id is usable as a tenant.
    node.publish(&[("dataId", "a.txt"), ("tenant", &auto_id), ("content", "x")]).await;
    assert_eq!(node.content(&[("dataId", "a.txt"), ("tenant", &auto_id)]).await, "x");

    // Duplicates and bad ids are refused.
    let (status, body) = node
        .call(Method::POST, NAMESPACES, &[], Some(&[("customNamespaceId", "dev"), ("namespaceName", "Again")]))
        .await;
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::CONFLICT, "duplicate: {status} {body}");
    assert!(body.contains("exist"), "{body}");
    let (status, body) = node
        .call(Method::POST, NAMESPACES, &[], Some(&[("customNamespaceId", "public"), ("namespaceName", "P")]))
        .await;
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::CONFLICT, "public again: {status} {body}");
    let (status, body) =
        node.call(Method::POST, NAMESPACES, &[], Some(&[("customNamespaceId", "a/b"), ("namespaceName", "X")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = node.call(Method::POST, NAMESPACES, &[], Some(&[("customNamespaceId", "nn")])).await;
    assert_bad_request(status, &body, "namespaceName", "no namespaceName");
    assert_eq!(list().await.len(), 3);

    // configCount follows the configs.
    node.publish(&[("dataId", "c1"), ("tenant", "dev"), ("content", "1")]).await;
    node.publish(&[("dataId", "c2"), ("tenant", "dev"), ("content", "2")]).await;
    node.put("p1", "x").await;
    let l = list().await;
    assert_eq!(l[0]["configCount"], 1, "{l:?}");
    assert_eq!(l.iter().find(|n| n["namespace"] == "dev").unwrap()["configCount"], 2);

    // One namespace.
    let one = node.json(NAMESPACES, &[("show", "all"), ("namespaceId", "dev")]).await;
    assert_eq!(one["namespace"], "dev", "{one}");
    assert_eq!(one["namespaceShowName"], "Dev");
    assert_eq!(one["namespaceDesc"], "development");
    assert_eq!(one["configCount"], 2);
    assert_eq!(one["type"], 2);
    let (status, body) = node.call(Method::GET, NAMESPACES, &[("show", "all"), ("namespaceId", "nope")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("not exist"), "{body}");

    // Rename.
    node.ok_true(
        Method::PUT,
        NAMESPACES,
        &[],
        Some(&[("namespace", "dev"), ("namespaceShowName", "Dev2"), ("namespaceDesc", "renamed")]),
    )
    .await;
    let one = node.json(NAMESPACES, &[("show", "all"), ("namespaceId", "dev")]).await;
    assert_eq!(one["namespaceShowName"], "Dev2", "{one}");
    assert_eq!(one["namespaceDesc"], "renamed");
    let (status, body) =
        node.call(Method::PUT, NAMESPACES, &[], Some(&[("namespace", "nope"), ("namespaceShowName", "N")])).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) =
        node.call(Method::PUT, NAMESPACES, &[], Some(&[("namespace", "public"), ("namespaceShowName", "N")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Delete is refused while configs remain.
    let (status, body) = node.call(Method::DELETE, NAMESPACES, &[("namespaceId", "dev")], None).await;
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::CONFLICT, "non-empty delete: {status} {body}");
    assert!(body.contains("config"), "{body}");
    assert!(list().await.iter().any(|n| n["namespace"] == "dev"));
    assert_eq!(node.content(&[("dataId", "c1"), ("tenant", "dev")]).await, "1");
    // Emptied, it goes; then it refuses writes.
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "c1"), ("tenant", "dev")], None).await;
    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "c2"), ("tenant", "dev")], None).await;
    node.ok_true(Method::DELETE, NAMESPACES, &[("namespaceId", "dev")], None).await;
    let l = list().await;
    assert!(l.iter().all(|n| n["namespace"] != "dev"), "{l:?}");
    assert_eq!(l.len(), 2);
    let (status, body) =
        node.call(Method::POST, CONFIGS, &[], Some(&[("dataId", "c1"), ("tenant", "dev"), ("content", "1")])).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = node.call(Method::DELETE, NAMESPACES, &[("namespaceId", "dev")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "delete again: {body}");

    // The public namespace cannot be deleted.
    let (status, body) = node.call(Method::DELETE, NAMESPACES, &[("namespaceId", "public")], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = node.call(Method::DELETE, NAMESPACES, &[("namespaceId", "")], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(list().await[0]["namespace"], "");
    assert_eq!(node.content(&[("dataId", "p1")]).await, "x");
}

// ---------------------------------------------------------------------------------------------
// 9. Durability
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_and_history_survive_kill9() {
    let mut node = TestNode::start(&[]);
    node.create_namespace("dev", "Dev").await;
    for i in 0..20 {
        node.put(&format!("dur-{i}.txt"), &format!("content {i} ✓")).await;
    }
    node.put("dur-0.txt", "updated ✓").await;
    node.publish(&[("dataId", "dur-dev.txt"), ("tenant", "dev"), ("content", "in dev"), ("type", "json")]).await;
    let history_before = node.history("dur-0.txt", "", "1", "10").await;
    assert_eq!(history_before["totalCount"], 2);

    let pid = node.proc.pid();
    tokio::task::block_in_place(|| {
        node.proc.kill9();
        node.proc.restart();
    });
    assert_ne!(node.proc.pid(), pid, "not a new process");

    // Every acknowledged write is back.
    assert_eq!(node.content(&[("dataId", "dur-0.txt")]).await, "updated ✓");
    for i in 1..20 {
        let r = node.get(&[("dataId", &format!("dur-{i}.txt")), ("group", G)]).await;
        assert_eq!(r.status, StatusCode::OK, "dur-{i}.txt lost: {}", r.body);
        assert_eq!(r.body, format!("content {i} ✓"));
        assert_eq!(r.header("Content-MD5"), Some(md5_hex(&r.body).as_str()));
    }
    let r = node.get(&[("dataId", "dur-dev.txt"), ("tenant", "dev")]).await;
    assert_eq!(r.body, "in dev");
    assert_eq!(r.header("Config-Type"), Some("json"));
    assert_eq!(node.history("dur-0.txt", "", "1", "10").await, history_before, "history changed across restart");
    let ns = node.json(NAMESPACES, &[("show", "all"), ("namespaceId", "dev")]).await;
    assert_eq!(ns["configCount"], 1, "{ns}");
    assert_eq!(node.metric("cairn_configs", &[]).await, Some(21.0));

    // The node takes writes again, and new history continues after the old.
    let last_nid = nid(&history_before["pageItems"][0]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) =
            node.call(Method::POST, CONFIGS, &[], Some(&[("dataId", "dur-0.txt"), ("content", "after restart")])).await;
        if status == StatusCode::OK {
            assert_eq!(body, "true");
            break;
        }
        assert!(Instant::now() < deadline, "no write accepted after restart: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let h = node.history("dur-0.txt", "", "1", "10").await;
    assert_eq!(h["totalCount"], 3, "{h}");
    assert!(nid(&h["pageItems"][0]) > last_nid, "{h}");
    assert_eq!(h["pageItems"][0]["content"], "updated ✓");
}

// ---------------------------------------------------------------------------------------------
// 10. Metrics
// ---------------------------------------------------------------------------------------------

/// Waits (≤ 3 s) for `cairn_raft_applied_index` to reach `min`; returns its value.
async fn applied_at_least(api: &Api, min: f64) -> f64 {
    let mut last = None;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        last = api.metric("cairn_raft_applied_index", &[]).await;
        if last.is_some_and(|v| v >= min) {
            return last.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cairn_raft_applied_index is {last:?}, expected at least {min}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_metrics_follow_writes() {
    let node = TestNode::start(&[]);
    assert_eq!(node.metric("cairn_configs", &[]).await, Some(0.0));
    assert_eq!(node.nacos_metric("configCount").await, Some(0.0));
    let applied0 = node.metric("cairn_raft_applied_index", &[]).await.expect("cairn_raft_applied_index");

    for i in 0..3 {
        node.put(&format!("m{i}"), "x").await;
    }
    assert_eq!(node.metric("cairn_configs", &[]).await, Some(3.0));
    assert_eq!(node.nacos_metric("configCount").await, Some(3.0));
    // Raft's metrics are published asynchronously, shortly after the apply answered the client.
    let applied1 = applied_at_least(&node, applied0 + 3.0).await;
    let commit = node.metric("cairn_raft_commit_index", &[]).await.expect("cairn_raft_commit_index");
    assert!(commit >= applied1, "commit {commit} < applied {applied1}");

    // An update does not change the count but is applied through Raft.
    node.put("m0", "y").await;
    assert_eq!(node.metric("cairn_configs", &[]).await, Some(3.0));
    applied_at_least(&node, applied1 + 1.0).await;

    node.ok_true(Method::DELETE, CONFIGS, &[("dataId", "m1")], None).await;
    assert_eq!(node.metric("cairn_configs", &[]).await, Some(2.0));
    assert_eq!(node.nacos_metric("configCount").await, Some(2.0));

    // Request accounting by route.
    let ok = node
        .metric(
            "cairn_requests_total",
            &[("transport", "http"), ("type", "POST /nacos/v1/cs/configs"), ("result", "ok")],
        )
        .await;
    assert_eq!(ok, Some(4.0));
    let (status, _) = node.call(Method::POST, CONFIGS, &[], Some(&[("dataId", "a b"), ("content", "x")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err = node
        .metric(
            "cairn_requests_total",
            &[("transport", "http"), ("type", "POST /nacos/v1/cs/configs"), ("result", "error")],
        )
        .await;
    assert_eq!(err, Some(1.0));
}

/// History older than `--config-history-retention-days` is purged by the Raft leader (here
/// 0.00005 days = 4.3 s, checked every 200 ms); the configs stay and new history is recorded.
#[tokio::test]
async fn history_past_its_retention_is_purged() {
    let node =
        TestNode::start(&["--config-history-retention-days", "0.00005", "--config-history-purge-interval-ms", "200"]);
    let published = Instant::now();
    node.put("aging.txt", "v1").await;
    node.put("aging.txt", "v2").await;
    assert_eq!(node.history("aging.txt", "", "1", "10").await["totalCount"], 2);
    loop {
        let h = node.history("aging.txt", "", "1", "10").await;
        if h["totalCount"] == 0 {
            break;
        }
        assert!(published.elapsed() < Duration::from_secs(15), "history not purged after 15 s: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = published.elapsed();
    assert!(waited >= Duration::from_secs(4), "purged after {waited:?}, before its 4.3 s retention");
    assert_eq!(node.content(&[("dataId", "aging.txt"), ("group", G)]).await, "v2");
    node.put("aging.txt", "v3").await;
    assert_eq!(node.history("aging.txt", "", "1", "10").await["totalCount"], 1);
}
