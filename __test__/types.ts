// A typed usage sample, compiled with `tsc --strict` in CI. Each line marked with an
// expect-error directive must fail to type-check, or the build fails.
import { createStore, combineReducers, functions, reducers, loadReducer, ErrorCode, ReduxClusterError, type ReduxClusterStore, type ServerAddress, type ClusterServer, type EntityState } from 'redux-cluster-rs';

interface CounterState {
  counter: number;
}
type CounterAction = { type: 'INCREMENT' } | { type: 'ADD'; by: number };

function counter(state: CounterState = { counter: 0 }, action: CounterAction): CounterState {
  switch (action.type) {
    case 'INCREMENT':
      return { counter: state.counter + 1 };
    case 'ADD':
      return { counter: state.counter + action.by };
    default:
      return state;
  }
}

const store: ReduxClusterStore<CounterState, CounterAction> = createStore(counter, { mode: 'snapshot', queueLimit: 10 });
store.dispatch({ type: 'INCREMENT' });
store.dispatch({ type: 'ADD', by: 2 });
// @ts-expect-error: not an action of this reducer
store.dispatch({ type: 'RESET' });
// @ts-expect-error: missing payload field
store.dispatch({ type: 'ADD' });
// @ts-expect-error: mode is 'action' | 'snapshot'
createStore(counter, { mode: 'fast' });
const acked: Promise<{ seq: number }> = store.dispatchAsync({ type: 'ADD', by: 1 }, { timeout: 5000 });
void acked.then(({ seq }) => seq.toFixed(0));
// @ts-expect-error: not an action of this reducer
void store.dispatchAsync({ type: 'RESET' });
// @ts-expect-error: timeout is a number of milliseconds
void store.dispatchAsync({ type: 'INCREMENT' }, { timeout: '5s' });

const n: number = store.getState().counter;
const server = store.createServer({ port: 0, logins: { alice: 's3cret' }, ban: { attempts: 3 } });
const port: number | undefined = server.port;
const replicated = createStore(counter).createServer({ port: 0, cluster: { nodeName: 's1', seeds: ['s2@10.0.0.2:10002'], dataDir: '/var/lib/app' } });
const raftRole: string | undefined = replicated.status()?.role;
replicated.on('leader', ({ leaderId, term }) => `${leaderId}:${term.toFixed(0)}`);
const gone: Promise<void> = replicated.removeMember('s2');
// @ts-expect-error: a replicated server needs its name
createStore(counter).createServer({ port: 0, cluster: { seeds: [] } });
// A replica, and a named store opened on the group.
createStore(counter).createServer({ port: 0, cluster: { nodeName: 'r1', replica: true, seeds: ['s1@10.0.0.1:10002'] } });
const room = createStore(counter, { name: 'room-42' });
const roomName: string | undefined = room.name;
const onGroup: ClusterServer = room.createServer({ group: replicated });
// @ts-expect-error: a store on a group has no port of its own
room.createServer({ group: replicated, port: 1 });
// @ts-expect-error: replica is a boolean
createStore(counter).createServer({ port: 0, cluster: { nodeName: 'r2', replica: 'yes' } });
const client = createStore(counter).createClient({ host: '127.0.0.1', port: port ?? 10001 });
const connected: boolean = client.connected;
const multi = createStore(counter).createClient({ servers: [{ host: '10.0.0.1', port: 10001 }, { path: '/tmp/s.sock' }] });
const current: ServerAddress = multi.server;
// @ts-expect-error: a server needs a port or a path
createStore(counter).createClient({ servers: [{ host: '10.0.0.1' }] });
const code: string | undefined = client.error?.code;
createStore(counter).createClient({ tls: true });
createStore(counter).createClient({ tls: { ca: '-----BEGIN CERTIFICATE-----' } });
// @ts-expect-error: a server needs cert and key
store.createServer({ tls: { ca: 'x' } });
// @ts-expect-error: passwords are strings
store.createServer({ logins: { alice: 1 } });
const hash: string = store.RCHash;
const h: string = functions.hasher('counter');
void Promise.all([client.disconnect(), server.close(), store.backup({ path: '/tmp/x', timeout: 1 })]);
// @ts-expect-error: path is required
void store.backup({ key: 'k' });

const root = combineReducers({ counter });
const rootStore = createStore(root);
const m: number = rootStore.getState().counter.counter;
void [n, connected, hash, h, m, code];

import { Cluster, NodeId, isNodeId, InvalidClusterConfigError, InvalidNodeIdError, type NodeInfo, type NodeIdType, type NodeIdComponents } from 'redux-cluster-rs';
async function membership(): Promise<void> {
  await Cluster.start({ nodeName: 'app1', port: 0, seeds: [NodeId.create('seed', '127.0.0.1', 4369)], tls: { cert: 'PEM', key: 'PEM', ca: 'PEM' } });
  const off = Cluster.onNodeDown((id, reason) => void [id, reason === 'heartbeat_timeout']);
  const nodes: NodeInfo[] = Cluster.getConnectedNodes();
  off();
  // @ts-expect-error: not a reason noex reports
  Cluster.onNodeDown((_id, reason) => reason === 'timeout');
  const local: NodeInfo = Cluster.getLocalNodeInfo();
  const ids: NodeIdType[] = Cluster.getNodeIds();
  const uptime: number = Cluster.getUptimeMs();
  const maybe: NodeId | undefined = NodeId.tryParse('a@127.0.0.1:4369');
  if (maybe !== undefined) void [NodeId.getName(maybe), NodeId.getHost(maybe), NodeId.getPort(maybe) + 1, NodeId.equals(maybe, local.id)];
  const parts: NodeIdComponents = NodeId.components(local.id);
  const unknown: unknown = 'a@h:1';
  if (isNodeId(unknown)) void NodeId.toString(unknown);
  const bad = new InvalidNodeIdError('x', 'missing port');
  const value: string = bad.value;
  try {
    await Cluster.stop();
  } catch (e) {
    if (e instanceof InvalidClusterConfigError) void e.reason;
  }
  void [nodes, ids, uptime, parts, value];
}
void membership;

import { createRaftCoordinator, createDistributedStateMachine, createClusterManager, type RaftState, type RaftCoordinator } from 'redux-cluster-rs';
const coord = createRaftCoordinator({ nodeId: 'n1', port: 0, dataDir: '/tmp/x' });
coord.on('leader_elected', ({ leaderId }) => leaderId.toUpperCase());
const dsm = createDistributedStateMachine<{ n: number }>({ maxStateSize: 10 });
void dsm.update('k', (v) => ({ n: (v?.n ?? 0) + 1 }));
const role: RaftState['role'] = coord.getState().role;
// @ts-expect-error: nodeId is required
createRaftCoordinator({ port: 1 });
void role;
// The seed's names: assignable isLeader (no effect), logLength, workflows, stats, events.
coord.isLeader = true;
const seedState: 'leader' | 'follower' | 'candidate' | 'stopped' = coord.getState().state;
const logLength: number = coord.getState().logLength;
const workflowIds: string[] = coord.getAllWorkflows().map((w) => w.id);
coord.on('peer_added', ({ nodeId, host, port }) => `${nodeId}@${host}:${port.toFixed()}`);
coord.on('shutdown', () => undefined);
const dsmStats = dsm.getStats();
const sizes: number = dsmStats.stateSize + dsmStats.changeLogSize + dsmStats.snapshotCount;
dsm.on('error', ({ error, source }) => [error, source]);
dsm.on('state_changed', ({ value }) => value?.n);
const coordOfDsm: RaftCoordinator | null = dsm.raftCoordinator;
const mgr = createClusterManager({ autoDiscovery: true });
mgr.on('discovery_requested', () => undefined);
const healthy: number = mgr.getStats().healthStats.healthy;
void [seedState, logLength, workflowIds, sizes, coordOfDsm, healthy];

// redux-cluster 2.0's enums, default export, broadcast and class registry.
import rcDefault, { SerializationMode, MessageType, type ReduxClusterConfig, type ClusterMessage, type Role } from 'redux-cluster-rs';
const poConfig: ReduxClusterConfig = { serializationMode: SerializationMode.PROTOOBJECT, syncMode: 'ipc', role: ['master'] };
const poStore = rcDefault.createStore(counter, poConfig);
const mode: 'json' | 'protoobject' = poStore.config.serializationMode;
const debug: boolean = poStore.config.debug;
poStore.mode = 'snapshot';
// @ts-expect-error: mode is 'action' | 'snapshot'
poStore.mode = 'fast';
class Point {
  constructor(public fields: { x: number; y: number }) {}
}
poStore.registerClass('Point', Point);
// @ts-expect-error: a class is needed, not an instance
poStore.registerClass('Point', new Point({ x: 1, y: 2 }));
const names: string[] = poStore.getRegisteredClasses();
const msg: ClusterMessage = { _msg: MessageType.MSG_TO_WORKER, _hash: poStore.RCHash, _action: { type: 'INCREMENT' } };
poStore.sendtoall(msg);
poStore.sendtoallsock();
const roles: Role[] = poStore.role;
const home: string = poStore.homepage;
// @ts-expect-error: not a serialization mode
createStore(counter, { serializationMode: 'xml' });
void [mode, debug, names, roles, home];

// Native reducers: the state type comes from the spec.
const doc = createStore(reducers.patch({ n: 0 }));
doc.dispatch({ type: 'PATCH', ops: [{ op: 'replace', path: '/n', value: 1 }] });
const docN: number = doc.getState().n;
// @ts-expect-error: move needs from
doc.dispatch({ type: 'PATCH', ops: [{ op: 'move', path: '/n' }] });
interface Book {
  id: string;
  title: string;
}
const books = reducers.entities<Book, 'books'>(undefined, { name: 'books' });
const library: ReduxClusterStore<EntityState<Book>, any> = createStore(books);
library.dispatch(books.actions.addOne({ id: '1', title: 'Dune' }));
library.dispatch(books.actions.updateOne({ id: '1', changes: { title: 'Dune Messiah' } }));
library.dispatch(books.actions.removeAll());
const addType: 'books/addOne' = books.types.addOne;
// @ts-expect-error: an entity needs its fields
books.actions.addOne({ id: '2' });
const book: Book | undefined = library.getState().entities['1'];
const loaded = createStore(loadReducer<{ volume: number }>('/path/to/liborder_book_reducer.so', { market: 'BTC-EUR' }));
const volume: number = loaded.getState().volume;
void docN, addType, book, volume;

// RaftNode (@ruvector/raft's API), from the subpath and the top level.
import { RaftNode as SubRaftNode, RaftEvent as SubRaftEvent, RaftError as SubRaftError, type RaftTransport } from 'redux-cluster-rs/raft';
import { RaftNode as TopRaftNode, RaftNodeError } from 'redux-cluster-rs';
interface KvCommand {
  type: 'SET';
  key: string;
  value: string;
}
const rn = new SubRaftNode<KvCommand, string>({ nodeId: 'n1', peers: ['n2', 'n3'], electionTimeout: [150, 300] });
const kvTransport: RaftTransport<KvCommand> = {
  requestVote: async (_peer, req) => ({ term: req.term, voteGranted: false }),
  appendEntries: async (_peer, req) => ({ term: req.term, success: true }),
};
rn.setTransport(kvTransport);
rn.setStateMachine({ apply: async (c) => c.value });
rn.on(SubRaftEvent.LeaderElected, (e) => void e.leaderId);
rn.on('stateChange', (e) => void e.newState);
const proposed: Promise<{ index: number; result: string }> = rn.propose({ type: 'SET', key: 'k', value: 'v' });
// @ts-expect-error: not a KvCommand
void rn.propose({ type: 'DEL' });
const sameClass: typeof TopRaftNode = SubRaftNode;
const errCode: string = new SubRaftError('x', 'NOT_LEADER' as any).code;
void proposed, sameClass, errCode, RaftNodeError;

// WebSocket (redux-cluster-ws's API).
import { server as wsServer, client as wsClient, createStore as wsCreateStore } from 'redux-cluster-rs/ws';
const wsStore = wsServer(wsCreateStore(counter));
wsStore.createWSServer({ port: 10002, logins: { u: 'p' }, origin: ['https://app.example'], trustProxy: '10.0.0.1', limit: 100 });
wsClient(createStore(counter)).createWSClient({ host: 'ws://localhost', port: 10002, login: 'u', password: 'p' });
// @ts-expect-error: host (or servers) is required
createStore(counter).createWSClient({ port: 1 });
createStore(counter).createWSClient({ servers: ['ws://a:10002', { host: 'wss://b', port: 443 }], login: 'u', password: 'p' });
// @ts-expect-error: host or servers, not both
createStore(counter).createWSClient({ host: 'ws://a', servers: ['ws://b'] });

// The browser build.
import { createStore as browserCreateStore } from 'redux-cluster-rs/browser';
const page = browserCreateStore(counter);
const pageConn = page.createWSClient({ host: 'wss://app.example', login: 'u', password: 'p' });
const pageServer: string = page.createWSClient({ servers: ['wss://a.example', { host: 'wss://b.example', port: 8443 }] }).server;
void pageServer;
const pageAck: Promise<{ seq: number }> = page.dispatchAsync({ type: 'INCREMENT' });
const pageCount: number = page.getState().counter;
void pageConn.pending, pageAck, pageCount;

// Metrics and the dashboard.
const metricsServer = createStore(counter).createServer({ port: 0, http: { port: 0 } });
const lag: number | undefined = metricsServer.metrics().clients[0]?.lag;
const metricsRole: string | undefined = metricsServer.metrics().raft?.role;
void lag, metricsRole;

// One enum of error codes: a value and a type.
function retryable(e: ReduxClusterError): boolean {
  const code: ErrorCode = e.code;
  return code === ErrorCode.Connect || code === ErrorCode.Disconnected || code === ErrorCode.Busy;
}
void retryable;
// @ts-expect-error: not a code of this package
const notACode: ErrorCode = 'ERR_NOPE';
void notACode;
