//! Test harness around the Rust `nacos-sdk` crate (crates.io), with the same command-line
//! contract as the Java and Go harnesses (see `node/compat/README.md`):
//! naming: `scenario <service>`, `hold <service> <ip> <port>`, `watch <service> <ip> <port>`;
//! config: `config-scenario <dataId> <group>`, `config-listen <dataId> <group> <expected>`,
//! `config-publish <dataId> <group> <content>`, `config-get <dataId> <group>`.
//! Server from `CAIRN_SERVER` (HTTP address), namespace from `CAIRN_NAMESPACE`.
//!
//! nacos-sdk 0.8.3 config quirks the modes work around (details in the README):
//! - `get_config` answers from the listener cache when the key is listened to and the cache has
//!   content, even after the config was removed; so `config-scenario` reads through a second
//!   client that never listens, and every read is a real `ConfigQueryRequest`.
//! - `add_listener` on an absent config leaves the cache entry "initializing": the first change
//!   after that only fills the cache and is NOT delivered to the listener.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nacos_sdk::api::config::{ConfigChangeListener, ConfigResponse, ConfigService, ConfigServiceBuilder};
use nacos_sdk::api::error::Error as NacosError;
use nacos_sdk::api::naming::{
    NamingChangeEvent, NamingEventListener, NamingService, NamingServiceBuilder, ServiceInstance,
};
use nacos_sdk::api::props::ClientProps;
use tokio::sync::mpsc;

const GROUP: &str = "DEFAULT_GROUP";

struct Listener(mpsc::UnboundedSender<Vec<String>>);

impl NamingEventListener for Listener {
    fn event(&self, e: Arc<NamingChangeEvent>) {
        let eps = e.instances.iter().flatten().map(|i| format!("{}:{}", i.ip, i.port)).collect();
        let _ = self.0.send(eps);
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn props() -> ClientProps {
    let server = std::env::var("CAIRN_SERVER").unwrap_or_else(|_| "127.0.0.1:8848".into());
    let ns = std::env::var("CAIRN_NAMESPACE").unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("cairn-rust-harness-{}", std::process::id()));
    ClientProps::new()
        .server_addr(server)
        .namespace(ns)
        .app_name("cairn-compat")
        .env_first(false)
        .load_cache_at_start(false)
        // The SDK ignores empty pushes by default; the tests need to see the last instance leave.
        .naming_push_empty_protection(false)
        .cache_dir(dir)
}

async fn client() -> Result<NamingService> {
    NamingServiceBuilder::new(props()).build().await.context("building the naming client")
}

async fn wait_for(rx: &mut mpsc::UnboundedReceiver<Vec<String>>, pred: impl Fn(&[String]) -> bool) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(eps) = rx.recv().await {
            eprintln!("[harness] push {eps:?}");
            if pred(&eps) {
                return Ok(());
            }
        }
        bail!("listener closed")
    })
    .await
    .context("no matching push within 15 s")?
}

fn instance(ip: &str, port: i32, metadata: HashMap<String, String>, weight: f64) -> ServiceInstance {
    ServiceInstance {
        ip: ip.into(),
        port,
        weight,
        healthy: true,
        enabled: true,
        ephemeral: true,
        cluster_name: Some("DEFAULT".into()),
        metadata,
        ..Default::default()
    }
}

async fn scenario(service: &str) -> Result<()> {
    let naming = client().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    naming.subscribe(service.into(), Some(GROUP.into()), vec![], Arc::new(Listener(tx))).await.context("subscribe")?;
    let me = "127.0.0.1:7003".to_string();
    let meta = HashMap::from([("lang".to_string(), "rust".to_string())]);
    naming
        .register_instance(service.into(), Some(GROUP.into()), instance("127.0.0.1", 7003, meta, 2.0))
        .await
        .context("register")?;
    wait_for(&mut rx, |eps| eps.contains(&me)).await.context("PUSH_ADD")?;
    say("PUSH_ADD ok");
    let list = naming.get_all_instances(service.into(), Some(GROUP.into()), vec![], false).await.context("query")?;
    let found = list.iter().find(|i| i.ip == "127.0.0.1" && i.port == 7003).context("LIST: instance missing")?;
    if found.metadata.get("lang").map(String::as_str) != Some("rust") || (found.weight - 2.0).abs() > f64::EPSILON {
        bail!("LIST: wrong metadata or weight: {found:?}");
    }
    say("LIST ok");
    let (names, _count) = naming.get_service_list(1, 100, Some(GROUP.into())).await.context("service list")?;
    if !names.iter().any(|n| n == service) {
        bail!("SERVICE_LIST: {service} not in {names:?}");
    }
    say("SERVICE_LIST ok");
    naming
        .deregister_instance(service.into(), Some(GROUP.into()), instance("127.0.0.1", 7003, HashMap::new(), 2.0))
        .await
        .context("deregister")?;
    wait_for(&mut rx, |eps| !eps.contains(&me)).await.context("PUSH_REMOVE")?;
    say("PUSH_REMOVE ok");
    say("SCENARIO OK");
    Ok(())
}

async fn hold(service: &str, ip: &str, port: i32) -> Result<()> {
    let naming = client().await?;
    naming
        .register_instance(service.into(), Some(GROUP.into()), instance(ip, port, HashMap::new(), 1.0))
        .await
        .context("register")?;
    say("REGISTERED");
    tokio::time::sleep(Duration::from_secs(300)).await;
    say("HOLD_EXPIRED");
    Ok(())
}

async fn watch(service: &str, ip: &str, port: i32) -> Result<()> {
    let naming = client().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    naming.subscribe(service.into(), Some(GROUP.into()), vec![], Arc::new(Listener(tx))).await.context("subscribe")?;
    let target = format!("{ip}:{port}");
    let seen = Arc::new(Mutex::new(false));
    let s = seen.clone();
    tokio::time::timeout(Duration::from_secs(60), async move {
        while let Some(eps) = rx.recv().await {
            let present = eps.contains(&target);
            let mut seen = s.lock().unwrap_or_else(|e| e.into_inner());
            if present && !*seen {
                *seen = true;
                say("SEEN");
            } else if !present && *seen {
                say("GONE");
                return Ok(());
            }
        }
        bail!("listener closed")
    })
    .await
    .context("timeout")?
}

// ---------------------------------------------------------------------------- config

/// Content as printed on one line: `\n` and `\r` escaped.
fn one_line(s: &str) -> String {
    s.replace('\n', "\\n").replace('\r', "\\r")
}

struct ConfigListener(mpsc::UnboundedSender<String>);

impl ConfigChangeListener for ConfigListener {
    fn notify(&self, r: ConfigResponse) {
        eprintln!("[harness] config notify {}", r);
        let _ = self.0.send(r.content().clone());
    }
}

async fn config_client() -> Result<ConfigService> {
    ConfigServiceBuilder::new(props()).build().await.context("building the config client")
}

/// `Some(content)`, or `None` when the server answered "not found" (errorCode 300).
async fn get_config(cfg: &ConfigService, data_id: &str, group: &str) -> Result<Option<String>> {
    match cfg.get_config(data_id.into(), group.into()).await {
        Ok(r) => Ok(Some(r.content().clone())),
        Err(NacosError::ConfigNotFound(_)) => Ok(None),
        Err(e) => Err(e).context("get_config"),
    }
}

/// Reads until the value is `want` (None = absent), for up to 3 s; errors end it at once.
async fn get_until(cfg: &ConfigService, data_id: &str, group: &str, want: Option<&str>) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut tries = 0;
    loop {
        tries += 1;
        let got = get_config(cfg, data_id, group).await?;
        if got.as_deref() == want {
            if tries > 1 {
                eprintln!("[harness] get_config returned {want:?} only after {tries} reads");
            }
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("got {got:?}, want {want:?} (after {tries} reads over 3 s)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publish(cfg: &ConfigService, data_id: &str, group: &str, content: &str) -> Result<()> {
    let ok = cfg.publish_config(data_id.into(), group.into(), content.into(), None).await.context("publish_config")?;
    if !ok {
        bail!("publish_config returned false");
    }
    Ok(())
}

async fn config_scenario(data_id: &str, group: &str) -> Result<()> {
    let cfg = config_client().await?;
    // Reads go through a client without listeners (see the module comment).
    let reader = config_client().await.context("reader client")?;
    match get_config(&reader, data_id, group).await.context("GET_ABSENT")? {
        None => say("GET_ABSENT ok"),
        Some(c) => bail!("GET_ABSENT: the config exists with content {c:?}"),
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    cfg.add_listener(data_id.into(), group.into(), Arc::new(ConfigListener(tx))).await.context("add_listener")?;
    publish(&cfg, data_id, group, "v1-rust").await.context("PUBLISH")?;
    say("PUBLISH ok");
    get_until(&reader, data_id, group, Some("v1-rust")).await.context("GET")?;
    say("GET ok");
    // The SDK swallows the first change after listening to an absent config (v1); v2 must arrive.
    publish(&cfg, data_id, group, "v2-rust").await.context("publish v2")?;
    tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(c) = rx.recv().await {
            eprintln!("[harness] listener got {c:?}");
            if c == "v2-rust" {
                return Ok(());
            }
        }
        bail!("listener closed")
    })
    .await
    .context("LISTEN: the listener did not receive v2-rust within 15 s")??;
    say("LISTEN ok");
    let ok = cfg.remove_config(data_id.into(), group.into()).await.context("REMOVE")?;
    if !ok {
        bail!("REMOVE: remove_config returned false");
    }
    say("REMOVE ok");
    get_until(&reader, data_id, group, None).await.context("GET_REMOVED")?;
    say("GET_REMOVED ok");
    say("CONFIG OK");
    Ok(())
}

async fn config_listen(data_id: &str, group: &str, expected: &str) -> Result<()> {
    let cfg = config_client().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    // add_listener queries the config, then sends ConfigBatchListenRequest from a spawned task.
    cfg.add_listener(data_id.into(), group.into(), Arc::new(ConfigListener(tx))).await.context("add_listener")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    say("LISTENING");
    while let Some(c) = rx.recv().await {
        say(&format!("GOT {}", one_line(&c)));
        if c == expected {
            return Ok(());
        }
    }
    bail!("listener closed")
}

async fn config_publish(data_id: &str, group: &str, content: &str) -> Result<()> {
    let cfg = config_client().await?;
    publish(&cfg, data_id, group, content).await?;
    say("PUBLISHED");
    Ok(())
}

async fn config_get(data_id: &str, group: &str) -> Result<()> {
    let cfg = config_client().await?;
    match get_config(&cfg, data_id, group).await? {
        Some(c) => say(&format!("VALUE {}", one_line(&c))),
        None => say("ABSENT"),
    }
    Ok(())
}

async fn capped(secs: u64, f: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(secs), f).await.unwrap_or_else(|_| Err(anyhow::anyhow!("timeout")))
}

const USAGE: &str = "usage: scenario <svc> | hold <svc> <ip> <port> | watch <svc> <ip> <port> \
    | config-scenario <dataId> <group> | config-listen <dataId> <group> <expected> \
    | config-publish <dataId> <group> <content> | config-get <dataId> <group>";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["scenario", svc] => capped(60, scenario(svc)).await,
        ["hold", svc, ip, port] => match port.parse() {
            Ok(p) => hold(svc, ip, p).await,
            Err(_) => Err(anyhow::anyhow!("bad port")),
        },
        ["watch", svc, ip, port] => match port.parse() {
            Ok(p) => watch(svc, ip, p).await,
            Err(_) => Err(anyhow::anyhow!("bad port")),
        },
        ["config-scenario", d, g] => capped(60, config_scenario(d, g)).await,
        ["config-listen", d, g, want] => capped(60, config_listen(d, g, want)).await,
        ["config-publish", d, g, c] => capped(60, config_publish(d, g, c)).await,
        ["config-get", d, g] => capped(60, config_get(d, g)).await,
        _ => Err(anyhow::anyhow!(USAGE)),
    };
    if let Err(e) = result {
        say(&format!("FAIL {e:#}"));
        std::process::exit(1);
    }
    std::process::exit(0);
}
