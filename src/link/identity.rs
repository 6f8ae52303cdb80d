//! The one node identity, `name@host:port`, for membership and Raft alike, and the one
//! function from it to openraft's integer id ([`raft_id`], of the name).
//!
//! Membership's ids follow noex's rules ([`NodeId::create`], [`NodeId::parse`]): the name
//! starts with a letter and has letters, digits, `_` and `-` (at most 64); the host is an
//! IPv4 or IPv6 address or a hostname; the port is 1..=65535. IPv6 hosts may be written
//! bare (`a@::1:4369`, split at the last colon) or bracketed (`a@[::1]:4369`); the
//! canonical form is bare, as noex prints it. A Raft member's name is the user's node id
//! (@unrdf/consensus and @ruvector/raft do not restrict it beyond being a name:
//! [`NodeId::at`]); a RaftNode whose messages travel through its JS transport has a name
//! and no address ([`NodeId::named`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId {
    name: String,
    host: String,
    port: u16,
}

/// Why an id was refused, in noex's words: `value` is the part at fault (the name, the
/// host, or the whole id for a separator or the port) and `reason` noex's reason, so the
/// JS `InvalidNodeIdError` is made from this and nothing is checked twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node id {input:?}: {reason}")]
pub struct InvalidNodeId {
    pub input: String,
    pub value: String,
    pub reason: &'static str,
}

const MAX_NAME: usize = 64;

const PORT_RANGE: &str = "port must be between 1 and 65535";

/// openraft wants integer node ids; users name nodes with strings. The id is the first 8
/// bytes of the name's SHA-256, so every node derives the same id from the same name with
/// no coordination (a collision needs ~2^32 names).
pub fn raft_id(name: &str) -> u64 {
    let d = Sha256::digest(name.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// A node name by noex's rules (checked in noex's order).
pub fn valid_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("name cannot be empty");
    }
    if name.chars().count() > MAX_NAME {
        return Err("name exceeds maximum length of 64 characters");
    }
    let mut chars = name.chars();
    let first = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err("name must start with a letter and contain only alphanumeric characters, underscores, or hyphens");
    }
    Ok(())
}

fn valid_hostname(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn valid_host(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("host cannot be empty");
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    // Digits and dots only would pass as a hostname, but '256.0.0.1' or '1.2.3' is a
    // mistyped address, not a name: refused, as noex refuses it.
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err("host looks like IPv4 but is not a valid IPv4 address");
    }
    if valid_hostname(host) {
        Ok(())
    } else {
        Err("host must be a valid IPv4 address, IPv6 address, or hostname")
    }
}

fn bare(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

impl NodeId {
    /// Builds an id from its parts, checking each.
    pub fn create(name: &str, host: &str, port: u32) -> Result<NodeId, InvalidNodeId> {
        let host = bare(host);
        let input = format!("{name}@{host}:{port}");
        let err = |value: &str, reason| InvalidNodeId {
            input: input.clone(),
            value: value.to_string(),
            reason,
        };
        valid_name(name).map_err(|r| err(name, r))?;
        valid_host(host).map_err(|r| err(host, r))?;
        if port == 0 || port > 65535 {
            return Err(err(&input, PORT_RANGE));
        }
        Ok(NodeId {
            name: name.to_string(),
            host: host.to_string(),
            port: port as u16,
        })
    }

    /// Parses `name@host:port`, checking the name, then the host, then the port (noex's
    /// order, so the same id gets the same reason).
    pub fn parse(s: &str) -> Result<NodeId, InvalidNodeId> {
        let err = |value: &str, reason| InvalidNodeId {
            input: s.to_string(),
            value: value.to_string(),
            reason,
        };
        let (name, rest) = s
            .split_once('@')
            .ok_or_else(|| err(s, "missing '@' separator"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| err(s, "missing ':' port separator"))?;
        valid_name(name).map_err(|r| err(name, r))?;
        valid_host(bare(host)).map_err(|r| err(bare(host), r))?;
        let digits = port.strip_prefix('-').unwrap_or(port);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(err(s, "port is not a valid number"));
        }
        match port.parse::<u32>() {
            Ok(p @ 1..=65535) => NodeId::create(name, host, p),
            _ => Err(err(s, PORT_RANGE)),
        }
    }

    pub fn is_valid(s: &str) -> bool {
        NodeId::parse(s).is_ok()
    }

    /// A Raft member: any non-empty name without `@`, reached at `addr` (`host:port`).
    pub fn at(name: &str, addr: &str) -> Result<NodeId, InvalidNodeId> {
        let input = format!("{name}@{addr}");
        let err = |reason| InvalidNodeId {
            input: input.clone(),
            value: input.clone(),
            reason,
        };
        if name.is_empty() || name.contains('@') {
            return Err(err("the name must be non-empty and without '@'"));
        }
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| err("the address is not host:port"))?;
        let host = bare(host);
        valid_host(host).map_err(err)?;
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 && port.chars().all(|c| c.is_ascii_digit()) => p,
            _ => return Err(err(PORT_RANGE)),
        };
        Ok(NodeId {
            name: name.to_string(),
            host: host.to_string(),
            port,
        })
    }

    /// A node known by name only (its messages travel through someone else's transport).
    pub fn named(name: &str) -> NodeId {
        NodeId {
            name: name.to_string(),
            host: String::new(),
            port: 0,
        }
    }

    /// Where to dial it, `host:port` (empty for a node known by name only).
    pub fn addr(&self) -> String {
        if self.port == 0 {
            return String::new();
        }
        format!("{}:{}", self.host, self.port)
    }

    /// openraft's id for this node.
    pub fn raft_id(&self) -> u64 {
        raft_id(&self.name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            0 => f.write_str(&self.name),
            _ => write!(f, "{}@{}:{}", self.name, self.host, self.port),
        }
    }
}

impl FromStr for NodeId {
    type Err = InvalidNodeId;
    fn from_str(s: &str) -> Result<NodeId, InvalidNodeId> {
        NodeId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_examples() {
        assert!(NodeId::is_valid("app1@localhost:4369"));
        assert!(NodeId::is_valid("worker-pool-1@192.168.1.100:5000"));
        assert!(!NodeId::is_valid("1invalid@host:4369"));
        assert!(!NodeId::is_valid("app@host"));
        let id = NodeId::parse("worker1@192.168.1.10:4369").unwrap();
        assert_eq!(
            (id.name(), id.host(), id.port()),
            ("worker1", "192.168.1.10", 4369)
        );
        assert_eq!(NodeId::create("worker1", "192.168.1.10", 4369).unwrap(), id);
        assert_eq!(id.to_string(), "worker1@192.168.1.10:4369");
    }

    #[test]
    fn names_hosts_and_ports() {
        for ok in [
            "a@h:1",
            "a_b-C9@h:65535",
            "n@::1:4369",
            "n@[::1]:4369",
            "n@fe80::1:80",
            "n@my-host.example.com:80",
        ] {
            assert!(NodeId::is_valid(ok), "{ok}");
        }
        assert_eq!(
            NodeId::parse("n@[::1]:4369").unwrap().to_string(),
            "n@::1:4369"
        );
        let long = format!("{}@h:1", "a".repeat(65));
        for bad in [
            "@h:1",
            "_a@h:1",
            "a.b@h:1",
            long.as_str(),
            "a@:1",
            "a@-h:1",
            "a@h_x:1",
            "a@h:0",
            "a@h:65536",
            "a@h:1x",
            "a@h:",
            "a@h:-1",
            "a@h:0001234567",
            "ah:1",
            "a@256.0.0.1:1",
            "a@1.2.3:1",
            "a@1.2.3.4.5:1",
        ] {
            assert!(!NodeId::is_valid(bad), "{bad}");
        }
        let e = NodeId::parse("1x@h:1").unwrap_err();
        assert_eq!((e.value.as_str(), e.reason), ("1x", "name must start with a letter and contain only alphanumeric characters, underscores, or hyphens"));
        // noex's order: the name before the port, the host before the port.
        assert_eq!(NodeId::parse("1x@h:z").unwrap_err().value, "1x");
        assert_eq!(NodeId::parse("a@-h:0").unwrap_err().value, "-h");
        let e = NodeId::parse("a@h:-1").unwrap_err();
        assert_eq!((e.value.as_str(), e.reason), ("a@h:-1", PORT_RANGE));
        assert_eq!(
            NodeId::parse("a@h:1x").unwrap_err().reason,
            "port is not a valid number"
        );
        assert!(NodeId::create("a", "h", 70000).is_err());
    }

    #[test]
    fn raft_members_and_their_ids() {
        let m = NodeId::at("node.1", "127.0.0.1:7001").unwrap();
        assert_eq!(
            (m.name(), m.addr(), m.to_string().as_str()),
            ("node.1", "127.0.0.1:7001".into(), "node.1@127.0.0.1:7001")
        );
        assert_eq!(NodeId::at("n", "[::1]:7").unwrap().addr(), "::1:7");
        for (name, addr) in [
            ("", "h:1"),
            ("a@b", "h:1"),
            ("n", "h"),
            ("n", "h:0"),
            ("n", "h:x"),
            ("n", "h_x:1"),
        ] {
            assert!(NodeId::at(name, addr).is_err(), "{name} {addr}");
        }
        let lone = NodeId::named("n2");
        assert_eq!(
            (lone.addr(), lone.to_string()),
            (String::new(), "n2".into())
        );
        // The one function: the same name, the same id, however it is reached.
        assert_eq!(m.raft_id(), raft_id("node.1"));
        assert_eq!(NodeId::named("node.1").raft_id(), m.raft_id());
        assert_ne!(raft_id("a"), raft_id("b"));
    }
}
