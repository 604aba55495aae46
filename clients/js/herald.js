// herald.js: the browser and Node client of Herald's live streams.
//
// Problem: a WebSocket or EventSource that just reconnects loses or repeats
// announcements. Herald gives every frame a per-audience position (epoch +
// seq) and replays what a connection missed when it comes back with
// `since=AUDIENCE:EPOCH:SEQ,...`; this module keeps those positions, sends
// them on every reconnect, drops what it has already delivered and tells the
// application when the server could not fill a hole (`gap`).
//
// An ES module without dependencies: browsers load it from heraldd's
// `/herald.js`; Node 20 passes a WebSocket implementation (the `ws` package)
// in the options, since Node has a global WebSocket only from 22 on.
// See clients/js/README.md for the API.

const DEFAULTS = {
  transport: 'auto',
  backoff: { base: 500, cap: 30000, stable: 10000 },
  openTimeout: 10000,
  dedupWindow: 1024,
};

// Auth refusals arrive as HTTP 401/403 before any upgrade, which a browser's
// WebSocket and EventSource report only as "failed" (1006); the library finds
// the status with one plain GET and reports it as these close codes.
const AUTH_CODES = { 401: 4401, 403: 4403 };

/** Parses `aud:EPOCH:SEQ,aud2:EPOCH:SEQ` into {aud: {epoch, seq}}. */
export function parsePositions(text) {
  const out = {};
  for (const part of String(text || '').split(',')) {
    const item = part.trim();
    if (!item) continue;
    // Audience names may contain ':', so the last two fields come from the right.
    const last = item.lastIndexOf(':');
    const middle = last > 0 ? item.lastIndexOf(':', last - 1) : -1;
    if (middle <= 0) throw new Error(`herald: position "${item}" is not AUDIENCE:EPOCH:SEQ`);
    const seq = Number(item.slice(last + 1));
    if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`herald: bad seq in position "${item}"`);
    out[item.slice(0, middle)] = { epoch: item.slice(middle + 1, last), seq };
  }
  return out;
}

/** Formats {aud: {epoch, seq}} as the `since=` list (only `audiences` if given). */
export function formatPositions(positions, audiences) {
  const names = audiences ? audiences.filter((a) => positions[a]) : Object.keys(positions);
  return names.map((a) => `${a}:${positions[a].epoch}:${positions[a].seq}`).join(',');
}

function normalisePositions(p) {
  if (!p) return {};
  if (typeof p === 'string') return parsePositions(p);
  const out = {};
  for (const [audience, pos] of Object.entries(p)) {
    if (pos && Number.isSafeInteger(Number(pos.seq))) out[audience] = { epoch: String(pos.epoch ?? ''), seq: Number(pos.seq) };
  }
  return out;
}

/** Full jitter: a uniformly random wait up to the capped exponential step. */
export function backoffDelay(attempt, { base, cap }, random = Math.random) {
  return Math.floor(random() * Math.min(cap, base * 2 ** Math.min(attempt, 30)));
}

export class HeraldClient {
  /**
   * @param {object} options
   *   url: 'ws://host:8080' | 'https://host' (default: the page's origin)
   *   transport: 'auto' (WebSocket, SSE when WebSocket cannot open) | 'websocket' | 'sse'
   *   token: string or (async) function returning the JWT, called before each (re)connect
   *   tenant: tenant for public audiences without a token
   *   positions: {audience: {epoch, seq}} or the since text, as saved from positions()
   *   backoff: {base: 500, cap: 30000, stable: 10000} in ms (stable: open this long resets it)
   *   dedupWindow: seqs remembered per audience (1024)
   *   WebSocket, EventSource, fetch, random, setTimeout, clearTimeout: injectable
   */
  constructor(options = {}) {
    const g = globalThis;
    this._opt = {
      ...DEFAULTS,
      ...options,
      backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) },
    };
    const base = options.url || (g.location ? g.location.origin : null);
    if (!base) throw new Error('herald: options.url is required outside a browser page');
    const u = new URL(base);
    const secure = u.protocol === 'wss:' || u.protocol === 'https:';
    const root = `${u.host}${u.pathname.replace(/\/+$/, '')}`;
    this._wsBase = `${secure ? 'wss' : 'ws'}://${root}/v1/ws`;
    this._sseBase = `${secure ? 'https' : 'http'}://${root}/v1/sse`;
    if (!['auto', 'websocket', 'sse'].includes(this._opt.transport)) {
      throw new Error(`herald: transport must be auto, websocket or sse, not "${this._opt.transport}"`);
    }
    this._WebSocket = options.WebSocket || g.WebSocket;
    this._EventSource = options.EventSource || g.EventSource;
    this._fetch = options.fetch !== undefined ? options.fetch : g.fetch ? g.fetch.bind(g) : null;
    this._random = options.random || Math.random;
    this._setTimeout = options.setTimeout || g.setTimeout.bind(g);
    this._clearTimeout = options.clearTimeout || g.clearTimeout.bind(g);

    this._positions = normalisePositions(options.positions);
    this._seen = new Map(); // audience -> {epoch, seqs: Set} (insertion order = age)
    for (const [a, p] of Object.entries(this._positions)) this._remember(a, p.epoch, p.seq);
    this._subs = new Set(); // {audiences: Set, onMessage}
    this._listeners = new Map();
    this._conn = null;
    this._timer = null;
    this._attempt = 0;
    this._generation = 0;
    this._closed = false;
    this._sticky = null; // 'sse' once auto fell back and SSE worked
    this._joined = [];
    this._stats = { duplicates: 0, reconnects: 0 };
  }

  /** Listens for 'open' | 'gap' | 'close' | 'error' | 'notice'; returns an unsubscribe function. */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this._listeners.get(event).delete(fn);
  }

  /**
   * Joins `audiences` (a name or an array) and calls onMessage(announcement)
   * once per announcement. Returns a function that leaves them again.
   */
  subscribe(audiences, onMessage) {
    if (this._closed) throw new Error('herald: client is closed');
    const list = Array.isArray(audiences) ? audiences : [audiences];
    if (list.length === 0) throw new Error('herald: subscribe needs at least one audience');
    if (typeof onMessage !== 'function') throw new Error('herald: subscribe needs an onMessage function');
    const sub = { audiences: new Set(list), onMessage };
    this._subs.add(sub);
    this._audiencesChanged();
    return () => {
      if (this._subs.delete(sub)) this._audiencesChanged();
    };
  }

  /** The positions to persist: {audience: {epoch, seq}} (a copy). */
  positions() {
    const out = {};
    for (const [a, p] of Object.entries(this._positions)) out[a] = { ...p };
    return out;
  }

  /** The positions as the since text (`aud:EPOCH:SEQ,...`). */
  since() {
    return formatPositions(this._positions);
  }

  /** Counters: duplicates dropped, reconnects scheduled. */
  stats() {
    return { ...this._stats };
  }

  /** The transport of the open connection, or null. */
  get transport() {
    return this._conn && this._conn.opened ? this._conn.kind : null;
  }

  /** Stops for good: no reconnect, a 'close' with code 1000. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._stop();
    this._emit('close', { code: 1000, reason: 'closed by the client', willReconnect: false });
  }

  // ---- connection management ----

  _audienceList() {
    const all = new Set();
    for (const s of this._subs) for (const a of s.audiences) all.add(a);
    return [...all].sort();
  }

  _audiencesChanged() {
    // Several subscribe() calls in one task make one connection.
    if (this._pendingChange) return;
    this._pendingChange = true;
    queueMicrotask(() => {
      this._pendingChange = false;
      if (this._closed) return;
      const wanted = this._audienceList();
      if (wanted.join(',') === this._joined.join(',') && this._running) return;
      this._stop();
      this._joined = wanted;
      if (wanted.length > 0) this._connect();
    });
  }

  _stop() {
    this._running = false;
    this._generation += 1;
    if (this._timer) this._clearTimeout(this._timer);
    this._timer = null;
    if (this._conn) {
      const c = this._conn;
      this._conn = null;
      c.close();
    }
  }

  _schedule() {
    const delay = backoffDelay(this._attempt, this._opt.backoff, this._random);
    this._attempt += 1;
    this._stats.reconnects += 1;
    const gen = this._generation;
    this._timer = this._setTimeout(() => {
      this._timer = null;
      if (gen === this._generation && !this._closed) this._connect();
    }, delay);
    return delay;
  }

  async _token() {
    const t = this._opt.token;
    if (t === undefined || t === null) return null;
    const value = typeof t === 'function' ? await t() : t;
    return value ? String(value) : null;
  }

  _query(token, withSince) {
    const q = new URLSearchParams();
    for (const a of this._joined) q.append('audience', a);
    if (withSince) {
      const since = this._sinceFor(this._joined);
      if (since) q.set('since', since);
    }
    if (token) q.set('token', token);
    if (this._opt.tenant) q.set('tenant', this._opt.tenant);
    return q.toString();
  }

  _sinceFor(audiences) {
    const known = audiences.filter((a) => this._positions[a]);
    // A server that sends no epoch knows only the one-audience `since=SEQ`.
    if (known.length === 1 && audiences.length === 1 && this._positions[known[0]].epoch === '') {
      return String(this._positions[known[0]].seq);
    }
    return formatPositions(this._positions, known.filter((a) => this._positions[a].epoch !== ''));
  }

  async _connect() {
    this._running = true;
    const gen = ++this._generation;
    let token;
    try {
      token = await this._token();
    } catch (e) {
      if (gen !== this._generation || this._closed) return;
      this._emit('error', { message: `token provider failed: ${e && e.message ? e.message : e}`, error: e });
      this._schedule();
      return;
    }
    if (gen !== this._generation || this._closed) return;
    this._lastToken = token;
    const order =
      this._opt.transport === 'sse' || this._sticky === 'sse'
        ? ['sse']
        : this._opt.transport === 'websocket'
          ? ['websocket']
          : ['websocket', 'sse'];
    let failure = null;
    for (const kind of order) {
      if (kind === 'websocket' && !this._WebSocket) continue;
      if (kind === 'sse' && !this._EventSource) continue;
      const result = await this._open(kind, token, gen);
      if (gen !== this._generation || this._closed) return;
      if (result.opened) {
        if (kind === 'sse' && this._opt.transport === 'auto') this._sticky = 'sse';
        return; // the connection's end handler takes over
      }
      failure = result;
      if (result.status) break; // refused with a status: the other transport would be too
    }
    if (!failure) {
      this._emit('error', { message: 'no WebSocket or EventSource implementation: pass one in the options' });
      this._closed = true;
      return;
    }
    // Never opened: an auth refusal or a bad request is not cured by waiting.
    const probed = await this._probe(token);
    if (gen !== this._generation || this._closed) return;
    await this._refused(probed.status || failure.status || 0, { ...failure, body: probed.body }, token, gen);
  }

  async _refused(status, failure, token, gen) {
    if (AUTH_CODES[status]) {
      let fresh = null;
      try {
        fresh = await this._token();
      } catch {
        fresh = null;
      }
      if (gen !== this._generation || this._closed) return;
      const retry = fresh !== null && fresh !== token;
      this._emit('close', { code: AUTH_CODES[status], reason: failure.body || `HTTP ${status}`, willReconnect: retry });
      if (retry) this._schedule();
      else this._closed = true;
      return;
    }
    if (status === 400 || status === 404) {
      this._emit('close', { code: 4000 + status, reason: failure.body || `HTTP ${status}`, willReconnect: false });
      this._closed = true;
      return;
    }
    this._emit('close', { code: failure.code || 1006, reason: failure.reason || '', willReconnect: true });
    this._schedule();
  }

  // Learns why a stream was refused: the same request as a plain GET of the
  // SSE endpoint (without since=, so nothing is replayed), headers only.
  async _probe(token) {
    if (!this._fetch) return { status: 0, body: '' };
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = ctl ? this._setTimeout(() => ctl.abort(), 5000) : null;
    try {
      const r = await this._fetch(`${this._sseBase}?${this._query(token, false)}`, {
        signal: ctl ? ctl.signal : undefined,
        headers: { Accept: 'text/event-stream' },
        cache: 'no-store',
      });
      if (r.status === 200) return { status: 0, body: '' };
      return { status: r.status, body: (await r.text()).trim() };
    } catch {
      return { status: 0, body: '' };
    } finally {
      if (timer) this._clearTimeout(timer);
      if (ctl) ctl.abort();
    }
  }

  // Opens one connection; resolves {opened: true} on open, or how it failed.
  _open(kind, token, gen) {
    return new Promise((resolve) => {
      const url = `${kind === 'websocket' ? this._wsBase : this._sseBase}?${this._query(token, true)}`;
      const conn = kind === 'websocket' ? this._openWebSocket(url) : this._openEventSource(url);
      this._conn = conn;
      let settled = false;
      const openTimer = this._setTimeout(() => conn.fail(1006, 'open timed out'), this._opt.openTimeout);
      conn.onOpen = () => {
        this._clearTimeout(openTimer);
        if (gen !== this._generation) return conn.close();
        conn.opened = true;
        conn.openedAt = Date.now();
        settled = true;
        this._emit('open', { transport: kind });
        resolve({ opened: true });
      };
      conn.onFrame = (text) => {
        if (gen === this._generation) this._onFrame(text);
      };
      conn.onEnd = (end) => {
        this._clearTimeout(openTimer);
        if (this._conn === conn) this._conn = null;
        if (!settled) {
          settled = true;
          resolve({ opened: false, ...end });
          return;
        }
        if (gen !== this._generation || this._closed) return;
        if (Date.now() - conn.openedAt >= this._opt.backoff.stable) this._attempt = 0;
        if (AUTH_CODES[end.code - 4000]) {
          this._refused(end.code - 4000, end, this._lastToken, gen);
          return;
        }
        this._emit('close', { code: end.code, reason: end.reason || '', willReconnect: true });
        this._schedule();
      };
    });
  }

  _openWebSocket(url) {
    const ws = new this._WebSocket(url);
    const conn = { kind: 'websocket', opened: false, ended: false };
    let status = 0;
    conn.fail = (code, reason) => {
      if (conn.ended) return;
      conn.ended = true;
      try {
        ws.close();
      } catch {
        /* not open yet */
      }
      conn.onEnd({ code, reason, status });
    };
    conn.close = () => {
      conn.ended = true;
      try {
        ws.close(1000);
      } catch {
        /* already closed */
      }
    };
    ws.onopen = () => conn.onOpen();
    ws.onmessage = (ev) => conn.onFrame(typeof ev.data === 'string' ? ev.data : String(ev.data));
    ws.onerror = (ev) => {
      // Node's `ws` says "Unexpected server response: 401"; browsers say nothing.
      const m = /server response: (\d{3})/.exec((ev && (ev.message || (ev.error && ev.error.message))) || '');
      if (m) status = Number(m[1]);
    };
    ws.onclose = (ev) => {
      if (conn.ended) return;
      conn.ended = true;
      conn.onEnd({ code: ev.code || 1006, reason: ev.reason || '', status });
    };
    return conn;
  }

  _openEventSource(url) {
    const es = new this._EventSource(url);
    const conn = { kind: 'sse', opened: false, ended: false };
    conn.fail = (code, reason) => {
      if (conn.ended) return;
      conn.ended = true;
      es.close();
      conn.onEnd({ code, reason });
    };
    conn.close = () => {
      conn.ended = true;
      es.close();
    };
    es.onopen = () => conn.onOpen();
    es.onmessage = (ev) => conn.onFrame(ev.data);
    es.addEventListener('gap', (ev) => conn.onFrame(ev.data, 'gap'));
    // The browser would reconnect by itself with the old URL (old token, old
    // since=); the library reconnects instead, with fresh ones.
    es.onerror = () => conn.fail(1006, conn.opened ? 'stream ended' : 'stream failed to open');
    return conn;
  }

  // ---- frames ----

  _onFrame(text) {
    let f;
    try {
      f = JSON.parse(text);
    } catch {
      this._emit('error', { message: 'unparsable frame', data: String(text).slice(0, 200) });
      return;
    }
    if (f === null || typeof f !== 'object') return;
    if (f.type !== undefined) {
      // Notices are never announcements: a gap tells where history was lost.
      if (f.type === 'gap') this._emit('gap', f);
      else this._emit('notice', f);
      return;
    }
    const audience = f.audience;
    if (typeof audience === 'string' && Number.isSafeInteger(f.seq)) {
      const epoch = f.epoch === undefined ? '' : String(f.epoch);
      if (!this._remember(audience, epoch, f.seq)) {
        this._stats.duplicates += 1;
        return;
      }
      // The last frame received, not the highest seq: a scheduled
      // announcement is released later with its older seq.
      this._positions[audience] = { epoch, seq: f.seq };
    }
    for (const s of [...this._subs]) {
      if (typeof audience !== 'string' || s.audiences.has(audience)) {
        try {
          s.onMessage(f);
        } catch (e) {
          this._setTimeout(() => {
            throw e;
          }, 0);
        }
      }
    }
  }

  // Records (audience, epoch, seq); false when it was already seen.
  _remember(audience, epoch, seq) {
    let seen = this._seen.get(audience);
    if (!seen || seen.epoch !== epoch) {
      seen = { epoch, seqs: new Set() };
      this._seen.set(audience, seen);
    }
    if (seen.seqs.has(seq)) return false;
    seen.seqs.add(seq);
    if (seen.seqs.size > this._opt.dedupWindow) seen.seqs.delete(seen.seqs.values().next().value);
    return true;
  }

  _emit(event, payload) {
    const fns = this._listeners.get(event);
    if (!fns) return;
    for (const fn of [...fns]) {
      try {
        fn(payload);
      } catch (e) {
        this._setTimeout(() => {
          throw e;
        }, 0);
      }
    }
  }
}

export default HeraldClient;
