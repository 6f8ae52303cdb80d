import { createStore } from 'redux-cluster-rs';
import net from 'node:net';
const lines = [];
const s = createStore(function counter(s = {}, a) { return s; }, { stderr: (m) => lines.push(m) });
const srv = s.createServer({ host: '127.0.0.1', port: 0 });
const c = net.connect({ host: '127.0.0.1', port: srv.port }, () => c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
c.on('error', () => {});
c.on('close', () => setTimeout(() => { console.log(lines); srv.close(); }, 100));
