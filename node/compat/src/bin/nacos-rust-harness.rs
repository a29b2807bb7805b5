//! Test harness around the Rust `nacos-sdk` crate (crates.io), with the same command-line
//! contract as the Java and Go harnesses (see `node/compat/README.md`):
//! `scenario <service>`, `hold <service> <ip> <port>`, `watch <service> <ip> <port>`.
//! Server from `CAIRN_SERVER` (HTTP address), namespace from `CAIRN_NAMESPACE`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
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

async fn client() -> Result<NamingService> {
    let server = std::env::var("CAIRN_SERVER").unwrap_or_else(|_| "127.0.0.1:8848".into());
    let ns = std::env::var("CAIRN_NAMESPACE").unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("cairn-rust-harness-{}", std::process::id()));
    let props = ClientProps::new()
        .server_addr(server)
        .namespace(ns)
        .app_name("cairn-compat")
        .env_first(false)
        .load_cache_at_start(false)
        // The SDK ignores empty pushes by default; the tests need to see the last instance leave.
        .naming_push_empty_protection(false)
        .cache_dir(dir);
    NamingServiceBuilder::new(props).build().await.context("building the naming client")
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

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["scenario", svc] => tokio::time::timeout(Duration::from_secs(60), scenario(svc))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("timeout"))),
        ["hold", svc, ip, port] => match port.parse() {
            Ok(p) => hold(svc, ip, p).await,
            Err(_) => Err(anyhow::anyhow!("bad port")),
        },
        ["watch", svc, ip, port] => match port.parse() {
            Ok(p) => watch(svc, ip, p).await,
            Err(_) => Err(anyhow::anyhow!("bad port")),
        },
        _ => Err(anyhow::anyhow!("usage: scenario <svc> | hold <svc> <ip> <port> | watch <svc> <ip> <port>")),
    };
    if let Err(e) = result {
        say(&format!("FAIL {e:#}"));
        std::process::exit(1);
    }
    std::process::exit(0);
}
