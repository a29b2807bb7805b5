//! `cairn-loadgen` against `cairn-null-server`, as real processes: a small run of the register,
//! query, config-publish and config-get phases completes with every request answered.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Kills the server when the test ends, however it ends.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn loadgen_runs_against_the_null_server() {
    let mut server = Kill(
        Command::new(env!("CARGO_BIN_EXE_cairn-null-server"))
            .args(["--bind", "127.0.0.1", "--grpc-port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start cairn-null-server"),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().expect("stdout")).read_line(&mut line).expect("read the bound address");
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no gRPC port in {line:?}"));

    let out = Command::new(env!("CARGO_BIN_EXE_cairn-loadgen"))
        .args(["run", "--server", "127.0.0.1:1", "--grpc-port", &port.to_string(), "--label", "floor"])
        .args(["--phases", "register,query,config-publish,config-get", "--connections", "8", "--services", "20"])
        .args(["--services-per-conn", "5", "--query-secs", "1", "--config-connections", "4", "--config-keys", "10"])
        .args(["--config-secs", "1", "--concurrency", "8"])
        .output()
        .expect("run cairn-loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "loadgen failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let json = stdout.lines().find(|l| l.starts_with("{\"mode\":\"run\"")).expect("the JSON result line");
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON");
    let r = &v["result"];
    assert_eq!(r["register"]["instances"], 40, "{r}");
    assert_eq!(r["register"]["errors"], 0, "{r}");
    for phase in ["query", "config_publish", "config_get"] {
        assert_eq!(r[phase]["errors"], 0, "{phase}: {r}");
        assert!(r[phase]["ok"].as_u64().unwrap_or(0) > 0, "{phase}: {r}");
    }
    assert_eq!(r["query"]["hosts_per_answer"], 10.0, "{r}");
}
