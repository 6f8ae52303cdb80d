//! The label: four bytes a dialer writes before anything else, `R C <version> <kind>`.
//!
//! A frame's first byte is the high byte of its length, at most `0x10` under the largest
//! frame size, so a connection whose first byte is `R` (0x52) cannot be a frame: the
//! acceptor tells a labelled connection from an unlabelled one with one byte. An
//! unlabelled connection is a store client (a browser, or a client of an earlier build);
//! its byte is handed back to the frame reader.

use crate::protocol::{FrameCodec, FrameLimits};
use bytes::BytesMut;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::FramedRead;

const VERSION: u8 = 1;

/// What a connection is, said before any application protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A store client (`createClient`, a browser).
    Client = 1,
    /// A Raft peer (a server of a replicated store, a coordinator node, a RaftNode).
    Raft = 2,
    /// A membership peer (`Cluster`).
    Membership = 3,
}

impl Kind {
    pub fn label(self) -> [u8; 4] {
        [b'R', b'C', VERSION, self as u8]
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Client => "a store client",
            Kind::Raft => "a Raft peer",
            Kind::Membership => "a membership peer",
        }
    }

    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Client),
            2 => Some(Kind::Raft),
            3 => Some(Kind::Membership),
            _ => None,
        }
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads a connection's label. Returns the kind (`None`: unlabelled, a store client) and
/// the bytes read that belong to the first frame (to put back in front of the reader).
pub async fn read_label<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<(Option<Kind>, BytesMut)> {
    let first = r.read_u8().await?;
    if first != b'R' {
        return Ok((None, BytesMut::from(&[first][..])));
    }
    let mut rest = [0u8; 3];
    r.read_exact(&mut rest).await?;
    if rest[0] != b'C' {
        return Err(bad("not a redux-cluster-rs connection".into()));
    }
    if rest[1] != VERSION {
        return Err(bad(format!(
            "the peer speaks link version {} (this build speaks version {VERSION})",
            rest[1]
        )));
    }
    match Kind::from_u8(rest[2]) {
        Some(k) => Ok((Some(k), BytesMut::new())),
        None => Err(bad(format!("unknown connection kind {}", rest[2]))),
    }
}

/// What a connection's read buffer starts with: a quiet client sends heartbeats of a few
/// bytes, and a larger frame reserves its whole length once its header is read, so the
/// default 8 KB would mostly sit empty on a server with thousands of clients.
pub const READ_BUFFER: usize = 1024;

/// Reads the label, then frames: what every acceptor does first.
pub async fn labelled<R: AsyncRead + Unpin>(
    mut r: R,
    limits: FrameLimits,
) -> io::Result<(Option<Kind>, FramedRead<R, FrameCodec>)> {
    let (kind, back) = read_label(&mut r).await?;
    let mut frames = FramedRead::with_capacity(r, FrameCodec::new(limits), READ_BUFFER);
    frames.read_buffer_mut().extend_from_slice(&back);
    Ok((kind, frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn labels_and_unlabelled_frames() {
        for k in [Kind::Client, Kind::Raft, Kind::Membership] {
            let mut r = &k.label()[..];
            assert_eq!(
                read_label(&mut r).await.unwrap(),
                (Some(k), BytesMut::new())
            );
        }
        // A frame's length: its first byte comes back.
        let mut r = &[0u8, 0, 0, 9][..];
        let (k, back) = read_label(&mut r).await.unwrap();
        assert_eq!((k, &back[..]), (None, &[0u8][..]));
        for bad in [&b"RX\x01\x01"[..], b"RC\x02\x01", b"RC\x01\x09"] {
            let mut r = bad;
            let e = read_label(&mut r).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bad:?}");
        }
        let mut r = &b"RC"[..];
        assert_eq!(
            read_label(&mut r).await.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
