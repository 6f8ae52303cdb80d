// ESM entry: the same module as the CommonJS one. Its default export is the whole module,
// which has every field of redux-cluster's default ({ createStore, functions, Redux's }).
import cjs from './index.js';

export const {
  __DO_NOT_USE__ActionTypes,
  createStore,
  combineReducers,
  applyMiddleware,
  compose,
  bindActionCreators,
  isAction,
  isPlainObject,
  legacy_createStore,
  ReduxClusterError,
  SerializationMode,
  MessageType,
  functions,
  Cluster,
  NodeId,
  InvalidClusterConfigError,
  ClusterNotStartedError,
  InvalidNodeIdError,
  isNodeId,
  RaftError,
  RaftCoordinator,
  ClusterManager,
  DistributedStateMachine,
  createRaftCoordinator,
  createClusterManager,
  createDistributedStateMachine,
} = cjs;
export default cjs;
