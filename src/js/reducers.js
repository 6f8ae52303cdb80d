'use strict';
// Reducers that run inside the engine, with their state held in Rust: the built-ins
// (`reducers.patch`, `reducers.entities`) and the user's own Rust reducer, compiled to a
// shared library (`loadReducer`). `createStore` takes one in place of a reducer function.

const native = require('./native.js');
const { ReduxClusterError, ErrorCode } = require('./errors.js');

const ENTITY_OPERATIONS = Object.freeze([
  'addOne',
  'addMany',
  'setOne',
  'setMany',
  'setAll',
  'upsertOne',
  'upsertMany',
  'updateOne',
  'updateMany',
  'removeOne',
  'removeMany',
  'removeAll',
]);


function invalid(message) {
  return new ReduxClusterError(ErrorCode.InvalidConfig, `invalid configuration: ${message}`);
}

function jsonText(value, what) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw invalid(`${what} must be JSON-serialisable: ${e.message}`);
  }
  if (text === undefined) throw invalid(`${what} must be JSON-serialisable, got ${typeof value}`);
  return text;
}

// Wraps a native call so its error keeps the engine's code (napi gives `code` already).
function make(fn) {
  try {
    return fn();
  } catch (e) {
    throw new ReduxClusterError(e.code || ErrorCode.Internal, e.message);
  }
}

/**
 * A reducer that runs in the engine. Each store made with it gets its own state
 * (`createStore(spec)` calls `create()`).
 */
class NativeReducerSpec {
  constructor(kind, name, create) {
    this.kind = kind;
    /** A readable name, e.g. 'patch', 'entities(todos)', 'order-book'. */
    this.name = name;
    this._create = create;
    this._first = null;
  }

  /** @internal a fresh native state for one store. */
  create() {
    const first = this._first;
    if (first) {
      this._first = null;
      return first;
    }
    return make(this._create);
  }
}

/**
 * The state is a JSON document (default `{}`); `{ type: 'PATCH', ops: [...] }` applies
 * RFC 6902 operations atomically. Other actions leave it alone.
 */
function patch(initialState = {}) {
  const text = jsonText(initialState, 'the initial state');
  return new NativeReducerSpec('patch', 'patch', () => native.NativeReducer.patch(text));
}

/**
 * Redux Toolkit's entity adapter: state `{ ids, entities }`, actions `<name>/addOne`, ...
 * `options.name` is the slice name (default 'entities'), `options.idKey` the id field
 * (default 'id').
 */
function entities(initialState, options) {
  const o = options === undefined || options === null ? {} : options;
  if (typeof o !== 'object') throw invalid('entities options must be an object { name, idKey }');
  for (const k of Object.keys(o)) {
    if (k !== 'name' && k !== 'idKey') {
      const hint = k === 'selectId' || k === 'sortComparer' ? ' (functions cannot run in the engine; name the id field with idKey)' : '';
      throw invalid(`entities options: ${k} is not an option${hint}`);
    }
  }
  const name = o.name === undefined ? 'entities' : o.name;
  const idKey = o.idKey === undefined ? 'id' : o.idKey;
  if (typeof name !== 'string' || name === '' || name.includes('/')) throw invalid('entities name must be a non-empty string without "/"');
  if (typeof idKey !== 'string' || idKey === '') throw invalid('entities idKey must be a non-empty string');
  const text = initialState === undefined ? 'null' : jsonText(initialState, 'the initial state');
  const spec = new NativeReducerSpec('entities', `entities(${name})`, () => native.NativeReducer.entities(text, name, idKey));
  // The initial state is checked now, where it is given.
  spec._first = make(spec._create);
  /** The action types this reducer handles, by operation: `{ addOne: 'todos/addOne', ... }`. */
  spec.types = Object.freeze(Object.fromEntries(ENTITY_OPERATIONS.map((op) => [op, `${name}/${op}`])));
  /** Action creators with RTK's names: `actions.addOne(entity)` → `{ type, payload }`. */
  spec.actions = Object.freeze(
    Object.fromEntries(ENTITY_OPERATIONS.map((op) => [op, (payload) => (payload === undefined ? { type: `${name}/${op}` } : { type: `${name}/${op}`, payload })]))
  );
  return spec;
}

/**
 * Loads a reducer written in Rust (built with the `redux-cluster-reducer` crate) from a
 * shared library; `config` (JSON) goes to its `new`. Throws ERR_REDUCER_LOAD for a file
 * that cannot be loaded, is not such a library, or was built for another ABI version.
 */
function loadReducer(path, config) {
  if (typeof path !== 'string' || path === '') throw invalid('loadReducer needs the path of a shared library');
  const text = config === undefined ? 'null' : jsonText(config, 'the reducer config');
  const spec = new NativeReducerSpec('library', path, () => native.NativeReducer.load(path, text));
  spec._first = make(spec._create);
  spec.name = spec._first.identity.split(':')[1] || path;
  return spec;
}

const reducers = Object.freeze({ patch, entities });

module.exports = { reducers, loadReducer, NativeReducerSpec, ENTITY_OPERATIONS };
