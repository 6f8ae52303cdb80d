//! A JSON key-value state machine (the shape of @unrdf/consensus's distributed state),
//! with snapshots as JSON.

use super::types::{Command, Response, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KvState {
    pub last_applied: Option<LogId<u64>>,
    pub membership: StoredMembership<u64, BasicNode>,
    pub data: BTreeMap<String, Value>,
}

#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    data: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct KvStateMachine {
    state: Arc<Mutex<KvState>>,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    snapshots: Arc<AtomicU64>,
}

impl KvStateMachine {
    /// A key's value, read locally.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.state.lock().unwrap().data.get(key).cloned()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for KvStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let (data, last, membership) = {
            let st = self.state.lock().unwrap();
            let data =
                serde_json::to_vec(&*st).map_err(|e| StorageIOError::read_state_machine(&e))?;
            (data, st.last_applied, st.membership.clone())
        };
        let n = self.snapshots.fetch_add(1, Ordering::Relaxed) + 1;
        let id = match last {
            Some(l) => format!("{}-{}-{n}", l.leader_id, l.index),
            None => format!("--{n}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: membership,
            snapshot_id: id,
        };
        *self.current.lock().unwrap() = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for KvStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let st = self.state.lock().unwrap();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut st = self.state.lock().unwrap();
        let mut out = Vec::new();
        for e in entries {
            st.last_applied = Some(e.log_id);
            let r = match e.payload {
                EntryPayload::Blank => Response::default(),
                EntryPayload::Normal(Command::Set { key, value }) => Response {
                    previous: st.data.insert(key, value),
                },
                EntryPayload::Normal(Command::Delete { key }) => Response {
                    previous: st.data.remove(&key),
                },
                EntryPayload::Normal(Command::Custom(_)) => Response::default(),
                EntryPayload::Membership(m) => {
                    st.membership = StoredMembership::new(Some(e.log_id), m);
                    Response::default()
                }
            };
            out.push(r);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let mut state: KvState = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        *self.state.lock().unwrap() = state;
        *self.current.lock().unwrap() = Some(StoredSnapshot {
            meta: meta.clone(),
            data,
        });
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        Ok(self.current.lock().unwrap().clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::MemLogStore;
    use openraft::testing::{StoreBuilder, Suite};

    struct Builder;

    impl StoreBuilder<TypeConfig, MemLogStore, KvStateMachine> for Builder {
        async fn build(&self) -> Result<((), MemLogStore, KvStateMachine), StorageError<u64>> {
            Ok(((), MemLogStore::default(), KvStateMachine::default()))
        }
    }

    #[test]
    fn openraft_storage_conformance_suite() {
        Suite::test_all(Builder).unwrap();
    }
}
