// The eventbus dashboard page. Plain JavaScript, no build step. Every piece
// of event data reaches the page through textContent, never as HTML.
'use strict';

const SEVERITIES = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];
const SHORT = { DEBUG: 'dbg', INFO: 'info', WARNING: 'warn', ERROR: 'err', CRITICAL: 'crit' };
const KNOWN_TYPES = ['workflow_started', 'workflow_completed', 'workflow_failed', 'step_started',
  'step_completed', 'step_failed', 'agent_message', 'tool_called', 'tool_returned'];
const MAX_TIMELINE = 200;   // events kept per workflow
const MAX_FEED = 100;       // rows in the error feed and the live feed
const MAX_WORKFLOWS = 5000; // rows in the list; the oldest finished go first
const METRICS_EVERY = 3000; // ms
const RECONNECT_AFTER = 2000; // ms, when the browser gave up on the stream

const state = {
  workflows: new Map(), // adw_id -> workflow record
  through: 0,           // events up to this id are counted in the snapshot
  lastId: 0,            // the id of the newest event received
  selected: '',
  dirty: new Set(),
  feeds: { events: [], errors: [] }, // rows to add at the next frame
  frame: 0,
  resyncing: false,
  resyncAgain: false,
  source: null,
  types: new Set(KNOWN_TYPES),
};

const $ = (id) => document.getElementById(id);

// el creates an element with a class and text; text is never parsed as HTML.
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function rank(sev) { return SEVERITIES.indexOf(sev); }

function duration(ms) {
  if (!(ms >= 0)) return '';
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
}

function clock(ts) {
  const d = new Date(ts);
  return isNaN(d) ? '' : d.toLocaleTimeString();
}

// passes reports whether an event passes the type and severity filters.
function passes(ev) {
  const type = $('filter-type').value;
  const sev = $('filter-severity').value;
  return (!type || ev.event_type === type) && (!sev || rank(ev.severity) >= rank(sev));
}

function newWorkflow(id) {
  return { id, status: 'running', first: null, last: null, counts: {}, lastMessage: '',
    events: [], row: null, seen: Date.now() };
}

// fromSnapshot seeds a workflow from GET /api/workflows.
function fromSnapshot(w) {
  const wf = newWorkflow(w.adw_id);
  wf.status = w.status;
  wf.first = Date.parse(w.first_event);
  wf.last = Date.parse(w.last_event);
  wf.counts = w.severities || {};
  wf.lastMessage = w.last_message || '';
  return wf;
}

// apply records one event: its workflow's summary when the snapshot did
// not count it yet, and always its timeline.
function apply(ev, id) {
  if (!ev.adw_id) return;
  let wf = state.workflows.get(ev.adw_id);
  if (!wf) {
    if (id <= state.through) return; // the snapshot dropped it: evicted
    wf = newWorkflow(ev.adw_id);
    state.workflows.set(ev.adw_id, wf);
    trimWorkflows();
  }
  wf.events.push(ev);
  if (wf.events.length > MAX_TIMELINE) wf.events.shift();
  wf.seen = Date.now();
  if (id > state.through) summarise(wf, ev);
  state.dirty.add(wf);
  if (wf.id === state.selected) appendTimeline(ev);
}

function summarise(wf, ev) {
  const t = Date.parse(ev.timestamp);
  if (wf.first === null || t < wf.first) wf.first = t;
  if (wf.last === null || t > wf.last) wf.last = t;
  wf.counts[ev.severity] = (wf.counts[ev.severity] || 0) + 1;
  if (ev.message) wf.lastMessage = ev.message;
  if (ev.event_type === 'workflow_completed') wf.status = 'completed';
  else if (ev.event_type === 'workflow_failed') wf.status = 'failed';
  else if (ev.event_type === 'workflow_started') wf.status = 'running';
}

// trimWorkflows keeps the list within MAX_WORKFLOWS rows, dropping the
// finished workflow seen longest ago first.
function trimWorkflows() {
  while (state.workflows.size > MAX_WORKFLOWS) {
    let oldest = null;
    for (const wf of state.workflows.values()) {
      if (wf.status !== 'running' && (!oldest || wf.seen < oldest.seen)) oldest = wf;
    }
    if (!oldest) return;
    state.workflows.delete(oldest.id);
    state.dirty.delete(oldest);
    if (oldest.row) oldest.row.remove();
  }
}

// render updates the rows of the workflows that changed, once per frame.
function schedule() {
  if (!state.frame) state.frame = requestAnimationFrame(render);
}

function render() {
  state.frame = 0;
  for (const [id, pending] of Object.entries(state.feeds)) flushFeed(id, pending);
  const list = $('workflows');
  for (const wf of state.dirty) {
    if (!wf.row) {
      wf.row = buildRow(wf);
      list.prepend(wf.row);
    }
    fillRow(wf);
  }
  state.dirty.clear();
  $('workflow-count').textContent = '(' + state.workflows.size + ')';
}

function buildRow(wf) {
  const row = el('li', 'wf-row');
  row.dataset.adwId = wf.id;
  row.append(el('span', 'ellipsis id', wf.id), el('span', 'status'), el('span', 'elapsed'),
    el('span', 'badges'), el('span', 'ellipsis message'));
  row.addEventListener('click', () => select(wf.id));
  return row;
}

function fillRow(wf) {
  const row = wf.row;
  row.dataset.status = wf.status;
  row.classList.toggle('selected', wf.id === state.selected);
  const status = row.children[1];
  status.textContent = wf.status;
  status.className = 'status status-' + wf.status;
  row.children[2].textContent = elapsed(wf);
  const badges = row.children[3];
  badges.replaceChildren();
  for (const sev of SEVERITIES) {
    const n = wf.counts[sev];
    if (n) badges.append(el('span', 'badge sev-' + sev, SHORT[sev] + ' ' + n));
  }
  row.children[4].textContent = wf.lastMessage;
}

function elapsed(wf) {
  if (wf.first === null) return '';
  const end = wf.status === 'running' ? Date.now() : wf.last;
  return duration(end - wf.first);
}

function select(id) {
  const prev = state.workflows.get(state.selected);
  state.selected = id;
  if (prev) state.dirty.add(prev);
  const wf = state.workflows.get(id);
  if (wf) state.dirty.add(wf);
  $('timeline-title').textContent = id;
  renderTimeline();
  render();
}

function renderTimeline() {
  const list = $('timeline');
  list.replaceChildren();
  const wf = state.workflows.get(state.selected);
  if (!wf) return;
  if (!wf.events.length) list.append(el('li', 'muted', 'no events received since the page loaded'));
  for (const ev of wf.events) appendTimeline(ev);
}

function appendTimeline(ev) {
  if (passes(ev)) $('timeline').append(eventRow(ev));
}

function eventRow(ev) {
  const row = el('li', 'ev');
  row.append(el('span', 'time', clock(ev.timestamp)), el('span', 'ellipsis', ev.event_type),
    el('span', 'badge sev-' + ev.severity, ev.severity), el('span', 'ellipsis', ev.adw_id || ev.source),
    el('span', 'ellipsis message', ev.message));
  row.title = ev.source ? 'source: ' + ev.source : '';
  return row;
}

function feed(listId, ev) {
  const pending = state.feeds[listId];
  pending.push(ev);
  if (pending.length > MAX_FEED) pending.shift();
}

// flushFeed adds the pending rows of a feed, newest first, keeping MAX_FEED.
function flushFeed(listId, pending) {
  if (!pending.length) return;
  const list = $(listId);
  const rows = pending.map((ev) => {
    const row = eventRow(ev);
    if (ev.adw_id) row.addEventListener('click', () => select(ev.adw_id));
    return row;
  }).reverse();
  pending.length = 0;
  list.prepend(...rows);
  while (list.children.length > MAX_FEED) list.lastChild.remove();
}

function notice(text) {
  const list = $('events');
  list.prepend(el('li', 'notice', text));
}

function addType(type) {
  if (state.types.has(type)) return;
  state.types.add(type);
  $('filter-type').append(new Option(type, type));
}

function onEvent(msg) {
  let ev;
  try { ev = JSON.parse(msg.data); } catch { return; }
  const id = Number(msg.lastEventId) || 0;
  state.lastId = Math.max(state.lastId, id);
  addType(ev.event_type);
  apply(ev, id);
  if (passes(ev)) {
    feed('events', ev);
    if (rank(ev.severity) >= rank('ERROR')) feed('errors', ev);
  }
  schedule();
}

// onGap reloads the workflow summaries, which the server kept counting,
// after any gap: the page cannot tell from a gap alone whether the events
// it skipped are all counted in the summaries it has. It reports the gap
// unless the stream is still replaying what those summaries count.
function onGap(msg) {
  if (state.lastId >= state.through) {
    let missed = '?';
    try { missed = JSON.parse(msg.data).missed; } catch { /* keep '?' */ }
    notice('stream gap: ' + missed + ' events missed; workflow list reloaded');
  }
  resync();
}

// resync reloads the summaries; a gap that arrives while it runs makes it
// load them once more, since the snapshot in flight may predate that gap.
async function resync() {
  if (state.resyncing) {
    state.resyncAgain = true;
    return;
  }
  state.resyncing = true;
  try {
    do {
      state.resyncAgain = false;
      await loadWorkflows();
    } while (state.resyncAgain);
  } finally {
    state.resyncing = false;
  }
}

function setConn(stateName, text) {
  const c = $('conn');
  c.dataset.state = stateName;
  c.textContent = text;
}

// connect opens the stream after the last event the page has: at first,
// after id 0, so that the server replays what it still holds and the
// timelines get their history. The browser reconnects by itself, sending
// Last-Event-ID; if it gives up (the server answered an error), connect
// opens a new stream after a pause.
function connect() {
  const es = new EventSource('events?names=message&last_event_id=' + state.lastId);
  state.source = es;
  es.addEventListener('open', () => setConn('live', 'Live'));
  es.addEventListener('message', onEvent);
  es.addEventListener('gap', onGap);
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED) {
      setConn('disconnected', 'Disconnected, retrying…');
      setTimeout(connect, RECONNECT_AFTER);
    } else {
      setConn('reconnecting', 'Reconnecting…');
    }
  });
}

// loadWorkflows takes the server's workflow summaries: events up to its
// "through" id are counted there, so the page counts only later ones.
async function loadWorkflows() {
  try {
    const res = await fetch('api/workflows');
    if (!res.ok) return;
    const body = await res.json();
    state.through = Math.max(state.through, body.through || 0);
    for (const w of body.workflows.slice().reverse()) {
      const fresh = fromSnapshot(w);
      const wf = state.workflows.get(fresh.id);
      if (wf) {
        Object.assign(wf, { status: fresh.status, first: fresh.first, last: fresh.last,
          counts: fresh.counts, lastMessage: fresh.lastMessage });
      } else {
        state.workflows.set(fresh.id, fresh);
      }
      state.dirty.add(wf || fresh);
    }
    trimWorkflows();
  } catch { /* the stream still fills the page */ }
  schedule();
}

async function refreshMetrics() {
  try {
    const res = await fetch('api/metrics');
    if (!res.ok) return;
    const m = await res.json();
    renderMetrics(m);
    renderSubscriptions(m.subscriptions || []);
  } catch { /* try again at the next tick */ }
}

function renderMetrics(m) {
  const dl = $('metrics');
  dl.replaceChildren();
  const add = (k, v) => dl.append(el('dt', '', k), el('dd', '', v));
  for (const [k, v] of Object.entries(m.bus || {})) add(k, v);
  const d = m.dashboard || {};
  add('dashboard clients', d.clients);
  add('gaps sent', d.gaps);
  add('events missed', d.missed);
  add('intake dropped', d.intake_dropped);
  $('summary').textContent = (m.bus ? m.bus.Published : 0) + ' events published · ' +
    d.workflows + ' workflows tracked';
}

function renderSubscriptions(subs) {
  const body = $('subs').tBodies[0];
  body.replaceChildren();
  for (const s of subs) {
    const runs = s.Delivered + s.Failed;
    const mean = runs ? s.TotalDuration / runs : 0;
    const tr = el('tr');
    for (const v of [s.ID, s.Name, s.Async ? 'async' : 'sync', s.Filter, s.Delivered, s.Failed,
      s.Panics, nanos(mean), nanos(s.MaxDuration), s.InFlight]) tr.append(el('td', '', v));
    body.append(tr);
  }
}

function nanos(ns) {
  if (ns >= 1e9) return (ns / 1e9).toFixed(2) + ' s';
  if (ns >= 1e6) return (ns / 1e6).toFixed(1) + ' ms';
  if (ns >= 1e3) return (ns / 1e3).toFixed(1) + ' µs';
  return Math.round(ns) + ' ns';
}

function tickElapsed() {
  for (const wf of state.workflows.values()) {
    if (wf.status === 'running' && wf.row) wf.row.children[2].textContent = elapsed(wf);
  }
}

function setupFilters() {
  for (const t of KNOWN_TYPES) $('filter-type').append(new Option(t, t));
  for (const s of SEVERITIES) $('filter-severity').append(new Option(s, s));
  for (const id of ['filter-type', 'filter-severity']) {
    $(id).addEventListener('change', () => {
      $('events').replaceChildren();
      renderTimeline();
    });
  }
}

async function main() {
  setupFilters();
  await loadWorkflows();
  connect();
  refreshMetrics();
  setInterval(refreshMetrics, METRICS_EVERY);
  setInterval(tickElapsed, 1000);
}

main();
