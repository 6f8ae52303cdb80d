// Typings of `redux-cluster-rs/browser`: a Redux store synced with a redux-cluster-rs
// server over WebSocket, for browsers (ES module, or the single-file bundle's global
// `ReduxClusterRS`).
import type { Action, Reducer, Store, UnknownAction } from 'redux';

export declare class ReduxClusterError extends Error {
  readonly code: string;
}

export interface BrowserEndpoint {
  /** 'ws://name' or 'wss://name' (it may carry its own port and path). */
  host: string;
  /** @default 10002 */
  port?: number;
  /** @default '/' */
  path?: string;
}

export type BrowserClientSettings = (BrowserEndpoint | { host?: undefined; servers: Array<string | BrowserEndpoint> }) & {
  login?: string;
  password?: string;
  /**
   * A server that sends nothing (no data, no heartbeat) for this long has stopped, in
   * ms: the client moves to the next server (a resume). The server's own setting decides
   * how soon it drops a silent browser.
   * @default 500
   */
  livenessTimeoutMs?: number;
};

export interface BrowserClient {
  readonly connected: boolean;
  /** Dispatched actions not yet acknowledged by the server (kept while offline). */
  readonly pending: number;
  /** The last error (`ERR_AUTH`, `ERR_BANNED`, `ERR_STORE_MISMATCH` stop the client), or null. */
  readonly error: ReduxClusterError | null;
  /** The URL of the server in use (with `servers`, the client moves on when it goes). */
  readonly server: string;
  disconnect(): Promise<void>;
}

export interface BrowserStore<S = any, A extends Action = UnknownAction> extends Store<S, A> {
  /** md5 of the reducer's name, as the server's. */
  readonly RCHash: string;
  readonly role: string[];
  readonly connected: boolean;
  mode: 'action' | 'snapshot';
  stderr: (message: string) => void;
  /** Resolves `{ seq }` once the server ordered the action and it was applied here. */
  dispatchAsync(action: A, options?: { timeout?: number }): Promise<{ seq: number }>;
  createWSClient(settings: BrowserClientSettings): BrowserClient;
  /**
   * 'divergence': this page's state differed from the server's at a checkpoint of the
   * divergence guard (a reducer that is not deterministic); the page takes the server's
   * state, then this fires with where the two differed (`path`, a JSON pointer).
   */
  on(event: 'divergence', listener: (d: Divergence) => void): this;
  off(event: 'divergence', listener: (d: Divergence) => void): this;
}

/** A divergence the guard found: at the checkpoint `seq`, the authority's digest and this replica's. */
export interface Divergence {
  seq: number;
  expected: string;
  actual: string;
  /** The first place where the states differed, when known (a JSON pointer), else null. */
  path: string | null;
}

export declare function createStore<S, A extends Action = UnknownAction>(reducer: Reducer<S, A>): BrowserStore<S, A>;
