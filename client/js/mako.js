// mako.js: a browser client for mako (and SocketShark: same protocol, see
// docs/protocol.md). One ES module, no dependencies. mako serves it at
// GET /mako.js on its API port.
//
//   import { connect } from '/mako.js';
//   const c = connect('ws://127.0.0.1:9000', {
//     ticket: () => fetch('/ticket').then(r => r.text()), // or a string
//     onMessage: m => console.log(m.subscription, m.data),
//     onState: (state, info) => console.log(state, info),
//   });
//   await c.subscribe('books.book_1', { lang: 'en' }); // resolves with mako's reply
//
// What it adds to a bare WebSocket (docs/client.md has the details):
//   - reconnects with exponential backoff and full jitter, so the clients of
//     a restarted node come back spread over time, not in one burst;
//   - after a reconnect it authenticates again (calling the ticket function
//     again when it is one) and resubscribes every subscription, with the
//     same extra fields, in the order they were made;
//   - liveness: a `ping` event every pingInterval ms; no frame at all
//     within pongTimeout ms of one → the socket is dropped and reconnected
//     (a browser cannot see WebSocket ping frames, and a half-open TCP
//     connection otherwise looks open for minutes);
//   - close codes: 1008/1009 (and the protocol errors 1002/1003/1007) are
//     the client's own fault and would repeat: it waits policyRetryDelay
//     (and a random part of it) or, with policyRetryDelay: null, stops in
//     state "stopped". 1013 (server overloaded) starts the backoff higher.
//     Every other code (1001 shutdown, 1006 lost, 1012 restart...) retries
//     with backoff;
//   - replies matched to requests: subscribe/unsubscribe/auth return
//     Promises of mako's reply, rejected with a MakoError on an error reply.

/** An error reply from mako (or a request that cannot be made); .reply is the frame when there is one. */
export class MakoError extends Error {
  constructor(message, reply) {
    super(message);
    this.name = 'MakoError';
    this.reply = reply;
  }
}

/** Client states, as passed to onState and in the "state" event. */
export const STATES = Object.freeze(['idle', 'connecting', 'open', 'reconnecting', 'stopped', 'closed']);

const DEFAULTS = {
  ticket: null, // string, or a function returning a string or a Promise of one
  backoffBase: 1000, // ms; attempt n waits random(0, min(backoffCap, backoffBase·2^n))
  backoffCap: 30000, // ms
  overloadAttempt: 3, // after a 1013 close, backoff continues from at least this attempt
  policyRetryDelay: 60000, // ms after 1002/1003/1007/1008/1009, plus random(0, this); null = stop
  pingInterval: 25000, // ms between ping events; 0 = none
  pongTimeout: 10000, // ms without any frame after a ping before the socket is dropped
  WebSocket: null, // constructor; default globalThis.WebSocket
  random: Math.random,
  onMessage: null, // (message frame) => void
  onState: null, // (state, info) => void
  onError: null, // (MakoError) => void: errors no Promise is waiting for
  onReply: null, // (reply frame) => void: replies no request waits for (to send())
};

// Close codes that say the client itself broke a rule: reconnecting at
// once would only break it again (RFC 6455 §7.4.1; docs/protocol.md).
const POLICY_CODES = new Set([1002, 1003, 1007, 1008, 1009]);

/**
 * Full-jitter exponential backoff: a delay in ms, uniform in
 * [0, min(cap, base·2^attempt)). attempt counts from 0.
 */
export function backoffDelay(attempt, base, cap, random = Math.random) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** Creates a client and starts connecting; see MakoClient. */
export function connect(url, opts) {
  const c = new MakoClient(url, opts);
  c.open();
  return c;
}

/**
 * A mako connection that survives reconnects. Events (EventTarget):
 * "message" (detail: the message frame), "state" (detail: {state, ...info}),
 * "reply" (detail: a reply no request waits for, e.g. to send()),
 * "unsubscribed" (detail: the frame mako pushed when it ended a
 * subscription), "error" (detail: a MakoError no Promise waits for).
 */
export class MakoClient extends EventTarget {
  constructor(url, opts = {}) {
    super();
    this.url = url;
    this.opts = { ...DEFAULTS, ...opts };
    this.state = 'idle'; // until open()
    this.lastClose = null; // {code, reason} of the last socket close
    this.attempt = 0; // consecutive failed connections
    this._ws = null;
    this._ready = false; // socket open and the restore (auth + resubscribe) sent
    this._ticket = this.opts.ticket;
    this._authWaiters = [];
    this._subs = new Map(); // name → {extra, waiters}; Map keeps subscription order
    this._pending = []; // requests sent on this socket awaiting a reply, in order
    this._retryTimer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._userClosed = false;
    this._pings = new Map(); // data → waiter of ping()
    this._pingSeq = 0;
  }

  /** Starts connecting (connect() calls it). */
  open() {
    this._userClosed = false;
    if (!this._ws && !this._retryTimer) this._dial();
  }

  /** Closes for good: no reconnect; waiting Promises are rejected. */
  close() {
    this._userClosed = true;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    const ws = this._ws;
    if (ws) {
      this._lost(ws, 1000, 'closed by client');
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    } else {
      this._finish('closed', {});
    }
  }

  /** Names of the subscriptions held (or being made), in subscription order. */
  subscriptions() {
    return [...this._subs.keys()];
  }

  /**
   * Authenticates with a ticket (a string, or a function returning one or
   * a Promise of one: called again on every reconnect). Resolves with the
   * auth reply; rejects with a MakoError on an error reply.
   */
  auth(ticket) {
    if (this._final()) return Promise.reject(new MakoError(`mako.js ${this.state}`));
    this._ticket = ticket;
    const p = new Promise((resolve, reject) => this._authWaiters.push({ resolve, reject }));
    if (this._ready) {
      this._sendAuth(this._ws).catch((e) => settle(this._authWaiters.splice(0), null, new MakoError('ticket: ' + e)));
    }
    return p;
  }

  /**
   * Subscribes to "service.topic" with the service's extra fields (an
   * object; kept and sent again on every resubscribe). Resolves with the
   * subscribe reply; rejects with a MakoError on an error reply (the
   * subscription is then forgotten). While disconnected it is made on the
   * next connection.
   */
  subscribe(name, extraFields = {}) {
    if (this._final()) return Promise.reject(new MakoError(`mako.js ${this.state}`));
    if (this._subs.has(name)) return Promise.reject(new MakoError('Already subscribed.'));
    const sub = { extra: { ...extraFields }, waiters: [] };
    this._subs.set(name, sub);
    const p = new Promise((resolve, reject) => sub.waiters.push({ resolve, reject }));
    if (this._ready) this._sendSubscribe(this._ws, name, sub);
    return p;
  }

  /**
   * Ends a subscription; it is not made again on reconnect. Resolves with
   * the unsubscribe reply (a local {status: "ok", local: true} one when
   * not connected: the next connection simply does not make it).
   */
  unsubscribe(name) {
    const sub = this._subs.get(name);
    if (!sub) return Promise.reject(new MakoError('Subscription does not exist.'));
    this._subs.delete(name);
    if (!this._ready) {
      settle(sub.waiters.splice(0), null, new MakoError('Unsubscribed before the subscription was made.'));
      return Promise.resolve(localUnsubscribe(name));
    }
    return new Promise((resolve, reject) => {
      this._request(this._ws, { event: 'unsubscribe', subscription: name }, [{ resolve, reject }], (reply) => {
        // before_unsubscribe refused: mako keeps the subscription, so do we.
        if (reply.status !== 'ok' && !this._subs.has(name)) this._subs.set(name, sub);
      });
    });
  }

  /**
   * A ping event round trip: resolves with the time it took in ms once the
   * pong arrives. mako handles a connection's events in order, so it also
   * says that every event sent before it has been handled (a barrier).
   * Rejects when not connected or when the connection drops first.
   */
  ping() {
    if (!this._ready) return Promise.reject(new MakoError('not connected'));
    const data = 'p' + ++this._pingSeq;
    const start = Date.now();
    return new Promise((resolve, reject) => {
      this._pings.set(data, { resolve: () => resolve(Date.now() - start), reject });
      this._ws.send(JSON.stringify({ event: 'ping', data }));
    });
  }

  /**
   * Sends a "message" event with data on a held subscription. Returns false
   * when it could not be sent (not connected, or not subscribed): messages
   * are not queued across reconnects. A reply, when the service gives one,
   * comes as a "reply" event (and opts.onReply).
   */
  send(name, data) {
    const sub = this._subs.get(name);
    if (!this._ready || !sub) return false;
    this._ws.send(JSON.stringify({ event: 'message', subscription: name, data }));
    return true;
  }

  // --- connection ---

  _dial() {
    this._retryTimer = null;
    this._setState('connecting', { attempt: this.attempt });
    const WS = this.opts.WebSocket || globalThis.WebSocket;
    let ws;
    try {
      ws = new WS(this.url);
    } catch (e) {
      // A malformed URL throws at once: retrying cannot fix it.
      this._finish('stopped', { error: String(e) });
      return;
    }
    this._ws = ws;
    this._gotFrame = false;
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (ev) => this._onFrame(ws, ev.data);
    ws.onclose = (ev) => this._lost(ws, ev.code, ev.reason);
    // Browsers follow an error with a close event (code 1006); some
    // runtimes (node 20's WebSocket on a refused connection) do not.
    ws.onerror = () => {
      this._lost(ws, 1006, 'connection failed');
      try {
        ws.close();
      } catch {
        // never opened
      }
    };
  }

  async _onOpen(ws) {
    if (ws !== this._ws) return;
    this._startLiveness(ws);
    try {
      // Events are handled in arrival order by mako, so auth then the
      // subscribes can go out back to back.
      if (this._ticket != null && this._ticket !== '') await this._sendAuth(ws);
      if (ws !== this._ws) return;
      for (const [name, sub] of this._subs) this._sendSubscribe(ws, name, sub);
    } catch (e) {
      // The ticket function failed: the subscriptions that need no auth
      // are still made; those that do fail with "Authentication required.".
      const err = e instanceof MakoError ? e : new MakoError('ticket: ' + e);
      const waiters = this._authWaiters.splice(0);
      if (waiters.length) settle(waiters, null, err);
      else this._error(err);
      if (ws !== this._ws) return;
      for (const [name, sub] of this._subs) this._sendSubscribe(ws, name, sub);
    }
    this._ready = true;
    this._setState('open', {});
  }

  async _sendAuth(ws) {
    const t = typeof this._ticket === 'function' ? await this._ticket() : this._ticket;
    if (ws !== this._ws) return;
    const waiters = this._authWaiters.splice(0);
    this._request(ws, { event: 'auth', method: 'ticket', ticket: t }, waiters, (reply) => {
      if (reply.status !== 'ok' && waiters.length === 0) this._error(new MakoError(String(reply.error), reply));
    });
  }

  _sendSubscribe(ws, name, sub) {
    const waiters = sub.waiters.splice(0);
    this._request(ws, { event: 'subscribe', subscription: name, ...sub.extra }, waiters, (reply) => {
      if (reply.status === 'ok') return;
      if (this._subs.get(name) === sub) this._subs.delete(name);
      // A resubscribe nobody awaits: tell the app it lost the subscription.
      if (waiters.length === 0) this._error(new MakoError(String(reply.error), reply));
    });
  }

  // _request sends a frame whose reply is matched by event and subscription
  // (mako answers a session's events in order, so the first request waiting
  // with that key is the one answered).
  _request(ws, frame, waiters, then) {
    this._pending.push({ event: frame.event, subscription: frame.subscription, waiters, then });
    ws.send(JSON.stringify(frame));
  }

  _onFrame(ws, data) {
    if (ws !== this._ws) return;
    clearTimeout(this._pongTimer);
    this._pongTimer = null;
    if (!this._gotFrame) {
      // The connection works end to end: the next failure starts the backoff afresh.
      this._gotFrame = true;
      this.attempt = 0;
    }
    let m;
    try {
      m = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
    } catch {
      return;
    }
    if (m === null || typeof m !== 'object') return;
    if ('status' in m) {
      this._onReply(m);
      return;
    }
    if (m.event === 'message') {
      if (this.opts.onMessage) this.opts.onMessage(m);
      this.dispatchEvent(new CustomEvent('message', { detail: m }));
    } else if (m.event === 'pong') {
      const w = this._pings.get(m.data);
      if (w) {
        this._pings.delete(m.data);
        w.resolve();
      }
    } else if (m.event === 'unsubscribe') {
      // mako ended the subscription (re-authorization failed).
      this._subs.delete(m.subscription);
      this.dispatchEvent(new CustomEvent('unsubscribed', { detail: m }));
    }
  }

  _onReply(m) {
    const i = this._pending.findIndex((p) => p.event === m.event && (p.subscription ?? null) === (m.subscription ?? null));
    if (i < 0) {
      if (this.opts.onReply) this.opts.onReply(m);
      this.dispatchEvent(new CustomEvent('reply', { detail: m }));
      return;
    }
    const [p] = this._pending.splice(i, 1);
    if (p.then) p.then(m);
    settle(p.waiters, m, m.status === 'ok' ? null : new MakoError(String(m.error), m));
  }

  _startLiveness(ws) {
    const { pingInterval, pongTimeout } = this.opts;
    if (!pingInterval) return;
    this._pingTimer = setInterval(() => {
      if (ws !== this._ws) return;
      ws.send('{"event":"ping","data":"mako.js"}');
      if (!this._pongTimer) {
        this._pongTimer = setTimeout(() => {
          // A browser's close() waits for the peer's close frame, which a
          // dead connection never sends: give the socket up now.
          this._lost(ws, 4000, 'pong timeout');
          try {
            ws.close(4000, 'pong timeout');
          } catch {
            // already closing
          }
        }, pongTimeout);
      }
    }, pingInterval);
  }

  // _lost handles the end of socket ws, once: requests waiting on it are
  // kept for the next connection (auth, subscribe) or settled (unsubscribe),
  // then a reconnect is scheduled as the close code says.
  _lost(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._ready = false;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
    this._pingTimer = this._pongTimer = null;
    this.lastClose = { code, reason };
    for (const w of this._pings.values()) w.reject(new MakoError('connection lost'));
    this._pings.clear();
    for (const p of this._pending.splice(0)) {
      if (p.event === 'auth') this._authWaiters.unshift(...p.waiters);
      else if (p.event === 'subscribe' && this._subs.has(p.subscription)) this._subs.get(p.subscription).waiters.unshift(...p.waiters);
      else if (p.event === 'unsubscribe') settle(p.waiters, localUnsubscribe(p.subscription), null);
      else settle(p.waiters, null, new MakoError('Unsubscribed before the subscription was made.'));
    }
    if (this._userClosed) {
      this._finish('closed', { code, reason });
      return;
    }
    let delay;
    if (POLICY_CODES.has(code)) {
      const d = this.opts.policyRetryDelay;
      if (d == null) {
        this._finish('stopped', { code, reason });
        return;
      }
      delay = d + Math.floor(this.opts.random() * d);
    } else {
      if (code === 1013) this.attempt = Math.max(this.attempt, this.opts.overloadAttempt);
      delay = backoffDelay(this.attempt, this.opts.backoffBase, this.opts.backoffCap, this.opts.random);
    }
    this.attempt++;
    this._setState('reconnecting', { code, reason, delay, attempt: this.attempt });
    this._retryTimer = setTimeout(() => this._dial(), delay);
  }

  // _finish ends the client in a final state, rejecting what still waits.
  _finish(state, info) {
    const err = new MakoError(`mako.js ${state}` + (info.code ? ` (close ${info.code} ${info.reason || ''})` : ''));
    settle(this._authWaiters.splice(0), null, err);
    for (const sub of this._subs.values()) settle(sub.waiters.splice(0), null, err);
    this._setState(state, info);
  }

  // _final: closed or stopped, until open() is called again.
  _final() {
    return this.state === 'closed' || this.state === 'stopped';
  }

  _setState(state, info) {
    this.state = state;
    if (this.opts.onState) this.opts.onState(state, info);
    this.dispatchEvent(new CustomEvent('state', { detail: { state, ...info } }));
  }

  _error(e) {
    if (this.opts.onError) this.opts.onError(e);
    this.dispatchEvent(new CustomEvent('error', { detail: e }));
  }
}

function settle(waiters, value, err) {
  for (const w of waiters) {
    if (err) w.reject(err);
    else w.resolve(value);
  }
}

function localUnsubscribe(name) {
  return { event: 'unsubscribe', status: 'ok', subscription: name, local: true };
}
