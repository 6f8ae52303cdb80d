//! The one binary layout of every message in this engine (the store's, membership's,
//! the link handshake's): a tag byte, fixed-width big-endian integers, `u32`-length-
//! prefixed byte strings and lists. Readers never trust a length: each checks what is
//! left of the frame before it takes anything, and a list's count before allocating.

use super::frame::FrameError;
use bytes::{Buf, BufMut, Bytes, BytesMut};

pub fn put_bytes(dst: &mut BytesMut, b: &[u8]) {
    dst.put_u32(b.len() as u32);
    dst.extend_from_slice(b);
}

pub fn get_u8(src: &mut Bytes) -> Result<u8, FrameError> {
    if src.remaining() < 1 {
        return Err(FrameError::Malformed("truncated message"));
    }
    Ok(src.get_u8())
}

pub fn get_u64(src: &mut Bytes) -> Result<u64, FrameError> {
    if src.remaining() < 8 {
        return Err(FrameError::Malformed("truncated message"));
    }
    Ok(src.get_u64())
}

pub fn get_u32(src: &mut Bytes) -> Result<u32, FrameError> {
    if src.remaining() < 4 {
        return Err(FrameError::Malformed("truncated message"));
    }
    Ok(src.get_u32())
}

pub fn get_bytes(src: &mut Bytes) -> Result<Bytes, FrameError> {
    if src.remaining() < 4 {
        return Err(FrameError::Malformed("truncated message"));
    }
    let n = src.get_u32() as usize;
    if src.remaining() < n {
        return Err(FrameError::Malformed(
            "string runs past the end of the frame",
        ));
    }
    Ok(src.split_to(n))
}

pub fn get_string(src: &mut Bytes) -> Result<String, FrameError> {
    let b = get_bytes(src)?;
    String::from_utf8(b.to_vec()).map_err(|_| FrameError::Malformed("invalid UTF-8"))
}

pub fn get_list(src: &mut Bytes) -> Result<Vec<Bytes>, FrameError> {
    if src.remaining() < 4 {
        return Err(FrameError::Malformed("truncated message"));
    }
    let n = src.get_u32() as usize;
    // Each element needs at least its 4-byte length: refuse counts the frame cannot hold
    // before allocating for them.
    if n > src.remaining() / 4 {
        return Err(FrameError::Malformed("list longer than its frame"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(get_bytes(src)?);
    }
    Ok(out)
}

/// `N` raw bytes (a nonce).
pub fn get_array<const N: usize>(src: &mut Bytes) -> Result<[u8; N], FrameError> {
    if src.remaining() < N {
        return Err(FrameError::Malformed("truncated message"));
    }
    let mut out = [0u8; N];
    src.copy_to_slice(&mut out);
    Ok(out)
}

/// A message must fill its frame: bytes after it are a malformed frame, not padding.
pub fn whole<T>(src: &Bytes, msg: T) -> Result<T, FrameError> {
    if src.has_remaining() {
        return Err(FrameError::Malformed("trailing bytes after the message"));
    }
    Ok(msg)
}
