'use strict';
// `redux-cluster-rs/ws`: redux-cluster-ws's entry points, so that its users switch by
// changing the import. Every store of this package already has createWSServer and
// createWSClient (served by the engine); server(store) and client(store) check that the
// store is one and hand it back, as redux-cluster-ws's attach it and hand it back.

const crypto = require('node:crypto');
const { ErrorCode } = require('./errors.js');
const rc = require('./index.js');

function ours(store, what) {
  if (!store || typeof store.createWSServer !== 'function' || typeof store.createWSClient !== 'function') {
    throw new rc.ReduxClusterError(ErrorCode.InvalidArgument, `${what}(store) needs a store made by redux-cluster-rs's createStore`);
  }
  return store;
}

/** Gives `store` its createWSServer (it has one already) and returns it. */
function server(store) {
  return ours(store, 'server');
}

/** Gives `store` its createWSClient (it has one already) and returns it. */
function client(store) {
  return ours(store, 'client');
}

// redux-cluster-ws's utilities, as it defines them.
function hasher(data) {
  if (typeof data !== 'string') throw new Error('Data must be a string');
  return crypto.createHash('sha1').update(data).digest('hex');
}

function replacer(data, dotToUnderscore = true) {
  if (typeof data !== 'string') throw new Error('Data must be a string');
  return dotToUnderscore ? data.replace(/\./g, '_') : data.replace(/_/g, '.');
}

function generateUID() {
  return crypto.randomUUID();
}

function deepClone(obj) {
  return obj === undefined ? undefined : structuredClone(obj);
}

module.exports = { server, client, createStore: rc.createStore, hasher, replacer, generateUID, deepClone };
