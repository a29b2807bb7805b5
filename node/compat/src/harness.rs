//! Running the client harnesses (Rust, Java, Go) that share one command-line contract:
//! `scenario <svc>` prints `PUSH_ADD ok`, `LIST ok`, `SERVICE_LIST ok`, `PUSH_REMOVE ok`,
//! `SCENARIO OK`; `hold <svc> <ip> <port>` prints `REGISTERED` and waits to be killed;
//! `watch <svc> <ip> <port>` prints `SEEN` then `GONE`. Failures print `FAIL <reason>`.
//!
//! Config modes: `config-scenario <dataId> <group>` prints `GET_ABSENT ok`, `PUBLISH ok`, `GET ok`,
//! `LISTEN ok`, `REMOVE ok`, `GET_REMOVED ok`, `CONFIG OK`; `config-listen <dataId> <group>
//! <expected>` prints `LISTENING`, then `GOT <content>` per notification and exits after
//! `<expected>`; `config-publish <dataId> <group> <content>` prints `PUBLISHED`;
//! `config-get <dataId> <group>` prints `VALUE <content>` or `ABSENT`. Contents are printed with
//! line breaks escaped as `\n` / `\r`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The group the config helpers use.
pub const CONFIG_GROUP: &str = "DEFAULT_GROUP";

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

    /// Runs `config-scenario <dataId> DEFAULT_GROUP` to the end and asserts it passed.
    pub fn run_config_scenario(&self, server: &str, data_id: &str) {
        let mut p = self.spawn(server, "config-scenario", &[data_id, CONFIG_GROUP]);
        let ok = p.wait_line("CONFIG OK", Duration::from_secs(90)).is_some();
        assert!(ok, "{} config scenario failed; output: {:?}", self.name, p.seen);
    }

    /// Runs `config-publish` to the end and asserts it printed `PUBLISHED`; returns when that
    /// line was read.
    fn publish_config(&self, server: &str, data_id: &str, content: &str) -> Instant {
        let mut p = self.spawn(server, "config-publish", &[data_id, CONFIG_GROUP, content]);
        let at = p.wait_line("PUBLISHED", Duration::from_secs(60));
        at.unwrap_or_else(|| panic!("{}: config-publish {content:?} on {server} failed: {:?}", self.name, p.seen))
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
    instance_across(h, server, server, service, port).1
}

/// [`killed_client_disappears`] with the holder connected to `hold_server` and the watcher to
/// `watch_server` (in a cluster: different members, so the instance travels by Distro).
/// Returns (holder's `REGISTERED` → watcher's `SEEN`, kill → watcher's `GONE`).
pub fn instance_across(
    h: &Harness,
    hold_server: &str,
    watch_server: &str,
    service: &str,
    port: u16,
) -> (Duration, Duration) {
    let port = port.to_string();
    let mut watch = h.spawn(watch_server, "watch", &[service, "127.0.0.1", &port]);
    let mut hold = h.spawn(hold_server, "hold", &[service, "127.0.0.1", &port]);
    let registered = hold.wait_line("REGISTERED", Duration::from_secs(60));
    let registered = registered.unwrap_or_else(|| panic!("{}: hold on {hold_server} failed: {:?}", h.name, hold.seen));
    let seen = watch.wait_line("SEEN", Duration::from_secs(30));
    let seen = seen.unwrap_or_else(|| {
        panic!("{}: watcher on {watch_server} never saw the instance held on {hold_server}: {:?}", h.name, watch.seen)
    });
    let killed = Instant::now();
    hold.kill9();
    let gone = watch.wait_line("GONE", Duration::from_secs(30));
    let gone = gone.unwrap_or_else(|| {
        panic!("{}: the killed client's instance was not removed on {watch_server}: {:?}", h.name, watch.seen)
    });
    (seen.saturating_duration_since(registered), gone.saturating_duration_since(killed))
}

/// A config write on `write_server` must reach a listener connected to `listen_server`.
///
/// 1. `config-publish` a seed value on `write_server` and, when the servers differ, wait (≤ 30 s)
///    until `config-get` on `listen_server` returns it. The seed is needed because nacos-sdk
///    (Rust) 0.8.3 does not notify the first change after listening to an absent config.
/// 2. Start `config-listen` on `listen_server` and wait for `LISTENING`.
/// 3. `config-publish` a fresh content on `write_server`.
///
/// Returns the time from reading the publisher's `PUBLISHED` line to reading the listener's
/// `GOT <content>` (zero if the notification was read first). Panics with the harness output
/// on failure.
pub fn config_push_across(h: &Harness, write_server: &str, listen_server: &str, data_id: &str) -> Duration {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let seed = format!("seed-{stamp}");
    let content = format!("push-{stamp}");

    h.publish_config(write_server, data_id, &seed);
    if write_server != listen_server {
        let want = format!("VALUE {seed}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut g = h.spawn(listen_server, "config-get", &[data_id, CONFIG_GROUP]);
            if g.wait_line(&want, Duration::from_secs(60)).is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {listen_server} never served the seed written on {write_server}; last config-get: {:?}",
                h.name,
                g.seen
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    let mut listen = h.spawn(listen_server, "config-listen", &[data_id, CONFIG_GROUP, &content]);
    assert!(
        listen.wait_line("LISTENING", Duration::from_secs(60)).is_some(),
        "{}: config-listen on {listen_server} failed: {:?}",
        h.name,
        listen.seen
    );
    let published = h.publish_config(write_server, data_id, &content);
    let got = listen.wait_line(&format!("GOT {content}"), Duration::from_secs(30));
    let got = got.unwrap_or_else(|| {
        panic!(
            "{}: the listener on {listen_server} never got {content:?} published on {write_server}: {:?}",
            h.name, listen.seen
        )
    });
    got.saturating_duration_since(published)
}
