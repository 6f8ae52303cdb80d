//! The errors a caller of the engine sees, each with a stable code that JS gets as
//! `err.code`.

use crate::protocol::FrameError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("the store's connection is closed")]
    Closed,
    #[error(
        "{limit} actions are already waiting for the server (the queue limit); dispatch refused"
    )]
    QueueFull { limit: usize },
    #[error("action of {size} bytes exceeds the maximum frame size of {max} bytes")]
    FrameTooLarge { size: usize, max: usize },
    #[error("invalid action: {0}")]
    InvalidAction(String),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidConfig(_) => "ERR_INVALID_CONFIG",
            Error::Closed => "ERR_CLOSED",
            Error::QueueFull { .. } => "ERR_QUEUE_FULL",
            Error::FrameTooLarge { .. } => "ERR_FRAME_TOO_LARGE",
            Error::InvalidAction(_) => "ERR_INVALID_ACTION",
            Error::Frame(f) => f.code(),
            Error::Io(_) => "ERR_IO",
        }
    }
}
