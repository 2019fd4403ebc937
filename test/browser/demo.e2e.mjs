// The demo page in Debian's headless chromium, driven through the Chrome
// DevTools Protocol by playwright-core. Run by browser_test.go
// (go test ./test/browser -run TestDemoInChromium), which starts mako and
// sets MAKO_API_URL, MAKO_CONTROL_URL and MAKO_CHROMIUM.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { MAKO_API_URL: API, MAKO_CONTROL_URL: CONTROL, MAKO_CHROMIUM } = process.env;
const T = 10000; // bound on each wait
// The whole run stays bounded whatever hangs.
setTimeout(() => {
  console.error('demo.e2e.mjs: still running after 25 s');
  process.exit(2);
}, 25000).unref();

const profile = await mkdtemp(join(tmpdir(), 'mako-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: MAKO_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  timeout: T,
  // This machine's network is closed: without these, chromium keeps
  // trying to reach Google's hosts.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(T);
  page.on('console', (m) => console.log('page:', m.text()));
  page.on('pageerror', (e) => console.log('page error:', e.message));

  // What the browser itself saw of each WebSocket handshake.
  const handshakes = [];
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketHandshakeResponseReceived', ({ response }) => handshakes.push(response));
  const extensions = (r) => Object.entries(r.headers).find(([k]) => k.toLowerCase() === 'sec-websocket-extensions')?.[1] ?? '';

  await page.goto(`${API}/demo?subscription=demo.browser`);
  await page.waitForSelector('body[data-subscribed=yes]');
  await page.evaluate(() => {
    window.notReloaded = true;
    window.states = [];
    window.makoClient.addEventListener('state', (e) => window.states.push(e.detail));
  });

  // 1. A message published through the page's form (POST /publish) arrives.
  await page.fill('#data', '{"n": 1}');
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#messages li').length === 1);
  assert.equal(await page.textContent('#messages li:nth-child(1)'), '{"n":1}');
  assert.equal(await page.textContent('#published'), 'published');

  // 2. The browser negotiated permessage-deflate.
  assert.equal(handshakes.length, 1);
  assert.equal(handshakes[0].status, 101);
  assert.match(extensions(handshakes[0]), /permessage-deflate/);

  // 3. mako restarts on the same port: the page reconnects by itself and
  // receives a new message, without a reload.
  const r = await fetch(CONTROL + '/restart', { method: 'POST' });
  assert.equal(r.status, 200);
  await page.waitForFunction(() => window.states.some((s) => s.code === 1001) && document.body.dataset.state === 'open');
  console.log('states:', JSON.stringify(await page.evaluate(() => window.states)));
  // mako answers a connection's events in order: once this ping is
  // answered, the resubscribe sent before it is done.
  await page.evaluate(() => window.makoClient.ping());
  await page.fill('#data', '{"n": 2}');
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#messages li').length === 2);
  assert.equal(await page.textContent('#messages li:nth-child(2)'), '{"n":2}');
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was reloaded');
  const last = handshakes.at(-1);
  assert.equal(last.status, 101);
  assert.match(extensions(last), /permessage-deflate/);
  console.log(`ok: ${handshakes.length} handshakes, extensions "${extensions(last)}"`);

  // 4. &ticket= and &url=: a service that requires authentication.
  const other = await context.newPage();
  other.setDefaultTimeout(T);
  const ws = encodeURIComponent(process.env.MAKO_WS_URL);
  await other.goto(`${API}/demo?subscription=books.page&ticket=good&url=${ws}`);
  await other.waitForSelector('body[data-subscribed=yes]');
  assert.equal(await other.textContent('#url'), process.env.MAKO_WS_URL);
  await other.fill('#data', '"for books"');
  await other.click('button[type=submit]');
  await other.waitForFunction(() => document.querySelectorAll('#messages li').length === 1);
  assert.equal(await other.textContent('#messages li'), '"for books"');
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
