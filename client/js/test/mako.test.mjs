// Unit tests of mako.js against a real mako, run by test/browser/node_test.go
// (go test ./test/browser -run TestMakoJSNode), which starts mako and its
// services and sets:
//   MAKO_WS_URL       mako's WebSocket listener
//   MAKO_API_URL      mako's API (POST /publish)
//   MAKO_CONTROL_URL  the Go test's control endpoint (restart, recorded
//                     service calls, WebSocket peers that close with a
//                     given code or never answer)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, backoffDelay, MakoClient, MakoError } from '../mako.js';

const WS = process.env.MAKO_WS_URL;
const API = process.env.MAKO_API_URL;
const CONTROL = process.env.MAKO_CONTROL_URL;
const live = WS && API && CONTROL;
const needsMako = live ? {} : { skip: 'run through go test ./test/browser -run TestMakoJSNode' };
const T = 10000; // bound on every wait: a wait is for an event, this only turns a hang into a failure

async function publish(subscription, data) {
  const r = await fetch(API + '/publish', { method: 'POST', body: JSON.stringify({ subscription, data }) });
  assert.equal(r.status, 200, await r.text());
}

async function control(path, method = 'GET') {
  const r = await fetch(CONTROL + path, { method });
  assert.equal(r.status, 200);
  return r.json();
}

// next resolves with the detail of the next `type` event on c that pred accepts.
function next(c, type, pred = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} event within ${T} ms`)), T);
    const f = (ev) => {
      if (!pred(ev.detail)) return;
      clearTimeout(timer);
      c.removeEventListener(type, f);
      resolve(ev.detail);
    };
    c.addEventListener(type, f);
  });
}

const opened = (c) => (c.state === 'open' ? Promise.resolve() : next(c, 'state', (d) => d.state === 'open'));

test('backoff: full jitter below min(cap, base·2^attempt)', () => {
  assert.equal(backoffDelay(0, 1000, 30000, () => 0), 0);
  assert.equal(backoffDelay(0, 1000, 30000, () => 0.999), 999);
  assert.equal(backoffDelay(3, 1000, 30000, () => 0.5), 4000);
  assert.equal(backoffDelay(10, 1000, 30000, () => 0.5), 15000); // capped
  assert.equal(backoffDelay(1e6, 1000, 30000, () => 0.5), 15000); // no overflow
});

test('backoff: a reconnect storm spreads over the whole window', () => {
  // 10,000 clients cut at once by a restart, on their 4th attempt: their
  // delays must cover [0, 8000) evenly, not bunch up at one instant.
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 10000; i++) {
    const d = backoffDelay(3, 1000, 30000);
    assert.ok(d >= 0 && d < 8000, `delay ${d}`);
    buckets[Math.floor(d / 800)]++;
  }
  for (const n of buckets) assert.ok(n > 800 && n < 1200, `uneven spread: ${buckets}`);
});

test('subscribe resolves with the reply; published messages reach onMessage', needsMako, async () => {
  const got = [];
  let wake;
  const c = connect(WS, { onMessage: (m) => { got.push(m); wake?.(); } });
  try {
    const reply = await c.subscribe('demo.unit1');
    assert.deepEqual(reply, { event: 'subscribe', status: 'ok', subscription: 'demo.unit1' });
    const arrived = new Promise((r) => (wake = r));
    await publish('demo.unit1', { n: 1 });
    await arrived;
    assert.equal(got[0].subscription, 'demo.unit1');
    assert.deepEqual(got[0].data, { n: 1 });
  } finally {
    c.close();
  }
});

test('error replies reject with a MakoError carrying the reply', needsMako, async () => {
  const c = connect(WS);
  try {
    await assert.rejects(c.subscribe('nosuch.x'), (e) => e instanceof MakoError && e.reply.error === 'Invalid service.');
    assert.deepEqual(c.subscriptions(), []); // forgotten: not retried on reconnect
    await assert.rejects(c.subscribe('books.x', { lang: 'en' }), (e) => e.reply?.error === 'Authentication required.');
    await assert.rejects(c.auth('bad'), (e) => e.reply?.error === 'Bad ticket.');
    assert.equal((await c.auth('good')).status, 'ok');
    const r = await c.subscribe('books.x', { lang: 'en' });
    assert.deepEqual(r.data, { lang: 'en' });
    await assert.rejects(c.subscribe('books.x'), /Already subscribed/);
    assert.equal((await c.unsubscribe("books.x")).status, "ok");
    await assert.rejects(c.unsubscribe('books.x'), /Subscription does not exist/);
  } finally {
    c.close();
  }
});

test('send delivers a message event; the service reply comes as a reply event', needsMako, async () => {
  const c = connect(WS, { ticket: 'good' });
  try {
    await c.subscribe('books.send', { lang: 'de' });
    const reply = next(c, 'reply');
    assert.equal(c.send('books.send', { hi: 1 }), true);
    const r = await reply;
    assert.equal(r.event, 'message');
    assert.deepEqual(r.data, { echo: { hi: 1 } });
    assert.equal(c.send('books.notheld', 1), false);
  } finally {
    c.close();
  }
});

test('a subscribe made before the connection opens is made once it does; none after close', needsMako, async () => {
  const c = new MakoClient(WS);
  assert.equal(c.state, 'idle');
  const p = c.subscribe('demo.early');
  c.open();
  try {
    assert.equal((await p).status, 'ok');
  } finally {
    c.close();
  }
  assert.equal(c.state, 'closed');
  await assert.rejects(c.subscribe('demo.late'), /closed/);
});

test('after mako restarts: reconnect, re-auth, resubscribe in order with the same extra fields', needsMako, async () => {
  let tickets = 0;
  const states = [];
  const c = connect(WS, {
    ticket: async () => (tickets++, 'good'),
    backoffBase: 50,
    backoffCap: 200,
    onState: (s, info) => states.push([s, info.code]),
  });
  try {
    await c.subscribe('books.a', { lang: 'en' });
    await c.subscribe('demo.gone');
    await c.subscribe('books.b', { lang: 'fr' });
    await c.subscribe('demo.r');
    await c.unsubscribe('demo.gone');
    assert.equal(tickets, 1);

    const before = (await control('/calls')).length;
    const lost = next(c, 'state', (d) => d.state === 'reconnecting');
    await control('/restart', 'POST');
    assert.equal((await lost).code, 1001);
    await opened(c);
    await c.ping(); // mako answers in order: the resubscribes are done

    assert.equal(tickets, 2, 'the ticket function is called again');
    const after = (await control('/calls')).slice(before);
    assert.deepEqual(
      after.map((x) => [x.path, x.body.ticket ?? x.body.subscription, x.body.lang]),
      [
        ['/auth', 'good', undefined],
        ['/before_subscribe', 'books.a', 'en'],
        ['/before_subscribe', 'books.b', 'fr'],
      ],
    );
    assert.deepEqual(c.subscriptions(), ['books.a', 'books.b', 'demo.r']);

    const msg = next(c, 'message');
    await publish('demo.r', 'after restart');
    assert.equal((await msg).data, 'after restart');
    // 1001 from the shutdown; then, while mako was down, maybe failed dials (1006).
    const i = states.findIndex(([s]) => s === 'reconnecting');
    assert.deepEqual(states[i], ['reconnecting', 1001]);
    assert.ok(states.slice(i + 1, -2).every(([s, code]) => s === 'connecting' || (s === 'reconnecting' && code === 1006)), JSON.stringify(states));
    assert.deepEqual(states.slice(-2), [['connecting', undefined], ['open', undefined]]);
  } finally {
    c.close();
  }
});

// A peer that accepts, then closes with code: how the client reacts.
function closing(code, key, opts) {
  return connect(`${CONTROL.replace(/^http/, 'ws')}/close/${code}/${key}`, { backoffBase: 10, backoffCap: 40, ...opts });
}

test('1008 and 1009 do not retry blindly: stop, or wait policyRetryDelay', needsMako, async () => {
  for (const code of [1008, 1009]) {
    const c = closing(code, `stop${code}`, { policyRetryDelay: null });
    const s = await next(c, 'state', (d) => d.state === 'stopped' || d.state === 'reconnecting');
    assert.equal(s.state, 'stopped');
    assert.equal(s.code, code);
    assert.equal(await control(`/conns/stop${code}`), 1);
    c.close();
  }
  const c = closing(1008, 'late', { policyRetryDelay: 5000, random: () => 0.5 });
  try {
    const s = await next(c, 'state', (d) => d.state === 'reconnecting');
    assert.equal(s.delay, 7500); // policyRetryDelay plus a random part of it
  } finally {
    c.close();
  }
});

test('1001, 1012 and 1013 retry with backoff; 1013 starts higher', needsMako, async () => {
  for (const code of [1001, 1012, 1013]) {
    const delays = [];
    const c = closing(code, `retry${code}`, {
      random: () => 0.999,
      onState: (s, info) => s === 'reconnecting' && delays.push(info.delay),
    });
    await next(c, 'state', (d) => d.state === 'reconnecting' && d.delay === 39);
    c.close();
    assert.equal(await control(`/conns/retry${code}`), code === 1013 ? 1 : 3);
    // random 0.999 of min(40, 10·2^n): 9, 19, 39 — or from attempt 3 for 1013.
    assert.deepEqual(delays, code === 1013 ? [39] : [9, 19, 39]);
  }
});

test('no frame within pongTimeout of a ping: the connection is dropped and made again', needsMako, async () => {
  const url = `${CONTROL.replace(/^http/, 'ws')}/silent/quiet`;
  const c = connect(url, { pingInterval: 50, pongTimeout: 100, backoffBase: 10, backoffCap: 20 });
  try {
    const s = await next(c, 'state', (d) => d.state === 'reconnecting');
    assert.equal(s.code, 4000);
    assert.equal(s.reason, 'pong timeout');
    await next(c, 'state', (d) => d.state === 'open');
    assert.equal(await control('/conns/quiet'), 2);
  } finally {
    c.close();
  }
});

test('liveness pings keep a healthy connection open', needsMako, async () => {
  const states = [];
  const c = connect(WS, { pingInterval: 20, pongTimeout: 200, onState: (s) => states.push(s) });
  try {
    await c.subscribe('demo.alive');
    // Time passing is the point here: some 15 liveness pings go out and
    // are answered, and none of them may cost the connection.
    await new Promise((r) => setTimeout(r, 300));
    await c.ping();
    assert.deepEqual(states, ['connecting', 'open']);
  } finally {
    c.close();
  }
});
