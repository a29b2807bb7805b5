//! Child processes of the test kit: each runs in its own process group (so every descendant can be signalled),
//! with stdout/stderr appended to a log file, and — when util-linux `setpriv` exists — with a parent-death signal,
//! so a test binary killed with SIGKILL or Ctrl-C does not leave etcd or kube-apiserver behind.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// `setpriv` from PATH, if present.
pub(crate) fn setpriv() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("setpriv")).find(|p| p.is_file())
}

/// Opens `path` for appending (creating it).
pub(crate) fn open_log(path: &Path) -> Result<File> {
    OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io("open log", path, e))
}

/// The last `lines` lines of a log file (empty when unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends `signal` to the process group `pgid`; an already gone group is not an error.
pub(crate) fn signal_group(pgid: i32, signal: Signal) -> Result<()> {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(source) => Err(Error::Signal { signal: signal.as_str(), pgid, source }),
    }
}

/// A std command running `program args` in a new process group, wrapped with `setpriv --pdeathsig KILL` when
/// available; stdin is null, stdout and stderr go to `log`.
pub(crate) fn group_command(program: &OsStr, args: &[&OsStr], log: &Path) -> Result<Command> {
    let mut cmd = match setpriv() {
        Some(setpriv) => {
            let mut cmd = Command::new(setpriv);
            cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.args(args);
    let out = open_log(log)?;
    let err = out.try_clone().map_err(|e| Error::io("clone log handle", log, e))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok(cmd)
}

/// One control-plane component (etcd, kube-apiserver, kube-controller-manager). Killed with its whole process
/// group on drop.
#[derive(Debug)]
pub(crate) struct Component {
    pub(crate) name: &'static str,
    child: Child,
    pub(crate) log: PathBuf,
}

impl Component {
    /// Starts `program args`, logging to `log`.
    pub(crate) fn spawn(name: &'static str, program: &Path, args: &[String], log: PathBuf) -> Result<Component> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let mut cmd = group_command(program.as_os_str(), &args, &log)?;
        let child = cmd.spawn().map_err(|source| Error::Spawn { program: program.display().to_string(), source })?;
        Ok(Component { name, child, log })
    }

    /// Ok while the process runs; an error with its log tail once it has exited.
    pub(crate) fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::ComponentExited {
                component: self.name,
                status: status.to_string(),
                log: self.log.clone(),
                tail: log_tail(&self.log, 40),
            }),
            Err(e) => Err(Error::io("wait for", &self.log, e)),
        }
    }

    /// SIGKILLs the process group and reaps the process.
    pub(crate) fn kill(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // The group may already be gone; nothing else can be done about a failure here.
            let _ = signal_group(pid, Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_is_killed_with_descendants() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sh.log");
        let pidfile = dir.path().join("grandchild.pid");
        let script = format!("sleep 600 & echo $! > {}; echo started; wait", pidfile.display());
        let mut c = Component::spawn("sh", Path::new("/bin/sh"), &["-c".to_string(), script], log.clone()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
            assert!(std::time::Instant::now() < deadline, "grandchild never started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let grandchild: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        c.check_running().unwrap();
        c.kill();
        assert!(c.check_running().is_err());
        // The grandchild (same process group) is gone too (it may linger as a zombie of init briefly).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "grandchild {grandchild} still alive: {stat}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(log_tail(&log, 5).contains("started"));
    }
}
