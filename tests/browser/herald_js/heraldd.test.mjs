// herald.js against the real heraldd (embedded Kafka, ports 0):
// a connection that is cut while announcements go out comes back with its
// positions and gets exactly the missed announcements of each audience, in
// order, none twice — over WebSocket and over SSE; a heraldd restart (the
// embedded cluster's epoch changes) is reported as a gap.
//   HERALD_BIN_DIR=build/bin node --test tests/browser/herald_js/heraldd.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { HeraldClient } from '../../../clients/js/herald.js';
import { NodeEventSource, startHerald, stopHerald, announce, until } from './helpers.mjs';

const binDir = process.env.HERALD_BIN_DIR;
if (!binDir) throw new Error('set HERALD_BIN_DIR to the folder holding heraldd and herald');

const work = mkdtempSync(join(tmpdir(), 'herald-js-'));
let herald;

before(async () => {
  herald = await startHerald(binDir, join(work, 'data'));
});
after(async () => {
  if (herald) await stopHerald(herald, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

// A network that the test can cut: while `offline`, every new connection goes
// to a closed port; cut() kills the open ones.
function network() {
  const net = { offline: false, open: new Set(), urls: [] };
  const reroute = (url) => {
    net.urls.push(new URL(url));
    return net.offline ? url.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:1') : url;
  };
  net.WebSocket = class extends WebSocket {
    constructor(url) {
      super(reroute(url));
      net.open.add(this);
      this.addEventListener('close', () => net.open.delete(this));
    }
    cut() { this.terminate(); }
  };
  net.EventSource = class extends NodeEventSource {
    constructor(url) {
      super(reroute(url));
      net.open.add(this);
    }
    cut() { this._error(); net.open.delete(this); }
  };
  net.cut = () => { for (const c of [...net.open]) c.cut(); };
  return net;
}

// A second, plain subscriber that stays connected: tells when heraldd has
// released the announcements (so that they are replayed, not live).
async function observer(audiences) {
  const q = audiences.map((a) => `audience=${a}`).join('&');
  const ws = new WebSocket(`ws://127.0.0.1:${herald.ports.client}/v1/ws?${q}`);
  const ids = [];
  ws.on('message', (d) => { const f = JSON.parse(String(d)); if (!f.type) ids.push(f.id); });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return { ids, close: () => ws.close() };
}

async function resumeScenario(name, transport, audiences) {
  const net = network();
  const h = new HeraldClient({
    url: `ws://127.0.0.1:${herald.ports.client}`,
    transport,
    WebSocket: net.WebSocket,
    EventSource: net.EventSource,
    fetch: null,
    backoff: { base: 50, cap: 300, stable: 60000 },
  });
  let watch = null;
  try {
    await scenarioBody(name, h, net, audiences, (w) => { watch = w; });
  } finally {
    h.close();
    if (watch) watch.close();
  }
}

async function scenarioBody(name, h, net, audiences, setWatch) {
  const got = Object.fromEntries(audiences.map((a) => [a, []]));
  const gaps = [];
  h.on('gap', (g) => gaps.push(g));
  let opens = 0;
  h.on('open', () => { opens += 1; });
  h.subscribe(audiences, (m) => got[m.audience].push(m.id));
  await until(() => opens === 1, 15000, 'the first open');
  const watch = await observer(audiences);
  setWatch(watch);

  const sent = Object.fromEntries(audiences.map((a) => [a, []]));
  const send = (round, n) => {
    for (let i = 1; i <= n; i += 1) {
      for (const a of audiences) {
        const id = `${name}-${a}-${round}-${i}`;
        announce(herald, a, id, id);
        sent[a].push(id);
      }
    }
  };
  send('before', 2);
  const total = () => audiences.reduce((n, a) => n + got[a].length, 0);
  await until(() => total() === 2 * audiences.length, 15000, 'the announcements before the cut');

  net.offline = true;
  net.cut();
  send('missed', 3);
  await until(() => watch.ids.length === 5 * audiences.length, 15000, 'heraldd releasing the missed ones');
  assert.equal(total(), 2 * audiences.length, 'nothing arrives while cut off');
  net.offline = false;
  await until(() => opens >= 2, 15000, 'the reconnect');
  send('after', 1);
  await until(() => total() === 6 * audiences.length, 20000, 'every announcement');
  await new Promise((r) => setTimeout(r, 500)); // a duplicate would arrive now
  for (const a of audiences) assert.deepEqual(got[a], sent[a], `${a}: exactly the announcements, in order`);
  assert.deepEqual(gaps, [], 'no gap: the history covers the outage');
  const resumed = net.urls.filter((u) => !u.host.endsWith(':1')).at(-1);
  assert.ok(resumed.searchParams.get('since'), 'the reconnect sent its positions');
}

test('WebSocket: a cut connection resumes one audience exactly', () =>
  resumeScenario('ws1', 'websocket', ['lineup.main']));

test('WebSocket: a cut connection resumes each of two audiences exactly', () =>
  resumeScenario('ws2', 'websocket', ['lineup.main', 'ticker.football']));

test('SSE: a cut connection resumes each of two audiences exactly', () =>
  resumeScenario('sse2', 'sse', ['lineup.rock-am-ring', 'ticker.football']));

test('the file served at /herald.js is the library', async () => {
  const r = await fetch(`http://127.0.0.1:${herald.ports.client}/herald.js`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8');
  const { readFileSync } = await import('node:fs');
  const source = readFileSync(new URL('../../../clients/js/herald.js', import.meta.url), 'utf8');
  assert.equal(await r.text(), source);
});

test('a heraldd restart (new epoch) is a gap event, then the stream goes on', async () => {
  const h = new HeraldClient({
    url: `ws://127.0.0.1:${herald.ports.client}`,
    transport: 'websocket',
    WebSocket,
    fetch: null,
    backoff: { base: 100, cap: 500, stable: 60000 },
  });
  const got = [];
  const gaps = [];
  const closes = [];
  h.on('gap', (g) => gaps.push(g));
  h.on('close', (e) => closes.push(e.code));
  let opens = 0;
  h.on('open', () => { opens += 1; });
  h.subscribe(['lineup.main'], (m) => got.push(m));
  try {
    await restartBody(h, got, gaps, closes, () => opens);
  } finally {
    h.close();
  }
});

async function restartBody(h, got, gaps, closes, opens) {
  await until(() => opens() === 1, 15000, 'the first open');
  announce(herald, 'lineup.main', 'restart-1', 'before the restart');
  await until(() => got.length === 1, 15000, 'the first announcement');
  const epochBefore = got[0].epoch;
  const port = herald.ports.client;
  assert.equal(await stopHerald(herald), 0);
  assert.ok(closes.includes(1001), `1001 going away on SIGTERM (closes: ${closes})`);
  herald = await startHerald(binDir, join(work, 'data'), { clientPort: port });
  await until(() => opens() >= 2, 30000, 'the reconnect to the new heraldd');
  announce(herald, 'lineup.main', 'restart-2', 'after the restart');
  await until(() => got.length === 2, 15000, 'the announcement after the restart');
  assert.deepEqual(got.map((m) => m.id), ['restart-1', 'restart-2']);
  assert.notEqual(got[1].epoch, epochBefore, 'the embedded cluster restarted: another epoch');
  assert.equal(gaps.length, 1, `one gap notice (${JSON.stringify(gaps)})`);
  assert.equal(gaps[0].audience, 'lineup.main');
}
