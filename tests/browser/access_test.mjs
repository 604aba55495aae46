// Live access in a real browser: tokens, public audiences and Origins.
//
// heraldd runs with an HS256 key and `public.*` public. In headless Chromium:
//   1. heraldd's own demo page with a token granting lineup.* in its URL
//      (same host) receives an announcement of lineup.rock-am-ring;
//   2. the same page without a token is refused (the socket never opens);
//   3. a page of another origin (http://localhost:<port>, served by this
//      script) is refused for both WebSocket and Server-Sent Events, even on
//      a public audience;
//   4. heraldd restarted with --allowed-origins naming that origin: the
//      foreign page's WebSocket and EventSource both receive (the SSE answer
//      echoes the origin, so the cross-origin EventSource may read it).
//   node access_test.mjs <bin-dir>
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const binDir = process.argv[2];
if (!binDir) {
  console.error('usage: node access_test.mjs <bin-dir>');
  process.exit(2);
}

let failures = 0;
function check(ok, message) {
  if (ok) {
    console.log('ok: ' + message);
  } else {
    console.error('FAIL: ' + message);
    failures += 1;
  }
}

const work = mkdtempSync(join(tmpdir(), 'herald-access-'));
const secretFile = join(work, 'jwt.secret');
writeFileSync(secretFile, randomBytes(32).toString('base64') + '\n');

async function startHerald(extra) {
  const daemon = spawn(`${binDir}/heraldd`,
    ['--client-port', '0', '--ops-port', '0', '--client-host', '127.0.0.1', '--ops-host', '127.0.0.1',
     '--shards', '2', '--data-dir', join(work, 'data'), '--jwt-hs256-secret-file', secretFile,
     '--public-audiences', 'public.*', ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('heraldd did not report its ports')), 30000);
    createInterface({ input: daemon.stdout }).on('line', (line) => {
      const m = line.match(/^heraldd listening client=[\d.]+:(\d+) ops=[\d.]+:(\d+)/);
      if (m) { clearTimeout(timer); resolve({ client: m[1], ops: m[2] }); }
    });
  });
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${ports.ops}/readyz`)).status === 200) break;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  const exited = new Promise((resolve) => daemon.on('exit', (code) => resolve(code)));
  return { daemon, ports, exited,
           env: { ...process.env, HERALD_OPS_URL: `http://127.0.0.1:${ports.ops}`, HERALD_DATA_DIR: join(work, 'data') } };
}

async function stopHerald(h) {
  h.daemon.kill('SIGTERM');
  return h.exited;
}

function announce(h, audience, id, text) {
  execFileSync(`${binDir}/herald`, ['announce', '--audience', audience, '--id', id, '--text', text],
               { env: h.env, stdio: 'inherit' });
}

function token(audience) {
  return execFileSync(`${binDir}/herald`, ['token', '--secret-file', secretFile, '--audience', audience, '--ttl', '10m'])
    .toString().trim();
}

// A page of another origin: opens a WebSocket and an EventSource to heraldd
// and records what happens.
let foreignHerald = null;
const foreign = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><meta charset="utf-8"><title>foreign</title><script>
    window.events = { wsOpen: false, wsMessages: [], wsClosed: null, sseOpen: false, sseMessages: [], sseError: false };
    const h = ${JSON.stringify(foreignHerald)};
    const ws = new WebSocket('ws://127.0.0.1:' + h + '/v1/ws?audience=public.news');
    ws.onopen = () => { window.events.wsOpen = true; };
    ws.onmessage = (e) => window.events.wsMessages.push(JSON.parse(e.data).text);
    ws.onclose = (e) => { window.events.wsClosed = e.code; };
    const es = new EventSource('http://127.0.0.1:' + h + '/v1/sse?audience=public.news');
    es.onopen = () => { window.events.sseOpen = true; };
    es.onmessage = (e) => window.events.sseMessages.push(JSON.parse(e.data).text);
    es.onerror = () => { window.events.sseError = true; if (!window.events.sseOpen) es.close(); };
  </script>`);
});
await new Promise((r) => foreign.listen(0, '127.0.0.1', r));
const foreignPort = foreign.address().port;
const foreignOrigin = `http://localhost:${foreignPort}`;

let browser;
let herald;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });

  herald = await startHerald([]);
  // 1. Same host, a token granting lineup.*: connected, receives.
  const granted = await browser.newPage();
  await granted.goto(`http://127.0.0.1:${herald.ports.client}/?audience=lineup.rock-am-ring&token=${token('lineup.*')}`);
  await granted.waitForFunction(() => document.getElementById('status').textContent === 'connected', null,
                                { timeout: 15000 });
  announce(herald, 'lineup.rock-am-ring', 'tok-1', 'Headliner moved to 21:00');
  const item = granted.locator('li.announcement[data-id="tok-1"]');
  await item.waitFor({ timeout: 15000 });
  check((await item.textContent()).includes('Headliner moved to 21:00'), 'a granted token receives');

  // 2. No token: the handshake is refused before the upgrade.
  const refused = await browser.newPage();
  await refused.goto(`http://127.0.0.1:${herald.ports.client}/?audience=lineup.rock-am-ring`);
  await refused.waitForFunction(() => window.heraldCloseCodes.length > 0, null, { timeout: 15000 });
  check(await refused.evaluate(() => document.getElementById('status').textContent !== 'connected' &&
                                     window.heraldCloseCodes[0] === 4401),
        'no token: the stream never opens, and the page\'s client library reports the 401 as close 4401');

  // 3. Another origin, even on a public audience: refused (WebSocket and SSE).
  foreignHerald = herald.ports.client;
  const evil = await browser.newPage();
  await evil.goto(`${foreignOrigin}/`);
  await evil.waitForFunction(() => window.events.wsClosed !== null && window.events.sseError, null, { timeout: 15000 });
  announce(herald, 'public.news', 'pub-1', 'Gates open');
  await evil.waitForTimeout(1000);
  const e3 = await evil.evaluate(() => window.events);
  check(!e3.wsOpen && e3.wsMessages.length === 0, `foreign origin: WebSocket refused (${JSON.stringify(e3)})`);
  check(!e3.sseOpen && e3.sseMessages.length === 0, 'foreign origin: Server-Sent Events refused');
  check(await stopHerald(herald) === 0, 'heraldd exits 0');

  // 4. The foreign origin allowed: both channels open and receive.
  herald = await startHerald(['--allowed-origins', foreignOrigin]);
  foreignHerald = herald.ports.client;
  const allowed = await browser.newPage();
  await allowed.goto(`${foreignOrigin}/`);
  await allowed.waitForFunction(() => window.events.wsOpen && window.events.sseOpen, null, { timeout: 15000 });
  announce(herald, 'public.news', 'pub-2', 'Gates open');
  await allowed.waitForFunction(() => window.events.wsMessages.length > 0 && window.events.sseMessages.length > 0,
                                null, { timeout: 15000 });
  const e4 = await allowed.evaluate(() => window.events);
  check(e4.wsMessages[0] === 'Gates open' && e4.sseMessages[0] === 'Gates open',
        `allowed origin: WebSocket and SSE receive (${JSON.stringify(e4)})`);
  check(await stopHerald(herald) === 0, 'heraldd exits 0');
  herald = null;
} catch (e) {
  console.error('FAIL: ' + e.message);
  failures += 1;
} finally {
  if (browser) await browser.close();
  if (herald && herald.daemon.exitCode === null) herald.daemon.kill('SIGKILL');
  foreign.close();
  rmSync(work, { recursive: true, force: true });
}
console.log(failures === 0 ? 'all passed' : `${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
