'use strict';
// The addon, as every JS module of this package uses it. Each entry point is compiled with
// napi's `catch_unwind`, so a panic (a bug in the engine) becomes a thrown error or a
// rejected promise instead of an abort of Node; napi gives that error the code
// `GenericFailure`. Here it gets the stable code every caller can test for: `ERR_INTERNAL`.

const addon = require('../../index.js');
const { ErrorCode } = require('./errors.js');

const NAPI_FAILURE = 'GenericFailure';

// An async call's rejection carries its code in its message (napi types those by its own
// status): after this marker (REJECTION in src/bindings/error.rs), JSON `{ code, message,
// leaderId }`, which become `err.code`, `err.message` and `err.leaderId`, as when thrown.
// The code is either API's (RaftNode's are not ERR_ ones).
const REJECTION = 'redux-cluster-rs rejection ';

function internal(err) {
  if (!err || err.code !== NAPI_FAILURE) return err;
  if (typeof err.message === 'string' && err.message.startsWith(REJECTION)) {
    const { code, message, leaderId } = JSON.parse(err.message.slice(REJECTION.length));
    err.code = code;
    err.message = message;
    if (leaderId != null) err.leaderId = leaderId;
  } else {
    err.code = ErrorCode.Internal;
    err.message = `redux-cluster-rs internal error (a bug, please report it): ${err.message}`;
  }
  return err;
}

function guarded(fn) {
  return function (...args) {
    let out;
    try {
      out = fn.apply(this, args);
    } catch (err) {
      throw internal(err);
    }
    return out instanceof Promise
      ? out.catch((err) => {
          throw internal(err);
        })
      : out;
  };
}

function guardClass(cls) {
  for (const target of [cls, cls.prototype]) {
    for (const name of Object.getOwnPropertyNames(target)) {
      if (name === 'constructor' || name === 'prototype') continue;
      const d = Object.getOwnPropertyDescriptor(target, name);
      if (!d.configurable) continue;
      if (typeof d.value === 'function') d.value = guarded(d.value);
      if (d.get) d.get = guarded(d.get);
      if (d.set) d.set = guarded(d.set);
      Object.defineProperty(target, name, d);
    }
  }
  // A constructor is guarded by a proxy, which keeps statics, `instanceof` and the
  // prototype as they are.
  return new Proxy(cls, {
    construct(target, args) {
      try {
        return Reflect.construct(target, args);
      } catch (err) {
        throw internal(err);
      }
    },
  });
}

const native = {};
for (const [name, value] of Object.entries(addon)) {
  if (typeof value !== 'function') native[name] = value;
  else if (/^[A-Z]/.test(name)) native[name] = guardClass(value);
  else native[name] = guarded(value);
}

module.exports = native;
