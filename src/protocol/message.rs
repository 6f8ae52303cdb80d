//! Messages, one per frame. Layout: a tag byte, then fixed-width big-endian integers and
//! `u32`-length-prefixed byte strings. Actions and states are JSON text carried as byte
//! strings; decoding slices them out of the frame without copying.

use super::codec::{get_bytes, get_list, get_string, get_u32, get_u64, get_u8, put_bytes, whole};
use super::frame::FrameError;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// How a server keeps its clients in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every action is sent and replayed by every replica.
    Action,
    /// The server sends its state after it applied actions.
    Snapshot,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "action" => Some(Mode::Action),
            "snapshot" => Some(Mode::Snapshot),
            _ => None,
        }
    }
    fn byte(self) -> u8 {
        match self {
            Mode::Action => 0,
            Mode::Snapshot => 1,
        }
    }
    fn from_byte(b: u8) -> Result<Mode, FrameError> {
        match b {
            0 => Ok(Mode::Action),
            1 => Ok(Mode::Snapshot),
            _ => Err(FrameError::Malformed("unknown mode")),
        }
    }
}

const HELLO: u8 = 1;
const WELCOME: u8 = 2;
const DISPATCH: u8 = 3;
const ACK: u8 = 4;
const ACTIONS: u8 = 5;
const SNAPSHOT: u8 = 6;
const ERROR: u8 = 7;
const CHALLENGE: u8 = 8;
const AUTH: u8 = 9;
// 10 and 11 were a Raft peer's hello and welcome: a connection's kind is now its label
// (`link::label`), read before any message.
const HEARTBEAT: u8 = 12;

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Client → server, first frame. `epoch`/`seq` say what the client already holds, so
    /// a reconnecting client gets only what it missed.
    Hello {
        hash: String,
        client_id: u64,
        epoch: u64,
        seq: u64,
        /// The login name (empty when the client has none).
        login: String,
    },
    /// Server → client, when the server has logins: prove you know the password for this
    /// per-connection nonce.
    Challenge { nonce: Bytes },
    /// Client → server: HMAC-SHA256 over the nonce and the connection's identity, keyed
    /// by the password (see `store::auth`). Neither the password nor anything replayable
    /// crosses the wire.
    Auth { proof: Bytes },
    /// Server → client, answer to `Hello`. `acked` is the last dispatch counter of this
    /// client the server has ordered; the client resends everything after it.
    Welcome { epoch: u64, acked: u64, mode: Mode },
    /// Client → server: actions with consecutive counters starting at `first_counter`.
    Dispatch {
        first_counter: u64,
        actions: Vec<Bytes>,
    },
    /// Server → client: every dispatch up to `counter` is ordered, and where some of them
    /// went: runs of the client's counters and the sequence numbers they were given
    /// (what `dispatchAsync` resolves with). Runs may repeat ones already sent.
    Ack { counter: u64, ordered: Vec<Ordered> },
    /// Server → client: ordered actions with consecutive sequence numbers.
    Actions { first_seq: u64, actions: Vec<Bytes> },
    /// Server → client: the whole state as of `seq`.
    Snapshot { seq: u64, state: Bytes },
    /// Either way: why the sender is closing the connection.
    Error { code: String, message: String },
    /// Either way, on a link idle for the heartbeat interval: I am alive. A browser
    /// client answers each with one of its own (its timers may be throttled, its message
    /// events are not); the engine's own ends need not, they send their own when idle.
    Heartbeat,
}

/// `count` consecutive dispatches of one client, from `first_counter`, ordered as the
/// consecutive sequence numbers from `first_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ordered {
    pub first_counter: u64,
    pub first_seq: u64,
    pub count: u32,
}

/// More runs than any Ack needs (a server keeps fewer per client); a peer claiming more is
/// refused before anything is allocated for them.
pub const MAX_ORDERED: usize = 4096;

/// Writes an `Actions` payload straight from borrowed entries (the server's hot path).
pub fn encode_actions<'a>(
    dst: &mut BytesMut,
    first_seq: u64,
    actions: impl ExactSizeIterator<Item = &'a [u8]>,
) {
    encode_list(dst, ACTIONS, first_seq, actions)
}

/// Writes a `Dispatch` payload straight from borrowed actions (the client's hot path).
pub fn encode_dispatch<'a>(
    dst: &mut BytesMut,
    first_counter: u64,
    actions: impl ExactSizeIterator<Item = &'a [u8]>,
) {
    encode_list(dst, DISPATCH, first_counter, actions)
}

/// A tag, the number of the first item, then the items.
fn encode_list<'a>(
    dst: &mut BytesMut,
    tag: u8,
    first: u64,
    items: impl ExactSizeIterator<Item = &'a [u8]>,
) {
    dst.put_u8(tag);
    dst.put_u64(first);
    dst.put_u32(items.len() as u32);
    for item in items {
        put_bytes(dst, item);
    }
}

impl Message {
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Message::Hello {
                hash,
                client_id,
                epoch,
                seq,
                login,
            } => {
                dst.put_u8(HELLO);
                put_bytes(dst, hash.as_bytes());
                dst.put_u64(*client_id);
                dst.put_u64(*epoch);
                dst.put_u64(*seq);
                put_bytes(dst, login.as_bytes());
            }
            Message::Challenge { nonce } => {
                dst.put_u8(CHALLENGE);
                put_bytes(dst, nonce);
            }
            Message::Auth { proof } => {
                dst.put_u8(AUTH);
                put_bytes(dst, proof);
            }
            Message::Welcome { epoch, acked, mode } => {
                dst.put_u8(WELCOME);
                dst.put_u64(*epoch);
                dst.put_u64(*acked);
                dst.put_u8(mode.byte());
            }
            Message::Dispatch {
                first_counter,
                actions,
            } => encode_dispatch(dst, *first_counter, actions.iter().map(|a| &a[..])),
            Message::Ack { counter, ordered } => {
                dst.put_u8(ACK);
                dst.put_u64(*counter);
                dst.put_u32(ordered.len() as u32);
                for o in ordered {
                    dst.put_u64(o.first_counter);
                    dst.put_u64(o.first_seq);
                    dst.put_u32(o.count);
                }
            }
            Message::Actions { first_seq, actions } => {
                encode_actions(dst, *first_seq, actions.iter().map(|a| &a[..]))
            }
            Message::Snapshot { seq, state } => {
                dst.put_u8(SNAPSHOT);
                dst.put_u64(*seq);
                put_bytes(dst, state);
            }
            Message::Error { code, message } => {
                dst.put_u8(ERROR);
                put_bytes(dst, code.as_bytes());
                put_bytes(dst, message.as_bytes());
            }
            Message::Heartbeat => dst.put_u8(HEARTBEAT),
        }
    }

    /// Parses one payload. Never panics on any input.
    pub fn decode(mut src: Bytes) -> Result<Message, FrameError> {
        let tag = get_u8(&mut src)?;
        let msg = match tag {
            HELLO => Message::Hello {
                hash: get_string(&mut src)?,
                client_id: get_u64(&mut src)?,
                epoch: get_u64(&mut src)?,
                seq: get_u64(&mut src)?,
                login: get_string(&mut src)?,
            },
            CHALLENGE => Message::Challenge {
                nonce: get_bytes(&mut src)?,
            },
            AUTH => Message::Auth {
                proof: get_bytes(&mut src)?,
            },
            WELCOME => Message::Welcome {
                epoch: get_u64(&mut src)?,
                acked: get_u64(&mut src)?,
                mode: Mode::from_byte(get_u8(&mut src)?)?,
            },
            DISPATCH => {
                let first_counter = get_u64(&mut src)?;
                Message::Dispatch {
                    first_counter,
                    actions: get_list(&mut src)?,
                }
            }
            ACK => {
                let counter = get_u64(&mut src)?;
                let n = get_u32(&mut src)? as usize;
                if n > MAX_ORDERED || n * 20 > src.remaining() {
                    return Err(FrameError::Malformed("too many ordered runs in an ack"));
                }
                let mut ordered = Vec::with_capacity(n);
                for _ in 0..n {
                    ordered.push(Ordered {
                        first_counter: get_u64(&mut src)?,
                        first_seq: get_u64(&mut src)?,
                        count: get_u32(&mut src)?,
                    });
                }
                Message::Ack { counter, ordered }
            }
            ACTIONS => {
                let first_seq = get_u64(&mut src)?;
                Message::Actions {
                    first_seq,
                    actions: get_list(&mut src)?,
                }
            }
            SNAPSHOT => Message::Snapshot {
                seq: get_u64(&mut src)?,
                state: get_bytes(&mut src)?,
            },
            ERROR => Message::Error {
                code: get_string(&mut src)?,
                message: get_string(&mut src)?,
            },
            HEARTBEAT => Message::Heartbeat,
            _ => return Err(FrameError::Malformed("unknown message type")),
        };
        whole(&src, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Message> {
        vec![
            Message::Hello {
                hash: "abc".into(),
                client_id: 7,
                epoch: 9,
                seq: 11,
                login: "user".into(),
            },
            Message::Challenge {
                nonce: Bytes::from_static(&[1; 32]),
            },
            Message::Auth {
                proof: Bytes::from_static(&[2; 32]),
            },
            Message::Welcome {
                epoch: 1,
                acked: 2,
                mode: Mode::Snapshot,
            },
            Message::Dispatch {
                first_counter: 3,
                actions: vec![Bytes::from_static(b"{\"type\":\"A\"}"), Bytes::new()],
            },
            Message::Ack {
                counter: 4,
                ordered: vec![],
            },
            Message::Ack {
                counter: 9,
                ordered: vec![
                    Ordered {
                        first_counter: 5,
                        first_seq: 100,
                        count: 2,
                    },
                    Ordered {
                        first_counter: 7,
                        first_seq: 140,
                        count: 3,
                    },
                ],
            },
            Message::Actions {
                first_seq: 5,
                actions: vec![Bytes::from_static(b"{}")],
            },
            Message::Snapshot {
                seq: 6,
                state: Bytes::from_static(b"{\"counter\":1}"),
            },
            Message::Error {
                code: "ERR_X".into(),
                message: "why".into(),
            },
            Message::Heartbeat,
        ]
    }

    #[test]
    fn round_trip_every_message() {
        for m in all() {
            let mut b = BytesMut::new();
            m.encode(&mut b);
            assert_eq!(Message::decode(b.freeze()).unwrap(), m);
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for m in all() {
            let mut b = BytesMut::new();
            m.encode(&mut b);
            let full = b.freeze();
            for cut in 0..full.len() {
                assert!(
                    Message::decode(full.slice(..cut)).is_err(),
                    "{m:?} cut at {cut}"
                );
            }
            let mut longer = BytesMut::from(&full[..]);
            longer.put_u8(0);
            assert!(Message::decode(longer.freeze()).is_err());
        }
    }

    #[test]
    fn huge_list_count_is_refused_without_allocating() {
        let mut b = BytesMut::new();
        b.put_u8(ACTIONS);
        b.put_u64(1);
        b.put_u32(u32::MAX);
        assert!(Message::decode(b.freeze()).is_err());
    }

    #[test]
    fn pseudo_random_garbage_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let len = (x % 64) as usize;
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.push((x & 0xff) as u8);
            }
            let _ = Message::decode(Bytes::from(v));
        }
    }
}
