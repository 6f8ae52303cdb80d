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
  /**
   * Optimistic updates: the page's own dispatches show in `getState()` at once, before the
   * server has ordered them. The server's ordered stream advances a confirmed state, and
   * the page's actions not confirmed yet are replayed on it whenever it moves (subscribers
   * are called once per visible change). An action the server will never order (a
   * refused login, `disconnect()`, another fatal error) is dropped from the state and
   * reported as a `'rollback'` event. Offline, queued actions show at once and are
   * confirmed after the reconnect, each applied once.
   * @default false
   */
  optimistic?: boolean;
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
  /**
   * 'rollback' (with `optimistic`): an action this page dispatched and showed that the
   * server will never order; it is gone from the state.
   */
  on(event: 'rollback', listener: (r: Rollback<A>) => void): this;
  off(event: 'rollback', listener: (r: Rollback<A>) => void): this;
}

/** An optimistic action dropped: the action, and why (the error's code and message). */
export interface Rollback<A extends Action = UnknownAction> {
  action: A;
  code: string;
  message: string;
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
