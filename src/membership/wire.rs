//! Membership messages. A link is a `link::Session` of kind membership: the session's
//! hello names the node, and with a cluster secret it authenticates every message (a
//! per-link key, a tag and a sequence number per frame), so these are the bodies only.

use crate::protocol::codec::{get_list, get_u32, get_u64, get_u8, put_bytes, whole};
use crate::protocol::FrameError;
use bytes::{BufMut, Bytes, BytesMut};

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

// 1 and 5 were the hello and the proof: the session's now.
const HEARTBEAT: u8 = 2;
const LEAVE: u8 = 3;
const SUPERSEDED: u8 = 4;

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
                    put_bytes(b, k.as_bytes());
                }
            }
            Wire::Leave => b.put_u8(LEAVE),
            Wire::Superseded => b.put_u8(SUPERSEDED),
        }
    }

    pub fn decode(mut b: Bytes) -> Result<Wire, FrameError> {
        let m = match get_u8(&mut b)? {
            HEARTBEAT => Wire::Heartbeat {
                uptime_ms: get_u64(&mut b)?,
                process_count: get_u32(&mut b)?,
                known: get_list(&mut b)?
                    .into_iter()
                    .map(|k| String::from_utf8(k.to_vec()))
                    .collect::<Result<_, _>>()
                    .map_err(|_| FrameError::Malformed("invalid UTF-8"))?,
            },
            LEAVE => Wire::Leave,
            SUPERSEDED => Wire::Superseded,
            _ => return Err(FrameError::Malformed("unknown membership message")),
        };
        whole(&b, m)
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
