/// <reference types="node" />
// Typings of `redux-cluster-rs/ws`: redux-cluster-ws's entry points on this package.
import type { ReduxClusterStore } from '../../index.js';
export { createStore } from '../../index.js';
export type { WSServerSettings as WSServerConfig, WSClientSettings as WSClientConfig } from '../../index.js';

/** Returns `store` (every store of this package has createWSServer); throws
 *  `ERR_INVALID_ARGUMENT` for anything else. */
export declare function server<S = any>(store: ReduxClusterStore<S, any>): ReduxClusterStore<S, any>;
/** Returns `store` (every store of this package has createWSClient); throws
 *  `ERR_INVALID_ARGUMENT` for anything else. */
export declare function client<S = any>(store: ReduxClusterStore<S, any>): ReduxClusterStore<S, any>;
/** SHA-1 hex of a string, as redux-cluster-ws's hasher. */
export declare function hasher(data: string): string;
export declare function replacer(data: string, dotToUnderscore?: boolean): string;
export declare function generateUID(): string;
export declare function deepClone<T>(obj: T): T;
