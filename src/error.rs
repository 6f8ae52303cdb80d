//! The errors a caller of the engine sees, each with a stable code that JS gets as
//! `err.code`.

use crate::protocol::FrameError;

/// Every stable error code of the engine, in one place: what JS gets as `err.code`,
/// what peers send in an `Error` message and what the Raft layer answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A setting is invalid (thrown where it is given).
    InvalidConfig,
    /// A peer sent something the protocol does not allow; its connection closes.
    Protocol,
    /// An I/O error (disk, socket).
    Io,
    /// The store, client or Raft node is closed.
    Closed,
    /// Nobody can answer now (no leader, a peer unreachable, a server cut off from its group); retried or tried elsewhere.
    Unavailable,
    /// Wrong credentials (a login, or a cluster secret).
    Auth,
    /// Not done within its time (it may still happen later).
    Timeout,
    /// Only the leader can do this; the error names it when known.
    NotLeader,
    /// This address failed too many logins and is locked out for a while.
    Banned,
    /// The key limit of the replicated state is reached.
    StateFull,
    /// A compare-and-set found another version.
    Conflict,
    /// The TLS handshake failed.
    Tls,
    /// The client's store is not the server's (another reducer).
    StoreMismatch,
    /// The node belongs to another cluster.
    OtherCluster,
    /// An action is not a plain object with a string type.
    InvalidAction,
    /// A command of another state machine's kind; nothing changed (between nodes only).
    Invalid,
    /// Between fresh nodes: not in a cluster yet (formation; between nodes only).
    Fresh,
    /// A message exceeds the maximum frame size.
    FrameTooLarge,
    /// Connecting failed.
    Connect,
    /// Not a valid node id.
    InvalidNodeId,
    /// An argument is invalid.
    InvalidArgument,
    /// A bug; please report it.
    Internal,
    /// The connection was lost.
    Disconnected,
    /// Another membership change is in progress.
    Busy,
    /// The address is in use.
    AddrInUse,
    /// Too many actions wait for the server.
    QueueFull,
    /// The operating system refused (a port, a file).
    Permission,
    /// Events were dropped: nobody read them in time.
    EventsDropped,
    /// A native reducer refused an action (or panicked on it); the state is unchanged.
    Reducer,
    /// A reducer library could not be loaded (not found, missing symbol, another ABI).
    ReducerLoad,
    /// The store already has a client connection (`createClient` twice).
    AlreadyConnected,
    /// A backup file with a wrong key, altered or truncated (nothing is loaded).
    BackupCorrupt,
    /// A Raft `dataDir` written in a format this version does not read (an older
    /// version's); nothing in it is changed.
    DataFormat,
    /// A Raft coordinator, cluster manager or state machine used before `initialize()`.
    NotInitialized,
    /// `Cluster.start()` while the node is running, starting or stopping.
    ClusterRunning,
    /// A `Cluster` query before `Cluster.start()`.
    ClusterNotStarted,
    /// A replica's state differs from its authority's at the same point of the ordered
    /// actions: a reducer that is not deterministic (or mutates its state), found by the
    /// divergence guard's CHECK / DIGEST actions.
    Diverged,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 37] = [
        ErrorCode::InvalidConfig,
        ErrorCode::Protocol,
        ErrorCode::Io,
        ErrorCode::Closed,
        ErrorCode::Unavailable,
        ErrorCode::Auth,
        ErrorCode::Timeout,
        ErrorCode::NotLeader,
        ErrorCode::Banned,
        ErrorCode::StateFull,
        ErrorCode::Conflict,
        ErrorCode::Tls,
        ErrorCode::StoreMismatch,
        ErrorCode::OtherCluster,
        ErrorCode::InvalidAction,
        ErrorCode::Invalid,
        ErrorCode::Fresh,
        ErrorCode::FrameTooLarge,
        ErrorCode::Connect,
        ErrorCode::InvalidNodeId,
        ErrorCode::InvalidArgument,
        ErrorCode::Internal,
        ErrorCode::Disconnected,
        ErrorCode::Busy,
        ErrorCode::AddrInUse,
        ErrorCode::QueueFull,
        ErrorCode::Permission,
        ErrorCode::EventsDropped,
        ErrorCode::Reducer,
        ErrorCode::ReducerLoad,
        ErrorCode::AlreadyConnected,
        ErrorCode::BackupCorrupt,
        ErrorCode::DataFormat,
        ErrorCode::NotInitialized,
        ErrorCode::ClusterRunning,
        ErrorCode::ClusterNotStarted,
        ErrorCode::Diverged,
    ];

    /// Whether a user can meet this code (the others pass only between nodes, and are
    /// turned into one of these before they reach anybody).
    pub const fn is_public(self) -> bool {
        !matches!(self, ErrorCode::Fresh | ErrorCode::Invalid)
    }

    /// The code spelled `s`, if it is one.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidConfig => "ERR_INVALID_CONFIG",
            ErrorCode::Protocol => "ERR_PROTOCOL",
            ErrorCode::Io => "ERR_IO",
            ErrorCode::Closed => "ERR_CLOSED",
            ErrorCode::Unavailable => "ERR_UNAVAILABLE",
            ErrorCode::Auth => "ERR_AUTH",
            ErrorCode::Timeout => "ERR_TIMEOUT",
            ErrorCode::NotLeader => "ERR_NOT_LEADER",
            ErrorCode::Banned => "ERR_BANNED",
            ErrorCode::StateFull => "ERR_STATE_FULL",
            ErrorCode::Conflict => "ERR_CONFLICT",
            ErrorCode::Tls => "ERR_TLS",
            ErrorCode::StoreMismatch => "ERR_STORE_MISMATCH",
            ErrorCode::OtherCluster => "ERR_OTHER_CLUSTER",
            ErrorCode::InvalidAction => "ERR_INVALID_ACTION",
            ErrorCode::Invalid => "ERR_INVALID",
            ErrorCode::Fresh => "ERR_FRESH",
            ErrorCode::FrameTooLarge => "ERR_FRAME_TOO_LARGE",
            ErrorCode::Connect => "ERR_CONNECT",
            ErrorCode::InvalidNodeId => "ERR_INVALID_NODE_ID",
            ErrorCode::InvalidArgument => "ERR_INVALID_ARGUMENT",
            ErrorCode::Internal => "ERR_INTERNAL",
            ErrorCode::Reducer => "ERR_REDUCER",
            ErrorCode::ReducerLoad => "ERR_REDUCER_LOAD",
            ErrorCode::Disconnected => "ERR_DISCONNECTED",
            ErrorCode::Busy => "ERR_BUSY",
            ErrorCode::AddrInUse => "ERR_ADDR_IN_USE",
            ErrorCode::QueueFull => "ERR_QUEUE_FULL",
            ErrorCode::Permission => "ERR_PERMISSION",
            ErrorCode::EventsDropped => "ERR_EVENTS_DROPPED",
            ErrorCode::AlreadyConnected => "ERR_ALREADY_CONNECTED",
            ErrorCode::BackupCorrupt => "ERR_BACKUP_CORRUPT",
            ErrorCode::DataFormat => "ERR_DATA_FORMAT",
            ErrorCode::NotInitialized => "ERR_NOT_INITIALIZED",
            ErrorCode::ClusterRunning => "ERR_CLUSTER_RUNNING",
            ErrorCode::ClusterNotStarted => "ERR_CLUSTER_NOT_STARTED",
            ErrorCode::Diverged => "ERR_DIVERGED",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Between nodes a code travels as its spelling, so that a node of another version can
/// read it (and the frame keeps the layout it had when codes were strings).
impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A code this version does not know (a newer peer's) reads as `Internal`: the message
/// it came with still says what happened, and the rest of the frame is still good.
impl<'de> serde::Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ErrorCode, D::Error> {
        struct Spelling;
        impl serde::de::Visitor<'_> for Spelling {
            type Value = ErrorCode;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an error code")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ErrorCode, E> {
                Ok(ErrorCode::parse(s).unwrap_or(ErrorCode::Internal))
            }
        }
        d.deserialize_str(Spelling)
    }
}

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
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidConfig(_) => ErrorCode::InvalidConfig,
            Error::Closed => ErrorCode::Closed,
            Error::QueueFull { .. } => ErrorCode::QueueFull,
            Error::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            Error::InvalidAction(_) => ErrorCode::InvalidAction,
            Error::Frame(f) => f.code(),
            Error::Io(_) => ErrorCode::Io,
        }
    }
}

/// The RaftNode API's error codes (`RaftError.code`), spelled as @ruvector/raft spells
/// them (its users compare against its `RaftErrorCode` enum), plus `TIMEOUT` and
/// `CLOSED`, which it lacks. Kept beside [`ErrorCode`] so that every code the engine
/// hands out is listed in this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeErrorCode {
    /// Only the leader takes proposals; the error names the leader.
    NotLeader,
    /// No leader is known.
    NoLeader,
    /// A malformed RequestVote.
    InvalidTerm,
    /// Log entries that do not follow one another.
    InvalidLogIndex,
    /// A malformed AppendEntries.
    LogInconsistency,
    ConfigError,
    Internal,
    /// Not committed (or applied here) in time.
    Timeout,
    /// The node is stopped.
    Closed,
    /// Events were dropped: the JS thread did not read them in time.
    EventsDropped,
}

impl NodeErrorCode {
    pub const ALL: [NodeErrorCode; 10] = [
        NodeErrorCode::NotLeader,
        NodeErrorCode::NoLeader,
        NodeErrorCode::InvalidTerm,
        NodeErrorCode::InvalidLogIndex,
        NodeErrorCode::LogInconsistency,
        NodeErrorCode::ConfigError,
        NodeErrorCode::Internal,
        NodeErrorCode::Timeout,
        NodeErrorCode::Closed,
        NodeErrorCode::EventsDropped,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            NodeErrorCode::NotLeader => "NOT_LEADER",
            NodeErrorCode::NoLeader => "NO_LEADER",
            NodeErrorCode::InvalidTerm => "INVALID_TERM",
            NodeErrorCode::InvalidLogIndex => "INVALID_LOG_INDEX",
            NodeErrorCode::LogInconsistency => "LOG_INCONSISTENCY",
            NodeErrorCode::ConfigError => "CONFIG_ERROR",
            NodeErrorCode::Internal => "INTERNAL",
            NodeErrorCode::Timeout => "TIMEOUT",
            NodeErrorCode::Closed => "CLOSED",
            NodeErrorCode::EventsDropped => "EVENTS_DROPPED",
        }
    }
}

/// A code of either list, for what both APIs share (the bindings' JS errors and event
/// queues).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnyCode {
    Engine(ErrorCode),
    Node(NodeErrorCode),
}

impl AnyCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            AnyCode::Engine(c) => c.as_str(),
            AnyCode::Node(c) => c.as_str(),
        }
    }
}

/// As JS reads it: the spelling.
impl serde::Serialize for AnyCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl serde::Serialize for NodeErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        AnyCode::Node(*self).serialize(s)
    }
}

impl From<ErrorCode> for AnyCode {
    fn from(c: ErrorCode) -> AnyCode {
        AnyCode::Engine(c)
    }
}

impl From<NodeErrorCode> for AnyCode {
    fn from(c: NodeErrorCode) -> AnyCode {
        AnyCode::Node(c)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_code_is_distinct_and_spelled_as_its_name() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            let name = format!("{c:?}");
            let mut spelled = String::from("ERR");
            for ch in name.chars() {
                if ch.is_uppercase() {
                    spelled.push('_');
                }
                spelled.push(ch.to_ascii_uppercase());
            }
            assert_eq!(c.as_str(), spelled);
        }
    }

    #[test]
    fn codes_cross_the_wire_as_their_spelling_and_an_unknown_one_as_internal() {
        for c in ErrorCode::ALL {
            let bytes = postcard::to_stdvec(&c).unwrap();
            assert_eq!(bytes, postcard::to_stdvec(c.as_str()).unwrap());
            assert_eq!(postcard::from_bytes::<ErrorCode>(&bytes).unwrap(), c);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        // A newer peer's code, inside a message that goes on after it: the code reads as
        // Internal and the rest of the frame is still read.
        let bytes = postcard::to_stdvec(&("ERR_FROM_THE_FUTURE", 7u8)).unwrap();
        let (code, next): (ErrorCode, u8) = postcard::from_bytes(&bytes).unwrap();
        assert_eq!((code, next), (ErrorCode::Internal, 7));
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"ERR_FROM_THE_FUTURE\"").unwrap(),
            ErrorCode::Internal
        );
    }

    #[test]
    fn raft_node_codes_are_the_seeds_spelling() {
        let mut seen = std::collections::HashSet::new();
        for c in super::NodeErrorCode::ALL {
            assert!(seen.insert(c.as_str()));
            let name = format!("{c:?}");
            let mut spelled = String::new();
            for (i, ch) in name.chars().enumerate() {
                if ch.is_uppercase() && i > 0 {
                    spelled.push('_');
                }
                spelled.push(ch.to_ascii_uppercase());
            }
            assert_eq!(c.as_str(), spelled);
        }
    }
}
