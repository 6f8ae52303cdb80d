//! What a replicated store puts in the Raft log and gets back: a client's batch of
//! actions, and where it went.
//!
//! The actions are JSON texts the client sent; they travel as raw bytes behind a length
//! (never escaped into another JSON text), and decoding hands back slices of the entry's
//! buffer, not copies.
//!
//! Format of a batch: `client u64 | first_counter u64 | count u32`, then per action
//! `len u32 | bytes`, little endian; then, for a store the group hosts besides its
//! first, `len u16 | the store's hash` (nothing: the first store, as before there were
//! several).

use super::sequencer::Admitted;
use crate::consensus::state_machine::Codec;
use crate::consensus::types::{from_bytes, to_bytes};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// A store client's batch of actions, numbered from `first_counter`. Applying it gives
/// the new ones the store's next sequence numbers and drops the resends, by a
/// per-client table replicated with the state (`Sequencer`): the same on every server,
/// whichever one the client sent it through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreBatch {
    pub client: u64,
    pub first_counter: u64,
    pub actions: Vec<Bytes>,
    /// The store it is for: its hash, or empty for the group's first store.
    pub store: Bytes,
}

/// What applying a batch answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreAnswer {
    /// How many were resends, where the rest went, the client's last ordered counter.
    Admitted(Admitted),
    /// Nothing applied, with the code that says why: `ERR_PROTOCOL` (the batch does not
    /// follow what this client sent before), `ERR_INVALID` (not a store batch).
    Refused(crate::error::ErrorCode),
}

impl Codec for StoreBatch {
    fn encode(&self) -> Bytes {
        let len: usize = self.actions.iter().map(|a| 4 + a.len()).sum();
        let mut b = BytesMut::with_capacity(22 + len + self.store.len());
        b.put_u64_le(self.client);
        b.put_u64_le(self.first_counter);
        b.put_u32_le(self.actions.len() as u32);
        for a in &self.actions {
            b.put_u32_le(a.len() as u32);
            b.put_slice(a);
        }
        if !self.store.is_empty() {
            // A store's hash is short (32 hex characters); the bound is the format's.
            let n = self.store.len().min(u16::MAX as usize);
            b.put_u16_le(n as u16);
            b.put_slice(&self.store[..n]);
        }
        b.freeze()
    }

    fn decode(b: &Bytes) -> Result<StoreBatch, String> {
        let short = || "a store batch cut short".to_string();
        let mut rest = b.clone();
        if rest.remaining() < 20 {
            return Err(short());
        }
        let client = rest.get_u64_le();
        let first_counter = rest.get_u64_le();
        let n = rest.get_u32_le() as usize;
        // Every action takes at least its length: a count past that is a lie, refused
        // before anything is allocated for it.
        if n > rest.remaining() / 4 {
            return Err(short());
        }
        let mut actions = Vec::with_capacity(n);
        for _ in 0..n {
            if rest.remaining() < 4 {
                return Err(short());
            }
            let len = rest.get_u32_le() as usize;
            if rest.remaining() < len {
                return Err(short());
            }
            actions.push(rest.split_to(len));
        }
        let store = if rest.has_remaining() {
            if rest.remaining() < 2 {
                return Err(short());
            }
            let n = rest.get_u16_le() as usize;
            if n == 0 || rest.remaining() != n {
                return Err("bytes after a store batch".into());
            }
            rest.split_to(n)
        } else {
            Bytes::new()
        };
        Ok(StoreBatch {
            client,
            first_counter,
            actions,
            store,
        })
    }
}

impl Codec for StoreAnswer {
    fn encode(&self) -> Bytes {
        Bytes::from(to_bytes(self).expect("a store answer always encodes"))
    }

    fn decode(b: &Bytes) -> Result<StoreAnswer, String> {
        from_bytes(b).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Ordered;

    #[test]
    fn a_batch_round_trips_with_its_actions_as_raw_bytes() {
        let action: &[u8] = br#"{"type":"A","s":"\"q\""}"#;
        let b = StoreBatch {
            client: 7,
            first_counter: 3,
            actions: vec![Bytes::from_static(action), Bytes::new()],
            store: Bytes::new(),
        };
        let bytes = b.encode();
        assert_eq!(bytes.len(), 20 + 4 + action.len() + 4);
        // Unescaped: the action's text is in the entry as it is.
        assert!(bytes.windows(action.len()).any(|w| w == action));
        assert_eq!(StoreBatch::decode(&bytes).unwrap(), b);
        for cut in 0..bytes.len() {
            assert!(StoreBatch::decode(&bytes.slice(..cut)).is_err(), "{cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(StoreBatch::decode(&Bytes::from(longer)).is_err());

        // A hosted store's batch names it after the actions; cut anywhere, it is refused.
        let hosted = StoreBatch {
            store: Bytes::from_static(b"0123456789abcdef"),
            ..b
        };
        let bytes = hosted.encode();
        assert_eq!(StoreBatch::decode(&bytes).unwrap(), hosted);
        for cut in 0..bytes.len() {
            assert!(
                StoreBatch::decode(&bytes.slice(..cut)).is_ok() == (cut == bytes.len() - 18),
                "{cut}"
            );
        }
    }

    #[test]
    fn an_answer_round_trips() {
        let a = StoreAnswer::Admitted(Admitted {
            skip: 1,
            run: Some(Ordered {
                first_counter: 2,
                first_seq: 10,
                count: 3,
            }),
            acked: 4,
            earlier: vec![Ordered {
                first_counter: 1,
                first_seq: 9,
                count: 1,
            }],
        });
        assert_eq!(StoreAnswer::decode(&a.encode()).unwrap(), a);
        let r = StoreAnswer::Refused(crate::error::ErrorCode::Protocol);
        assert_eq!(StoreAnswer::decode(&r.encode()).unwrap(), r);
    }
}
