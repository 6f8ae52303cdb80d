//! Property tests of everything that reads bytes or numbers a peer chose: the store's
//! frames and messages, the membership wire, Raft's RPCs, and the counters a client
//! sends. Arbitrary input must never panic (debug builds also check `u64` arithmetic),
//! never make a decoder hold more than its frame limit, and end in an error for that
//! connection only. A fixed number of cases runs in `cargo test`.

use crate::membership::wire::Wire;
use crate::protocol::{FrameCodec, FrameLimits, Message};
use crate::store::sequencer::Sequencer;
use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

const CASES: u32 = 512;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes that look like a frame often enough to get past the first checks: a length
/// prefix (sometimes honest, sometimes huge), the version byte, flags, then anything.
fn framish() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(None), any::<u32>().prop_map(Some)],
        prop_oneof![Just(1u8), any::<u8>()],
        prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(len, version, flags, body)| {
            let mut v = Vec::new();
            let n = len.unwrap_or(body.len() as u32 + 2);
            v.extend_from_slice(&n.to_be_bytes());
            v.push(version);
            v.push(flags);
            v.extend_from_slice(&body);
            v
        })
}

/// A message body: one of the known tags (or any byte), then arbitrary bytes.
fn messageish() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![0u8..16, any::<u8>()],
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(tag, rest)| {
            let mut v = vec![tag];
            v.extend_from_slice(&rest);
            v
        })
}

proptest! {
    #![proptest_config(config())]

    /// Fed in arbitrary chunks, the frame decoder yields payloads no larger than the
    /// limit, waits for more, or refuses; it never buffers past the limit.
    #[test]
    fn frame_decoder_stays_within_its_limit(
        stream in proptest::collection::vec(framish(), 1..4),
        cuts in proptest::collection::vec(1usize..64, 1..20),
        max in 1usize..4096,
    ) {
        let limits = FrameLimits { max_frame: max, compress_threshold: usize::MAX };
        let mut codec = FrameCodec::new(limits);
        let bytes: Vec<u8> = stream.concat();
        let mut buf = BytesMut::new();
        let mut at = 0;
        let mut cut = cuts.iter().cycle();
        'feed: while at < bytes.len() {
            let n = (*cut.next().unwrap()).min(bytes.len() - at);
            buf.put_slice(&bytes[at..at + n]);
            at += n;
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(payload)) => prop_assert!(payload.len() <= max),
                    Ok(None) => break,
                    Err(_) => break 'feed, // the connection closes
                }
            }
            // What it holds is at most one frame in progress plus the chunk just fed.
            prop_assert!(buf.len() <= 4 + 2 + max + 64, "holds {} bytes", buf.len());
        }
    }

    /// A deflated frame whose content inflates past the limit is refused.
    #[test]
    fn inflating_frames_are_bounded(size in 1usize..20_000, max in 1usize..10_000) {
        use flate2::{write::DeflateEncoder, Compression};
        use std::io::Write;
        let mut e = DeflateEncoder::new(Vec::new(), Compression::fast());
        e.write_all(&vec![b'x'; size]).unwrap();
        let packed = e.finish().unwrap();
        let mut buf = BytesMut::new();
        buf.put_u32(packed.len() as u32 + 2);
        buf.put_u8(crate::protocol::PROTOCOL_VERSION);
        buf.put_u8(1);
        buf.put_slice(&packed);
        let limits = FrameLimits { max_frame: max.max(packed.len()), compress_threshold: 0 };
        match FrameCodec::new(limits).decode(&mut buf) {
            Ok(Some(p)) => prop_assert!(p.len() == size && size <= limits.max_frame),
            Ok(None) => prop_assert!(false, "a whole frame was there"),
            Err(_) => prop_assert!(size > limits.max_frame),
        }
    }

    /// Any payload decodes to a message or an error; what decodes survives a trip
    /// through its encoding unchanged (a flag byte may be spelled differently).
    #[test]
    fn message_decode_never_panics(body in messageish()) {
        if let Ok(m) = Message::decode(Bytes::from(body.clone())) {
            let mut once = BytesMut::new();
            m.encode(&mut once);
            prop_assert!(once.len() == body.len());
            let m2 = Message::decode(once.clone().freeze()).expect("its own encoding decodes");
            let mut twice = BytesMut::new();
            m2.encode(&mut twice);
            prop_assert_eq!(&once[..], &twice[..]);
        }
    }

    /// The membership wire: any bytes decode or are refused.
    #[test]
    fn membership_wire_never_panics(body in messageish()) {
        let _ = Wire::decode(Bytes::from(body));
    }

    /// Raft RPCs arrive in postcard: arbitrary bytes, and valid requests (a write with an
    /// application's bytes in it) with a byte changed, parse or are refused.
    #[test]
    fn raft_requests_never_panic(
        junk in proptest::collection::vec(any::<u8>(), 0..200),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        use crate::consensus::net::Request;
        use crate::consensus::types::Command;
        let _ = postcard::from_bytes::<Request>(&junk);
        for valid in [
            Request::RemoveNode("n1".into()),
            Request::Write(Command::App(bytes::Bytes::from_static(b"{\"type\":\"ADD\"}").into())),
        ] {
            let mut bent = postcard::to_stdvec(&valid).unwrap();
            let i = at.index(bent.len());
            bent[i] = byte;
            let _ = postcard::from_bytes::<Request>(&bent);
        }
    }

    /// Counters a client sends are checked, not trusted: any sequence of submissions,
    /// with counters near `u64::MAX` among them, is admitted or refused, and the store's
    /// sequence advances by exactly what was admitted.
    #[test]
    fn sequencer_counters_never_overflow(
        subs in proptest::collection::vec(
            (0u64..3, prop_oneof![0u64..10, (u64::MAX - 10)..=u64::MAX, any::<u64>()], 0usize..4),
            1..40,
        )
    ) {
        let mut s = Sequencer::new(2);
        for (client, first, n) in subs {
            let before = s.head();
            match s.submit(client, first, n) {
                Ok(a) => {
                    let added = a.run.map_or(0, |r| u64::from(r.count));
                    prop_assert_eq!(s.head(), before + added);
                    prop_assert!(a.skip <= n);
                }
                Err(_) => prop_assert_eq!(s.head(), before),
            }
            prop_assert!(s.clients() <= 2);
        }
    }
}

/// The edge the property aims at, spelled out: counters are refused once `first + n`
/// would pass `u64::MAX`; a client whose counters end just below it can resend its last
/// action, which is skipped.
#[test]
fn counters_at_the_top_of_u64_are_refused_or_skipped() {
    let mut s = Sequencer::new(4);
    assert!(
        s.submit(7, u64::MAX, 1).is_err(),
        "first + n past u64::MAX is refused"
    );
    let a = s.submit(7, u64::MAX - 1, 1).expect("admitted");
    assert_eq!(a.run.map(|r| r.count), Some(1));
    let again = s.submit(7, u64::MAX - 1, 1).expect("a resend");
    assert_eq!((again.skip, again.run.is_none()), (1, true));
    assert_eq!(s.head(), 1);
}
