'use strict';
// The package's entry: it wires the modules together and exports the API (redux's own,
// redux-cluster's, noex's Cluster, @unrdf/consensus's and @ruvector/raft's). Each
// concept lives in its own module: the store (store.js), its options (options.js), what
// createServer / createClient return (handles.js), the enums (constants.js), errors,
// reducers in the engine, backup, node:cluster glue, metrics.

const redux = require('redux');
const { createStore } = require('./store.js');
const { SerializationMode, MessageType, hasher } = require('./constants.js');
const { ReduxClusterError, ErrorCode } = require('./errors.js');
const { reducers, loadReducer } = require('./reducers.js');
const membership = require('./cluster.js');
const consensus = require('./consensus.js');
const raftnode = require('./raftnode.js');
const { registerMetrics } = require('./prom.js');

const functions = { hasher };

module.exports = {
  ...redux,
  ...membership,
  ...consensus,
  // @ruvector/raft's API; its RaftError and RaftErrorCode are RaftNodeError and
  // RaftNodeErrorCode here (the others are @unrdf/consensus's). `redux-cluster-rs/raft`
  // exports them under their own names.
  RaftNode: raftnode.RaftNode,
  NodeState: raftnode.NodeState,
  RaftEvent: raftnode.RaftEvent,
  RaftNodeErrorCode: raftnode.RaftErrorCode,
  RaftNodeError: raftnode.RaftNodeError,
  createStore,
  registerMetrics,
  reducers,
  loadReducer,
  ReduxClusterError,
  ErrorCode,
  SerializationMode,
  MessageType,
  functions,
  // redux-cluster's CommonJS build exports this object as `default` (its ESM default).
  default: {
    createStore,
    functions,
    combineReducers: redux.combineReducers,
    bindActionCreators: redux.bindActionCreators,
    applyMiddleware: redux.applyMiddleware,
    compose: redux.compose,
  },
};
