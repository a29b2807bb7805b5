//! A real Kubernetes control plane on 127.0.0.1: etcd + kube-apiserver (+ kube-controller-manager).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;

use crate::certs::{ADMIN_USER, Pki};
use crate::error::{Error, Result};
use crate::kubeconfig::{Credential, client_from_kubeconfig, write_kubeconfig};
use crate::process::{Component, log_tail};
use crate::tools::Tools;

/// How to start a [`ControlPlane`].
#[derive(Debug, Clone)]
pub struct ControlPlaneOptions {
    /// Also run kube-controller-manager (StatefulSet → Pods + PVCs, garbage collection, default ServiceAccounts,
    /// `kube-root-ca.crt` ConfigMaps, node lifecycle, ...). `start` then also waits until the `default`
    /// ServiceAccount of namespace `default` exists.
    pub controller_manager: bool,
    /// How long startup may take before failing (default 120 s; a cold start on 2 busy cores takes 5–20 s).
    pub start_timeout: Duration,
    /// Extra kube-apiserver flags (`--name=value`), appended after the defaults.
    pub extra_apiserver_args: Vec<String>,
    /// Extra kube-controller-manager flags, appended after the defaults.
    pub extra_controller_manager_args: Vec<String>,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        ControlPlaneOptions {
            controller_manager: false,
            start_timeout: Duration::from_secs(120),
            extra_apiserver_args: Vec::new(),
            extra_controller_manager_args: Vec::new(),
        }
    }
}

impl ControlPlaneOptions {
    /// Defaults plus kube-controller-manager.
    pub fn with_controller_manager() -> Self {
        ControlPlaneOptions { controller_manager: true, ..Default::default() }
    }
}

/// A running etcd + kube-apiserver (+ kube-controller-manager) with its own temp dir, free ports and PKI.
///
/// The admin identity (client certificate, `O=system:masters`) is used by [`ControlPlane::client`] and
/// [`ControlPlane::kubeconfig_path`]; authorization is `Node,RBAC`, so other identities (see
/// [`ControlPlane::client_for_service_account`]) get only what RBAC grants them. Dropping it kills every process
/// (whole process groups) and deletes the temp dir. Logs are files in [`ControlPlane::dir`]; they are printed on
/// drop when `CAIRN_TEST_LOG` is set or the thread is panicking, and included in startup errors.
pub struct ControlPlane {
    // Field order matters for drop: processes die before the directory is removed.
    components: Vec<Component>,
    client: kube::Client,
    kubeconfig: PathBuf,
    server: String,
    pki: Pki,
    controller_manager: bool,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").field("server", &self.server).field("dir", &self.dir.path()).finish()
    }
}

/// `n` distinct free TCP ports on 127.0.0.1 (free when returned; a collision later is retried by `start`).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("bind", "127.0.0.1:0", e)))
        .collect::<Result<Vec<_>>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| Error::io("local_addr", "", e))).collect()
}

fn is_port_conflict(err: &Error) -> bool {
    matches!(err, Error::ComponentExited { tail, .. } if tail.contains("address already in use"))
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver (and kube-controller-manager when `options.controller_manager`) and waits
    /// until `/readyz` answers 200. Several control planes can run at once. Retries up to three times when a
    /// component loses a race for its port.
    pub async fn start(tools: &Tools, options: ControlPlaneOptions) -> Result<ControlPlane> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once(tools, &options).await {
                Err(e) if attempt < 3 && is_port_conflict(&e) => {
                    eprintln!("cairn-kube-testkit: port conflict while starting the control plane, retrying: {e}");
                }
                Err(e) => {
                    eprintln!("cairn-kube-testkit: control plane failed to start: {e}");
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }

    async fn start_once(tools: &Tools, options: &ControlPlaneOptions) -> Result<ControlPlane> {
        let deadline = Instant::now() + options.start_timeout;
        let dir = tempfile::Builder::new()
            .prefix("cairn-kube-")
            .tempdir()
            .map_err(|e| Error::io("create temp dir", std::env::temp_dir(), e))?;
        let root = dir.path().to_path_buf();
        let pki = Pki::generate(&root.join("pki"))?;
        let ports = free_ports(3)?;
        let (etcd_client, etcd_peer, secure_port) = (ports[0], ports[1], ports[2]);
        let server = format!("https://127.0.0.1:{secure_port}");
        let kubeconfig = root.join("admin.kubeconfig");
        let credential =
            Credential::ClientCert { cert_pem: pki.admin_cert_pem.clone(), key_pem: pki.admin_key_pem.clone() };
        write_kubeconfig(&kubeconfig, &server, &pki.ca_pem, ADMIN_USER, &credential, "default")?;

        let mut components = Vec::new();
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let etcd_args = vec![
            "--name=cairn-test".to_string(),
            format!("--data-dir={}", root.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=cairn-test={peer_url}"),
            "--unsafe-no-fsync=true".to_string(),
            "--log-level=warn".to_string(),
        ];
        components.push(Component::spawn("etcd", &tools.etcd, &etcd_args, root.join("etcd.log"))?);
        wait_etcd(&mut components, &etcd_url, deadline).await?;

        let mut api_args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            format!("--secure-port={secure_port}"),
            format!("--cert-dir={}", root.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", pki.serving_cert.display()),
            format!("--tls-private-key-file={}", pki.serving_key.display()),
            format!("--client-ca-file={}", pki.ca_cert.display()),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
            format!("--service-account-key-file={}", pki.sa_pub.display()),
            format!("--service-account-signing-key-file={}", pki.sa_key.display()),
            "--service-cluster-ip-range=10.96.0.0/16".to_string(),
            "--authorization-mode=Node,RBAC".to_string(),
            // The apiserver refuses loopback addresses in Endpoints/EndpointSlices.
            "--endpoint-reconciler-type=none".to_string(),
            "--allow-privileged=true".to_string(),
            "--profiling=false".to_string(),
        ];
        api_args.extend(options.extra_apiserver_args.iter().cloned());
        components.push(Component::spawn(
            "kube-apiserver",
            &tools.kube_apiserver,
            &api_args,
            root.join("kube-apiserver.log"),
        )?);
        let client = client_from_kubeconfig(&kubeconfig).await?;
        wait_readyz(&mut components, &client, deadline).await?;

        if options.controller_manager {
            let mut kcm_args = vec![
                format!("--kubeconfig={}", kubeconfig.display()),
                "--secure-port=0".to_string(),
                "--leader-elect=false".to_string(),
                format!("--service-account-private-key-file={}", pki.sa_key.display()),
                format!("--root-ca-file={}", pki.ca_cert.display()),
                "--use-service-account-credentials=false".to_string(),
                "--controllers=*".to_string(),
            ];
            kcm_args.extend(options.extra_controller_manager_args.iter().cloned());
            components.push(Component::spawn(
                "kube-controller-manager",
                &tools.kube_controller_manager,
                &kcm_args,
                root.join("kube-controller-manager.log"),
            )?);
            wait_default_service_account(&mut components, &client, deadline).await?;
        }

        Ok(ControlPlane {
            components,
            client,
            kubeconfig,
            server,
            pki,
            controller_manager: options.controller_manager,
            dir,
        })
    }

    /// An admin client (`system:masters`).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A kubeconfig file for the admin identity with the CA embedded; usable by helm, kubectl and spawned
    /// processes through `KUBECONFIG`. Its context's namespace is `default`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The apiserver URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// The CA certificate (PEM) that signed the serving and client certificates.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_pem
    }

    /// The CA certificate file.
    pub fn ca_cert_path(&self) -> &Path {
        &self.pki.ca_cert
    }

    /// The temp dir holding PKI, kubeconfigs, etcd data and logs (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether kube-controller-manager runs.
    pub fn has_controller_manager(&self) -> bool {
        self.controller_manager
    }

    /// Log files of the components, as `(name, path)`.
    pub fn log_files(&self) -> Vec<(&'static str, PathBuf)> {
        self.components.iter().map(|c| (c.name, c.log.clone())).collect()
    }

    /// Prints the last `lines` lines of each component's log to stderr.
    pub fn print_logs(&self, lines: usize) {
        for (name, path) in self.log_files() {
            eprintln!("===== {name} log ({}) =====\n{}", path.display(), log_tail(&path, lines));
        }
    }

    /// Ok while every component runs; otherwise the exit of the first that stopped, with its log tail.
    pub fn check_running(&mut self) -> Result<()> {
        self.components.iter_mut().try_for_each(Component::check_running)
    }

    /// A token for ServiceAccount `namespace/name` from the TokenRequest API (valid for `expiration`, at least
    /// 10 minutes). The ServiceAccount must exist.
    pub async fn service_account_token(&self, namespace: &str, name: &str, expiration: Duration) -> Result<String> {
        use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
        let api: Api<ServiceAccount> = Api::namespaced(self.client(), namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(i64::try_from(expiration.as_secs().max(600)).unwrap_or(i64::MAX)),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api
            .create_token_request(name, &Default::default(), &request)
            .await
            .map_err(|e| Error::kube(format!("create TokenRequest for ServiceAccount {namespace}/{name}"), e))?;
        answer.status.map(|s| s.token).ok_or_else(|| Error::Timeout {
            what: format!("token of ServiceAccount {namespace}/{name}"),
            waited: Duration::ZERO,
            last: "TokenRequest answer without status".into(),
        })
    }

    /// Writes a kubeconfig authenticating as ServiceAccount `namespace/name` (a 24-hour TokenRequest token; the
    /// context's namespace is `namespace`) and returns its path (inside [`ControlPlane::dir`]; a new file per call).
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> Result<PathBuf> {
        let token = self.service_account_token(namespace, name, Duration::from_secs(24 * 3600)).await?;
        let file = tempfile::Builder::new()
            .prefix(&format!("sa-{namespace}-{name}-"))
            .suffix(".kubeconfig")
            .tempfile_in(self.dir())
            .map_err(|e| Error::io("create kubeconfig in", self.dir(), e))?;
        let (_, path) = file.keep().map_err(|e| Error::io("keep kubeconfig", self.dir(), e.error))?;
        let user = format!("system:serviceaccount:{namespace}:{name}");
        write_kubeconfig(&path, &self.server, &self.pki.ca_pem, &user, &Credential::Token(token), namespace)?;
        Ok(path)
    }

    /// A client authenticating as ServiceAccount `namespace/name` (see [`ControlPlane::service_account_kubeconfig`]).
    pub async fn client_for_service_account(&self, namespace: &str, name: &str) -> Result<kube::Client> {
        let path = self.service_account_kubeconfig(namespace, name).await?;
        client_from_kubeconfig(&path).await
    }

    /// Creates namespace `name` (if missing) and its `default` ServiceAccount (if missing), so Pods can be created
    /// in it right away even without kube-controller-manager.
    pub async fn create_namespace(&self, name: &str) -> Result<()> {
        use k8s_openapi::api::core::v1::Namespace;
        use kube::api::{ObjectMeta, PostParams};
        let namespaces: Api<Namespace> = Api::all(self.client());
        let ns =
            Namespace { metadata: ObjectMeta { name: Some(name.into()), ..Default::default() }, ..Default::default() };
        ignore_conflict(namespaces.create(&PostParams::default(), &ns).await.map(drop), || {
            format!("create namespace {name}")
        })?;
        let sas: Api<ServiceAccount> = Api::namespaced(self.client(), name);
        let sa = ServiceAccount {
            metadata: ObjectMeta { name: Some("default".into()), ..Default::default() },
            ..Default::default()
        };
        ignore_conflict(sas.create(&PostParams::default(), &sa).await.map(drop), || {
            format!("create ServiceAccount {name}/default")
        })
    }
}

fn ignore_conflict(result: kube::Result<()>, action: impl FnOnce() -> String) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(Error::kube(action(), e)),
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if std::env::var_os("CAIRN_TEST_LOG").is_some() {
            self.print_logs(400);
        } else if std::thread::panicking() {
            self.print_logs(60);
        }
        // Stop in reverse start order (controller-manager, apiserver, etcd); TempDir is removed afterwards.
        while let Some(mut component) = self.components.pop() {
            component.kill();
        }
    }
}

fn check_all(components: &mut [Component]) -> Result<()> {
    components.iter_mut().try_for_each(Component::check_running)
}

fn timeout_error(components: &[Component], what: &str, start: Instant, last: String) -> Error {
    let logs: String = components
        .iter()
        .map(|c| format!("\n===== {} log ({}) =====\n{}", c.name, c.log.display(), log_tail(&c.log, 30)))
        .collect();
    Error::Timeout { what: what.to_string(), waited: start.elapsed(), last: format!("{last}{logs}") }
}

async fn wait_etcd(components: &mut [Component], url: &str, deadline: Instant) -> Result<()> {
    let start = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .map_err(|e| Error::Timeout { what: "etcd".into(), waited: Duration::ZERO, last: e.to_string() })?;
    loop {
        check_all(components)?;
        let last = match http.get(format!("{url}/health")).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => format!("HTTP {}", resp.status()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(timeout_error(components, "etcd /health", start, last));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_readyz(components: &mut [Component], client: &kube::Client, deadline: Instant) -> Result<()> {
    let start = Instant::now();
    loop {
        check_all(components)?;
        let request = http::Request::get("/readyz").body(Vec::new()).map_err(|e| Error::Timeout {
            what: "kube-apiserver /readyz".into(),
            waited: Duration::ZERO,
            last: e.to_string(),
        })?;
        let last = match client.request_text(request).await {
            Ok(_) => return Ok(()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(timeout_error(components, "kube-apiserver /readyz", start, last));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_default_service_account(
    components: &mut [Component],
    client: &kube::Client,
    deadline: Instant,
) -> Result<()> {
    let start = Instant::now();
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    loop {
        check_all(components)?;
        let last = match api.get_opt("default").await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => "ServiceAccount default/default not created yet".to_string(),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(timeout_error(components, "kube-controller-manager (default ServiceAccount)", start, last));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
