//! Node identities, `name@host:port`, with noex's rules: the name starts with a letter
//! and has letters, digits, `_` and `-` (at most 64); the host is an IPv4 or IPv6 address
//! or a hostname; the port is 1..=65535. IPv6 hosts may be written bare
//! (`a@::1:4369`, split at the last colon) or bracketed (`a@[::1]:4369`); the canonical
//! form is bare, as noex prints it.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    name: String,
    host: String,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node id {input:?}: {reason}")]
pub struct InvalidNodeId {
    pub input: String,
    pub reason: &'static str,
}

const MAX_NAME: usize = 64;

fn valid_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("the name is empty"),
        Some(c) if !c.is_ascii_alphabetic() => return Err("the name must start with a letter"),
        _ => {}
    }
    if name.len() > MAX_NAME {
        return Err("the name is longer than 64 characters");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err("the name may contain only letters, digits, '_' and '-'");
    }
    Ok(())
}

fn valid_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn valid_host(host: &str) -> Result<(), &'static str> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    // Digits and dots only would pass as a hostname, but '256.0.0.1' or '1.2.3' is a
    // mistyped address, not a name: refused, as noex refuses it.
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err("the host looks like an IPv4 address but is not a valid one");
    }
    if valid_hostname(host) {
        Ok(())
    } else {
        Err("the host is not an IP address or a hostname")
    }
}

impl NodeId {
    /// Builds an id from its parts, checking each.
    pub fn create(name: &str, host: &str, port: u32) -> Result<NodeId, InvalidNodeId> {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let input = format!("{name}@{host}:{port}");
        let err = |reason| InvalidNodeId {
            input: input.clone(),
            reason,
        };
        valid_name(name).map_err(err)?;
        valid_host(host).map_err(err)?;
        if port == 0 || port > 65535 {
            return Err(err("the port must be an integer between 1 and 65535"));
        }
        Ok(NodeId {
            name: name.to_string(),
            host: host.to_string(),
            port: port as u16,
        })
    }

    pub fn parse(s: &str) -> Result<NodeId, InvalidNodeId> {
        let err = |reason| InvalidNodeId {
            input: s.to_string(),
            reason,
        };
        let (name, rest) = s
            .split_once('@')
            .ok_or_else(|| err("missing '@' between name and host"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| err("missing ':port'"))?;
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) || port.len() > 5 {
            return Err(err("the port must be an integer between 1 and 65535"));
        }
        let port: u32 = port
            .parse()
            .map_err(|_| err("the port must be an integer between 1 and 65535"))?;
        NodeId::create(name, host, port).map_err(|e| err(e.reason))
    }

    pub fn is_valid(s: &str) -> bool {
        NodeId::parse(s).is_ok()
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
        write!(f, "{}@{}:{}", self.name, self.host, self.port)
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
        assert!(e.to_string().contains("start with a letter"), "{e}");
        assert!(NodeId::create("a", "h", 70000).is_err());
    }
}
