// The local Redux semantics of a store, and the package's exports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as esm from 'redux-cluster-rs';
import { counter, md5 } from './helpers.mjs';

const require = createRequire(import.meta.url);
const rc = require('redux-cluster-rs');

test('CommonJS and ESM expose the same API, with Redux re-exported', () => {
  for (const name of ['createStore', 'combineReducers', 'applyMiddleware', 'compose', 'bindActionCreators']) {
    assert.equal(typeof rc[name], 'function', name);
    assert.equal(esm[name], rc[name], name);
  }
  assert.equal(rc.functions.hasher('abc'), md5('abc'));
  assert.equal(rc.functions.hasher('abc', 'sha1').length, 40);
  assert.equal(rc.functions.hasher(5), undefined);
});

test('createStore gives a Redux store with the redux-cluster fields', () => {
  const store = rc.createStore(counter);
  assert.deepEqual(store.getState(), { counter: 0 });
  assert.equal(store.RCHash, md5('counter'));
  assert.equal(store.mode, 'action');
  // As in redux-cluster: outside a cluster worker every store is a (connected) master.
  assert.deepEqual(store.role, ['master']);
  assert.equal(store.connected, true);
  assert.equal(store.resync, 1000);
  assert.equal(store.stderr, console.error);
  assert.equal(store.version, require('../package.json').version);
  assert.deepEqual(store.config, { serializationMode: 'json', debug: false });
  const seen = [];
  const unsubscribe = store.subscribe(() => seen.push(store.getState().counter));
  assert.deepEqual(store.dispatch({ type: 'INC' }), { type: 'INC' });
  store.dispatch({ type: 'INC', by: 2 });
  unsubscribe();
  store.dispatch({ type: 'INC' });
  assert.deepEqual(seen, [1, 3]);
  assert.equal(store.getState().counter, 4);
  const { dispatch, getState } = store;
  dispatch({ type: 'INC' });
  assert.equal(getState().counter, 5);
  const snap = rc.createStore(counter, { mode: 'snapshot', resync: 10 });
  assert.equal(snap.mode, 'snapshot');
  assert.equal(snap.resync, 10);
});

test('bad actions throw and leave the store usable', () => {
  const store = rc.createStore(counter);
  assert.throws(() => store.dispatch({ type: 'REDUX_CLUSTER_SYNC', payload: {} }), {
    message: "Please don't use REDUX_CLUSTER_SYNC action type!",
    code: 'ERR_INVALID_ACTION',
  });
  assert.throws(() => store.dispatch(null), /plain objects/);
  assert.throws(() => store.dispatch(undefined), /plain objects/);
  assert.throws(() => store.dispatch({ payload: 1 }), /undefined "type"/);
  assert.throws(() => store.dispatch(new Date()), /plain objects/);
  store.dispatch({ type: 'INC' });
  assert.equal(store.getState().counter, 1);
});

test('replaceReducer and the observable interop work as in Redux', () => {
  const store = rc.createStore(counter);
  store.replaceReducer((state = { counter: 0 }, action) => (action.type === 'INC' ? { counter: state.counter + 10 } : state));
  store.dispatch({ type: 'INC' });
  assert.equal(store.getState().counter, 10);
  assert.throws(() => store.replaceReducer('nope'), { code: 'ERR_INVALID_CONFIG' });
  const seen = [];
  const sub = store['@@observable']().subscribe({ next: (s) => seen.push(s.counter) });
  store.dispatch({ type: 'INC' });
  sub.unsubscribe();
  store.dispatch({ type: 'INC' });
  assert.deepEqual(seen, [10, 20]);
});

test('invalid configuration is refused with ERR_INVALID_CONFIG', () => {
  assert.throws(() => rc.createStore('x'), { code: 'ERR_INVALID_CONFIG' });
  assert.throws(() => rc.createStore(counter, { mode: 'magic' }), { code: 'ERR_INVALID_CONFIG', message: /mode/ });
  assert.throws(() => rc.createStore(counter, { resync: -1 }), { code: 'ERR_INVALID_CONFIG' });
  assert.throws(() => rc.createStore(counter, { maxFrameSize: 'big' }), { code: 'ERR_INVALID_CONFIG' });
  const store = rc.createStore(counter, { maxFrameSize: 10 });
  assert.throws(() => store.createServer({ port: 0 }), { code: 'ERR_INVALID_CONFIG', message: /maxFrameSize/ });
  assert.throws(() => rc.createStore(counter).createServer({ port: 70000 }), { code: 'ERR_INVALID_CONFIG' });
  assert.throws(() => rc.createStore(counter).createClient({ port: -1 }), { code: 'ERR_INVALID_CONFIG' });
});
