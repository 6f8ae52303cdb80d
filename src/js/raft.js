'use strict';
// `redux-cluster-rs/raft`: @ruvector/raft's exports under its own names, so that its
// users switch by changing the import.
const { RaftNode, NodeState, RaftEvent, RaftErrorCode, RaftNodeError } = require('./raftnode.js');

module.exports = { RaftNode, NodeState, RaftEvent, RaftErrorCode, RaftError: RaftNodeError };
