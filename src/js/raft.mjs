// ESM entry of `redux-cluster-rs/raft` (@ruvector/raft's names).
import cjs from './raft.js';

export const { RaftNode, NodeState, RaftEvent, RaftErrorCode, RaftError } = cjs;
export default cjs;
