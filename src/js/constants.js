'use strict';
// redux-cluster 2.0's enums and its exported helper, as that package exports them.

const crypto = require('node:crypto');

// redux-cluster 2.0's enums (TypeScript string enums are plain objects at run time).
const SerializationMode = Object.freeze({ JSON: 'json', PROTOOBJECT: 'protoobject' });
const MessageType = Object.freeze({
  CONN_STATUS: 'REDUX_CLUSTER_CONNSTATUS',
  MSG_TO_WORKER: 'REDUX_CLUSTER_MSGTOWORKER',
  MSG_TO_MASTER: 'REDUX_CLUSTER_MSGTOMASTER',
  SOCKET_AUTH: 'REDUX_CLUSTER_SOCKET_AUTH',
  SOCKET_AUTH_STATE: 'REDUX_CLUSTER_SOCKET_AUTHSTATE',
  START: 'REDUX_CLUSTER_START',
  SYNC: 'REDUX_CLUSTER_SYNC',
});
const SYNC = MessageType.SYNC;

function hasher(data, algorithm = 'md5') {
  if (typeof data !== 'string') return undefined;
  return crypto.createHash(algorithm).update(data).digest('hex');
}

module.exports = { SerializationMode, MessageType, SYNC, hasher };
