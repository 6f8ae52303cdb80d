//! Membership messages, and their envelope when a cluster secret is set: an HMAC-SHA256
//! tag over the sender, the receiver's nonce for this link, a send timestamp, a sequence
//! number and the body.
//!
//! A link opens with a hello each way (the sender's id and a fresh nonce), then a `Ready`
//! each way whose tag covers the other side's nonce: only a holder of the secret who saw
//! this link's hello can produce it, so a captured hello or `Ready` replayed on another
//! connection never brings a link up. Every later message is bound to the link the same
//! way and must carry a sequence number above the last one on that link. Nothing is
//! shared between links, so two links of the same pair (both sides dialing at once) never
//! refuse each other's messages.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// First message on a link, both ways.
    Hello { id: String, nonce: [u8; 16] },
    /// Second message on a link, both ways: with a secret, proof of it for this link.
    Ready,
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
const READY: u8 = 5;

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
            Wire::Hello { id, nonce } => {
                b.put_u8(HELLO);
                put_str(b, id);
                b.extend_from_slice(nonce);
            }
            Wire::Ready => b.put_u8(READY),
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
            HELLO => {
                let id = get_str(&mut b)?;
                if b.remaining() < 16 {
                    return Err(WireError::Malformed);
                }
                let mut nonce = [0u8; 16];
                b.copy_to_slice(&mut nonce);
                Wire::Hello { id, nonce }
            }
            READY => Wire::Ready,
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
    /// Increasing on every link (starts at the wall clock in µs).
    next_seq: AtomicU64,
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
        }
    }

    fn mac(
        &self,
        sender: &str,
        receiver_nonce: Option<&[u8; 16]>,
        ts: u64,
        seq: u64,
        body: &[u8],
    ) -> HmacSha256 {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(sender.as_bytes());
        m.update(&[0]);
        match receiver_nonce {
            Some(n) => {
                m.update(&[1]);
                m.update(n);
            }
            None => m.update(&[0]),
        }
        m.update(&ts.to_be_bytes());
        m.update(&seq.to_be_bytes());
        m.update(body);
        m
    }

    /// `[tag][ts][seq][body]`; bound to the link by the receiver's nonce (every message
    /// but the hello, which is sent before the nonce is known).
    pub fn seal(&self, msg: &Wire, receiver_nonce: Option<&[u8; 16]>, out: &mut BytesMut) {
        let mut body = BytesMut::new();
        msg.encode(&mut body);
        let ts = unix_ms();
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let tag = self
            .mac(&self.local, receiver_nonce, ts, seq, &body)
            .finalize()
            .into_bytes();
        out.extend_from_slice(&tag);
        out.put_u64(ts);
        out.put_u64(seq);
        out.extend_from_slice(&body);
    }

    /// Checks a message from `sender` (as identified by its hello on this link; the
    /// hello itself is checked under the id it claims, with no nonce) whose tag must cover
    /// `our_nonce`, and whose sequence number must be above `last` (this link's).
    pub fn open(
        &self,
        sender: &str,
        our_nonce: Option<&[u8; 16]>,
        mut frame: Bytes,
        last: &mut u64,
    ) -> Result<Wire, WireError> {
        if frame.len() < TAG + 16 {
            return Err(WireError::BadTag);
        }
        let tag = frame.split_to(TAG);
        let ts = frame.get_u64();
        let seq = frame.get_u64();
        self.mac(sender, our_nonce, ts, seq, &frame)
            .verify_slice(&tag)
            .map_err(|_| WireError::BadTag)?;
        let now = unix_ms();
        if now.abs_diff(ts) > self.window.as_millis() as u64 {
            return Err(WireError::Stale);
        }
        if seq <= *last {
            return Err(WireError::Replay);
        }
        *last = seq;
        Wire::decode(frame)
    }

    /// The id a hello claims, read before its signature can be checked.
    pub fn peek_hello_id(frame: &Bytes) -> Option<String> {
        if frame.len() < TAG + 16 {
            return None;
        }
        match Wire::decode(frame.slice(TAG + 16..)) {
            Ok(Wire::Hello { id, .. }) => Some(id),
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
            Wire::Hello {
                id: "a@h:1".into(),
                nonce: [7; 16],
            },
            Wire::Ready,
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

    #[test]
    fn wrong_secret_tampering_and_replay_are_refused() {
        let a = Sealer::new("s3cret", "a@h:1", Duration::from_secs(30));
        let b = Sealer::new("s3cret", "b@h:2", Duration::from_secs(30));
        let mallory = Sealer::new("guess", "a@h:1", Duration::from_secs(30));
        let (link1, link2) = ([1u8; 16], [2u8; 16]); // b's nonces on two links
        let seal = |s: &Sealer, m: &Wire, n: Option<&[u8; 16]>| {
            let mut buf = BytesMut::new();
            s.seal(m, n, &mut buf);
            buf.freeze()
        };
        let msg = seal(&a, &Wire::Leave, Some(&link1));
        let mut last = 0;
        assert_eq!(
            b.open("a@h:1", Some(&link1), msg.clone(), &mut last)
                .unwrap(),
            Wire::Leave
        );
        assert_eq!(
            b.open("a@h:1", Some(&link1), msg.clone(), &mut last),
            Err(WireError::Replay),
            "replayed on its link"
        );
        assert_eq!(
            b.open("a@h:1", Some(&link2), msg.clone(), &mut 0),
            Err(WireError::BadTag),
            "replayed on another link"
        );
        assert_eq!(
            b.open("c@h:3", Some(&link1), msg.clone(), &mut 0),
            Err(WireError::BadTag),
            "bound to its sender"
        );
        let mut t = BytesMut::from(&msg[..]);
        let end = t.len() - 1;
        t[end] ^= 1;
        assert_eq!(
            b.open("a@h:1", Some(&link1), t.freeze(), &mut 0),
            Err(WireError::BadTag)
        );
        let forged = seal(&mallory, &Wire::Leave, Some(&link1));
        assert_eq!(
            b.open("a@h:1", Some(&link1), forged, &mut 0),
            Err(WireError::BadTag)
        );
        // Two links of the same pair do not interfere: a message sealed earlier for one
        // link is still good on it after a later one was accepted on the other.
        let early = seal(&a, &Wire::Ready, Some(&link1));
        let later = seal(&a, &Wire::Ready, Some(&link2));
        let mut last2 = 0;
        assert!(b.open("a@h:1", Some(&link2), later, &mut last2).is_ok());
        assert!(b.open("a@h:1", Some(&link1), early, &mut last).is_ok());
        // A hello carries no link nonce and names its sender.
        let hello = seal(
            &a,
            &Wire::Hello {
                id: "a@h:1".into(),
                nonce: [9; 16],
            },
            None,
        );
        assert_eq!(Sealer::peek_hello_id(&hello).as_deref(), Some("a@h:1"));
        assert!(b.open("a@h:1", None, hello, &mut 0).is_ok());
    }
}
