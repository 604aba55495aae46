// herald.js against a fake client port (helpers.mjs): positions, since=,
// duplicates, gap notices, backoff, token refresh, auth refusals, SSE
// fallback. `node --test tests/browser/herald_js/unit.test.mjs`
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { HeraldClient, parsePositions, formatPositions, backoffDelay } from '../../../clients/js/herald.js';
import { fakeServer, until, NodeEventSource } from './helpers.mjs';

const E1 = '9f86d081884c7d65';
const E2 = '0123456789abcdef';
const frame = (audience, seq, epoch = E1, id = `${audience}-${seq}`) => ({ id, audience, seq, epoch, text: id });

function client(server, extra = {}) {
  return new HeraldClient({
    url: server.url,
    WebSocket,
    EventSource: NodeEventSource,
    backoff: { base: 20, cap: 200, stable: 60000 },
    ...extra,
  });
}

test('positions: the last two fields from the right, round trip', () => {
  const p = parsePositions(`lineup.main:${E1}:42,a:b:c:${E2}:7`);
  assert.deepEqual(p, { 'lineup.main': { epoch: E1, seq: 42 }, 'a:b:c': { epoch: E2, seq: 7 } });
  assert.equal(formatPositions(p), `lineup.main:${E1}:42,a:b:c:${E2}:7`);
  assert.equal(formatPositions(p, ['a:b:c', 'other']), `a:b:c:${E2}:7`);
  assert.throws(() => parsePositions('lineup.main:42'));
  assert.throws(() => parsePositions(`lineup.main:${E1}:x`));
});

test('backoff: full jitter between 0 and the capped exponential step', () => {
  const b = { base: 100, cap: 1000 };
  assert.equal(backoffDelay(3, b, () => 0), 0);
  assert.equal(backoffDelay(0, b, () => 0.999), 99);
  assert.equal(backoffDelay(2, b, () => 0.999), 399);
  assert.equal(backoffDelay(10, b, () => 0.999), 999);
  assert.equal(backoffDelay(1, b, () => 0.5), 100);
});

test('duplicates are dropped by (audience, epoch, seq); positions follow arrival order', async () => {
  const server = await fakeServer();
  const h = client(server);
  const got = [];
  const connected = server.nextClient();
  h.subscribe(['a', 'b'], (m) => got.push(`${m.audience}:${m.seq}`));
  const c = await connected;
  assert.deepEqual(c.url.searchParams.getAll('audience'), ['a', 'b']);
  assert.equal(c.url.searchParams.get('since'), null);
  c.send(frame('a', 5));
  c.send(frame('b', 9));
  c.send(frame('a', 5)); // duplicate
  c.send(frame('a', 3)); // a scheduled one released late: older seq, new frame
  c.send(frame('a', 5, E2)); // same seq in a new epoch is another announcement
  await until(() => got.length === 4, 5000, 'four messages');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(got, ['a:5', 'b:9', 'a:3', 'a:5']);
  assert.deepEqual(h.positions(), { a: { epoch: E2, seq: 5 }, b: { epoch: E1, seq: 9 } });
  assert.equal(h.stats().duplicates, 1);
  h.close();
  await server.stop();
});

test('reconnect after 1001 sends since= for every audience and a fresh token', async () => {
  const server = await fakeServer();
  let calls = 0;
  const h = client(server, { token: async () => `tok-${++calls}` });
  const got = [];
  const closes = [];
  h.on('close', (e) => closes.push(e));
  let connected = server.nextClient();
  h.subscribe(['lineup.main', 'ticker.football'], (m) => got.push(m.id));
  let c = await connected;
  assert.equal(c.url.searchParams.get('token'), 'tok-1');
  c.send(frame('lineup.main', 4));
  c.send(frame('ticker.football', 11));
  await until(() => got.length === 2, 5000, 'two messages');
  connected = server.nextClient();
  c.close(1001, 'going away');
  c = await connected;
  assert.equal(c.url.searchParams.get('token'), 'tok-2');
  assert.deepEqual(parsePositions(c.url.searchParams.get('since')),
    { 'lineup.main': { epoch: E1, seq: 4 }, 'ticker.football': { epoch: E1, seq: 11 } });
  assert.equal(closes[0].code, 1001);
  assert.equal(closes[0].willReconnect, true);
  // The server replays from the position, one frame the client already had included.
  c.send(frame('ticker.football', 11));
  c.send(frame('ticker.football', 12));
  await until(() => got.length === 3, 5000, 'the missed message');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(got, ['lineup.main-4', 'ticker.football-11', 'ticker.football-12']);
  // 1008 (slow consumer, token expired) reconnects too.
  connected = server.nextClient();
  c.close(1008, 'token expired');
  c = await connected;
  assert.equal(c.url.searchParams.get('token'), 'tok-3');
  h.close();
  await server.stop();
});

test('positions given to the constructor are sent at once and seed the duplicate filter', async () => {
  const server = await fakeServer();
  const h = client(server, { positions: `a:${E1}:7,x:${E1}:1` });
  const got = [];
  const connected = server.nextClient();
  h.subscribe('a', (m) => got.push(m.seq));
  const c = await connected;
  // Only the joined audience: a position of another audience would be a 400.
  assert.equal(c.url.searchParams.get('since'), `a:${E1}:7`);
  c.send(frame('a', 7));
  c.send(frame('a', 8));
  await until(() => got.length === 1, 5000, 'one message');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(got, [8]);
  assert.deepEqual(h.positions().x, { epoch: E1, seq: 1 });
  h.close();
  await server.stop();
});

test('a gap notice is an event, never a message', async () => {
  const server = await fakeServer();
  const h = client(server);
  const got = [];
  const gaps = [];
  h.on('gap', (g) => gaps.push(g));
  const connected = server.nextClient();
  h.subscribe('a', (m) => got.push(m));
  const c = await connected;
  c.send({ type: 'gap', audience: 'a', since: 500, since_epoch: E1, epoch: E2, oldest_seq: 17 });
  c.send(frame('a', 17, E2));
  await until(() => got.length === 1 && gaps.length === 1, 5000, 'gap and message');
  assert.equal(gaps[0].epoch, E2);
  assert.equal(gaps[0].oldest_seq, 17);
  assert.equal(got[0].seq, 17);
  h.close();
  await server.stop();
});

test('backoff grows with full jitter and resets after a stable connection', async () => {
  let refuse = true;
  const server = await fakeServer({ onRequest: () => (refuse ? 'drop' : undefined) });
  const delays = [];
  const h = client(server, {
    transport: 'websocket',
    random: () => 0.999,
    backoff: { base: 10, cap: 45, stable: 150 },
    openTimeout: 7777,
    fetch: null,
    setTimeout: (fn, ms) => {
      if (ms !== 7777 && ms !== 0) delays.push(ms);
      return setTimeout(fn, ms);
    },
  });
  h.subscribe('a', () => {});
  await until(() => delays.length >= 4, 5000, 'four refused attempts');
  refuse = false;
  const c = await server.nextClient();
  assert.deepEqual(delays.slice(0, 4), [9, 19, 39, 44]); // 10, 20, 40 then the cap 45, each * 0.999
  const before = delays.length;
  await new Promise((r) => setTimeout(r, 300)); // longer than `stable`
  c.close(1001, 'going away');
  await until(() => delays.length > before, 5000, 'the reconnect delay');
  assert.equal(delays[before], 9, 'after a stable connection the backoff starts again at base');
  h.close();
  await server.stop();
});

test('auth refusal: close 4401 and stop when the token provider has nothing new', async () => {
  const server = await fakeServer({ onRequest: () => ({ status: 401, body: 'token refused: expired' }) });
  let calls = 0;
  const h = client(server, { token: () => { calls += 1; return 'same-token'; } });
  const closes = [];
  h.on('close', (e) => closes.push(e));
  h.subscribe('a', () => {});
  await until(() => closes.length === 1, 5000, 'the close');
  assert.equal(closes[0].code, 4401);
  assert.equal(closes[0].willReconnect, false);
  assert.match(closes[0].reason, /token refused/);
  const seen = server.requests.length;
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(server.requests.length, seen, 'no more attempts after a final refusal');
  assert.ok(calls >= 2, 'the provider was asked again for a new token');
  await server.stop();
});

test('auth refusal: a new token from the provider is tried', async () => {
  const server = await fakeServer({
    onRequest: ({ url }) => (url.searchParams.get('token') === 'good' ? undefined : { status: 403, body: 'not granted' }),
  });
  const tokens = ['bad', 'good'];
  const h = client(server, { token: async () => tokens.shift() ?? 'good' });
  const closes = [];
  h.on('close', (e) => closes.push(e));
  const opened = new Promise((r) => h.on('open', r));
  h.subscribe('a', () => {});
  const o = await opened;
  assert.equal(o.transport, 'websocket');
  assert.equal(closes[0].code, 4403);
  assert.equal(closes[0].willReconnect, true);
  h.close();
  await server.stop();
});

test('auto: SSE when the WebSocket cannot open, then SSE stays', async () => {
  const server = await fakeServer({ onRequest: ({ kind }) => (kind === 'websocket' ? 'drop' : undefined) });
  const h = client(server);
  const got = [];
  const gaps = [];
  h.on('gap', (g) => gaps.push(g));
  let connected = server.nextClient();
  h.subscribe(['a', 'b'], (m) => got.push(m.id));
  let c = await connected;
  assert.equal(c.kind, 'sse');
  await until(() => h.transport === 'sse', 5000, 'the SSE open');
  c.send({ type: 'gap', audience: 'b', since: 3 });
  c.send(frame('a', 1));
  c.send(frame('b', 2));
  await until(() => got.length === 2 && gaps.length === 1, 5000, 'SSE frames');
  connected = server.nextClient();
  const before = server.requests.filter((r) => r.kind === 'websocket').length;
  c.close();
  c = await connected;
  assert.equal(c.kind, 'sse');
  assert.equal(server.requests.filter((r) => r.kind === 'websocket').length, before, 'no WebSocket retried');
  assert.deepEqual(parsePositions(c.url.searchParams.get('since')), { a: { epoch: E1, seq: 1 }, b: { epoch: E1, seq: 2 } });
  h.close();
  await server.stop();
});

test('a server without epochs: one audience resumes with the bare since=SEQ', async () => {
  const server = await fakeServer();
  const h = client(server);
  let connected = server.nextClient();
  h.subscribe('a', () => {});
  let c = await connected;
  c.send({ id: 'x', audience: 'a', seq: 41, text: 'old server' });
  await until(() => h.positions().a, 5000, 'a position');
  connected = server.nextClient();
  c.close(1001);
  c = await connected;
  assert.equal(c.url.searchParams.get('since'), '41');
  h.close();
  await server.stop();
});

test('subscribe after connecting reconnects with the union of audiences; unsubscribe filters', async () => {
  const server = await fakeServer();
  const h = client(server);
  const a = [];
  const b = [];
  let connected = server.nextClient();
  const leaveA = h.subscribe('a', (m) => a.push(m.seq));
  let c = await connected;
  c.send(frame('a', 1));
  await until(() => a.length === 1, 5000, 'a message');
  connected = server.nextClient();
  h.subscribe('b', (m) => b.push(m.seq));
  c = await connected;
  assert.deepEqual(c.url.searchParams.getAll('audience'), ['a', 'b']);
  assert.equal(c.url.searchParams.get('since'), `a:${E1}:1`);
  connected = server.nextClient();
  leaveA();
  c = await connected;
  assert.deepEqual(c.url.searchParams.getAll('audience'), ['b']);
  c.send(frame('b', 4));
  await until(() => b.length === 1, 5000, 'b message');
  assert.deepEqual(a, [1]);
  h.close();
  await server.stop();
});
