// Shared pieces of the herald.js tests: an EventSource for Node 20 (which has
// none), a fake heraldd client port for the unit tests, and starting the real
// heraldd for the integration tests.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { WebSocketServer } from 'ws';

// The part of the browser's EventSource that herald.js uses: onopen,
// onmessage, addEventListener(name), onerror, close(). No reconnect of its own.
export class NodeEventSource {
  constructor(url) {
    this.url = url;
    this._ctl = new AbortController();
    this._named = new Map();
    this._closed = false;
    this._run().catch(() => this._error());
  }
  addEventListener(name, fn) {
    if (!this._named.has(name)) this._named.set(name, []);
    this._named.get(name).push(fn);
  }
  close() {
    this._closed = true;
    this._ctl.abort();
  }
  _error() {
    if (this._closed) return;
    this._closed = true;
    this._ctl.abort();
    if (this.onerror) this.onerror({});
  }
  async _run() {
    const r = await fetch(this.url, { signal: this._ctl.signal, headers: { Accept: 'text/event-stream' } });
    if (r.status !== 200) return this._error();
    if (this.onopen) this.onopen({});
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of r.body) {
      if (this._closed) return;
      buf += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length === 0 || this._closed) continue;
        const ev = { data: data.join('\n') };
        if (event === 'message') {
          if (this.onmessage) this.onmessage(ev);
        } else {
          for (const fn of this._named.get(event) || []) fn(ev);
        }
      }
    }
    this._error();
  }
}

// A stand-in for heraldd's client port: records every request, and lets the
// test decide per request what happens (`onRequest(req)` returns
// {status, body} to refuse, 'drop' to cut the socket, or nothing to accept).
export async function fakeServer({ onRequest = () => undefined } = {}) {
  const requests = [];
  const sockets = new Set();
  const sse = new Set();
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    requests.push({ kind: 'sse', url });
    const verdict = onRequest({ kind: 'sse', url });
    if (verdict === 'drop') return req.socket.destroy();
    if (verdict && verdict.status) {
      res.writeHead(verdict.status, { 'Content-Type': 'text/plain' });
      return res.end(verdict.body || '');
    }
    if (url.pathname !== '/v1/sse') {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('retry: 2000\n\n');
    const conn = {
      kind: 'sse',
      url,
      send: (obj) => {
        if (obj.type) res.write(`event: ${obj.type}\ndata: ${JSON.stringify(obj)}\n\n`);
        else res.write(`id: x\ndata: ${JSON.stringify(obj)}\n\n`);
      },
      close: () => res.destroy(),
    };
    sse.add(conn);
    res.on('close', () => sse.delete(conn));
    server.emit('client', conn);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://x');
    requests.push({ kind: 'websocket', url });
    const verdict = onRequest({ kind: 'websocket', url });
    if (verdict === 'drop') return socket.destroy();
    if (verdict && verdict.status) {
      socket.end(`HTTP/1.1 ${verdict.status} No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      server.emit('client', {
        kind: 'websocket',
        url,
        send: (obj) => ws.send(JSON.stringify(obj)),
        close: (code, reason) => ws.close(code, reason),
      });
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  // Resolves with the next accepted connection.
  const nextClient = () => new Promise((resolve) => server.once('client', resolve));
  const stop = async () => {
    for (const c of wss.clients) c.terminate();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return { port, url: `ws://127.0.0.1:${port}`, requests, nextClient, stop };
}

/** Resolves when predicate() is true (checked every 20 ms), rejects after ms. */
export async function until(predicate, ms = 10000, what = 'condition') {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// ---- the real heraldd ----

/**
 * Starts heraldd with the embedded Kafka and its data in dataDir; clientPort 0
 * = any (a restart passes the previous one so that clients find it again).
 */
export async function startHerald(binDir, dataDir, { clientPort = 0, extra = [] } = {}) {
  const daemon = spawn(`${binDir}/heraldd`,
    ['--client-port', String(clientPort), '--ops-port', '0', '--client-host', '127.0.0.1', '--ops-host', '127.0.0.1',
      '--shards', '2', '--data-dir', dataDir, ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => daemon.on('exit', (code) => resolve(code)));
  const ports = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('heraldd did not report its ports')), 30000);
    daemon.on('exit', (code) => reject(new Error(`heraldd exited with ${code} at start-up`)));
    createInterface({ input: daemon.stdout }).on('line', (line) => {
      const m = line.match(/^heraldd listening client=[\d.]+:(\d+) ops=[\d.]+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ client: Number(m[1]), ops: Number(m[2]) });
      }
    });
  });
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${ports.ops}/readyz`)).status === 200) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error('heraldd never became ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  const env = { ...process.env, HERALD_OPS_URL: `http://127.0.0.1:${ports.ops}`, HERALD_DATA_DIR: dataDir };
  return { daemon, exited, ports, binDir, env };
}

export async function stopHerald(h, signal = 'SIGTERM') {
  if (h.daemon.exitCode !== null) return h.daemon.exitCode;
  h.daemon.kill(signal);
  return h.exited;
}

/** Announces through the herald CLI to the instance's Kafka. */
export function announce(h, audience, id, text) {
  execFileSync(`${h.binDir}/herald`, ['announce', '--audience', audience, '--id', id, '--text', text],
    { env: h.env, stdio: ['ignore', 'ignore', 'inherit'] });
}
