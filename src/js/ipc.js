'use strict';
// node:cluster glue. In a primary, a store serves its workers over a Unix socket whose
// path it hands to each worker over the cluster IPC channel; in a worker, a store asks
// for that path and connects by itself. From then on the actions travel over the engine's
// framed, acknowledged socket protocol, not over Node's IPC.

const cluster = require('node:cluster');

const MSG_START = 'REDUX_CLUSTER_START'; // worker → primary: a store of this hash wants to sync
const MSG_SOCKET = 'REDUX_CLUSTER_RS_SOCKET'; // primary → worker: connect here

// Primary side: the store that serves each reducer hash, and workers that asked for a hash
// before the primary created its store (a worker forked first).
const serving = new Map();
const waiting = new Map();
let listening = false;

function answer(store, worker) {
  if (worker.isDead()) return;
  try {
    worker.send({ _msg: MSG_SOCKET, _hash: store.RCHash, path: store._ipcPath() });
  } catch (e) {
    store._error(`ReduxCluster: cannot answer worker ${worker.id}: ${e.message}`);
  }
}

function onWorkerMessage(worker, msg) {
  if (!msg || msg._msg !== MSG_START || typeof msg._hash !== 'string') return;
  const store = serving.get(msg._hash);
  if (store) return answer(store, worker);
  if (!waiting.has(msg._hash)) waiting.set(msg._hash, new Set());
  waiting.get(msg._hash).add(worker);
}

function onWorkerExit() {
  // With no worker left, the sockets would only keep the primary alive for nothing; a
  // worker forked later gets a fresh one.
  if (Object.keys(cluster.workers || {}).length === 0) {
    for (const store of serving.values()) store._closeIpcServer();
  }
}

function registerPrimary(store) {
  if (!listening) {
    listening = true;
    cluster.on('message', onWorkerMessage);
    cluster.on('exit', onWorkerExit);
  }
  // As in redux-cluster: every store outside a cluster worker is a master, connected.
  store.role.push('master');
  store.connected = true;
  if (serving.has(store.RCHash)) return; // the first store of a reducer serves the workers
  serving.set(store.RCHash, store);
  const early = waiting.get(store.RCHash);
  if (early) {
    waiting.delete(store.RCHash);
    for (const worker of early) answer(store, worker);
  }
}

function registerWorker(store) {
  store._becomeWorker();
  const onMessage = (msg) => {
    if (!msg || msg._msg !== MSG_SOCKET || msg._hash !== store.RCHash) return;
    process.off('message', onMessage);
    store._connectIpc(msg.path);
  };
  process.on('message', onMessage);
  // The primary going away ends the worker's sync, and must not keep the worker alive.
  process.once('disconnect', () => {
    process.off('message', onMessage);
    store._dropIpc();
  });
  process.send({ _msg: MSG_START, _hash: store.RCHash });
}

/** Called for every new store: wires it into node:cluster when running under it. */
function attach(store) {
  if (cluster.isPrimary) {
    registerPrimary(store);
  } else if (cluster.isWorker && typeof process.send === 'function') {
    registerWorker(store);
  }
}

module.exports = { attach };
