'use strict';
// The error every part of the store layer throws, and the one list of codes every layer
// uses: the engine's `ErrorCode` enum (src/error.rs), as `ErrorCode.QueueFull` for
// ERR_QUEUE_FULL and so on. index.d.ts and the README document each code.

// The addon itself, not ./native.js (which takes its ERR_INTERNAL from here).
const addon = require('../../index.js');

/** `ERR_QUEUE_FULL` → `QueueFull`. */
const nameOf = (code) =>
  code
    .slice('ERR_'.length)
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_, __, c) => c.toUpperCase());

const ErrorCode = Object.freeze(Object.fromEntries(addon.errorCodes().map((c) => [nameOf(c), c])));

class ReduxClusterError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ReduxClusterError';
    this.code = code;
  }
}

module.exports = { ReduxClusterError, ErrorCode };
