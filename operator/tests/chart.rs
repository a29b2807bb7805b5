//! Tests of the Helm charts (`charts/cairn-crds`, `charts/cairn-operator`), the Grafana dashboard and
//! the Dockerfiles, with the real `helm` and the real kube-apiserver of `cairn-kube-testkit`.
//!
//! Without the tools (or the workspace binaries) a test prints a line starting with `SKIPPED:` and
//! passes, unless `CAIRN_REQUIRE_ALL=1`, which turns that into a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::discovery::Scope;
use serde::Deserialize;
use serde_json::Value;

use cairn_kube_testkit::{ControlPlane, ControlPlaneOptions, Tools};

/// Kubernetes version the charts are rendered for without a cluster: the oldest supported one
/// (the charts' `kubeVersion` constraint and the operator's k8s-openapi feature `v1_33`).
const MIN_KUBE_VERSION: &str = "1.33.0";
const OPERATOR_NS: &str = "cairn-system";
const FIELD_MANAGER: &str = "cairn-chart-test";

// ---------------------------------------------------------------------------------------------
// Paths, tools, skipping
// ---------------------------------------------------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("operator/ has a parent").to_path_buf()
}

fn charts_dir() -> PathBuf {
    repo_root().join("charts")
}

fn operator_chart() -> PathBuf {
    charts_dir().join("cairn-operator")
}

fn crds_chart() -> PathBuf {
    charts_dir().join("cairn-crds")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn require_all() -> bool {
    std::env::var("CAIRN_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Prints the loud skip line, or fails under `CAIRN_REQUIRE_ALL=1`.
fn skip(test: &str, reason: &str) {
    if require_all() {
        panic!("CAIRN_REQUIRE_ALL=1 but {test} cannot run: {reason}");
    }
    eprintln!("SKIPPED: {test}: {reason}");
}

/// The cargo target profile dir of this test binary (`<target>/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // <target>/debug/deps/chart-<hash>
    exe.parent().and_then(Path::parent).expect("test binary lives in <target>/<profile>/deps").to_path_buf()
}

/// A workspace binary: `$<env>` when set, else `<target>/<profile>/<name>`.
fn workspace_binary(env: &str, name: &str) -> Option<PathBuf> {
    let path = match std::env::var_os(env) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => profile_dir().join(name),
    };
    path.is_file().then_some(path)
}

fn tools_or_skip(test: &str) -> Option<Tools> {
    let tools = cairn_kube_testkit::tools();
    if tools.is_none() {
        // tools() already printed SKIPPED (or panicked under CAIRN_REQUIRE_ALL=1).
        eprintln!("SKIPPED: {test}: Kubernetes test tools unavailable");
    }
    tools
}

/// The workspace version (every crate and both charts share it).
fn workspace_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// `[workspace] members` of the root Cargo.toml (a string array, possibly over several lines).
fn workspace_members() -> Vec<String> {
    let manifest = read(&repo_root().join("Cargo.toml"));
    let start = manifest.find("\nmembers").expect("[workspace] members in Cargo.toml");
    let rest = &manifest[start..];
    let list = &rest[rest.find('[').expect("members = [")..=rest.find(']').expect("members = [...]")];
    list.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// helm and YAML
// ---------------------------------------------------------------------------------------------

struct Helm {
    bin: PathBuf,
    kubeconfig: Option<PathBuf>,
}

impl Helm {
    fn new(tools: &Tools) -> Helm {
        Helm { bin: tools.helm.clone(), kubeconfig: None }
    }

    fn with_kubeconfig(tools: &Tools, kubeconfig: &Path) -> Helm {
        Helm { bin: tools.helm.clone(), kubeconfig: Some(kubeconfig.to_path_buf()) }
    }

    /// Runs helm; `Ok(stdout)` on success, `Err(stderr + stdout)` on failure.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let home = tempfile::tempdir().expect("helm home");
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .stdin(Stdio::null())
            // Keep helm's cache/config/data away from the user's and from other tests.
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_DATA_HOME", home.path().join("data"))
            .env_remove("HELM_NAMESPACE")
            .env_remove("HELM_KUBECONTEXT");
        match &self.kubeconfig {
            Some(k) => cmd.env("KUBECONFIG", k),
            // No cluster: make sure helm cannot reach one by accident.
            None => cmd.env("KUBECONFIG", home.path().join("no-kubeconfig")),
        };
        let out = cmd.output().unwrap_or_else(|e| panic!("run {}: {e}", self.bin.display()));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "helm {} failed ({}):\n{}{stdout}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `helm template` of `chart` as release `release` in `namespace`, parsed into objects.
    fn template(&self, chart: &Path, release: &str, namespace: &str, extra: &[&str]) -> Vec<Value> {
        let chart = chart.to_str().expect("utf-8 path");
        let mut args = vec!["template", release, chart, "--namespace", namespace];
        if self.kubeconfig.is_none() {
            args.extend(["--kube-version", MIN_KUBE_VERSION]);
        }
        args.extend_from_slice(extra);
        let text = self.run(&args).unwrap_or_else(|e| panic!("{e}"));
        parse_yaml_docs(&text)
    }
}

/// `--set` arguments for each `key=value`.
fn sets<'a>(pairs: &[&'a str]) -> Vec<&'a str> {
    pairs.iter().flat_map(|p| ["--set", p]).collect()
}

impl Helm {
    /// `helm template` of the operator chart with `--set` pairs, expected to fail; returns the error.
    fn template_error(&self, pairs: &[&str]) -> String {
        let chart = operator_chart();
        let mut args = vec!["template", "cairn-operator", chart.to_str().expect("utf-8")];
        args.extend(["--namespace", OPERATOR_NS, "--kube-version", MIN_KUBE_VERSION]);
        args.extend(sets(pairs));
        match self.run(&args) {
            Ok(out) => panic!("helm accepted {pairs:?}:\n{out}"),
            Err(e) => e,
        }
    }
}

/// Every non-empty document of a multi-document YAML stream.
fn parse_yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("invalid YAML from helm: {e}\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn kind_name(obj: &Value) -> String {
    format!("{}/{}", obj["kind"].as_str().unwrap_or("?"), obj["metadata"]["name"].as_str().unwrap_or("?"))
}

fn find<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    let found = find(objs, kind);
    assert_eq!(found.len(), 1, "expected exactly one {kind}, got {:?}", objs.iter().map(kind_name).collect::<Vec<_>>());
    found[0]
}

fn kinds(objs: &[Value]) -> BTreeSet<String> {
    objs.iter().map(|o| o["kind"].as_str().unwrap_or("?").to_string()).collect()
}

fn all_features_values() -> String {
    operator_chart().join("ci/all-features-values.yaml").to_str().expect("utf-8").to_string()
}

// ---------------------------------------------------------------------------------------------
// Static checks (no tools needed)
// ---------------------------------------------------------------------------------------------

/// The CRD chart ships a byte-for-byte copy of the operator's generated CRD.
#[test]
fn crd_chart_copy_is_identical_to_operator_crd() {
    let generated = repo_root().join("crds/registryclusters.cairn.dev.yaml");
    let copy = crds_chart().join("files/registryclusters.cairn.dev.yaml");
    let (a, b) = (read(&generated), read(&copy));
    assert!(
        a == b,
        "{} differs from {}: copy it over (cp {} {}) and release a new cairn-crds chart version",
        copy.display(),
        generated.display(),
        generated.display(),
        copy.display()
    );
}

/// Chart versions, appVersions and default images follow the workspace version, matching the
/// tags the Dockerfiles document and the operator's own default node image.
#[test]
fn charts_follow_workspace_version_and_images() {
    let version = workspace_version();
    for chart in [operator_chart(), crds_chart()] {
        let meta: Value = serde_yaml::from_str(&read(&chart.join("Chart.yaml"))).expect("Chart.yaml");
        assert_eq!(meta["apiVersion"], "v2", "{}", chart.display());
        assert_eq!(meta["version"], version.as_str(), "{} version", chart.display());
        assert_eq!(meta["appVersion"], version.as_str(), "{} appVersion", chart.display());
    }
    let values: Value = serde_yaml::from_str(&read(&operator_chart().join("values.yaml"))).expect("values.yaml");
    assert_eq!(values["image"]["repository"], "cairn/cairn-operator");
    assert_eq!(values["nodeImage"]["repository"], "cairn/cairn-node");
    for (dockerfile, image) in
        [("operator/Dockerfile", "cairn/cairn-operator"), ("node/Dockerfile", "cairn/cairn-node")]
    {
        let text = read(&repo_root().join(dockerfile));
        let tag = format!("-t {image}:{version}");
        assert!(text.contains(&tag), "{dockerfile} should document `docker build ... {tag}`");
    }
    // The operator's own default (flag --default-node-image) is the same reference the chart passes.
    let defaults = cairn_operator::OperatorConfig::defaults();
    assert_eq!(defaults.default_node_image, format!("cairn/cairn-node:{version}"));
}

/// Both Dockerfiles copy every workspace member into the build, build the right binary, and run it
/// as a non-root user.
#[test]
fn dockerfiles_build_the_workspace_binaries() {
    let members = workspace_members();
    assert!(members.iter().any(|m| m == "node"), "workspace members: {members:?}");
    for (dockerfile, package, binary, ports) in [
        ("node/Dockerfile", "cairn-node", "cairn-node", &["8848", "9848", "9849"][..]),
        ("operator/Dockerfile", "cairn-operator", "cairn-operator", &["8080"][..]),
    ] {
        let text = read(&repo_root().join(dockerfile));
        let copied: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("COPY "))
            .filter(|l| !l.starts_with("--from"))
            .flat_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words[..words.len().saturating_sub(1)].to_vec()
            })
            .collect();
        for file in ["Cargo.toml", "Cargo.lock"] {
            assert!(copied.contains(&file), "{dockerfile} must COPY {file}");
        }
        for member in &members {
            let top = member.split('/').next().unwrap_or(member);
            assert!(
                copied.contains(&top),
                "{dockerfile} does not COPY `{top}`, so cargo cannot load workspace member `{member}`"
            );
        }
        assert!(
            text.contains(&format!("cargo build --release --locked -p {package} --bin {binary}")),
            "{dockerfile} builds {package}/{binary}"
        );
        assert!(text.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{binary}\"]")), "{dockerfile} entrypoint");
        let stages = text.lines().filter(|l| l.starts_with("FROM ")).count();
        assert!(stages >= 2, "{dockerfile} is multi-stage");
        let user = text.lines().rfind(|l| l.starts_with("USER ")).expect("USER line");
        assert!(!user.contains("root") && !user.contains(" 0"), "{dockerfile}: {user}");
        for port in ports {
            assert!(text.lines().any(|l| l.starts_with("EXPOSE") && l.contains(port)), "{dockerfile} exposes {port}");
        }
        let ignore = read(&repo_root().join(format!("{dockerfile}.dockerignore")));
        assert!(ignore.lines().any(|l| l.trim() == "**/target"), "{dockerfile}.dockerignore keeps target/ out");
    }
}

// ---------------------------------------------------------------------------------------------
// Dashboard
// ---------------------------------------------------------------------------------------------

fn dashboard() -> Value {
    serde_json::from_str(&read(&operator_chart().join("dashboards/cairn.json"))).expect("dashboard JSON")
}

/// Every panel, rows' nested panels included.
fn dashboard_panels(dash: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// `(panel title, expr)` of every query.
fn dashboard_queries(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in dashboard_panels(dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("panel {} has a target without expr", p["title"]));
            out.push((p["title"].as_str().unwrap_or("?").to_string(), expr.to_string()));
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().or(v["query"].as_str()).expect("variable query");
            // label_values(<selector>, label) → the selector
            let inner = q.strip_prefix("label_values(").and_then(|s| s.rsplit_once(',')).map(|(s, _)| s);
            out.push((format!("variable {}", v["name"]), inner.expect("label_values(selector, label)").to_string()));
        }
    }
    out
}

/// Grafana's variables replaced by values PromQL accepts.
fn substitute_grafana_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace('$', "var_")
}

fn collect_metric_names(expr: &promql_parser::parser::Expr, out: &mut BTreeSet<String>) {
    use promql_parser::parser::Expr;
    let selector = |vs: &promql_parser::parser::VectorSelector, out: &mut BTreeSet<String>| {
        if let Some(name) = &vs.name {
            out.insert(name.clone());
        }
    };
    match expr {
        Expr::Aggregate(a) => {
            collect_metric_names(&a.expr, out);
            if let Some(p) = &a.param {
                collect_metric_names(p, out);
            }
        }
        Expr::Unary(u) => collect_metric_names(&u.expr, out),
        Expr::Binary(b) => {
            collect_metric_names(&b.lhs, out);
            collect_metric_names(&b.rhs, out);
        }
        Expr::Paren(p) => collect_metric_names(&p.expr, out),
        Expr::Subquery(s) => collect_metric_names(&s.expr, out),
        Expr::VectorSelector(vs) => selector(vs, out),
        Expr::MatrixSelector(ms) => selector(&ms.vs, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| collect_metric_names(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Metric names used by the dashboard, per source: (`cairn_operator_*`, other `cairn_*`).
fn dashboard_metric_names() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut names = BTreeSet::new();
    for (title, expr) in dashboard_queries(&dashboard()) {
        let parsed = promql_parser::parser::parse(&substitute_grafana_variables(&expr))
            .unwrap_or_else(|e| panic!("panel {title:?}: invalid PromQL {expr:?}: {e}"));
        collect_metric_names(&parsed, &mut names);
    }
    let unknown: Vec<_> = names.iter().filter(|n| !n.starts_with("cairn_") && *n != "up").collect();
    assert!(unknown.is_empty(), "dashboard queries metrics that neither Cairn nor Prometheus produce: {unknown:?}");
    let operator = names.iter().filter(|n| n.starts_with("cairn_operator_")).cloned().collect();
    let node = names.iter().filter(|n| n.starts_with("cairn_") && !n.starts_with("cairn_operator_")).cloned().collect();
    (operator, node)
}

/// `name` or, for a histogram's series, its family name, is in `known`.
fn metric_known(name: &str, known: &BTreeSet<String>) -> bool {
    known.contains(name)
        || ["_bucket", "_sum", "_count"].iter().any(|s| name.strip_suffix(s).is_some_and(|base| known.contains(base)))
}

/// Backquoted `cairn_*` names in a Markdown file (optionally only within the section `heading`).
fn documented_metrics(markdown: &str, heading: Option<&str>) -> BTreeSet<String> {
    let text = match heading {
        Some(h) => {
            let start = markdown.find(h).unwrap_or_else(|| panic!("section {h:?} not found"));
            let rest = &markdown[start + h.len()..];
            &rest[..rest.find("\n## ").unwrap_or(rest.len())]
        }
        None => markdown,
    };
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|code| code.split('{').next().unwrap_or(code).trim())
        .filter(|n| n.starts_with("cairn_") && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_string)
        .collect()
}

/// The dashboard is well-formed Grafana JSON, every query is valid PromQL, and every metric it uses
/// is one the node (README "Metrics") or the operator (operator/README.md) documents.
#[test]
fn dashboard_queries_parse_and_use_documented_metrics() {
    let dash = dashboard();
    assert_eq!(dash["uid"], "cairn-registry");
    assert!(dash["schemaVersion"].as_u64().unwrap_or(0) >= 36, "schemaVersion");
    let panels = dashboard_panels(&dash);
    let ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().expect("panel id")).collect();
    assert_eq!(ids.len(), ids.iter().collect::<BTreeSet<_>>().len(), "panel ids are unique");
    for p in &panels {
        let pos = &p["gridPos"];
        let (x, w) = (pos["x"].as_u64().expect("gridPos.x"), pos["w"].as_u64().expect("gridPos.w"));
        assert!(x + w <= 24 && w > 0 && pos["h"].as_u64().is_some(), "panel {} gridPos {pos}", p["title"]);
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {} uses the datasource variable", p["title"]);
            assert!(p["targets"].as_array().is_some_and(|t| !t.is_empty()), "panel {} has queries", p["title"]);
        }
    }
    let vars: BTreeSet<&str> =
        dash["templating"]["list"].as_array().expect("templating").iter().filter_map(|v| v["name"].as_str()).collect();
    for (title, expr) in dashboard_queries(&dash) {
        for var in expr.split('$').skip(1) {
            let name: String = var.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            assert!(name.starts_with("__") || vars.contains(name.as_str()), "{title}: undefined variable ${name}");
        }
    }
    // Every area the dashboard must cover has a panel.
    let titles: Vec<String> = panels.iter().filter_map(|p| p["title"].as_str()).map(str::to_lowercase).collect();
    for topic in [
        "members",
        "leader",
        "requests",
        "latency",
        "instances",
        "services",
        "pushes",
        "config changes",
        "commit lag",
        "apply lag",
        "reconciles",
        "reconcile errors",
    ] {
        assert!(titles.iter().any(|t| t.contains(topic)), "no panel about {topic:?}: {titles:?}");
    }

    let (operator, node) = dashboard_metric_names();
    let node_docs = documented_metrics(&read(&repo_root().join("README.md")), Some("## Metrics"));
    let operator_readme = repo_root().join("operator/README.md");
    let operator_docs = documented_metrics(&read(&operator_readme), None);
    for name in &node {
        assert!(metric_known(name, &node_docs), "dashboard uses {name}, not in README.md \"Metrics\": {node_docs:?}");
    }
    for name in &operator {
        assert!(metric_known(name, &operator_docs), "dashboard uses {name}, not in {}", operator_readme.display());
    }
}

/// The dashboard ConfigMap carries the dashboard file unchanged, with the sidecar's label.
#[test]
fn dashboard_configmap_carries_the_file() {
    let Some(tools) = tools_or_skip("dashboard_configmap_carries_the_file") else { return };
    let helm = Helm::new(&tools);
    let objs = helm.template(&operator_chart(), "cairn-operator", OPERATOR_NS, &sets(&["dashboards.enabled=true"]));
    let cm = one(&objs, "ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let embedded: Value =
        serde_json::from_str(cm["data"]["cairn.json"].as_str().expect("cairn.json key")).expect("JSON");
    assert_eq!(embedded, dashboard());
    let objs = helm.template(&operator_chart(), "cairn-operator", OPERATOR_NS, &[]);
    assert!(find(&objs, "ConfigMap").is_empty(), "no dashboard unless dashboards.enabled");
}

// ---------------------------------------------------------------------------------------------
// A live node's metrics
// ---------------------------------------------------------------------------------------------

/// A child process killed on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        cmd.stdin(Stdio::null()).stdout(file).stderr(err);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self, what: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{what} exited with {status}:\n{}", self.log());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("===== {} =====\n{}", self.log.display(), self.log());
        }
    }
}

fn port_free(port: u32) -> bool {
    u16::try_from(port).is_ok_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
}

/// A free HTTP port P with P+1000 and P+1001 free too (the node's three ports).
fn free_node_port() -> u16 {
    for _ in 0..100 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let p = u32::from(l.local_addr().expect("addr").port());
        drop(l);
        if port_free(p) && port_free(p + 1000) && port_free(p + 1001) {
            return u16::try_from(p).expect("port");
        }
    }
    panic!("no free port triple");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// Metric family names (`# TYPE` lines) and sample names of a Prometheus text exposition.
fn exposition_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            out.extend(rest.split_whitespace().next().map(str::to_string));
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            out.insert(line[..end].to_string());
        }
    }
    out
}

async fn wait_http_ok(http: &reqwest::Client, url: &str, timeout: Duration, proc: &mut Proc, what: &str) {
    let start = Instant::now();
    loop {
        proc.assert_running(what);
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(start.elapsed() < timeout, "{url} did not answer 200 within {timeout:?}:\n{}", proc.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Metrics of the node that only gRPC clients produce (config change pushes to gRPC listeners); a
/// plain HTTP session cannot make them appear, so for these the README is the reference.
const NODE_METRICS_NEEDING_GRPC_LISTENERS: &[&str] = &["cairn_config_pushes_total"];

/// Every node metric the dashboard uses exists on a real `cairn-node` after some traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_node_metrics_exist_on_a_live_node() {
    const TEST: &str = "dashboard_node_metrics_exist_on_a_live_node";
    let Some(bin) = workspace_binary("CAIRN_NODE_BIN", "cairn-node") else {
        return skip(TEST, "cairn-node binary not built (cargo build -p cairn-node, or set CAIRN_NODE_BIN)");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_node_port();
    let mut cmd = Command::new(&bin);
    cmd.args(["--bind", "127.0.0.1", "--http-port", &port.to_string()])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("CAIRN_LOG", std::env::var("CAIRN_TEST_LOG").unwrap_or_else(|_| "warn".into()));
    let mut node = Proc::spawn(cmd, dir.path().join("node.log"));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client");
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(
        &http,
        &format!("{base}/nacos/v1/console/health/readiness"),
        Duration::from_secs(60),
        &mut node,
        "cairn-node",
    )
    .await;
    // Some traffic: a config write (Raft), an instance, a query.
    let form =
        |body: &str| http.post(format!("{base}{body}")).header("content-type", "application/x-www-form-urlencoded");
    let r = form("/nacos/v1/cs/configs").body("dataId=chart-test&group=DEFAULT_GROUP&content=hello").send().await;
    assert!(r.is_ok_and(|r| r.status().is_success()), "config publish");
    let r = form("/nacos/v1/ns/instance?serviceName=chart-test&ip=127.0.0.1&port=1234").send().await;
    assert!(r.is_ok_and(|r| r.status().is_success()), "instance register");
    let r = http.get(format!("{base}/nacos/v1/ns/instance/list?serviceName=chart-test")).send().await;
    assert!(r.is_ok_and(|r| r.status().is_success()), "instance list");
    let _ = http.get(format!("{base}/metrics")).send().await;
    let text = http.get(format!("{base}/metrics")).send().await.expect("scrape").text().await.expect("body");
    let live = exposition_names(&text);

    let (_, node_metrics) = dashboard_metric_names();
    let node_docs = documented_metrics(&read(&repo_root().join("README.md")), Some("## Metrics"));
    for name in &node_metrics {
        if NODE_METRICS_NEEDING_GRPC_LISTENERS.contains(&name.as_str()) {
            assert!(metric_known(name, &node_docs), "{name} is neither exposed nor documented");
            continue;
        }
        assert!(metric_known(name, &live), "dashboard uses {name}, which cairn-node does not expose:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// helm lint / template / schema
// ---------------------------------------------------------------------------------------------

#[test]
fn helm_lint_passes() {
    let Some(tools) = tools_or_skip("helm_lint_passes") else { return };
    let helm = Helm::new(&tools);
    let values = all_features_values();
    for (chart, extra) in [
        (crds_chart(), vec![]),
        (operator_chart(), vec![]),
        (operator_chart(), vec!["--values", values.as_str()]),
        (operator_chart(), sets(&["watchNamespace=apps", "leaderElection.enabled=false", "replicaCount=1"])),
    ] {
        let mut args = vec!["lint", "--strict", "--kube-version", MIN_KUBE_VERSION, chart.to_str().expect("utf-8")];
        args.extend(extra.iter().copied());
        let out = helm.run(&args).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.contains("0 chart(s) failed"), "{out}");
        assert!(!out.contains("[WARNING]") && !out.contains("[ERROR]"), "{out}");
    }
}

/// The operator's container: non-root, read-only root FS, probes, downward-API namespace, flags.
fn check_operator_deployment(objs: &[Value], expect_replicas: i64) -> BTreeMap<String, String> {
    let deploy = one(objs, "Deployment");
    let spec = &deploy["spec"]["template"]["spec"];
    assert_eq!(deploy["spec"]["replicas"], expect_replicas);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    let c = &spec["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert!(c["resources"]["requests"].is_object() && c["resources"]["limits"]["memory"].is_string());
    let env = c["env"].as_array().expect("env");
    assert!(
        env.iter()
            .any(|e| e["name"] == "POD_NAMESPACE" && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"),
        "POD_NAMESPACE from the downward API: {env:?}"
    );
    let sa = spec["serviceAccountName"].as_str().expect("serviceAccountName");
    assert_eq!(one(objs, "ServiceAccount")["metadata"]["name"], sa);
    let flags: BTreeMap<String, String> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str()?.strip_prefix("--")?.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    // Every flag the chart passes must be one the operator knows: parse them with its own parser.
    let mut argv = vec!["cairn-operator".to_string()];
    argv.extend(
        c["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("arg").replace("$(POD_NAMESPACE)", "ns")),
    );
    let parsed = <cairn_operator::OperatorConfig as clap::Parser>::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("the operator refuses the chart's arguments {argv:?}: {e}"));
    parsed.validate().expect("the chart's arguments pass the operator's validation");
    flags
}

/// `(apiGroup, resource, verb)` triples a rendered Role/ClusterRole grants.
fn granted(role: &Value) -> Grants {
    let rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule> =
        serde_json::from_value(role["rules"].clone()).unwrap_or_else(|e| panic!("{}: rules: {e}", kind_name(role)));
    let out = triples(&rules);
    assert!(out.iter().all(|(_, r, v)| r != "*" && v != "*"), "{}: no wildcards: {out:?}", kind_name(role));
    out
}

/// `(apiGroup, resource, verb)` triples.
type Grants = BTreeSet<(String, String, String)>;

/// `(apiGroup, resource, verb)` triples of PolicyRules.
fn triples(rules: &[k8s_openapi::api::rbac::v1::PolicyRule]) -> Grants {
    let mut out = BTreeSet::new();
    for rule in rules {
        for g in rule.api_groups.iter().flatten() {
            for r in rule.resources.iter().flatten() {
                for v in &rule.verbs {
                    out.insert((g.clone(), r.clone(), v.clone()));
                }
            }
        }
    }
    out
}

/// What the operator says it needs (operator/src/rbac.rs), split into (watched namespaces, Lease).
fn operator_needs() -> (Grants, Grants) {
    let all = triples(&cairn_operator::rbac::operator_rules());
    all.into_iter().partition(|(g, r, _)| !(g == "coordination.k8s.io" && r == "leases"))
}

/// The chart's (Cluster)Role grants exactly what the operator uses, nothing more, nothing less.
fn check_rules(role: &Value) {
    let have = granted(role);
    let (needed, _) = operator_needs();
    let missing: Vec<_> = needed.difference(&have).collect();
    assert!(missing.is_empty(), "{} lacks what operator/src/rbac.rs needs: {missing:?}", kind_name(role));
    let extra: Vec<_> = have.difference(&needed).collect();
    assert!(extra.is_empty(), "{} grants what the operator does not use: {extra:?}", kind_name(role));
}

/// The Lease Role grants the operator's Lease rule, limited to the release's Lease where possible.
fn check_lease_rules(role: &Value, lease: &str) {
    let (_, needed) = operator_needs();
    assert_eq!(granted(role), needed, "{}", kind_name(role));
    for rule in role["rules"].as_array().expect("rules") {
        let verbs: Vec<&str> = rule["verbs"].as_array().expect("verbs").iter().filter_map(Value::as_str).collect();
        if verbs != ["create"] {
            assert_eq!(
                rule["resourceNames"],
                serde_json::json!([lease]),
                "{} limits {verbs:?} to its Lease",
                kind_name(role)
            );
        }
    }
}

#[test]
fn helm_template_default_values() {
    let Some(tools) = tools_or_skip("helm_template_default_values") else { return };
    let helm = Helm::new(&tools);
    let objs = helm.template(&operator_chart(), "cairn-operator", OPERATOR_NS, &[]);
    let version = workspace_version();
    assert_eq!(
        kinds(&objs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
        .map(String::from)
        .into(),
        "{:?}",
        objs.iter().map(kind_name).collect::<Vec<_>>()
    );
    for o in &objs {
        if o["kind"] != "ClusterRole" && o["kind"] != "ClusterRoleBinding" {
            assert_eq!(o["metadata"]["namespace"], OPERATOR_NS, "{}", kind_name(o));
        }
        assert_eq!(o["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm", "{}", kind_name(o));
    }
    let flags = check_operator_deployment(&objs, 2);
    let image = one(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    assert_eq!(image, format!("cairn/cairn-operator:{version}"));
    assert_eq!(flags["default-node-image"], format!("cairn/cairn-node:{version}"));
    assert_eq!(flags["leader-elect"], "true");
    assert_eq!(flags["lease-namespace"], "$(POD_NAMESPACE)");
    assert!(!flags.contains_key("watch-namespace"));
    check_rules(one(&objs, "ClusterRole"));
    let binding = one(&objs, "ClusterRoleBinding");
    assert_eq!(binding["subjects"][0]["namespace"], OPERATOR_NS);
    // Leases only in the release namespace, get/update only on the operator's own.
    let lease_role = one(&objs, "Role");
    assert_eq!(lease_role["metadata"]["namespace"], OPERATOR_NS);
    check_lease_rules(lease_role, "cairn-operator");
    let svc = one(&objs, "Service");
    assert_eq!(svc["spec"]["ports"][0]["name"], "metrics");
    assert_eq!(svc["spec"]["selector"], one(&objs, "Deployment")["spec"]["selector"]["matchLabels"]);
    // The CRD chart: the CRD with the keep policy, otherwise equal to the operator's file.
    let crd_objs = helm.template(&crds_chart(), "cairn-crds", OPERATOR_NS, &[]);
    let crd = one(&crd_objs, "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    let mut rendered = crd.clone();
    let file: Value =
        serde_yaml::from_str(&read(&repo_root().join("crds/registryclusters.cairn.dev.yaml"))).expect("CRD file");
    for key in ["labels", "annotations"] {
        match file["metadata"].get(key) {
            Some(v) => rendered["metadata"][key] = v.clone(),
            None => drop(rendered["metadata"].as_object_mut().expect("metadata").remove(key)),
        }
    }
    // Helm's fromYaml/toYaml turn `1000.0` into `1000`: the same JSON number to the API server.
    assert!(
        numbers_as_f64(rendered) == numbers_as_f64(file),
        "the cairn-crds chart renders a CRD different from crds/registryclusters.cairn.dev.yaml"
    );
}

/// `v` with every number as a float, so `1` and `1.0` compare equal.
fn numbers_as_f64(v: Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map(Value::from).unwrap_or(Value::Number(n)),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers_as_f64).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect()),
        other => other,
    }
}

#[test]
fn helm_template_all_features() {
    let Some(tools) = tools_or_skip("helm_template_all_features") else { return };
    let helm = Helm::new(&tools);
    let values = all_features_values();
    let objs = helm.template(&operator_chart(), "cairn-operator", OPERATOR_NS, &["--values", &values]);
    for kind in
        ["ServiceMonitor", "ConfigMap", "RegistryCluster", "PodDisruptionBudget", "ClusterRole", "Role", "Deployment"]
    {
        assert!(!find(&objs, kind).is_empty(), "{kind} rendered with every feature on");
    }
    let flags = check_operator_deployment(&objs, 2);
    assert_eq!(flags["lease-name"], "cairn-operator-test");
    let lease_role =
        find(&objs, "Role").into_iter().find(|r| r["metadata"]["name"] == "cairn-operator-leader-election");
    check_lease_rules(lease_role.expect("leader-election Role"), "cairn-operator-test");
    let sm = one(&objs, "ServiceMonitor");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "15s");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"],
        one(&objs, "Service")["metadata"]["labels"]
            .as_object()
            .map(|l| {
                let keep = ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"];
                Value::Object(
                    l.iter().filter(|(k, _)| keep.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect(),
                )
            })
            .expect("service labels")
    );
    let rc = one(&objs, "RegistryCluster");
    assert_eq!(rc["apiVersion"], "cairn.dev/v1alpha1");
    assert_eq!(rc["metadata"]["name"], "cairn-example");
    assert_eq!(rc["metadata"]["namespace"], OPERATOR_NS);
    assert_eq!(rc["spec"]["monitoring"]["enabled"], true);
    // The example's labels must never select the operator's pods (or the reverse).
    assert_ne!(rc["metadata"]["labels"]["app.kubernetes.io/name"], "cairn-operator");
}

#[test]
fn helm_template_watch_namespace_uses_roles() {
    let Some(tools) = tools_or_skip("helm_template_watch_namespace_uses_roles") else { return };
    let helm = Helm::new(&tools);
    let set = sets(&["watchNamespace=apps", "leaderElection.enabled=false", "replicaCount=1"]);
    let objs = helm.template(&operator_chart(), "cairn-operator", OPERATOR_NS, &set);
    assert!(
        find(&objs, "ClusterRole").is_empty() && find(&objs, "ClusterRoleBinding").is_empty(),
        "no cluster-wide RBAC"
    );
    assert!(find(&objs, "PodDisruptionBudget").is_empty(), "no PDB for one replica");
    let role = one(&objs, "Role");
    assert_eq!(role["metadata"]["namespace"], "apps");
    check_rules(role);
    let binding = one(&objs, "RoleBinding");
    assert_eq!(binding["metadata"]["namespace"], "apps");
    assert_eq!(binding["subjects"][0]["namespace"], OPERATOR_NS);
    let flags = check_operator_deployment(&objs, 1);
    assert_eq!(flags["watch-namespace"], "apps");
    assert_eq!(flags["leader-elect"], "false");
    // An example outside the watched namespace is refused with a clear message.
    let err = helm.template_error(&["watchNamespace=apps", "exampleCluster.enabled=true"]);
    assert!(err.contains("exampleCluster.namespace \"cairn-system\" is not watched"), "{err}");
}

/// Wrong values fail at install time with the schema's message, naming the offending key.
#[test]
fn helm_refuses_bad_values_with_schema_message() {
    let Some(tools) = tools_or_skip("helm_refuses_bad_values_with_schema_message") else { return };
    let helm = Helm::new(&tools);
    let chart = operator_chart();
    let chart = chart.to_str().expect("utf-8");
    let testdata = charts_dir().join("testdata");
    let cases = [
        ("values-wrong-type.yaml", "at '/replicaCount': got string, want integer"),
        ("values-missing-required.yaml", "at '/image': missing property 'repository'"),
    ];
    for (file, message) in cases {
        let values = testdata.join(file);
        let values = values.to_str().expect("utf-8");
        for cmd in ["template", "lint"] {
            let mut args = vec![cmd];
            if cmd == "template" {
                args.push("cairn-operator");
            }
            args.extend([chart, "--kube-version", MIN_KUBE_VERSION, "--values", values]);
            let err = match helm.run(&args) {
                Ok(out) if cmd == "lint" => out, // lint reports on stdout and may exit 1
                Ok(out) => panic!("helm {cmd} accepted {file}:\n{out}"),
                Err(e) => e,
            };
            if cmd == "template" {
                assert!(err.contains("values don't meet the specifications of the schema"), "{cmd} {file}: {err}");
            }
            assert!(err.contains(message), "{cmd} {file}: expected {message:?} in:\n{err}");
        }
    }
    // Cross-field rule with its own message: several replicas need leader election.
    let err = helm.template_error(&["leaderElection.enabled=false"]);
    assert!(err.contains("replicaCount is 2 but leaderElection.enabled is false"), "{err}");
    // A typo in a key is refused, not silently ignored.
    let err = helm.template_error(&["serviceMonitor.enable=true"]);
    assert!(err.contains("additional properties 'enable' not allowed"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Against a real kube-apiserver
// ---------------------------------------------------------------------------------------------

fn gvk_of(obj: &Value) -> GroupVersionKind {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, obj["kind"].as_str().expect("kind"))
}

/// Server-side apply of `obj` (dry run or for real) with strict field validation.
async fn apply(client: &kube::Client, obj: &Value, default_ns: &str, dry_run: bool) -> Result<(), String> {
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk_of(obj))
        .await
        .map_err(|e| format!("{}: discovery: {e}", kind_name(obj)))?;
    let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or(default_ns);
        Api::namespaced_with(client.clone(), ns, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    };
    let mut params = PatchParams::apply(FIELD_MANAGER).validation_strict();
    if dry_run {
        params = params.dry_run();
    }
    let name = obj["metadata"]["name"].as_str().expect("metadata.name");
    api.patch(name, &params, &Patch::Apply(obj)).await.map(drop).map_err(|e| format!("{}: {e}", kind_name(obj)))
}

async fn wait_crd_established(client: &kube::Client, name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let start = Instant::now();
    loop {
        let established = crds.get_opt(name).await.ok().flatten().and_then(|c| c.status).is_some_and(|s| {
            s.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Established" && c.status == "True")
        });
        if established {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "CRD {name} not Established within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn service_monitor_crd() -> Value {
    serde_yaml::from_str(&read(&charts_dir().join("testdata/servicemonitors.monitoring.coreos.com.yaml")))
        .expect("ServiceMonitor CRD fixture")
}

/// Starts the control plane; the tools are present, so a failure to start is a test failure.
async fn start_control_plane(tools: &Tools, options: ControlPlaneOptions) -> ControlPlane {
    ControlPlane::start(tools, options).await.unwrap_or_else(|e| panic!("the control plane did not start: {e}"))
}

/// Every object both charts render — defaults, every feature on, one watched namespace — is accepted
/// by a real kube-apiserver (server-side apply dry run, strict field validation) with the CRDs in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_objects_pass_apiserver_dry_run() {
    const TEST: &str = "rendered_objects_pass_apiserver_dry_run";
    let Some(tools) = tools_or_skip(TEST) else { return };
    let cp = start_control_plane(&tools, ControlPlaneOptions::default()).await;
    let client = cp.client();
    let helm = Helm::with_kubeconfig(&tools, cp.kubeconfig_path());
    let server = client.apiserver_version().await.expect("server version");
    let kube_version = server.git_version.trim_start_matches('v').to_string();

    // The CRDs for real (the dry run of custom resources needs them), through the CRD chart's rendering.
    let crds = helm.template(&crds_chart(), "cairn-crds", OPERATOR_NS, &["--kube-version", &kube_version]);
    for crd in crds.iter().chain([&service_monitor_crd()]) {
        apply(&client, crd, OPERATOR_NS, false).await.unwrap_or_else(|e| panic!("{e}"));
    }
    wait_crd_established(&client, "registryclusters.cairn.dev").await;
    wait_crd_established(&client, "servicemonitors.monitoring.coreos.com").await;
    for ns in [OPERATOR_NS, "apps"] {
        cp.create_namespace(ns).await.expect("namespace");
    }

    let values = all_features_values();
    let variants: [(&str, Vec<&str>); 3] = [
        ("default values", vec![]),
        ("every feature on", vec!["--values", &values]),
        (
            "one watched namespace",
            sets(&[
                "watchNamespace=apps",
                "leaderElection.enabled=false",
                "replicaCount=1",
                "exampleCluster.enabled=true",
                "exampleCluster.namespace=apps",
            ]),
        ),
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for (what, extra) in &variants {
        let mut args = vec!["--kube-version", kube_version.as_str()];
        args.extend(extra.iter().copied());
        let objs = helm.template(&operator_chart(), "cairn-operator", OPERATOR_NS, &args);
        for obj in objs.iter().chain(crds.iter()) {
            checked += 1;
            if let Err(e) = apply(&client, obj, OPERATOR_NS, true).await {
                failures.push(format!("[{what}] {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "the API server refused rendered objects:\n{}", failures.join("\n"));
    assert!(checked >= 25, "only {checked} objects checked");
    // The dry run really validates: a RegistryCluster the CRD forbids is refused.
    let bad = serde_json::json!({
        "apiVersion": "cairn.dev/v1alpha1", "kind": "RegistryCluster",
        "metadata": {"name": "bad", "namespace": OPERATOR_NS}, "spec": {"replicas": 2},
    });
    let err = apply(&client, &bad, OPERATOR_NS, true).await.expect_err("replicas: 2 is refused by the CRD");
    assert!(err.contains("replicas"), "{err}");

    // The CRD was applied without Helm (as `kubectl apply` would): the CRD chart refuses to take it
    // over until it is labelled and annotated as charts/cairn-crds/README.md says, then adopts it.
    let crds_path = crds_chart();
    let install = ["install", "cairn-crds", crds_path.to_str().expect("utf-8"), "--namespace", "default"];
    let err = helm.run(&install).expect_err("helm install over a CRD it does not own");
    assert!(err.contains("invalid ownership metadata"), "{err}");
    let adopt = serde_json::json!({"metadata": {
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": "cairn-crds", "meta.helm.sh/release-namespace": "default"},
    }});
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    crd_api
        .patch("registryclusters.cairn.dev", &PatchParams::default(), &Patch::Merge(&adopt))
        .await
        .expect("label and annotate the CRD");
    let out = helm.run(&install).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("STATUS: deployed"), "{out}");
}

/// Operator counters with labels that appear only after their first event (a failed reconcile, a
/// membership change); a one-member example cluster that reconciles cleanly produces neither.
const OPERATOR_METRICS_NEEDING_EVENTS: &[&str] =
    &["cairn_operator_reconcile_errors_total", "cairn_operator_membership_operations_total"];

/// `helm install` of both charts into a real API server, then the operator — running with exactly the
/// chart's RBAC (the chart's ServiceAccount token) — reconciles the chart's example RegistryCluster.
/// Then `helm upgrade` upgrades the CRD and the example, and `helm uninstall` keeps the CRD and the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_then_operator_reconciles_example() {
    const TEST: &str = "helm_install_then_operator_reconciles_example";
    let Some(operator_bin) = workspace_binary("CAIRN_OPERATOR_BIN", "cairn-operator") else {
        return skip(
            TEST,
            "cairn-operator binary not built (cargo build -p cairn-operator, or set CAIRN_OPERATOR_BIN)",
        );
    };
    let Some(tools) = tools_or_skip(TEST) else { return };
    let options = ControlPlaneOptions::with_controller_manager();
    let cp = start_control_plane(&tools, options).await;
    let client = cp.client();
    let helm = Helm::with_kubeconfig(&tools, cp.kubeconfig_path());
    let (crds_chart, chart) = (crds_chart(), operator_chart());
    let (crds_chart, chart) = (crds_chart.to_str().expect("utf-8"), chart.to_str().expect("utf-8"));
    const APP_NS: &str = "cairn-demo";
    const EXAMPLE: &str = "demo";

    // 1. Install: the CRD chart (and the stand-in ServiceMonitor CRD, so the operator creates a monitor
    // for the example), then the operator chart with the example in another namespace.
    let out = helm.run(&["install", "cairn-crds", crds_chart]).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("STATUS: deployed"), "{out}");
    apply(&client, &service_monitor_crd(), OPERATOR_NS, false).await.unwrap_or_else(|e| panic!("{e}"));
    wait_crd_established(&client, "registryclusters.cairn.dev").await;
    wait_crd_established(&client, "servicemonitors.monitoring.coreos.com").await;
    cp.create_namespace(APP_NS).await.expect("namespace");
    let install_args = |verb: &'static str, extra: &[&'static str]| {
        let mut args = vec![verb, "cairn-operator", chart, "--namespace", OPERATOR_NS];
        args.extend(sets(&[
            "exampleCluster.enabled=true",
            "exampleCluster.namespace=cairn-demo",
            "exampleCluster.name=demo",
            "exampleCluster.spec.replicas=1",
            "exampleCluster.spec.monitoring.enabled=true",
            "memberAddressing=ip",
        ]));
        if verb == "install" {
            args.push("--create-namespace");
        }
        args.extend_from_slice(extra);
        args
    };
    let out = helm.run(&install_args("install", &[])).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("STATUS: deployed") && out.contains("get registryclusters"), "NOTES: {out}");

    // 2. The operator as a local process, with the arguments of the chart's Deployment, authenticated as
    // the chart's ServiceAccount.
    let sa_kubeconfig = cp.service_account_kubeconfig(OPERATOR_NS, "cairn-operator").await.expect("SA kubeconfig");
    let sa_client = cp.client_for_service_account(OPERATOR_NS, "cairn-operator").await.expect("SA client");
    let nodes: Api<Node> = Api::all(sa_client.clone());
    let denied =
        nodes.list(&ListParams::default()).await.expect_err("RBAC is enforced: the operator may not list nodes");
    assert!(denied.to_string().contains("forbidden"), "{denied}");
    let metrics_port = free_port();
    let deployment = Api::<Deployment>::namespaced(client.clone(), OPERATOR_NS).get("cairn-operator").await;
    let container =
        deployment.expect("the chart's Deployment").spec.expect("spec").template.spec.expect("pod").containers;
    let args: Vec<String> = container[0]
        .args
        .clone()
        .expect("args")
        .into_iter()
        .map(|a| match a.split_once('=') {
            Some(("--metrics-bind", _)) => format!("--metrics-bind=127.0.0.1:{metrics_port}"),
            Some(("--log", _)) => {
                format!("--log={}", std::env::var("CAIRN_TEST_LOG").unwrap_or_else(|_| "info".into()))
            }
            _ => a.replace("$(POD_NAMESPACE)", OPERATOR_NS),
        })
        .collect();
    assert!(args.contains(&"--member-addressing=ip".to_string()), "{args:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(&operator_bin);
    cmd.env("KUBECONFIG", &sa_kubeconfig)
        .env("POD_NAMESPACE", OPERATOR_NS)
        .env("POD_NAME", "cairn-operator-test-0")
        .args(&args);
    let mut operator = Proc::spawn(cmd, dir.path().join("operator.log"));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("http");
    let base = format!("http://127.0.0.1:{metrics_port}");
    wait_http_ok(&http, &format!("{base}/healthz"), Duration::from_secs(60), &mut operator, "cairn-operator").await;

    // 3. The example is reconciled: its StatefulSet appears and status.observedGeneration catches up.
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        APP_NS,
        &kube::discovery::pinned_kind(&client, &GroupVersionKind::gvk("cairn.dev", "v1alpha1", "RegistryCluster"))
            .await
            .expect("RegistryCluster discovered")
            .0,
    );
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), APP_NS);
    wait_for(&mut operator, "StatefulSet cairn-demo/demo", Duration::from_secs(90), || async {
        statefulsets.get_opt(EXAMPLE).await.ok().flatten().map(drop)
    })
    .await;
    let observed = |clusters: Api<DynamicObject>| async move {
        let rc = clusters.get_opt(EXAMPLE).await.ok().flatten()?;
        let generation = rc.metadata.generation?;
        (rc.data["status"]["observedGeneration"].as_i64() == Some(generation)).then_some(generation)
    };
    let first_generation =
        wait_for(&mut operator, "status.observedGeneration of the example", Duration::from_secs(90), || {
            observed(clusters.clone())
        })
        .await;
    wait_http_ok(&http, &format!("{base}/readyz"), Duration::from_secs(60), &mut operator, "cairn-operator").await;
    // The nodes' ServiceMonitor (spec.monitoring.enabled) exists and fits the ServiceMonitor schema.
    let sm_gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor");
    let (sm_resource, _) = kube::discovery::pinned_kind(&client, &sm_gvk).await.expect("ServiceMonitor discovered");
    let monitors: Api<DynamicObject> = Api::namespaced_with(client.clone(), APP_NS, &sm_resource);
    let monitor = wait_for(&mut operator, "ServiceMonitor of the example", Duration::from_secs(60), || async {
        monitors.get_opt(EXAMPLE).await.ok().flatten()
    })
    .await;
    assert_eq!(monitor.data["spec"]["endpoints"][0]["path"], "/metrics");

    // 4. The operator's metrics the dashboard uses are served.
    let text = http.get(format!("{base}/metrics")).send().await.expect("scrape").text().await.expect("body");
    let live = exposition_names(&text);
    let (operator_metrics, _) = dashboard_metric_names();
    let operator_docs = documented_metrics(&read(&repo_root().join("operator/README.md")), None);
    for name in &operator_metrics {
        if OPERATOR_METRICS_NEEDING_EVENTS.contains(&name.as_str()) && !live.contains(name) {
            assert!(metric_known(name, &operator_docs), "{name} is neither exposed nor documented");
            continue;
        }
        assert!(metric_known(name, &live), "dashboard uses {name}, which the operator does not expose:\n{text}");
    }

    // 5. helm upgrade: the CRD chart really upgrades the CRD; the operator chart updates the example.
    helm.run(&["upgrade", "cairn-crds", crds_chart, "--set", "labels.cairn\\.dev/upgraded=yes"])
        .unwrap_or_else(|e| panic!("{e}"));
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get("registryclusters.cairn.dev").await.expect("CRD");
    assert_eq!(crd.metadata.labels.unwrap_or_default().get("cairn.dev/upgraded").map(String::as_str), Some("yes"));
    helm.run(&install_args("upgrade", &["--set", "exampleCluster.spec.node.log=debug"]))
        .unwrap_or_else(|e| panic!("{e}"));
    let second_generation =
        wait_for(&mut operator, "observedGeneration after helm upgrade", Duration::from_secs(90), || async {
            observed(clusters.clone()).await.filter(|g| *g > first_generation)
        })
        .await;
    assert!(second_generation > first_generation);

    // 6. The StatefulSet's claim for member 0 (made by kube-controller-manager) ...
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), APP_NS);
    let pvc_name = format!("data-{EXAMPLE}-0");
    wait_for(&mut operator, "PVC of member 0", Duration::from_secs(60), || async {
        pvcs.get_opt(&pvc_name).await.ok().flatten().map(drop)
    })
    .await;
    // The claim carries the cluster's selector labels (README-kubernetes.md deletes claims by them).
    let pvc = pvcs.get(&pvc_name).await.expect("PVC");
    let labels = pvc.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("app.kubernetes.io/instance").map(String::as_str), Some(EXAMPLE), "{labels:?}");
    assert_eq!(labels.get("app.kubernetes.io/name").map(String::as_str), Some("cairn"), "{labels:?}");
    let log = operator.log();
    assert!(!log.to_lowercase().contains("forbidden"), "the operator hit RBAC denials with the chart's role:\n{log}");

    // 7. ... survives `helm uninstall`: the example and its StatefulSet go, the data claim stays. The
    // uninstall removes the operator's Deployment, RBAC and ServiceAccount: stop the local operator too.
    drop(operator);
    helm.run(&["uninstall", "cairn-operator", "--namespace", OPERATOR_NS, "--wait", "--timeout", "120s"])
        .unwrap_or_else(|e| panic!("{e}"));
    cairn_kube_testkit::poll_until(
        "RegistryCluster and its StatefulSet deleted (garbage collection)",
        Duration::from_secs(120),
        Duration::from_millis(300),
        || async {
            let rc = clusters.get_opt(EXAMPLE).await.ok()?;
            let sts = statefulsets.get_opt(EXAMPLE).await.ok()?;
            (rc.is_none() && sts.is_none()).then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(pvcs.get_opt(&pvc_name).await.expect("get PVC").is_some(), "the data claim survives uninstall");
    // `helm uninstall` of the CRD chart keeps the CRD (and with it every RegistryCluster).
    let out = helm.run(&["uninstall", "cairn-crds"]).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("kept due to the resource policy"), "{out}");
    assert!(crds.get_opt("registryclusters.cairn.dev").await.expect("get CRD").is_some(), "the CRD is kept");
}

/// Polls `check` until it yields a value, failing with the operator's log after `timeout`.
async fn wait_for<T, F, Fut>(operator: &mut Proc, what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        operator.assert_running("cairn-operator");
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "{what}: not reached within {timeout:?}; operator log:\n{}", operator.log());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
