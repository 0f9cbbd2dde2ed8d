// arrwcdc live dashboard: plain JavaScript, no build step, nothing from the
// network but the bridge that serves it.
//
// Everything that comes from events (types, ids, sources, data) is written
// with textContent or as attribute values, never parsed as HTML: events come
// from outside.
'use strict';

(() => {
  const FEED_MAX = 200;          // rows kept in the feed
  const NOTICE_MAX = 60;         // lines kept in the connection log
  const CHART_SECONDS = 60;      // width of the rate chart
  const STATS_EVERY_MS = 2000;   // stats poll period
  const STATS_TIMEOUT_MS = 1800;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const STABLE_MS = 10000;       // a socket open this long resets the backoff
  const DATA_SHORT = 180;        // characters of data shown in a collapsed row
  const DATA_FULL = 65536;       // characters of data shown in an open row
  const LIBRARY_ID = /^[A-Za-z0-9_-]{1,128}$/;
  const MAX_TYPES = 500;         // distinct types counted one by one
  const MAX_LIBS = 5000;         // distinct libraries remembered

  const $ = (id) => document.getElementById(id);
  const nf = new Intl.NumberFormat('en-US');
  const fmtInt = (n) => nf.format(n);
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : null);

  // The page may be served at / or /web/index.html, or under a mount
  // prefix: the API is next to the directory of the page.
  const basePath = (() => {
    let p = location.pathname;
    p = p.slice(0, p.lastIndexOf('/') + 1);
    if (p.endsWith('/web/')) p = p.slice(0, -'web/'.length);
    return p;
  })();
  const httpURL = (path) => new URL(basePath + path, location.href);
  const wsURL = (path) => {
    const u = httpURL(path);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u;
  };

  // ---- state ---------------------------------------------------------------

  const state = {
    target: { kind: 'all', id: '' },
    ws: null,
    gen: 0,               // bumps on every connect; stale sockets are ignored
    lastSeq: 0,           // highest stream sequence seen (resume point)
    positioned: false,    // lastSeq is a position of this view (0 included)
    sinceSupported: null, // does the bridge accept since_seq? null: unknown
    attempts: 0,
    retryAt: 0,
    retryTimer: 0,
    opened: false,
    openedAt: 0,
    received: 0,
    duplicates: 0,
    byType: new Map(),    // event type -> count received here
    busByType: {},        // event type -> count on the bus (stats)
    libs: new Map(),      // library id -> {here, bus}
    feed: [],             // latest events, oldest first (for re-render)
    pending: [],          // events not rendered yet
    renderTimer: 0,
    paused: false,
    pausedNew: 0,
    perSecond: new Map(), // unix second -> events received
    busRate: [],          // [{t0, t, rate}]: published/s between two stats polls
    prevPublished: null,  // {t, n}
    stats: null,
  };

  // ---- small DOM helpers (text only) ----------------------------------------

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function setFigure(id, value, text) {
    const e = $(id);
    e.dataset.value = value === null || value === undefined ? '' : String(value);
    e.textContent = text !== undefined ? text : (typeof value === 'number' ? fmtInt(value) : '—');
  }

  const TYPE_COLORS = {
    'document.added': '#34d399',
    'document.deleted': '#fb7185',
    'library.created': '#38bdf8',
    'library.deleted': '#fb923c',
    'search.performed': '#a78bfa',
  };
  function typeColor(type) {
    if (TYPE_COLORS[type]) return TYPE_COLORS[type];
    let h = 0;
    for (let i = 0; i < type.length; i++) h = (h * 31 + type.charCodeAt(i)) >>> 0;
    return `hsl(${h % 360} 75% 68%)`;
  }
  function badge(type) {
    const b = el('span', 'badge', type);
    b.style.setProperty('--c', typeColor(type));
    b.title = type;
    return b;
  }

  function short(s, n) {
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  }

  function clock(d) {
    if (!(d instanceof Date) || isNaN(d)) return '—';
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }

  function fmtMs(v) {
    if (typeof v !== 'number' || !isFinite(v)) return '—';
    if (v < 1) return `${Math.round(v * 1000)} µs`;
    if (v < 10) return `${v.toFixed(2)} ms`;
    if (v < 1000) return `${v.toFixed(1)} ms`;
    if (v < 60000) return `${(v / 1000).toFixed(2)} s`;
    return `${(v / 60000).toFixed(1)} min`;
  }

  function fmtDuration(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '—';
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }

  // ---- connection log ---------------------------------------------------------

  function notice(level, text) {
    const li = el('li', `notice ${level}`);
    const t = el('time', '', clock(new Date()));
    li.append(t, el('span', '', text));
    const list = $('notices');
    list.prepend(li);
    while (list.children.length > NOTICE_MAX) list.lastElementChild.remove();
  }

  function setConn(st, text) {
    const pill = $('conn-status');
    pill.dataset.state = st;
    document.body.dataset.conn = st;
    $('conn-text').textContent = text;
    pill.title = text;
  }

  const CLOSE_NAMES = {
    1000: 'normal closure', 1001: 'going away', 1002: 'protocol error', 1003: 'unsupported data',
    1005: 'no status', 1006: 'connection lost', 1007: 'invalid data', 1008: 'policy violation',
    1009: 'message too big', 1011: 'bridge error', 1012: 'service restart', 1013: 'try again later',
    1015: 'TLS failure', 4008: 'slow consumer',
  };

  // ---- the socket -------------------------------------------------------------

  function targetLabel() {
    return state.target.kind === 'all' ? 'all libraries' : `library ${state.target.id}`;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    state.retryAt = 0;
    const gen = ++state.gen;
    if (state.ws) {
      const old = state.ws;
      state.ws = null;
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try { old.close(1000, 'switching view'); } catch (_) { /* already closed */ }
    }
    const useSince = state.positioned && state.sinceSupported !== false;
    const path = state.target.kind === 'all'
      ? 'v1/events/ws'
      : `v1/libraries/${encodeURIComponent(state.target.id)}/ws`;
    const url = wsURL(path);
    if (useSince) url.searchParams.set('since_seq', String(state.lastSeq));
    state.opened = false;
    setConn('connecting', `connecting to ${targetLabel()}…`);

    let ws;
    try {
      ws = new WebSocket(url.href);
    } catch (err) {
      notice('error', `cannot open a socket: ${err && err.message ? err.message : err}`);
      scheduleRetry();
      return;
    }
    state.ws = ws;
    ws.onopen = () => {
      if (gen !== state.gen) return;
      state.opened = true;
      state.openedAt = Date.now();
      if (useSince) state.sinceSupported = true;
    };
    ws.onmessage = (e) => {
      if (gen !== state.gen) return;
      onFrame(e.data, useSince);
    };
    ws.onclose = (e) => {
      if (gen !== state.gen) return;
      state.ws = null;
      onClosed(e, gen, url, useSince);
    };
  }

  // Answers to a socket request that retrying would only repeat.
  const REFUSED = new Set([400, 401, 403, 404, 405, 414, 431]);

  // A failed handshake hides the HTTP answer from the page, so ask the same
  // URL over plain HTTP: the bridge answers bad requests with a JSON reason
  // before any upgrade.
  async function probe(url) {
    const u = new URL(url.href);
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 4000);
    try {
      const r = await fetch(u.href, { cache: 'no-store', signal: ctl.signal });
      let reason = '';
      try { const body = await r.json(); reason = body && typeof body.error === 'string' ? body.error : ''; } catch (_) { /* not JSON */ }
      return { status: r.status, reason };
    } catch (_) {
      return { status: 0, reason: 'bridge unreachable' };
    } finally {
      clearTimeout(timer);
    }
  }

  async function onClosed(e, gen, url, usedSince) {
    const wasOpen = state.opened;
    state.opened = false;
    if (!wasOpen) {
      const why = await probe(url);
      if (gen !== state.gen) return;
      if (usedSince && why.status === 400 && /since_seq/.test(why.reason)) {
        state.sinceSupported = false;
        notice('warn', `the bridge cannot replay (${why.reason}): reconnecting live only; events stored while disconnected are not replayed`);
        connect();
        return;
      }
      if (REFUSED.has(why.status)) {
        // A permanent refusal: retrying would only repeat it.
        const reason = why.reason || `HTTP ${why.status}`;
        setConn('error', `refused: ${reason}`);
        notice('error', `the bridge refused ${targetLabel()}: ${reason}`);
        return;
      }
      // 426 (upgrade required) means the bridge would take this socket: the
      // handshake failed on the way; anything else may pass too.
      const detail = why.status === 426 ? 'handshake failed' : why.reason || (why.status ? `HTTP ${why.status}` : 'connection failed');
      notice('warn', `could not connect to ${targetLabel()}: ${detail}`);
      scheduleRetry();
      return;
    }
    if (Date.now() - state.openedAt >= STABLE_MS) state.attempts = 0;
    const name = CLOSE_NAMES[e.code] || 'closed';
    const reason = e.reason ? `: ${e.reason}` : '';
    notice(e.code === 1000 ? 'info' : 'warn', `socket closed (${e.code} ${name})${reason}`);
    if (e.code === 4008) {
      // The reason names the last seq the bridge sent; resume from there.
      const m = /since_seq=(\d+)/.exec(e.reason || '');
      if (m && Number(m[1]) > state.lastSeq) state.lastSeq = Number(m[1]);
      scheduleRetry(250, `${name}${reason}`);
      return;
    }
    scheduleRetry(0, `${name}${reason}`);
  }

  function scheduleRetry(minDelay = 0, why = '') {
    clearTimeout(state.retryTimer);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempts);
    const delay = Math.max(minDelay, Math.round(base * (0.8 + Math.random() * 0.4)));
    state.attempts = Math.min(state.attempts + 1, 16);
    state.retryAt = Date.now() + delay;
    state.retryWhy = why;
    updateRetryText();
    state.retryTimer = setTimeout(connect, delay);
  }

  function updateRetryText() {
    if (!state.retryAt) return;
    const s = Math.max(0, (state.retryAt - Date.now()) / 1000);
    const why = state.retryWhy ? ` — ${state.retryWhy}` : '';
    setConn('reconnecting', `reconnecting in ${s.toFixed(s < 10 ? 1 : 0)} s${why}`);
  }

  function onFrame(raw, usedSince) {
    if (typeof raw !== 'string') {
      notice('warn', 'binary frame ignored');
      return;
    }
    let d;
    try {
      d = JSON.parse(raw);
    } catch (_) {
      notice('warn', `unreadable frame (${raw.length} bytes): ${short(raw, 120)}`);
      return;
    }
    if (!d || typeof d !== 'object' || Array.isArray(d)) {
      notice('warn', `unexpected frame: ${short(raw, 160)}`);
      return;
    }
    if (d.type === 'event') onEvent(d);
    else if (d.type === 'connected') onConnected(d, usedSince);
    else {
      const kind = typeof d.type === 'string' ? d.type : 'untyped';
      notice(kind === 'gap' ? 'warn' : 'info', `${kind} frame: ${short(raw, 300)}`);
      if (kind === 'gap') addFeedNotice(`gap: ${short(raw, 300)}`);
    }
  }

  function onConnected(d, usedSince) {
    const streamSeq = Number(d.stream_seq);
    const scope = typeof d.library_id === 'string' ? `library ${d.library_id}`
      : typeof d.filter === 'string' ? `filter ${d.filter}` : targetLabel();
    if (Number.isFinite(streamSeq) && streamSeq >= 0) {
      if (state.positioned && streamSeq < state.lastSeq) {
        notice('warn', `the stream restarted (last seq ${fmtInt(streamSeq)} < ${fmtInt(state.lastSeq)} seen): sequence numbers start again`);
        state.lastSeq = streamSeq;
      } else if (state.positioned && !usedSince && streamSeq > state.lastSeq) {
        const first = state.lastSeq + 1;
        const text = streamSeq === first ? `seq ${fmtInt(first)}` : `seqs ${fmtInt(first)}–${fmtInt(streamSeq)}`;
        notice('warn', `while disconnected the stream stored ${text}; this bridge cannot replay, so events of this view among them are missing`);
        addFeedNotice(`possible gap: ${text} stored while disconnected`);
      }
      // Without a replay, nothing at or below stream_seq will come: that is
      // where this view resumes.
      if (!usedSince && (!state.positioned || streamSeq > state.lastSeq)) state.lastSeq = streamSeq;
      state.positioned = true;
    }
    $('scope-text').textContent = Number.isFinite(streamSeq) ? `${scope} · from seq ${fmtInt(streamSeq)}` : scope;
    $('scope-text').title = $('scope-text').textContent;
    const resumed = usedSince ? ` (resumed after seq ${fmtInt(state.lastSeq)})` : '';
    notice('ok', `live: ${scope}${resumed}`);
    setConn('live', `live · ${targetLabel()}`);
  }

  function onEvent(d) {
    const seq = typeof d.seq === 'number' ? d.seq : Number(d.seq);
    if (Number.isFinite(seq) && seq > 0) {
      if (state.positioned && seq <= state.lastSeq) { state.duplicates++; return; }
      state.lastSeq = seq;
      state.positioned = true;
    }
    const type = typeof d.event_type === 'string' && d.event_type ? d.event_type : '(no type)';
    const lib = typeof d.library_id === 'string' ? d.library_id : '';
    state.received++;
    const counted = state.byType.has(type) || state.byType.size < MAX_TYPES ? type : '(other types)';
    state.byType.set(counted, (state.byType.get(counted) || 0) + 1);
    if (lib && (state.libs.has(lib) || state.libs.size < MAX_LIBS)) {
      const l = state.libs.get(lib) || { here: 0, bus: 0 };
      l.here++;
      state.libs.set(lib, l);
    }
    const sec = Math.floor(Date.now() / 1000);
    state.perSecond.set(sec, (state.perSecond.get(sec) || 0) + 1);

    const ev = {
      type, lib, seq: Number.isFinite(seq) ? seq : null,
      source: typeof d.source === 'string' ? d.source : '',
      time: typeof d.timestamp === 'string' ? new Date(d.timestamp) : null,
      data: d.data,
    };
    state.feed.push(ev);
    if (state.feed.length > FEED_MAX * 2) state.feed.splice(0, state.feed.length - FEED_MAX);
    if (state.paused) state.pausedNew++;
    else {
      state.pending.push(ev);
      if (state.pending.length > FEED_MAX) state.pending.splice(0, state.pending.length - FEED_MAX);
    }
    scheduleRender();
  }

  // ---- rendering -------------------------------------------------------------

  function scheduleRender() {
    if (!state.renderTimer) state.renderTimer = setTimeout(render, 60);
  }

  function render() {
    state.renderTimer = 0;
    setFigure('kpi-received', state.received);
    $('kpi-received-sub').textContent = state.duplicates
      ? `${fmtInt(state.duplicates)} duplicate${state.duplicates === 1 ? '' : 's'} dropped` : 'on this view';
    if (state.pending.length) {
      const rows = state.pending;
      state.pending = [];
      const frag = document.createDocumentFragment();
      for (let i = rows.length - 1; i >= 0; i--) frag.append(eventRow(rows[i], true));
      const body = $('feed-body');
      body.prepend(frag);
      while (body.children.length > FEED_MAX) body.lastElementChild.remove();
    }
    $('feed-empty').hidden = $('feed-body').children.length > 0;
    $('btn-pause').textContent = state.paused
      ? (state.pausedNew ? `Resume (${fmtInt(state.pausedNew)} new)` : 'Resume') : 'Pause';
    renderTypes();
    renderLibs();
  }

  function dataText(data) {
    if (data === undefined) return '';
    try { return JSON.stringify(data); } catch (_) { return String(data); }
  }

  // dataSummary shows an object's first fields as "key value" pairs (text
  // nodes only); anything else as compact JSON.
  function dataSummary(cell, data) {
    if (data && typeof data === 'object' && !Array.isArray(data)) {
      const keys = Object.keys(data);
      if (keys.length) {
        const parts = [];
        for (const k of keys.slice(0, 6)) {
          const v = data[k];
          const text = typeof v === 'string' ? v : dataText(v);
          parts.push(el('span', 'k', short(k, 32)), el('span', 'v', short(text, 64)));
        }
        if (keys.length > 6) parts.push(el('span', 'k', `+${keys.length - 6} more`));
        cell.replaceChildren(...parts);
        return;
      }
    }
    cell.replaceChildren(document.createTextNode(short(dataText(data), DATA_SHORT)));
  }

  function eventRow(ev, fresh) {
    const tr = el('tr', fresh ? 'fresh' : '');
    const time = el('td', 't-time', ev.time ? clock(ev.time) : '—');
    if (ev.time && !isNaN(ev.time)) time.title = ev.time.toISOString();
    const type = el('td', 't-type');
    type.append(badge(ev.type));
    const lib = el('td', 't-lib');
    if (ev.lib) {
      const a = el('a', '', ev.lib);
      a.href = `#library=${encodeURIComponent(ev.lib)}`;
      a.title = `watch library ${ev.lib}`;
      lib.append(a);
    } else lib.textContent = '—';
    const src = el('td', 't-src', ev.source || '—');
    src.title = ev.source;
    const seq = el('td', 't-seq', ev.seq === null ? '—' : fmtInt(ev.seq));
    const data = el('td', 't-data');
    dataSummary(data, ev.data);
    tr.append(time, type, lib, src, seq, data);
    tr.addEventListener('click', (e) => {
      if (e.target.closest('a')) return;
      const open = tr.classList.toggle('open');
      if (open) {
        let pretty = '';
        try { pretty = JSON.stringify(ev.data, null, 2) || ''; } catch (_) { pretty = dataText(ev.data); }
        data.textContent = short(pretty, DATA_FULL);
      } else {
        dataSummary(data, ev.data);
      }
    });
    return tr;
  }

  function addFeedNotice(text) {
    const tr = el('tr', 'notice-row');
    const td = el('td', '', text);
    td.colSpan = 6;
    tr.append(td);
    $('feed-body').prepend(tr);
    $('feed-empty').hidden = true;
  }

  // The type rows and library chips are updated in place (keyed by type or
  // id): rebuilding them at every batch would swallow clicks and restart
  // the bars' transitions.
  const typeEls = new Map();
  const libEls = new Map();
  let libListKey = '';

  // reconcile puts nodes into box in that order, touching the DOM only
  // where it differs, and drops the keyed nodes not among them.
  function reconcile(box, els, keep, nodes) {
    for (const [k, n] of els) if (!keep.has(k)) { n.remove(); els.delete(k); }
    nodes.forEach((n, i) => { if (box.children[i] !== n) box.insertBefore(n, box.children[i] || null); });
  }

  function renderTypes() {
    const types = new Set([...state.byType.keys(), ...Object.keys(state.busByType)]);
    const list = [...types].map((t) => ({ t, here: state.byType.get(t) || 0, bus: num(state.busByType[t]) || 0 }));
    list.sort((a, b) => b.here - a.here || b.bus - a.bus || a.t.localeCompare(b.t));
    const shown = list.slice(0, 24);
    const max = Math.max(1, ...shown.map((x) => x.here));
    const nodes = shown.map((x) => {
      let li = typeEls.get(x.t);
      if (!li) {
        li = el('li', 'type-row');
        li.dataset.type = x.t;
        li.style.setProperty('--c', typeColor(x.t));
        const here = el('span', 'type-here');
        here.title = 'received on this view';
        const bus = el('span', 'type-bus');
        bus.title = 'published on the bus';
        const bar = el('span', 'type-bar');
        bar.append(el('span'));
        li.append(badge(x.t), here, bus, bar);
        typeEls.set(x.t, li);
      }
      li.dataset.count = String(x.here);
      li.querySelector('.type-here').textContent = fmtInt(x.here);
      li.querySelector('.type-bus').textContent = state.stats ? fmtInt(x.bus) : '—';
      li.querySelector('.type-bar span').style.width = `${(100 * x.here / max).toFixed(1)}%`;
      return li;
    });
    reconcile($('types'), typeEls, new Set(shown.map((x) => x.t)), nodes);
    $('types-empty').hidden = nodes.length > 0;
  }

  function renderLibs() {
    const list = [...state.libs.entries()].map(([id, c]) => ({ id, n: Math.max(c.here, c.bus) }));
    list.sort((a, b) => b.n - a.n || a.id.localeCompare(b.id));
    // The busiest 18, in a stable (alphabetical) order: chips do not move
    // under the pointer as counts change.
    const shown = list.slice(0, 18).sort((a, b) => a.id.localeCompare(b.id));
    const active = state.target.kind === 'library' ? state.target.id : '';
    const nodes = shown.map(({ id, n }) => {
      let b = libEls.get(id);
      if (!b) {
        b = el('button', 'chip');
        b.type = 'button';
        b.dataset.library = id;
        b.title = `watch library ${id}`;
        b.append(el('span', 'chip-name', id), el('span', 'chip-count'));
        b.addEventListener('click', () => watch({ kind: 'library', id }));
        libEls.set(id, b);
      }
      b.classList.toggle('active', id === active);
      b.querySelector('.chip-count').textContent = fmtInt(n);
      return b;
    });
    reconcile($('libs'), libEls, new Set(shown.map((x) => x.id)), nodes);
    $('libs-empty').hidden = nodes.length > 0;
    const ids = list.slice(0, 200).map((x) => x.id).sort();
    const key = ids.join('\n');
    if (libListKey !== key) {
      libListKey = key;
      $('lib-list').replaceChildren(...ids.map((id) => { const o = el('option'); o.value = id; return o; }));
    }
  }

  // ---- statistics -------------------------------------------------------------

  async function pollStats() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), STATS_TIMEOUT_MS);
    try {
      const r = await fetch(httpURL('v1/events/stats').href, { cache: 'no-store', signal: ctl.signal });
      const body = await r.json();
      if (!r.ok) throw new Error(body && body.error ? body.error : `HTTP ${r.status}`);
      renderStats(body);
    } catch (err) {
      const pill = $('nats-status');
      pill.dataset.state = 'down';
      $('nats-text').textContent = 'stats unavailable';
      pill.title = err && err.message ? err.message : String(err);
    } finally {
      clearTimeout(timer);
      setTimeout(pollStats, STATS_EVERY_MS);
    }
  }

  function renderStats(s) {
    state.stats = s;
    const published = num(s.total_published);
    setFigure('kpi-published', published);
    setFigure('kpi-delivered', num(s.total_delivered));
    setFigure('kpi-subscribers', num(s.active_subscribers));
    setFigure('kpi-queue', num(s.queue_size));
    setFigure('kpi-slow', num(s.slow_consumer_disconnects));
    setFigure('kpi-invalid', num(s.invalid_events));
    $('kpi-slow').parentElement.classList.toggle('alert', (num(s.slow_consumer_disconnects) || 0) > 0);
    $('kpi-invalid').parentElement.classList.toggle('alert', (num(s.invalid_events) || 0) > 0);
    const bridges = num(s.bridges);
    $('kpi-published-sub').textContent = bridges && bridges > 1 ? `on the bus · ${bridges} bridges` : 'on the bus';
    const live = num(s.live_subscriptions);
    $('kpi-subscribers').parentElement.title = live === null ? '' : `${fmtInt(live)} live NATS subscriptions`;

    // NATS state
    const n = s.nats || {};
    const pill = $('nats-status');
    pill.dataset.state = n.connected ? 'ok' : 'down';
    $('nats-text').textContent = `NATS ${typeof n.status === 'string' && n.status ? n.status : (n.connected ? 'connected' : 'disconnected')}`;
    pill.title = typeof n.url === 'string' ? n.url : '';
    $('uptime').textContent = `up ${fmtDuration(num(s.uptime_seconds))}`;

    // latency
    const lat = s.latency_ms || {};
    const figures = {
      p50: num(lat.p50), p90: num(lat.p90), p99: num(lat.p99), max: num(lat.max),
      avg: num(lat.avg) ?? num(s.average_delivery_latency_ms),
    };
    const count = num(lat.count);
    const top = Math.max(...Object.values(figures).map((v) => v || 0));
    for (const row of $('latency').children) {
      const v = figures[row.dataset.key];
      const has = v !== null && (count === null || count > 0);
      row.querySelector('.lat-val').textContent = has ? fmtMs(v) : '—';
      row.querySelector('.lat-bar span').style.width = has && top > 0 ? `${Math.max(2, 100 * v / top).toFixed(1)}%` : '0';
    }
    $('lat-count').textContent = count === null ? '' : `${fmtInt(count)} frames`;

    // by type, libraries
    state.busByType = s.events_by_type && typeof s.events_by_type === 'object' ? s.events_by_type : {};
    if (Array.isArray(s.busiest_libraries)) {
      for (const b of s.busiest_libraries) {
        if (!b || typeof b.library_id !== 'string') continue;
        if (!state.libs.has(b.library_id) && state.libs.size >= MAX_LIBS) continue;
        const l = state.libs.get(b.library_id) || { here: 0, bus: 0 };
        l.bus = num(b.events) || 0;
        state.libs.set(b.library_id, l);
      }
    }

    // bus rate from the published counter
    const now = Date.now();
    if (published !== null) {
      const prev = state.prevPublished;
      if (prev && published >= prev.n && now > prev.t) {
        state.busRate.push({ t0: prev.t, t: now, rate: (published - prev.n) * 1000 / (now - prev.t) });
        const cut = now - (CHART_SECONDS + 5) * 1000;
        while (state.busRate.length && state.busRate[0].t < cut) state.busRate.shift();
      }
      state.prevPublished = { t: now, n: published };
    }
    scheduleRender();
    drawChart();
  }

  // ---- rate chart -------------------------------------------------------------

  const css = getComputedStyle(document.documentElement);
  const color = (name, fallback) => (css.getPropertyValue(name) || '').trim() || fallback;
  const COLORS = {
    bar: color('--accent', '#2dd4bf'),
    line: color('--accent-2', '#818cf8'),
    grid: color('--line', '#1f2b45'),
    label: color('--faint', '#5b6a86'),
  };

  // niceMax rounds v up to four steps of 1, 2 or 5 × 10^k.
  function niceMax(v) {
    const raw = Math.max(v, 4) / 4;
    const p = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw && (m !== 2.5 || p >= 10)) return 4 * m * p;
    return 40 * p;
  }

  function drawChart() {
    const c = $('rate-chart');
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);

    const nowMs = Date.now();
    const nowSec = Math.floor(nowMs / 1000);
    for (const k of state.perSecond.keys()) if (k < nowSec - CHART_SECONDS - 2) state.perSecond.delete(k);
    const bars = [];
    for (let i = CHART_SECONDS - 1; i >= 0; i--) bars.push(state.perSecond.get(nowSec - i) || 0);
    const recent = state.busRate.filter((p) => p.t >= nowMs - CHART_SECONDS * 1000);
    const max = niceMax(Math.max(1, ...bars, ...recent.map((p) => p.rate)));

    const L = 40, R = 8, T = 8, B = 22;
    const pw = w - L - R, ph = h - T - B;
    const y = (v) => T + ph - (v / max) * ph;

    // grid and y labels
    g.font = `11px ${css.getPropertyValue('--mono') || 'monospace'}`;
    g.textBaseline = 'middle';
    g.textAlign = 'right';
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      const yy = Math.round(y(v)) + 0.5;
      g.strokeStyle = COLORS.grid;
      g.setLineDash(i === 0 ? [] : [3, 4]);
      g.beginPath(); g.moveTo(L, yy); g.lineTo(L + pw, yy); g.stroke();
      g.fillStyle = COLORS.label;
      g.fillText(Number.isInteger(v) ? fmtInt(v) : v.toFixed(1), L - 8, yy);
    }
    g.setLineDash([]);

    // x labels
    g.textBaseline = 'top';
    g.fillStyle = COLORS.label;
    const xl = [[0, '−60 s', 'left'], [0.5, '−30 s', 'center'], [1, 'now', 'right']];
    for (const [f, text, align] of xl) { g.textAlign = align; g.fillText(text, L + f * pw, T + ph + 7); }

    // bars: one per second, the current (partial) second last
    const slot = pw / CHART_SECONDS;
    const bw = Math.max(1, slot - Math.min(3, slot * 0.3));
    const grad = g.createLinearGradient(0, T, 0, T + ph);
    grad.addColorStop(0, COLORS.bar);
    grad.addColorStop(1, 'rgba(45, 212, 191, 0.25)');
    g.fillStyle = grad;
    bars.forEach((v, i) => {
      if (!v) return;
      const x = L + i * slot + (slot - bw) / 2;
      const top = y(v);
      const bh = Math.max(2, T + ph - top);
      roundTop(g, x, T + ph - bh, bw, bh, Math.min(3, bw / 2));
      g.fill();
    });

    // bus rate: the average over each stats interval, as steps
    if (recent.length) {
      const xAt = (t) => Math.max(L, L + pw - ((nowMs - t) / 1000 / CHART_SECONDS) * pw);
      g.save();
      g.beginPath();
      g.rect(L, T - 2, pw, ph + 4);
      g.clip();
      g.beginPath();
      recent.forEach((p, i) => {
        const x0 = xAt(p.t0), x1 = xAt(p.t), yy = y(p.rate);
        if (i) g.lineTo(x0, yy); else g.moveTo(x0, yy);
        g.lineTo(x1, yy);
      });
      g.strokeStyle = COLORS.line;
      g.lineWidth = 2;
      g.lineJoin = 'round';
      g.stroke();
      g.lineTo(xAt(recent[recent.length - 1].t), T + ph);
      g.lineTo(xAt(recent[0].t0), T + ph);
      g.closePath();
      g.fillStyle = 'rgba(129, 140, 248, 0.08)';
      g.fill();
      g.restore();
    }

    // the rate figure: average of the last five full seconds
    let sum = 0;
    for (let i = 1; i <= 5; i++) sum += state.perSecond.get(nowSec - i) || 0;
    const rate = sum / 5;
    setFigure('kpi-rate', rate, rate >= 100 ? fmtInt(Math.round(rate)) : rate.toFixed(1));
  }

  function roundTop(g, x, y, w, h, r) {
    g.beginPath();
    g.moveTo(x, y + h);
    g.lineTo(x, y + r);
    g.quadraticCurveTo(x, y, x + r, y);
    g.lineTo(x + w - r, y);
    g.quadraticCurveTo(x + w, y, x + w, y + r);
    g.lineTo(x + w, y + h);
    g.closePath();
  }

  // ---- controls -----------------------------------------------------------------

  function targetFromHash() {
    const m = /^#library=(.+)$/.exec(location.hash);
    if (!m) return { kind: 'all', id: '' };
    let id = '';
    try { id = decodeURIComponent(m[1]); } catch (_) { id = ''; }
    return LIBRARY_ID.test(id) ? { kind: 'library', id } : { kind: 'all', id: '' };
  }

  function sameTarget(a, b) { return a.kind === b.kind && a.id === b.id; }

  // watch switches the view and records it in the URL (#library=<id>), so
  // a view can be bookmarked and the back button works.
  function watch(t) {
    const hash = t.kind === 'all' ? '' : `#library=${encodeURIComponent(t.id)}`;
    if (location.hash === hash) {
      apply(t);
    } else if (hash) {
      location.hash = hash; // the hashchange listener applies it
    } else {
      history.pushState(null, '', location.pathname + location.search);
      apply(t);
    }
  }

  function apply(t) {
    $('lib-error').textContent = '';
    $('btn-all').setAttribute('aria-pressed', String(t.kind === 'all'));
    $('lib-form').classList.toggle('active', t.kind === 'library');
    if (t.kind === 'library') $('lib-input').value = t.id;
    if (sameTarget(t, state.target) && (state.ws || state.retryAt)) return;
    const changed = !sameTarget(t, state.target);
    state.target = t;
    if (changed) {
      // A new view: its own counts and resume point.
      state.lastSeq = 0;
      state.positioned = false;
      state.attempts = 0;
      clearView();
      notice('info', `watching ${targetLabel()}`);
    }
    document.title = t.kind === 'all' ? 'arrwcdc · live events' : `arrwcdc · ${t.id}`;
    connect();
  }

  function clearView() {
    state.received = 0;
    state.duplicates = 0;
    state.byType.clear();
    for (const l of state.libs.values()) l.here = 0;
    state.feed = [];
    state.pending = [];
    state.pausedNew = 0;
    state.perSecond.clear();
    $('feed-body').replaceChildren();
    $('scope-text').textContent = '';
    scheduleRender();
    drawChart();
  }

  function init() {
    for (const a of document.querySelectorAll('.foot a')) a.href = httpURL(a.getAttribute('href')).href;

    $('btn-all').addEventListener('click', () => watch({ kind: 'all', id: '' }));
    $('lib-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const id = $('lib-input').value.trim();
      if (!id) { watch({ kind: 'all', id: '' }); return; }
      if (!LIBRARY_ID.test(id)) {
        $('lib-error').textContent = 'a library id is 1–128 of A–Z a–z 0–9 _ -';
        return;
      }
      watch({ kind: 'library', id });
    });
    $('btn-pause').addEventListener('click', () => {
      state.paused = !state.paused;
      $('btn-pause').setAttribute('aria-pressed', String(state.paused));
      if (!state.paused) {
        // Show the latest rows at once.
        const body = $('feed-body');
        body.replaceChildren(...state.feed.slice(-FEED_MAX).reverse().map((ev) => eventRow(ev, false)));
        state.pausedNew = 0;
      }
      scheduleRender();
    });
    $('btn-clear').addEventListener('click', clearView);
    window.addEventListener('hashchange', () => apply(targetFromHash()));
    window.addEventListener('popstate', () => apply(targetFromHash()));
    window.addEventListener('online', () => { if (state.retryAt) connect(); });
    window.addEventListener('resize', drawChart);

    setInterval(() => { drawChart(); updateRetryText(); }, 1000);
    state.target = { kind: '', id: '' }; // so that apply sees a change
    apply(targetFromHash());
    pollStats();
    render();
  }

  init();
})();
