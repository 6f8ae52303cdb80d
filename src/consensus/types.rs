//! The Raft type configuration: what a log entry carries, what applying it returns, and
//! the identity a member is recorded under (`link::identity`).
//!
//! The core carries commands blind (as etcd-io/raft's `[]byte` entries and openraft's
//! multi-raft examples do): an application's command is bytes its own machine encodes
//! and decodes (see `state_machine::Codec`), so the log, the network and the proposer
//! need no change when an application adds a command, and no machine can be handed
//! another's command as a typed value.

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
// The default snapshot type the macro names.
use std::io::Cursor;

/// A member as the membership config records it: the one node identity (its name is
/// the JS `nodeId`; the `host:port` its Raft listener is reached at).
pub use crate::link::identity::{raft_id, NodeId};

/// Bytes only an application reads. In a binary format (the peers' messages, the log on
/// disk: postcard) they are raw bytes behind a length; in a text one (an entry a RaftNode
/// hands its JS transport as JSON), base64, which is smaller than an array of numbers.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Bytes);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl From<Bytes> for Blob {
    fn from(b: Bytes) -> Blob {
        Blob(b)
    }
}

impl From<Vec<u8>> for Blob {
    fn from(b: Vec<u8>) -> Blob {
        Blob(Bytes::from(b))
    }
}

impl std::ops::Deref for Blob {
    type Target = Bytes;
    fn deref(&self) -> &Bytes {
        &self.0
    }
}

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes, or base64 text")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Blob, E> {
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map(Blob::from)
                    .map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob::from(v))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

/// What a log entry carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// An application's command, as its machine encoded it.
    App(Blob),
    /// Commands proposed together (see `proposer`): applied in order, each with its own
    /// result, as if they were consecutive entries. Only the proposer builds these, one
    /// level deep.
    Batch(Vec<Command>),
    /// Names the cluster (the first one applied wins), so that a node of another cluster
    /// can be told apart. Internal: not counted, no event.
    Genesis { cluster: String },
}

impl Command {
    /// About how many bytes the command takes in an append, without encoding it: what
    /// bounds the size of one append (see `LogStore::limited_get_log_entries`).
    pub fn approx_bytes(&self) -> usize {
        const HEAD: usize = 8;
        HEAD + match self {
            Command::App(b) => b.len(),
            Command::Batch(cmds) => cmds.iter().map(Command::approx_bytes).sum(),
            Command::Genesis { cluster } => cluster.len(),
        }
    }
}

/// What applying an entry returns to whoever proposed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// A blank, membership or `Genesis` entry: nothing to say.
    #[default]
    None,
    /// The machine's answer to an `App` command, as the machine encoded it.
    App(Blob),
    /// For a `Batch`, the answer to each command, in order.
    Batch(Vec<Response>),
}

openraft::declare_raft_types!(
    /// The type configuration of redux-cluster-rs's Raft groups.
    pub TypeConfig:
        D = Command,
        R = Response,
        Node = NodeId,
);

/// The binary encoding of what Raft stores and sends: postcard (compact, maintained,
/// not self-describing, hence the opaque commands).
pub fn to_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(v)
}

pub fn from_bytes<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_round_trips_in_binary_and_in_json() {
        let c = Command::Batch(vec![
            Command::App(Blob::from(b"\x00\x01\"quoted\"\xff".to_vec())),
            Command::Genesis {
                cluster: "c1".into(),
            },
        ]);
        let bin = to_bytes(&c).unwrap();
        assert_eq!(from_bytes::<Command>(&bin).unwrap(), c);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), c);
        // Raw behind a length: one tag byte per enum, one length byte here.
        assert_eq!(
            to_bytes(&Command::App(Blob::from(vec![7u8; 5]))).unwrap(),
            [0, 5, 7, 7, 7, 7, 7]
        );
    }

    /// Every message between nodes can be binary: `net`'s JSON can become postcard
    /// without touching a type (no `Value`, no skipped, untagged or flattened field).
    #[test]
    fn every_request_and_reply_round_trips_in_postcard() {
        use crate::consensus::net::{ApiError, Committed, Reply, Request, Status};
        use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
        use openraft::raft::{
            AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
            VoteResponse,
        };
        use openraft::{
            CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta,
            SnapshotSegmentId, StorageError, StorageIOError, StoredMembership, Vote,
        };
        use std::collections::{BTreeMap, BTreeSet};

        let m = |n: &str| NodeId::at(n, &format!("{n}:1")).unwrap();
        let lid = |t, i| LogId::new(CommittedLeaderId::new(t, raft_id("a")), i);
        let members = Membership::new(
            vec![BTreeSet::from([raft_id("a"), raft_id("b")])],
            BTreeMap::from([(raft_id("a"), m("a")), (raft_id("b"), m("b"))]),
        );
        let vote = Vote::new_committed(2, raft_id("a"));
        let requests = vec![
            Request::Append(AppendEntriesRequest {
                vote,
                prev_log_id: Some(lid(1, 3)),
                entries: vec![
                    Entry {
                        log_id: lid(2, 4),
                        payload: EntryPayload::Normal(Command::Batch(vec![
                            Command::App(Blob::from(b"{\"a\":1}".to_vec())),
                            Command::Genesis {
                                cluster: "c".into(),
                            },
                        ])),
                    },
                    Entry {
                        log_id: lid(2, 5),
                        payload: EntryPayload::Membership(members.clone()),
                    },
                    Entry {
                        log_id: lid(2, 6),
                        payload: EntryPayload::Blank,
                    },
                ],
                leader_commit: None,
            }),
            Request::Vote(VoteRequest::new(Vote::new(3, raft_id("b")), None)),
            Request::Snapshot(InstallSnapshotRequest {
                vote,
                meta: SnapshotMeta {
                    last_log_id: Some(lid(2, 6)),
                    last_membership: StoredMembership::new(Some(lid(2, 5)), members),
                    snapshot_id: "s".into(),
                },
                offset: 7,
                data: vec![0, 1, 255],
                done: true,
            }),
            Request::Write(Command::App(Blob::default())),
            Request::Read,
            Request::AddNode(m("c")),
            Request::RemoveNode("c".into()),
            Request::Join(m("d")),
            Request::Ping,
            Request::AddReplica(m("e")),
        ];
        let io = std::io::Error::other("disk full");
        let replies = vec![
            Reply::Append(Ok(AppendEntriesResponse::PartialSuccess(Some(lid(2, 5))))),
            Reply::Append(Err(RaftError::Fatal(Fatal::StorageError(
                StorageError::from(StorageIOError::write_logs(&io)),
            )))),
            Reply::Append(Ok(AppendEntriesResponse::HigherVote(vote))),
            Reply::Vote(Ok(VoteResponse {
                vote,
                vote_granted: true,
                last_log_id: None,
            })),
            Reply::Snapshot(Err(RaftError::APIError(
                InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
                    expect: SnapshotSegmentId {
                        id: "s".into(),
                        offset: 0,
                    },
                    got: SnapshotSegmentId {
                        id: "t".into(),
                        offset: 9,
                    },
                }),
            ))),
            Reply::Written(Ok(Committed {
                index: 9,
                response: Response::Batch(vec![
                    Response::App(Blob::from(vec![1, 2])),
                    Response::None,
                ]),
            })),
            Reply::Written(Err(ApiError {
                code: crate::error::ErrorCode::NotLeader,
                message: "no".into(),
                leader: Some("b".into()),
            })),
            Reply::Done(Ok(())),
            Reply::Status(Status {
                name: "a".into(),
                initialized: true,
                leader: None,
                term: 3,
                cluster: Some("c".into()),
                replica: true,
            }),
            Reply::Replica,
        ];
        for r in requests {
            let back: Request = from_bytes(&to_bytes(&r).unwrap()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{r:?}"));
        }
        for r in replies {
            let back: Reply = from_bytes(&to_bytes(&r).unwrap()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{r:?}"));
        }
    }
}
