//! Stable per-pod-name IP addresses from a loopback CIDR.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};

/// Hands out the host addresses of a loopback IPv4 CIDR (e.g. `127.0.1.0/24` → `127.0.1.1`..`127.0.1.254`) in
/// order, one per pod name; the same name always gets the same address back.
#[derive(Debug, Clone)]
pub struct IpPool {
    first: u32,
    count: u32,
    assigned: HashMap<String, Ipv4Addr>,
}

impl IpPool {
    /// Parses `a.b.c.d/p` (8 ≤ p ≤ 30) inside 127.0.0.0/8.
    pub fn parse(cidr: &str) -> Result<IpPool> {
        let invalid = |reason| Error::InvalidIpPool { pool: cidr.to_string(), reason };
        let (addr, prefix) = cidr.split_once('/').ok_or_else(|| invalid("expected a.b.c.d/prefix"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| invalid("bad IPv4 address"))?;
        let prefix: u32 = prefix.parse().map_err(|_| invalid("bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(invalid("prefix length must be 8..=30"));
        }
        if !addr.is_loopback() {
            return Err(invalid("must be inside 127.0.0.0/8 (tests only use loopback addresses)"));
        }
        let mask = u32::MAX << (32 - prefix);
        let network = u32::from(addr) & mask;
        let size = 1u32 << (32 - prefix);
        Ok(IpPool { first: network + 1, count: size - 2, assigned: HashMap::new() })
    }

    /// The address of `pod_name`, assigning the next free one on first use; `None` when the pool is exhausted.
    pub fn ip_for(&mut self, pod_name: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.assigned.get(pod_name) {
            return Some(*ip);
        }
        let index = u32::try_from(self.assigned.len()).ok()?;
        if index >= self.count {
            return None;
        }
        let ip = Ipv4Addr::from(self.first + index);
        self.assigned.insert(pod_name.to_string(), ip);
        Some(ip)
    }

    /// The address already assigned to `pod_name`, if any.
    pub fn assigned(&self, pod_name: &str) -> Option<Ipv4Addr> {
        self.assigned.get(pod_name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_sequential_addresses() {
        let mut pool = IpPool::parse("127.0.1.0/24").unwrap();
        assert_eq!(pool.ip_for("a"), Some(Ipv4Addr::new(127, 0, 1, 1)));
        assert_eq!(pool.ip_for("b"), Some(Ipv4Addr::new(127, 0, 1, 2)));
        assert_eq!(pool.ip_for("a"), Some(Ipv4Addr::new(127, 0, 1, 1)));
        assert_eq!(pool.assigned("b"), Some(Ipv4Addr::new(127, 0, 1, 2)));
        assert_eq!(pool.assigned("c"), None);
    }

    #[test]
    fn unaligned_base_and_exhaustion() {
        let mut pool = IpPool::parse("127.0.9.77/30").unwrap();
        assert_eq!(pool.ip_for("a"), Some(Ipv4Addr::new(127, 0, 9, 77)));
        assert_eq!(pool.ip_for("b"), Some(Ipv4Addr::new(127, 0, 9, 78)));
        assert_eq!(pool.ip_for("c"), None);
    }

    #[test]
    fn rejects_non_loopback_and_garbage() {
        for bad in ["10.0.0.0/24", "127.0.1.0", "127.0.1.0/31", "127.0.1.0/4", "x/24", "127.0.1.0/y"] {
            assert!(IpPool::parse(bad).is_err(), "{bad}");
        }
    }
}
