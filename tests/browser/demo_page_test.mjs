// A browser subscribes over WebSocket and shows the announcement.
//
// Starts the real heraldd (ports 0, embedded Kafka), opens its demo page in
// Debian's headless Chromium, waits until the page reports "connected",
// announces with the herald CLI, and asserts the text appears on the page
// with its sequence number. Then SIGTERM: heraldd must exit 0 and the page
// must see the 1001 close.
//   node demo_page_test.mjs <bin-dir>
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const binDir = process.argv[2];
if (!binDir) {
  console.error('usage: node demo_page_test.mjs <bin-dir>');
  process.exit(2);
}

function fail(message) {
  console.error('FAIL: ' + message);
  process.exitCode = 1;
  throw new Error(message);
}

const daemon = spawn(`${binDir}/heraldd`,
  ['--client-port', '0', '--ops-port', '0', '--client-host', '127.0.0.1', '--ops-host', '127.0.0.1', '--shards', '2'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const exited = new Promise((resolve) => daemon.on('exit', (code) => resolve(code)));

const listening = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('heraldd did not report its ports')), 30000);
  createInterface({ input: daemon.stdout }).on('line', (line) => {
    const m = line.match(/^heraldd listening client=[\d.]+:(\d+) ops=[\d.]+:(\d+)/);
    if (m) { clearTimeout(timer); resolve({ client: m[1], ops: m[2] }); }
  });
});

async function waitReady() {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`http://127.0.0.1:${listening.ops}/readyz`);
      if (r.status === 200) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  fail('heraldd never became ready');
}

let browser;
try {
  await waitReady();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const closes = [];
  page.on('console', (msg) => { if (msg.type() === 'error') console.error('page:', msg.text()); });
  await page.goto(`http://127.0.0.1:${listening.client}/?audience=lineup.rock-am-ring`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'connected', null,
                             { timeout: 15000 });

  execFileSync(`${binDir}/herald`, ['announce', '--audience', 'lineup.rock-am-ring', '--id', 'browser-1',
                                    '--text', 'Headliner moved to 21:00'],
               { env: { ...process.env, HERALD_OPS_URL: `http://127.0.0.1:${listening.ops}` }, stdio: 'inherit' });
  // A different audience must not show up on this page.
  execFileSync(`${binDir}/herald`, ['announce', '--audience', 'lineup.jazz', '--id', 'browser-2', '--text', 'Not for you'],
               { env: { ...process.env, HERALD_OPS_URL: `http://127.0.0.1:${listening.ops}` }, stdio: 'inherit' });

  const item = page.locator('li.announcement[data-id="browser-1"]');
  await item.waitFor({ timeout: 15000 });
  const text = await item.textContent();
  if (!text.includes('Headliner moved to 21:00')) fail(`page shows "${text}"`);
  const seq = await item.getAttribute('data-seq');
  if (!(Number(seq) >= 1)) fail(`no sequence number on the frame: ${seq}`);
  await page.waitForTimeout(500);
  const count = await page.locator('li.announcement').count();
  if (count !== 1) fail(`expected exactly one announcement on the page, found ${count}`);
  await page.screenshot({ path: process.env.HERALD_SCREENSHOT || '/tmp/herald-demo-page.png' });

  daemon.kill('SIGTERM');
  const code = await exited;
  if (code !== 0) fail(`heraldd exited with ${code} after SIGTERM`);
  // The page reconnects at once (and then sees 1006 from the stopped server), so
  // look at every close code it recorded rather than the status line.
  await page.waitForFunction(() => window.heraldCloseCodes.includes(1001), null, { timeout: 10000 });
  console.log('1 passed, 0 failed');
} finally {
  if (browser) await browser.close();
  if (daemon.exitCode === null) daemon.kill('SIGKILL');
}
