//! Reading a process's memory and CPU time from `/proc` (Linux only; `None` elsewhere).

/// `VmRSS` and `VmHWM` of a process, in MiB.
pub fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = s.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User + system CPU seconds consumed so far by a process (`None` = unknown).
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every mainstream Linux configuration.
    Some((utime + stime) / 100.0)
}

/// CPU seconds spent by `pid` (server) and by this process between two samples.
#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    server: Option<f64>,
    client: Option<f64>,
}

impl CpuSample {
    /// Samples now.
    pub fn now(server_pid: Option<u32>) -> Self {
        CpuSample { server: server_pid.and_then(|p| cpu_secs(Some(p))), client: cpu_secs(None) }
    }

    /// (server, client) CPU seconds since `self`.
    pub fn since(&self, server_pid: Option<u32>) -> (Option<f64>, Option<f64>) {
        let later = CpuSample::now(server_pid);
        let d = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        (d(self.server, later.server), d(self.client, later.client))
    }
}
