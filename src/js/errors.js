'use strict';
// The error every part of the store layer throws: `err.code` is one of the stable codes
// listed in index.d.ts (ErrorCode).

class ReduxClusterError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ReduxClusterError';
    this.code = code;
  }
}

module.exports = { ReduxClusterError };
