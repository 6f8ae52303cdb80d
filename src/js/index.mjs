// ESM entry: the same module as the CommonJS one.
import cjs from './index.js';

export const {
  createStore,
  combineReducers,
  applyMiddleware,
  compose,
  bindActionCreators,
  isAction,
  isPlainObject,
  legacy_createStore,
  ReduxClusterError,
  functions,
  Cluster,
  NodeId,
  InvalidClusterConfigError,
  ClusterNotStartedError,
  InvalidNodeIdError,
  RaftError,
  RaftCoordinator,
  ClusterManager,
  DistributedStateMachine,
  createRaftCoordinator,
  createClusterManager,
  createDistributedStateMachine,
} = cjs;
export default cjs;
