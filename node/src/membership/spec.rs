//! `--members` forms and the cluster.conf member-list format.

use std::path::PathBuf;

use crate::config::{CLUSTER_GRPC_OFFSET, Config};
use crate::error::{Error, Result};

/// How this node finds its members (`--members`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembersSpec {
    /// No `--members`: a one-member cluster of this node.
    Standalone,
    /// A fixed list of `host:port` (HTTP ports), sorted, this node included.
    Static(Vec<String>),
    /// `file:<path>`: a cluster.conf file, re-read every second.
    File(PathBuf),
    /// `dns:<name>`: A records of `name` (port = this node's HTTP port), or SRV records when the
    /// name starts with `_` (`target:port`); re-resolved every `--dns-refresh-ms`.
    Dns(String),
    /// `k8s:<label-selector>`: Pods of this node's namespace matching the selector.
    K8s(String),
}

impl MembersSpec {
    /// Parses and checks `--members` (and that a static list names this node).
    pub fn parse(config: &Config) -> Result<MembersSpec> {
        let Some(raw) = config.members.as_deref().map(str::trim).filter(|m| !m.is_empty()) else {
            return Ok(MembersSpec::Standalone);
        };
        let bad = |msg: &str| Error::Config(format!("--members {raw:?}: {msg}"));
        if let Some(path) = raw.strip_prefix("file:") {
            let path = path.trim();
            if path.is_empty() {
                return Err(bad("file: needs a path"));
            }
            return Ok(MembersSpec::File(PathBuf::from(path)));
        }
        if let Some(name) = raw.strip_prefix("dns:") {
            let name = name.trim().trim_end_matches('.');
            if !valid_dns_name(name) {
                return Err(bad("dns: needs a DNS name (letters, digits, '-', '_', '.')"));
            }
            return Ok(MembersSpec::Dns(name.to_owned()));
        }
        if let Some(selector) = raw.strip_prefix("k8s:") {
            let selector = selector.trim();
            check_selector(selector).map_err(|m| bad(&m))?;
            return Ok(MembersSpec::K8s(selector.to_owned()));
        }
        let mut out = Vec::new();
        for m in raw.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            out.push(parse_member(m, None).map_err(|e| Error::Config(format!("--members entry {m:?}: {e}")))?);
        }
        out.sort();
        out.dedup();
        if !out.contains(&config.self_address()) {
            return Err(Error::Config(format!(
                "--members must list this node as {} (its advertise host and HTTP port); got {out:?}",
                config.self_address()
            )));
        }
        Ok(MembersSpec::Static(out))
    }

    /// Whether members are discovered (`file:`, `dns:`, `k8s:`) rather than fixed.
    pub fn is_discovered(&self) -> bool {
        matches!(self, MembersSpec::File(_) | MembersSpec::Dns(_) | MembersSpec::K8s(_))
    }
}

fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A light syntax check of a Kubernetes label selector (the API server does the full one).
fn check_selector(s: &str) -> std::result::Result<(), String> {
    if s.is_empty() {
        return Err("k8s: needs a label selector, e.g. k8s:app=cairn".into());
    }
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 || !(c.is_ascii_alphanumeric() || "-_./=!(), ".contains(c)) {
            return Err(format!("k8s: label selector has an unexpected {c:?}"));
        }
    }
    if depth != 0 {
        return Err("k8s: label selector has unbalanced parentheses".into());
    }
    Ok(())
}

/// Parses one member entry `host[:port]` (`[v6]:port` for IPv6) into `host:port`; the port
/// defaults to `default_port` (an error when that is `None`).
pub fn parse_member(entry: &str, default_port: Option<u16>) -> std::result::Result<String, String> {
    let entry = entry.trim();
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed '['")?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else if entry.matches(':').count() > 1 {
        (format!("[{entry}]"), None)
    } else {
        match entry.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (entry.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" || host.contains(char::is_whitespace) {
        return Err("empty or malformed host".into());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
        None => default_port.ok_or("missing :port")?,
    };
    if port == 0 || port.checked_add(CLUSTER_GRPC_OFFSET).is_none() {
        return Err(format!("port {port} leaves no room for the cluster port (+{CLUSTER_GRPC_OFFSET})"));
    }
    Ok(format!("{host}:{port}"))
}

/// Parses cluster.conf text: one `host[:port]` per line (port defaults to `default_port`),
/// `#` starts a comment, blank lines are skipped; entries may also be separated by commas.
/// Returns the sorted, deduplicated addresses, or the first bad line.
pub fn parse_cluster_conf(text: &str, default_port: u16) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        for entry in line.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            out.push(parse_member(entry, Some(default_port)).map_err(|e| format!("line {}: {entry:?}: {e}", n + 1))?);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_conf_lines_comments_default_port() {
        let text = "# cluster\n10.0.0.2:8850\n\n  10.0.0.1   # first\n10.0.0.1:8848\nnode-3.cairn.svc,10.0.0.4:9000\n";
        assert_eq!(
            parse_cluster_conf(text, 8848).unwrap(),
            ["10.0.0.1:8848", "10.0.0.2:8850", "10.0.0.4:9000", "node-3.cairn.svc:8848"]
        );
        assert_eq!(parse_cluster_conf("", 8848).unwrap(), Vec::<String>::new());
        assert!(parse_cluster_conf("a:1\nb:notaport\n", 8848).unwrap_err().contains("line 2"));
        assert!(parse_cluster_conf("a:65000\n", 8848).is_err());
        assert!(parse_cluster_conf("a b\n", 8848).is_err());
    }

    #[test]
    fn member_entries() {
        assert_eq!(parse_member("h:1", None).unwrap(), "h:1");
        assert_eq!(parse_member("h", Some(8848)).unwrap(), "h:8848");
        assert!(parse_member("h", None).is_err());
        assert_eq!(parse_member("[::1]:8848", None).unwrap(), "[::1]:8848");
        assert_eq!(parse_member("::1", Some(8848)).unwrap(), "[::1]:8848");
        assert!(parse_member(":80", None).is_err());
        assert!(parse_member("h:0", None).is_err());
    }

    #[test]
    fn selector_and_dns_checks() {
        assert!(check_selector("app=cairn,tier in (a, b),!legacy").is_ok());
        assert!(check_selector("").is_err());
        assert!(check_selector("app=(x").is_err());
        assert!(check_selector("app=x;y").is_err());
        assert!(valid_dns_name("cairn-headless.ns.svc.cluster.local"));
        assert!(valid_dns_name("_http._tcp.cairn"));
        assert!(!valid_dns_name("a..b") && !valid_dns_name("") && !valid_dns_name("a b"));
    }
}
