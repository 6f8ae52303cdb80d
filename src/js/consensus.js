'use strict';
// @unrdf/consensus's API on the engine's Raft node: one class per module in consensus/
// (the coordinator, the cluster manager, the distributed state machine, and what they
// share); this file only gathers them as the seed exports them.

const { RaftError } = require('./consensus/common.js');
const { RaftCoordinator } = require('./consensus/coordinator.js');
const { ClusterManager } = require('./consensus/manager.js');
const { DistributedStateMachine } = require('./consensus/state-machine.js');

module.exports = {
  RaftError,
  RaftCoordinator,
  ClusterManager,
  DistributedStateMachine,
  createRaftCoordinator: (o) => new RaftCoordinator(o),
  createClusterManager: (o) => new ClusterManager(o),
  createDistributedStateMachine: (o) => new DistributedStateMachine(o),
};
