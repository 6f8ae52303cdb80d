'use strict';
// serializationMode 'protoobject': class instances in actions and states cross the wire as
// JSON objects tagged with their class name, and are rebuilt as instances on the receiving
// side. The tag is redux-cluster 2.0's: `{ "__isProtoObject": true, "__className": "User",
// ...own enumerable fields }`. The engine only ever sees the JSON text.
//
// Tagged are instances of the `protoobject` package's ProtoObject (an optional peer
// dependency; its subclasses are registered on first send, as redux-cluster does) and
// instances of any class given to `store.registerClass`. A tag is rebuilt with
// `new Class(fields)`: the class registered under its name, else ProtoObject itself,
// else (no such class here) the plain fields.

let base; // the protoobject package's ProtoObject class; undefined: not looked up yet

function loadProtoObject() {
  if (base !== undefined) return base;
  base = null;
  try {
    base = pick(require('protoobject'));
  } catch (e) {
    // An ESM-only build on a Node without require(esm): load it in the background, as
    // redux-cluster does (its own loader is always asynchronous).
    // Node's own code for require() of an ES module, not one of ours.
    if (e && e.code === 'ERR_REQUIRE_ESM') {
      import('protoobject').then(
        (m) => (base = pick(m)),
        () => {}
      );
    }
  }
  return base;
}

function pick(m) {
  const c = (m && (m.ProtoObject || (m.default && m.default.ProtoObject))) || null;
  return typeof c === 'function' ? c : null;
}

class ClassCodec {
  /** @param {(message: string) => void} onError where a class that fails to rebuild is reported */
  constructor(onError) {
    loadProtoObject();
    this._byName = new Map();
    this._byClass = new Map();
    this._onError = onError;
    const codec = this;
    // JSON.stringify hands a replacer the value after toJSON; the holder still has the
    // instance itself (ProtoObject's toJSON keeps only primitive fields, so it cannot be
    // what crosses the wire).
    this._replacer = function (key, value) {
      const v = this[key];
      if (v === null || typeof v !== 'object') return value;
      const name = codec._tag(v);
      if (name === undefined) return value;
      const out = { __isProtoObject: true, __className: name };
      for (const k of Object.keys(v)) out[k] = v[k];
      return out;
    };
    // Revivers run bottom-up: a tag's fields are already rebuilt when it is.
    this._reviver = (key, value) => {
      if (value === null || typeof value !== 'object' || value.__isProtoObject !== true) return value;
      return this._revive(value);
    };
    this.encode = this.encode.bind(this);
    this.decode = this.decode.bind(this);
  }

  register(name, cls) {
    const old = this._byName.get(name);
    if (old !== undefined && this._byClass.get(old) === name) this._byClass.delete(old);
    this._byName.set(name, cls);
    this._byClass.set(cls, name);
  }

  names() {
    return Array.from(this._byName.keys());
  }

  encode(value) {
    return JSON.stringify(value, this._replacer);
  }

  decode(text) {
    return JSON.parse(text, this._reviver);
  }

  _tag(v) {
    const cls = v.constructor;
    if (typeof cls !== 'function') return undefined;
    const name = this._byClass.get(cls);
    if (name !== undefined) return name;
    if (base && v instanceof base) {
      const n = cls.name || 'ProtoObject';
      // As redux-cluster: a sender knows the classes it sends, so that it rebuilds them
      // when its own actions come back; an explicit registration is never replaced.
      if (n !== 'ProtoObject' && !this._byName.has(n)) this.register(n, cls);
      return n;
    }
    return undefined;
  }

  _revive(tagged) {
    const fields = {};
    for (const k of Object.keys(tagged)) {
      if (k !== '__isProtoObject' && k !== '__className') fields[k] = tagged[k];
    }
    const name = tagged.__className;
    const cls = (typeof name === 'string' && this._byName.get(name)) || base;
    if (!cls) return fields;
    try {
      return new cls(fields);
    } catch (e) {
      this._onError(`ReduxCluster: class ${JSON.stringify(name)} could not be rebuilt (${e && e.message ? e.message : e}); its plain fields are used`);
      return fields;
    }
  }
}

module.exports = { ClassCodec, loadProtoObject };
