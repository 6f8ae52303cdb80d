//! The peer session: one handshake and one frame authentication for every link between
//! nodes (Raft, membership, a replicated store's servers).
//!
//! ```text
//! dialer                                     acceptor
//!   label (R C 1 kind) · HELLO kind, name, nonce, auth  ──▶
//!                        ◀──  WELCOME name, nonce, auth · PROOF (with a secret)
//!   PROOF (with a secret) · first message  ──▶
//! ```
//!
//! With a cluster secret both ends derive the session key
//! `HMAC(secret, kind, dialer name and nonce, acceptor name and nonce)`; a PROOF is the
//! first tagged frame, and every frame after the handshake carries
//! `HMAC(key, direction, sequence number, body)`. A frame from another connection, an
//! earlier frame replayed, or one from a node without the secret fails its check and
//! ends the link; a wrong secret is found in the handshake, on both sides, before either
//! trusts anything. Nothing secret crosses the wire. Without a secret the frames carry no
//! tag (the link is as trusted as the network; TLS underneath when configured).

use super::label::Kind;
use crate::error::ErrorCode;
use crate::protocol::codec;
use crate::protocol::frame::write_frame;
use crate::protocol::{FrameCodec, FrameLimits};
use crate::transport::{ReadHalf, Stream, WriteHalf};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

type HmacSha256 = Hmac<Sha256>;
pub const TAG: usize = 32;
const NONCE: usize = 16;

const HELLO: u8 = 1;
const WELCOME: u8 = 2;
const REFUSED: u8 = 3;

/// HMAC-SHA256 of the parts, concatenated: the one primitive under session keys, frame
/// tags and store logins. Callers make their parts unambiguous (fixed sizes, lengths).
pub fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Compares in constant time (a tag must not be guessed byte by byte from timing).
pub fn verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.verify_slice(tag).is_ok()
}

/// Who this end is, and how it authenticates.
#[derive(Clone, Copy)]
pub struct Local<'a> {
    pub name: &'a str,
    pub secret: Option<&'a str>,
    pub limits: FrameLimits,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn denied(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, msg.into())
}

fn put_str(b: &mut BytesMut, s: &str) {
    codec::put_bytes(b, s.as_bytes());
}

fn get_str(b: &mut Bytes) -> io::Result<String> {
    codec::get_string(b).map_err(|e| invalid(format!("bad handshake: {e}")))
}

fn get_nonce(b: &mut Bytes) -> io::Result<[u8; NONCE]> {
    codec::get_array(b).map_err(|e| invalid(format!("bad handshake: {e}")))
}

fn session_key(
    secret: &str,
    kind: Kind,
    dialer: (&str, &[u8]),
    acceptor: (&str, &[u8]),
) -> [u8; 32] {
    let (dl, al) = (
        (dialer.0.len() as u32).to_be_bytes(),
        (acceptor.0.len() as u32).to_be_bytes(),
    );
    mac(
        secret.as_bytes(),
        &[
            b"redux-cluster-rs link v1",
            &[kind as u8],
            &dl,
            dialer.0.as_bytes(),
            dialer.1,
            &al,
            acceptor.0.as_bytes(),
            acceptor.1,
        ],
    )
}

/// The receiving half of a session: frames in, checked and stripped of their tag.
pub struct SessionReader {
    frames: FramedRead<ReadHalf, FrameCodec>,
    /// HMAC keyed with the session key, cloned per frame (the key schedule once).
    key: Option<HmacSha256>,
    /// The sender's direction byte (0: the dialer's frames, 1: the acceptor's).
    side: u8,
    seq: u64,
    peer: String,
}

impl SessionReader {
    /// The next frame's body. `UnexpectedEof` when the peer closed; `PermissionDenied`
    /// when a frame fails its tag (a wrong secret, a replay, another link's frame).
    pub async fn recv(&mut self) -> io::Result<Bytes> {
        let mut f = match self.frames.next().await {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(invalid(e.to_string())),
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} closed the connection", self.peer_or("the peer")),
                ))
            }
        };
        let Some(key) = &self.key else { return Ok(f) };
        if f.len() < TAG {
            return Err(denied("a frame without an authentication tag"));
        }
        let tag = f.split_to(TAG);
        let mut m = key.clone();
        m.update(&[self.side]);
        m.update(&self.seq.to_be_bytes());
        m.update(&f);
        let ok = m.verify_slice(&tag).is_ok();
        self.seq += 1;
        if !ok {
            return Err(denied(format!(
                "a message from {} failed authentication (a wrong clusterSecret, or replayed)",
                self.peer_or("the peer")
            )));
        }
        Ok(f)
    }

    fn peer_or<'a>(&'a self, d: &'a str) -> &'a str {
        if self.peer.is_empty() {
            d
        } else {
            &self.peer
        }
    }

    /// Reads and drops what the peer still sends until it closes (after a last word:
    /// closing a socket with unread bytes sends a reset, which drops the peer's unread
    /// last word).
    pub async fn drain(&mut self) {
        while let Some(Ok(_)) = self.frames.next().await {}
    }
}

/// The sending half: frames out, each tagged with the next sequence number.
pub struct SessionWriter {
    writer: WriteHalf,
    buf: BytesMut,
    limits: FrameLimits,
    key: Option<HmacSha256>,
    /// This end's direction byte.
    side: u8,
    seq: u64,
}

impl SessionWriter {
    /// Sends one frame whose body `fill` writes; returns the bytes it took on the wire.
    pub async fn send(&mut self, fill: impl FnOnce(&mut BytesMut)) -> io::Result<usize> {
        self.buf.clear();
        self.frame(fill)?;
        self.writer.write_all(&self.buf).await?;
        Ok(self.buf.len())
    }

    /// Appends one tagged frame to the buffer (the tag is written in place after the body).
    fn frame(&mut self, fill: impl FnOnce(&mut BytesMut)) -> io::Result<()> {
        let (key, side, seq) = (&self.key, self.side, self.seq);
        write_frame(&mut self.buf, &self.limits, |d| {
            let Some(key) = key else { return fill(d) };
            let at = d.len();
            d.put_bytes(0, TAG);
            fill(d);
            let mut m = key.clone();
            m.update(&[side]);
            m.update(&seq.to_be_bytes());
            m.update(&d[at + TAG..]);
            d[at..at + TAG].copy_from_slice(&m.finalize().into_bytes());
        })
        .map_err(io::Error::other)?;
        self.seq += 1;
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.writer.shutdown().await;
    }
}

/// An established session.
pub struct Session {
    pub reader: SessionReader,
    pub writer: SessionWriter,
    /// The other end's name (as its hello or welcome gave it).
    pub peer: String,
    /// The dialer's nonce: both ends know it, and it differs on every link (membership
    /// keeps, of two links of one pair, the one whose dialer's nonce is larger).
    pub dialer_nonce: [u8; NONCE],
}

fn plain_frame(
    limits: &FrameLimits,
    dst: &mut BytesMut,
    fill: impl FnOnce(&mut BytesMut),
) -> io::Result<()> {
    write_frame(dst, limits, fill).map_err(io::Error::other)
}

impl Session {
    /// `side`: this end's direction byte (0: the dialer).
    fn new(
        frames: FramedRead<ReadHalf, FrameCodec>,
        writer: WriteHalf,
        limits: FrameLimits,
        key: Option<[u8; 32]>,
        side: u8,
        peer: String,
        dialer_nonce: [u8; NONCE],
    ) -> Session {
        let key = key
            .map(|k| <HmacSha256 as Mac>::new_from_slice(&k).expect("HMAC takes any key length"));
        Session {
            reader: SessionReader {
                frames,
                key: key.clone(),
                side: 1 - side,
                seq: 0,
                peer: peer.clone(),
            },
            writer: SessionWriter {
                writer,
                buf: BytesMut::new(),
                limits,
                key,
                side,
                seq: 0,
            },
            peer,
            dialer_nonce,
        }
    }

    /// Dials: writes the label and the hello, reads the welcome, proves the key (with a
    /// secret) and checks the acceptor's proof.
    pub async fn connect(stream: Stream, kind: Kind, local: Local<'_>) -> io::Result<Session> {
        let (r, mut w) = stream.into_split();
        let nonce: [u8; NONCE] = rand::random();
        let mut out = BytesMut::new();
        out.extend_from_slice(&kind.label());
        plain_frame(&local.limits, &mut out, |d| {
            d.put_u8(HELLO);
            d.put_u8(kind as u8);
            put_str(d, local.name);
            d.extend_from_slice(&nonce);
            d.put_u8(local.secret.is_some() as u8);
        })?;
        w.write_all(&out).await?;
        let mut frames = FramedRead::new(r, FrameCodec::new(local.limits));
        let mut welcome = match frames.next().await {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(invalid(e.to_string())),
            None => return Err(io::ErrorKind::UnexpectedEof.into()),
        };
        if !welcome.has_remaining() {
            return Err(invalid("an empty answer to the hello"));
        }
        match welcome.get_u8() {
            WELCOME => {}
            REFUSED => {
                let code = get_str(&mut welcome)?;
                let message = get_str(&mut welcome)?;
                let e = format!("refused: {message} ({code})");
                let auth = ErrorCode::parse(&code) == Some(ErrorCode::Auth);
                return Err(if auth { denied(e) } else { invalid(e) });
            }
            _ => return Err(invalid(format!("did not answer as {}", kind.as_str()))),
        }
        let name = get_str(&mut welcome)?;
        let theirs = get_nonce(&mut welcome)?;
        let auth = welcome.has_remaining() && welcome.get_u8() == 1;
        if auth != local.secret.is_some() {
            return Err(denied(format!(
                "{name} {} a clusterSecret and this node {}",
                if auth { "uses" } else { "does not use" },
                if local.secret.is_some() {
                    "does"
                } else {
                    "does not"
                }
            )));
        }
        let key = local
            .secret
            .map(|s| session_key(s, kind, (local.name, &nonce), (&name, &theirs)));
        let mut s = Session::new(frames, w, local.limits, key, 0, name, nonce);
        if key.is_some() {
            s.writer.send(|_| {}).await?;
            s.expect_proof().await?;
        }
        Ok(s)
    }

    /// Accepts a connection whose label (`kind`) the caller read: reads the hello,
    /// answers with the welcome and a proof (with a secret), and checks the dialer's.
    pub async fn accept(
        mut frames: FramedRead<ReadHalf, FrameCodec>,
        mut w: WriteHalf,
        kind: Kind,
        local: Local<'_>,
    ) -> io::Result<Session> {
        let mut hello = match frames.next().await {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(invalid(e.to_string())),
            None => return Err(io::ErrorKind::UnexpectedEof.into()),
        };
        if hello.remaining() < 2 || hello.get_u8() != HELLO {
            return Err(invalid(format!("expected the hello of {}", kind.as_str())));
        }
        if hello.get_u8() != kind as u8 {
            return Err(invalid("the hello names another kind than the label"));
        }
        let name = get_str(&mut hello)?;
        let theirs = get_nonce(&mut hello)?;
        let auth = hello.has_remaining() && hello.get_u8() == 1;
        if auth != local.secret.is_some() {
            let why = format!("{name} disagrees on using a clusterSecret");
            let _ = Session::refuse(&mut w, &local.limits, ErrorCode::Auth, &why).await;
            return Err(denied(why));
        }
        let nonce: [u8; NONCE] = rand::random();
        let key = local
            .secret
            .map(|s| session_key(s, kind, (&name, &theirs), (local.name, &nonce)));
        let mut s = Session::new(frames, w, local.limits, key, 1, name, theirs);
        // The welcome goes out plain, the proof tagged, in one write.
        plain_frame(&local.limits, &mut s.writer.buf, |d| {
            d.put_u8(WELCOME);
            put_str(d, local.name);
            d.extend_from_slice(&nonce);
            d.put_u8(key.is_some() as u8);
        })?;
        if key.is_some() {
            s.writer.frame(|_| {})?;
        }
        s.writer.writer.write_all(&s.writer.buf).await?;
        if key.is_some() {
            s.expect_proof().await?;
        }
        Ok(s)
    }

    async fn expect_proof(&mut self) -> io::Result<()> {
        let proof = self.reader.recv().await.map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => denied(format!(
                "{:?} did not prove the cluster secret (a wrong clusterSecret)",
                self.peer
            )),
            _ => e,
        })?;
        if !proof.is_empty() {
            return Err(invalid("a proof with a body"));
        }
        Ok(())
    }

    /// Accepts a connection on a port that serves one kind of peer (a Raft port, a
    /// membership port): its label must name `kind`; another is refused with the reason,
    /// which the dialer reads.
    pub async fn accept_only(stream: Stream, kind: Kind, local: Local<'_>) -> io::Result<Session> {
        let (r, mut w) = stream.into_split();
        match super::labelled(r, local.limits).await? {
            (Some(k), frames) if k == kind => Session::accept(frames, w, kind, local).await,
            (other, _) => {
                let why = format!(
                    "this port takes {}, not {}",
                    kind.as_str(),
                    other.unwrap_or(Kind::Client).as_str()
                );
                let _ = Session::refuse(&mut w, &local.limits, ErrorCode::Protocol, &why).await;
                Err(invalid(why))
            }
        }
    }

    /// Refuses a dialer before its session (this port does not serve its kind, its
    /// settings disagree): the dialer's `connect` fails with `code` and `message`.
    pub async fn refuse(
        w: &mut WriteHalf,
        limits: &FrameLimits,
        code: ErrorCode,
        message: &str,
    ) -> io::Result<()> {
        let mut out = BytesMut::new();
        plain_frame(limits, &mut out, |d| {
            d.put_u8(REFUSED);
            put_str(d, code.as_str());
            put_str(d, message);
        })?;
        w.write_all(&out).await?;
        let _ = w.shutdown().await;
        Ok(())
    }

    pub fn split(self) -> (SessionReader, SessionWriter) {
        (self.reader, self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::labelled;
    use crate::transport::Listener;

    async fn pair(
        kind: Kind,
        dialer_secret: Option<&'static str>,
        acceptor_secret: Option<&'static str>,
    ) -> (io::Result<Session>, io::Result<Session>) {
        let (l, ep) = Listener::loopback().unwrap();
        let acceptor = tokio::spawn(async move {
            let (st, _) = l.accept().await.unwrap();
            let (r, w) = st.into_split();
            let (k, frames) = labelled(r, FrameLimits::default()).await?;
            assert_eq!(k, Some(kind));
            let local = Local {
                name: "b",
                secret: acceptor_secret,
                limits: FrameLimits::default(),
            };
            Session::accept(frames, w, kind, local).await
        });
        let local = Local {
            name: "a",
            secret: dialer_secret,
            limits: FrameLimits::default(),
        };
        let dialer = Session::connect(Stream::connect(&ep).await.unwrap(), kind, local).await;
        (dialer, acceptor.await.unwrap())
    }

    #[tokio::test]
    async fn authenticated_both_ways_and_refusals() {
        let (d, a) = pair(Kind::Raft, Some("k"), Some("k")).await;
        let (mut d, mut a) = (d.unwrap(), a.unwrap());
        assert_eq!((d.peer.as_str(), a.peer.as_str()), ("b", "a"));
        assert_eq!(d.dialer_nonce, a.dialer_nonce);
        for i in 0..3u8 {
            d.writer.send(|b| b.put_u8(i)).await.unwrap();
            assert_eq!(&a.reader.recv().await.unwrap()[..], &[i]);
            a.writer.send(|b| b.put_u8(i + 10)).await.unwrap();
            assert_eq!(&d.reader.recv().await.unwrap()[..], &[i + 10]);
        }
        // No secret on either side: plain frames.
        let (d, a) = pair(Kind::Membership, None, None).await;
        let (mut d, mut a) = (d.unwrap(), a.unwrap());
        d.writer.send(|b| b.put_slice(b"hi")).await.unwrap();
        assert_eq!(&a.reader.recv().await.unwrap()[..], b"hi");

        // A wrong secret is found in the handshake, on both sides.
        let (d, a) = pair(Kind::Raft, Some("guess"), Some("k")).await;
        for e in [
            d.err().expect("dialer refuses"),
            a.err().expect("acceptor refuses"),
        ] {
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
            assert!(e.to_string().contains("clusterSecret"), "{e}");
        }
        // One side without a secret: refused with the reason, both ways.
        let (d, a) = pair(Kind::Raft, None, Some("k")).await;
        let e = d.err().expect("refused");
        assert!(e.to_string().contains("clusterSecret"), "{e}");
        assert!(a.is_err());
        let (d, _) = pair(Kind::Raft, Some("k"), None).await;
        assert_eq!(
            d.err().expect("refused").kind(),
            io::ErrorKind::PermissionDenied
        );
    }

    async fn accept_on(end: tokio::net::UnixStream) -> io::Result<Session> {
        let (r, w) = Stream::Unix(end).into_split();
        let (kind, frames) = labelled(r, FrameLimits::default()).await?;
        assert_eq!(kind, Some(Kind::Membership));
        let local = Local {
            name: "b",
            secret: Some("k"),
            limits: FrameLimits::default(),
        };
        Session::accept(frames, w, Kind::Membership, local).await
    }

    /// Everything a genuine dialer sent, recorded and replayed on a new connection, gets
    /// nowhere: the acceptor's new nonce is under the key the replayed proof was made with.
    #[tokio::test]
    async fn a_recorded_handshake_replayed_on_a_new_connection_is_refused() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::UnixStream;
        let (dialer_end, proxy_in) = UnixStream::pair().unwrap();
        let (proxy_out, acceptor_end) = UnixStream::pair().unwrap();
        let acceptor = tokio::spawn(accept_on(acceptor_end));
        let (mut in_r, mut in_w) = proxy_in.into_split();
        let (mut out_r, mut out_w) = proxy_out.into_split();
        let copier = tokio::spawn(async move { tokio::io::copy(&mut out_r, &mut in_w).await });
        let recorder = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = in_r.read(&mut buf).await {
                if n == 0 || out_w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            seen
        });
        let local = Local {
            name: "a",
            secret: Some("k"),
            limits: FrameLimits::default(),
        };
        let d = Session::connect(Stream::Unix(dialer_end), Kind::Membership, local).await;
        let a = acceptor.await.unwrap();
        assert!(d.is_ok() && a.is_ok(), "the genuine handshake");
        drop((d, a));
        let recorded = recorder.await.unwrap();
        copier.abort();

        let (mut replayer, acceptor_end) = UnixStream::pair().unwrap();
        let acceptor = tokio::spawn(accept_on(acceptor_end));
        replayer.write_all(&recorded).await.unwrap();
        let e = acceptor.await.unwrap().err().expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    }

    /// A frame replayed (the same bytes again), or carried over from another link, fails
    /// its tag: the sequence number and the link's nonces are under it.
    #[test]
    fn replayed_and_foreign_frames_fail() {
        let key = session_key("k", Kind::Raft, ("a", &[1; 16]), ("b", &[2; 16]));
        let other = session_key("k", Kind::Raft, ("a", &[1; 16]), ("b", &[3; 16]));
        let tagged = |key: [u8; 32], seq: u64, body: &[u8]| {
            let t = mac(&key, &[&[0], &seq.to_be_bytes(), body]);
            (t, body.to_vec())
        };
        let (t0, b0) = tagged(key, 0, b"x");
        assert!(verify(&key, &[&[0], &0u64.to_be_bytes(), &b0], &t0));
        assert!(
            !verify(&key, &[&[0], &1u64.to_be_bytes(), &b0], &t0),
            "replayed later"
        );
        assert!(
            !verify(&key, &[&[1], &0u64.to_be_bytes(), &b0], &t0),
            "reflected back"
        );
        assert!(
            !verify(&other, &[&[0], &0u64.to_be_bytes(), &b0], &t0),
            "another link"
        );
    }
}
