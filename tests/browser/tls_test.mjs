// TLS in a real browser: headless Chromium opens heraldd's demo page over
// https://, whose WebSocket is then wss://, and an EventSource over https://,
// both receiving the same announcement. The certificate comes from a CA
// this script makes with openssl (nothing committed); Chromium is told to
// trust exactly that server key (--ignore-certificate-errors-spki-list), and
// a browser without that trust is shown to refuse the page.
//   node tls_test.mjs <bin-dir>
import { spawn, execFileSync, execSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const binDir = process.argv[2];
if (!binDir) {
  console.error('usage: node tls_test.mjs <bin-dir>');
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

const work = mkdtempSync(join(tmpdir(), 'herald-tls-browser-'));
const f = (name) => join(work, name);
const quiet = { stdio: ['ignore', 'ignore', 'inherit'] };
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                         '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=herald browser test CA'], quiet);
execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                         '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1'], quiet);
writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
execFileSync('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
                         '-CAcreateserial', '-out', f('server.pem'), '-days', '1', '-extfile', f('ext')], quiet);
const spki = execSync(`openssl x509 -in ${f('server.pem')} -pubkey -noout | openssl pkey -pubin -outform der | ` +
                      'openssl dgst -sha256 -binary | base64').toString().trim();
const ca = readFileSync(f('ca.pem'));

function get(port, path) {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

const daemon = spawn(`${binDir}/heraldd`,
  ['--client-port', '0', '--ops-port', '0', '--client-host', '127.0.0.1', '--ops-host', '127.0.0.1',
   '--shards', '2', '--data-dir', f('data'), '--tls-cert-file', f('server.pem'), '--tls-key-file', f('server.key')],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const exited = new Promise((resolve) => daemon.on('exit', (code) => resolve(code)));
let browser;
let untrusting;
try {
  const ports = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('heraldd did not report its ports')), 30000);
    createInterface({ input: daemon.stdout }).on('line', (line) => {
      const m = line.match(/^heraldd listening client=[\d.]+:(\d+) ops=[\d.]+:(\d+) brokers=(\S+)/);
      if (m) { clearTimeout(timer); resolve({ client: m[1], ops: m[2], brokers: m[3] }); }
    });
  });
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline && await get(ports.ops, '/readyz') !== 200) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const announce = (audience, id, text) =>
    execFileSync(`${binDir}/herald`, ['announce', '--brokers', ports.brokers, '--audience', audience, '--id', id,
                                      '--text', text], { stdio: 'inherit' });
  const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync'];
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  browser = await chromium.launch({ executablePath, args: [...args, `--ignore-certificate-errors-spki-list=${spki}`] });
  const origin = `https://127.0.0.1:${ports.client}`;

  // The demo page over https: its WebSocket is wss:// to the same host.
  const page = await browser.newPage();
  await page.goto(`${origin}/?audience=lineup.main`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'connected', null,
                             { timeout: 15000 });
  // An EventSource over https on the same page.
  await page.evaluate((o) => {
    window.sse = { open: false, texts: [] };
    const es = new EventSource(o + '/v1/sse?audience=lineup.main');
    es.onopen = () => { window.sse.open = true; };
    es.onmessage = (e) => window.sse.texts.push(JSON.parse(e.data).text);
  }, origin);
  await page.waitForFunction(() => window.sse.open, null, { timeout: 15000 });
  check(await page.evaluate(() => location.protocol) === 'https:', 'the demo page is served over https');

  announce('lineup.main', 'tls-1', 'Doors open at 18:00');
  const item = page.locator('li.announcement[data-id="tls-1"]');
  await item.waitFor({ timeout: 15000 });
  check((await item.textContent()).includes('Doors open at 18:00'), 'the wss:// WebSocket receives the announcement');
  await page.waitForFunction(() => window.sse.texts.length > 0, null, { timeout: 15000 });
  check(await page.evaluate(() => window.sse.texts[0]) === 'Doors open at 18:00',
        'the https:// EventSource receives the same announcement');

  // A browser that does not trust the test CA refuses the page.
  untrusting = await chromium.launch({ executablePath, args });
  let refused = false;
  try {
    await (await untrusting.newPage()).goto(`${origin}/`, { timeout: 10000 });
  } catch (e) {
    refused = /ERR_CERT|net::/.test(e.message);
  }
  check(refused, 'a browser that does not trust the certificate refuses the page');

  daemon.kill('SIGTERM');
  check(await exited === 0, 'heraldd exits 0');
} catch (e) {
  console.error('FAIL: ' + e.message);
  failures += 1;
} finally {
  if (browser) await browser.close();
  if (untrusting) await untrusting.close();
  if (daemon.exitCode === null) daemon.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
console.log(failures === 0 ? 'all passed' : `${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
