//! The frame: `[u32 BE length][u8 version][u8 flags][payload]`, where `length` counts the
//! version, flags and payload bytes. Flag bit 0 means the payload is raw-deflated.
//!
//! The decoder checks the length against the maximum before it reserves memory, so a peer
//! announcing a 4 GiB frame costs nothing; a compressed payload is inflated with the same
//! limit, so a deflate bomb is refused as "too large" rather than eating memory.

use crate::error::ErrorCode;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{read::DeflateDecoder, write::DeflateEncoder, Compression};
use std::io::{Read, Write};
use tokio_util::codec::Decoder;

/// The version byte this build writes and accepts.
pub const PROTOCOL_VERSION: u8 = 1;
const HEADER: usize = 4 + 2;
const FLAG_DEFLATE: u8 = 0b0000_0001;

/// Limits shared by both ends of a connection.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// Largest payload (after decompression) accepted or sent.
    pub max_frame: usize,
    /// Payloads larger than this are deflated before sending.
    pub compress_threshold: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_frame: 256 * 1024 * 1024,
            compress_threshold: 256 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the maximum frame size of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("unsupported protocol version {0} (this build speaks version {PROTOCOL_VERSION})")]
    Version(u8),
    #[error("unknown frame flags {0:#04x}")]
    Flags(u8),
    #[error("frame shorter than its header")]
    Short,
    #[error("corrupt compressed payload: {0}")]
    Inflate(std::io::Error),
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The link's liveness watch: nothing came from the peer for this long.
    #[error("no sign of life from the peer for {} ms", .0.as_millis())]
    Silent(std::time::Duration),
}

impl FrameError {
    /// The stable error code reported to users.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            FrameError::Io(_) => ErrorCode::Io,
            FrameError::Silent(_) => ErrorCode::Timeout,
            _ => ErrorCode::Protocol,
        }
    }
}

/// Appends one frame holding the bytes `fill` writes. The payload is written in place and
/// compressed afterwards only when it turns out to be above the threshold, so small frames
/// (the hot path) are never copied.
pub fn write_frame(
    dst: &mut BytesMut,
    limits: &FrameLimits,
    fill: impl FnOnce(&mut BytesMut),
) -> Result<(), FrameError> {
    let start = dst.len();
    dst.put_u32(0);
    dst.put_u8(PROTOCOL_VERSION);
    dst.put_u8(0);
    fill(dst);
    let payload_len = dst.len() - start - HEADER;
    if payload_len > limits.max_frame {
        dst.truncate(start);
        return Err(FrameError::TooLarge {
            size: payload_len,
            max: limits.max_frame,
        });
    }
    if payload_len > limits.compress_threshold {
        let mut enc = DeflateEncoder::new(Vec::with_capacity(payload_len / 3), Compression::fast());
        enc.write_all(&dst[start + HEADER..])?;
        let packed = enc.finish()?;
        if packed.len() < payload_len {
            dst.truncate(start + HEADER);
            dst.extend_from_slice(&packed);
            dst[start + 5] = FLAG_DEFLATE;
        }
    }
    let len = (dst.len() - start - 4) as u32;
    dst[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Decodes frames into payloads (decompressed). Used through `FramedRead`.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    limits: FrameLimits,
}

impl FrameCodec {
    pub fn new(limits: FrameLimits) -> Self {
        FrameCodec { limits }
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len < 2 {
            return Err(FrameError::Short);
        }
        if len - 2 > self.limits.max_frame {
            return Err(FrameError::TooLarge {
                size: len - 2,
                max: self.limits.max_frame,
            });
        }
        // Check the version as soon as it is there, so garbage is refused after six bytes
        // instead of after however many bytes its first four announce.
        if src.len() >= 5 && src[4] != PROTOCOL_VERSION {
            return Err(FrameError::Version(src[4]));
        }
        if src.len() >= 6 && src[5] & !FLAG_DEFLATE != 0 {
            return Err(FrameError::Flags(src[5]));
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let mut body = src.split_to(len);
        let flags = body[1];
        body.advance(2);
        if flags & FLAG_DEFLATE == 0 {
            return Ok(Some(body.freeze()));
        }
        inflate(&body, self.limits.max_frame).map(Some)
    }
}

fn inflate(packed: &[u8], max: usize) -> Result<Bytes, FrameError> {
    let mut out = Vec::with_capacity((packed.len() * 3).min(max));
    // Read one byte past the limit to tell "exactly max" from "more than max".
    DeflateDecoder::new(packed)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(FrameError::Inflate)?;
    if out.len() > max {
        return Err(FrameError::TooLarge {
            size: out.len(),
            max,
        });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, threshold: usize) -> FrameLimits {
        FrameLimits {
            max_frame: max,
            compress_threshold: threshold,
        }
    }

    fn one(payload: &[u8], l: &FrameLimits) -> BytesMut {
        let mut b = BytesMut::new();
        write_frame(&mut b, l, |d| d.extend_from_slice(payload)).unwrap();
        b
    }

    #[test]
    fn round_trip_plain_and_compressed() {
        let l = limits(1 << 20, 100);
        let small = b"hello".to_vec();
        let big = vec![b'a'; 10_000];
        let mut buf = one(&small, &l);
        assert_eq!(buf[5], 0, "small payload is not compressed");
        buf.extend_from_slice(&one(&big, &l));
        assert!(buf.len() < 10_000, "big payload is compressed");
        let mut c = FrameCodec::new(l);
        assert_eq!(&c.decode(&mut buf).unwrap().unwrap()[..], &small[..]);
        assert_eq!(&c.decode(&mut buf).unwrap().unwrap()[..], &big[..]);
        assert!(c.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn partial_input_waits() {
        let l = limits(1 << 20, 1 << 20);
        let full = one(b"abcdef", &l);
        let mut c = FrameCodec::new(l);
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert!(c.decode(&mut part).unwrap().is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn oversized_is_refused_before_buffering() {
        let mut c = FrameCodec::new(limits(1000, 1 << 20));
        let mut b = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(matches!(c.decode(&mut b), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn sending_oversized_fails_and_leaves_buffer_clean() {
        let l = limits(10, 1 << 20);
        let mut b = BytesMut::from(&b"keep"[..]);
        let r = write_frame(&mut b, &l, |d| d.extend_from_slice(&[0u8; 11]));
        assert!(matches!(r, Err(FrameError::TooLarge { size: 11, max: 10 })));
        assert_eq!(&b[..], b"keep");
    }

    #[test]
    fn deflate_bomb_is_too_large() {
        let sender = limits(1 << 24, 10);
        let payload = vec![0u8; 1 << 20];
        let mut buf = one(&payload, &sender);
        assert!(buf.len() < 10_000);
        let mut c = FrameCodec::new(limits(64 * 1024, 10));
        assert!(matches!(
            c.decode(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_refused_early() {
        let mut c = FrameCodec::new(FrameLimits::default());
        let mut b = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(c.decode(&mut b).is_err());
        let mut b = BytesMut::from(&[0u8, 0, 0, 10, 9, 0][..]);
        assert!(matches!(c.decode(&mut b), Err(FrameError::Version(9))));
        let mut b = BytesMut::from(&[0u8, 0, 0, 10, 1, 0x80][..]);
        assert!(matches!(c.decode(&mut b), Err(FrameError::Flags(0x80))));
        let mut b = BytesMut::from(&[0u8, 0, 0, 1, 1][..]);
        assert!(matches!(c.decode(&mut b), Err(FrameError::Short)));
        let mut b = BytesMut::from(&[0u8, 0, 0, 8, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(c.decode(&mut b), Err(FrameError::Inflate(_))));
    }
}
