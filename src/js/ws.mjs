// ESM entry of `redux-cluster-rs/ws` (redux-cluster-ws's names).
import cjs from './ws.js';

export const { server, client, createStore, hasher, replacer, generateUID, deepClone } = cjs;
export default cjs;
