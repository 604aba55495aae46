// The demo page (which uses /herald.js) in headless Chromium on two
// audiences, across a heraldd restart with the same data_dir and client
// port: the embedded Kafka comes back with another cluster id, so every
// epoch changes and the page gets a gap per audience. Announcements sent
// before the restart, right after it (while the browser is kept offline, so
// they reach the page only by the replay) and once it is back are each shown
// exactly once.
//   HERALD_BIN_DIR=build/bin node --test tests/browser/herald_js/chromium.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startHerald, stopHerald, announce } from './helpers.mjs';

const binDir = process.env.HERALD_BIN_DIR;
if (!binDir) throw new Error('set HERALD_BIN_DIR to the folder holding heraldd and herald');

test('every announcement exactly once across a heraldd restart, with a gap per audience', async () => {
  const work = mkdtempSync(join(tmpdir(), 'herald-js-chromium-'));
  const dataDir = join(work, 'data');
  let herald = await startHerald(binDir, dataDir);
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    page.on('console', (msg) => { if (msg.type() === 'error') console.error('page:', msg.text()); });
    const port = herald.ports.client;
    await page.goto(`http://127.0.0.1:${port}/?audience=lineup.main&audience=ticker.football`);
    await page.waitForFunction(() => document.getElementById('status').textContent === 'connected', null,
      { timeout: 15000 });
    const expected = [];
    const send = (h, id, audience) => { announce(h, audience, id, `text of ${id}`); expected.push(id); };
    const shown = async () => page.$$eval('li.announcement', (items) => items.map((i) => i.dataset.id));
    const waitShown = (n) => page.waitForFunction((k) => document.querySelectorAll('li.announcement').length >= k, n,
      { timeout: 20000 });

    send(herald, 'before-1', 'lineup.main');
    send(herald, 'before-2', 'ticker.football');
    await waitShown(2);

    assert.equal(await stopHerald(herald), 0, 'heraldd exits 0 on SIGTERM');
    await page.waitForFunction(() => window.heraldCloseCodes.includes(1001), null, { timeout: 10000 });
    // The browser stays offline until the "during" announcements are out,
    // so they can only reach the page by the replay after its reconnect.
    await page.context().setOffline(true);
    herald = await startHerald(binDir, dataDir, { clientPort: port });
    send(herald, 'during-1', 'lineup.main');
    send(herald, 'during-2', 'ticker.football');
    const connectedWhileOffline = await page.evaluate(
      () => document.getElementById('status').textContent === 'connected');
    assert.ok(!connectedWhileOffline, 'the page could not reconnect while offline');
    await page.context().setOffline(false);
    await page.waitForFunction(() => document.getElementById('status').textContent === 'connected', null,
      { timeout: 60000 });
    send(herald, 'after-1', 'lineup.main');
    send(herald, 'after-2', 'ticker.football');
    await waitShown(6);
    await page.waitForTimeout(1000); // a duplicate would show up now

    const ids = await shown();
    assert.deepEqual([...ids].sort(), [...expected].sort(), `each shown exactly once: ${ids}`);
    // Listed newest first; within an audience, release order.
    const order = (a) => [...ids].reverse().filter((id) => expected.indexOf(id) % 2 === (a === 'lineup.main' ? 0 : 1));
    assert.deepEqual(order('lineup.main'), ['before-1', 'during-1', 'after-1']);
    assert.deepEqual(order('ticker.football'), ['before-2', 'during-2', 'after-2']);
    const gaps = await page.evaluate(() => window.heraldGaps);
    assert.deepEqual(gaps.map((g) => g.audience).sort(), ['lineup.main', 'ticker.football'],
      `a gap for each audience: ${JSON.stringify(gaps)}`);
    for (const g of gaps) assert.notEqual(g.epoch, g.since_epoch, 'the gap names the epoch change');
    assert.equal(await page.locator('li.gap').count(), 2, 'the page shows the gaps');
    await page.screenshot({ path: process.env.HERALD_SCREENSHOT || join(tmpdir(), 'herald-js-restart.png') });
  } finally {
    if (browser) await browser.close();
    await stopHerald(herald, 'SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
});
