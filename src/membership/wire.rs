//! Membership messages. A link is a `link::Session` of kind membership: the session's
//! hello names the node, and with a cluster secret it authenticates every message (a
//! per-link key, a tag and a sequence number per frame), so these are the bodies only.

use bytes::{Buf, BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    Heartbeat {
        uptime_ms: u64,
        process_count: u32,
        known: Vec<String>,
    },
    /// The sender is stopping (graceful shutdown).
    Leave,
    /// Both sides dialed at once and the sender keeps the other link: this one closes,
    /// but the node is not down (its other link is arriving).
    Superseded,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("malformed membership message")]
    Malformed,
}

// 1 and 5 were the hello and the proof: the session's now.
const HEARTBEAT: u8 = 2;
const LEAVE: u8 = 3;
const SUPERSEDED: u8 = 4;

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_u32(s.len() as u32);
    b.extend_from_slice(s.as_bytes());
}

fn get_str(b: &mut Bytes) -> Result<String, WireError> {
    if b.remaining() < 4 {
        return Err(WireError::Malformed);
    }
    let n = b.get_u32() as usize;
    if b.remaining() < n {
        return Err(WireError::Malformed);
    }
    String::from_utf8(b.split_to(n).to_vec()).map_err(|_| WireError::Malformed)
}

impl Wire {
    pub fn encode(&self, b: &mut BytesMut) {
        match self {
            Wire::Heartbeat {
                uptime_ms,
                process_count,
                known,
            } => {
                b.put_u8(HEARTBEAT);
                b.put_u64(*uptime_ms);
                b.put_u32(*process_count);
                b.put_u32(known.len() as u32);
                for k in known {
                    put_str(b, k);
                }
            }
            Wire::Leave => b.put_u8(LEAVE),
            Wire::Superseded => b.put_u8(SUPERSEDED),
        }
    }

    pub fn decode(mut b: Bytes) -> Result<Wire, WireError> {
        if !b.has_remaining() {
            return Err(WireError::Malformed);
        }
        let m = match b.get_u8() {
            HEARTBEAT => {
                if b.remaining() < 16 {
                    return Err(WireError::Malformed);
                }
                let uptime_ms = b.get_u64();
                let process_count = b.get_u32();
                let n = b.get_u32() as usize;
                if n > b.remaining() / 4 {
                    return Err(WireError::Malformed);
                }
                let known = (0..n).map(|_| get_str(&mut b)).collect::<Result<_, _>>()?;
                Wire::Heartbeat {
                    uptime_ms,
                    process_count,
                    known,
                }
            }
            LEAVE => Wire::Leave,
            SUPERSEDED => Wire::Superseded,
            _ => return Err(WireError::Malformed),
        };
        if b.has_remaining() {
            return Err(WireError::Malformed);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        for m in [
            Wire::Superseded,
            Wire::Heartbeat {
                uptime_ms: 5,
                process_count: 2,
                known: vec!["a@h:1".into(), "b@h:2".into()],
            },
            Wire::Leave,
        ] {
            let mut b = BytesMut::new();
            m.encode(&mut b);
            let full = b.freeze();
            assert_eq!(Wire::decode(full.clone()).unwrap(), m);
            for cut in 0..full.len() {
                assert!(Wire::decode(full.slice(..cut)).is_err());
            }
        }
    }
}
