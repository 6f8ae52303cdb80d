'use strict';
// What the three classes of @unrdf/consensus's API share: the seed's RaftError, how an
// engine call's answer or rejection becomes one, option readers, and event delivery.

const { ErrorCode } = require('../errors.js');

class RaftError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'RaftError';
    this.code = code;
    Object.assign(this, extra);
  }
}

function invalid(message) {
  return new RaftError(ErrorCode.InvalidConfig, message);
}

/** An async call's answer, parsed; its rejection, as the seed's RaftError (naming the
 *  leader for ERR_NOT_LEADER). */
async function settle(call) {
  let json;
  try {
    json = await call;
  } catch (e) {
    throw new RaftError(e.code, e.message, e.leaderId ? { leaderId: e.leaderId } : {});
  }
  return JSON.parse(json);
}

/** A promise that may be left unawaited (as the seed's sync addPeer is) without an
 *  unhandled rejection; awaiting it still sees the error. */
function safe(p) {
  p.catch(() => {});
  return p;
}

/** Emits `name` to each listener in turn; an exception from one is handed to `fail`
 *  instead of escaping, so that a throwing listener keeps neither the other listeners nor
 *  the rest of an event batch from their events. (`rawListeners` keeps `once` working.) */
function deliver(emitter, fail, name, payload) {
  for (const listener of emitter.rawListeners(name)) {
    try {
      listener.call(emitter, payload);
    } catch (error) {
      fail(error);
    }
  }
}

/** The seed's three node states; a node that is not (yet) a voter follows. */
const SEED_STATE = { leader: 'leader', candidate: 'candidate', follower: 'follower', learner: 'follower', shutdown: 'stopped' };

function int(v, name, dflt, min = 0) {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw invalid(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

function typed(v, name, type, dflt) {
  if (v === undefined) return dflt;
  if (typeof v !== type || (type === 'string' && v === '')) {
    throw invalid(`${name} must be a ${type === 'string' ? 'non-empty string' : type}, got ${JSON.stringify(v) ?? typeof v}`);
  }
  return v;
}

module.exports = { RaftError, invalid, settle, safe, deliver, SEED_STATE, int, typed };
