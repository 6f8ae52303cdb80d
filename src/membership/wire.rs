//! Membership messages, and their envelope when a cluster secret is set: an HMAC-SHA256
//! tag over the sender, a send timestamp, a per-sender sequence number and the body. A
//! receiver refuses a bad tag, a timestamp outside the window, or a sequence number not
//! above the last one it accepted from that sender, so a captured message replayed later
//! (on this link or another) is refused.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// First message on a link, both ways.
    Hello { id: String },
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
    #[error("bad or missing cluster secret signature")]
    BadTag,
    #[error("message timestamp outside the accepted window")]
    Stale,
    #[error("replayed message")]
    Replay,
}

const HELLO: u8 = 1;
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
            Wire::Hello { id } => {
                b.put_u8(HELLO);
                put_str(b, id);
            }
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
            HELLO => Wire::Hello {
                id: get_str(&mut b)?,
            },
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

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Signs outgoing and checks incoming messages with the cluster secret.
pub struct Sealer {
    key: Vec<u8>,
    local: String,
    window: Duration,
    /// Strictly increasing across links and restarts (starts at the wall clock in µs).
    next_seq: AtomicU64,
    /// The last sequence number accepted from each sender.
    seen: Mutex<HashMap<String, u64>>,
}

const TAG: usize = 32;

impl Sealer {
    pub fn new(secret: &str, local: &str, window: Duration) -> Sealer {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        Sealer {
            key: secret.as_bytes().to_vec(),
            local: local.to_string(),
            window,
            next_seq: AtomicU64::new(start),
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, sender: &str, ts: u64, seq: u64, body: &[u8]) -> HmacSha256 {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(sender.as_bytes());
        m.update(&[0]);
        m.update(&ts.to_be_bytes());
        m.update(&seq.to_be_bytes());
        m.update(body);
        m
    }

    /// `[tag][ts][seq][body]`
    pub fn seal(&self, msg: &Wire, out: &mut BytesMut) {
        let mut body = BytesMut::new();
        msg.encode(&mut body);
        let ts = unix_ms();
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let tag = self
            .mac(&self.local, ts, seq, &body)
            .finalize()
            .into_bytes();
        out.extend_from_slice(&tag);
        out.put_u64(ts);
        out.put_u64(seq);
        out.extend_from_slice(&body);
    }

    /// Checks a message from `sender` (as identified by its hello on this link; the
    /// hello itself is checked under the id it claims).
    pub fn open(&self, sender: &str, mut frame: Bytes) -> Result<Wire, WireError> {
        if frame.len() < TAG + 16 {
            return Err(WireError::BadTag);
        }
        let tag = frame.split_to(TAG);
        let ts = frame.get_u64();
        let seq = frame.get_u64();
        self.mac(sender, ts, seq, &frame)
            .verify_slice(&tag)
            .map_err(|_| WireError::BadTag)?;
        let now = unix_ms();
        if now.abs_diff(ts) > self.window.as_millis() as u64 {
            return Err(WireError::Stale);
        }
        let mut seen = self.seen.lock().unwrap();
        let last = seen.entry(sender.to_string()).or_insert(0);
        if seq <= *last {
            return Err(WireError::Replay);
        }
        *last = seq;
        drop(seen);
        Wire::decode(frame)
    }

    /// The id a hello claims, read before its signature can be checked.
    pub fn peek_hello_id(frame: &Bytes) -> Option<String> {
        if frame.len() < TAG + 16 {
            return None;
        }
        match Wire::decode(frame.slice(TAG + 16..)) {
            Ok(Wire::Hello { id }) => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        for m in [
            Wire::Hello { id: "a@h:1".into() },
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

    #[test]
    fn wrong_secret_tampering_and_replay_are_refused() {
        let a = Sealer::new("s3cret", "a@h:1", Duration::from_secs(30));
        let b = Sealer::new("s3cret", "b@h:2", Duration::from_secs(30));
        let mallory = Sealer::new("guess", "a@h:1", Duration::from_secs(30));
        let mut buf = BytesMut::new();
        a.seal(&Wire::Leave, &mut buf);
        let msg = buf.freeze();
        assert_eq!(b.open("a@h:1", msg.clone()).unwrap(), Wire::Leave);
        assert_eq!(
            b.open("a@h:1", msg.clone()),
            Err(WireError::Replay),
            "replayed later"
        );
        assert_eq!(
            b.open("c@h:3", msg.clone()),
            Err(WireError::BadTag),
            "bound to its sender"
        );
        let mut t = BytesMut::from(&msg[..]);
        let last = t.len() - 1;
        t[last] ^= 1;
        assert_eq!(b.open("a@h:1", t.freeze()), Err(WireError::BadTag));
        let mut forged = BytesMut::new();
        mallory.seal(&Wire::Leave, &mut forged);
        assert_eq!(b.open("a@h:1", forged.freeze()), Err(WireError::BadTag));
        // Later messages from the same sender still pass.
        let mut next = BytesMut::new();
        a.seal(&Wire::Hello { id: "a@h:1".into() }, &mut next);
        let next = next.freeze();
        assert_eq!(Sealer::peek_hello_id(&next).as_deref(), Some("a@h:1"));
        assert!(b.open("a@h:1", next).is_ok());
    }
}
