//! Running the client harnesses (Rust, Java, Go) that share one command-line contract:
//! `scenario <svc>` prints `PUSH_ADD ok`, `LIST ok`, `SERVICE_LIST ok`, `PUSH_REMOVE ok`,
//! `SCENARIO OK`; `hold <svc> <ip> <port>` prints `REGISTERED` and waits to be killed;
//! `watch <svc> <ip> <port>` prints `SEEN` then `GONE`. Failures print `FAIL <reason>`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How to start one harness.
#[derive(Clone, Debug)]
pub struct Harness {
    /// Display name (e.g. `java-2.5.1`).
    pub name: String,
    /// Program.
    pub program: PathBuf,
    /// Arguments before the mode.
    pub prefix: Vec<String>,
}

/// A running harness process with its stdout lines.
pub struct HarnessProc {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    /// Everything read so far.
    pub seen: Vec<String>,
}

impl Harness {
    /// Starts `mode args…` against `server` (`ip:port`).
    pub fn spawn(&self, server: &str, mode: &str, args: &[&str]) -> HarnessProc {
        let mut child = Command::new(&self.program)
            .args(&self.prefix)
            .arg(mode)
            .args(args)
            .env("CAIRN_SERVER", server)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {} harness: {e}", self.name));
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        HarnessProc { child, lines: rx, seen: Vec::new() }
    }

    /// Runs `scenario <service>` to the end and asserts it passed.
    pub fn run_scenario(&self, server: &str, service: &str) {
        let mut p = self.spawn(server, "scenario", &[service]);
        let ok = p.wait_line("SCENARIO OK", Duration::from_secs(90)).is_some();
        assert!(ok, "{} scenario failed; output: {:?}", self.name, p.seen);
    }
}

impl HarnessProc {
    /// Waits for a line equal to `want` (a `FAIL` line ends the wait); returns when it was read.
    pub fn wait_line(&mut self, want: &str, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let fail = line.starts_with("FAIL");
                    let hit = line.trim() == want;
                    self.seen.push(line);
                    if hit {
                        return Some(at);
                    }
                    if fail {
                        return None;
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// SIGKILL, as a crashed client.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HarnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A killed client's instance must disappear with a push: `watch` subscribes, `hold` registers
/// `127.0.0.1:port`, the holder is killed with SIGKILL, and the watcher must print `GONE`.
/// Returns the time from the kill to the watcher reading the push.
pub fn killed_client_disappears(h: &Harness, server: &str, service: &str, port: u16) -> Duration {
    let port = port.to_string();
    let mut watch = h.spawn(server, "watch", &[service, "127.0.0.1", &port]);
    let mut hold = h.spawn(server, "hold", &[service, "127.0.0.1", &port]);
    assert!(
        hold.wait_line("REGISTERED", Duration::from_secs(60)).is_some(),
        "{}: hold failed: {:?}",
        h.name,
        hold.seen
    );
    assert!(
        watch.wait_line("SEEN", Duration::from_secs(30)).is_some(),
        "{}: watcher never saw the instance: {:?}",
        h.name,
        watch.seen
    );
    let killed = Instant::now();
    hold.kill9();
    let gone = watch.wait_line("GONE", Duration::from_secs(30));
    let gone =
        gone.unwrap_or_else(|| panic!("{}: the killed client's instance was not removed: {:?}", h.name, watch.seen));
    gone.saturating_duration_since(killed)
}
