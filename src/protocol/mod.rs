//! Layer 1: frames and messages. Nothing here does IO; the transport feeds bytes in and
//! takes bytes out.
//!
//! - [`codec`]: the binary layout every message uses (tags, integers, byte strings).
//! - [`frame`]: the length-prefixed, versioned frame, with optional deflate above a size
//!   threshold and a hard maximum size checked before anything is buffered.
//! - [`message`]: the messages a frame carries, in a small hand-rolled binary layout whose
//!   actions and states stay JSON text, so they cross to JS without re-encoding.

pub mod codec;
pub mod frame;
pub mod message;

pub use frame::{FrameCodec, FrameError, FrameLimits, PROTOCOL_VERSION};
pub use message::{Message, Mode, Ordered};
