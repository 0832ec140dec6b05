// Overview: this instance's traffic from /admin/v1/metrics, and spend from the usage report, refreshed
// every 5 s while the page is shown and the tab is visible.
import { getJson, query, request } from './api.js';
import { $ } from './dom.js';
import { DASH, formatInt, formatMs, formatPercent, formatRate, formatUsd } from './format.js';
import { interval, snapshot } from './metrics.js';
import { clearBanner, showBanner } from './notify.js';

const REFRESH_MS = 5000;

let timer = null;
let previous = null;
let generation = 0;
let busy = false;

function tile(id, value, { note = '', raw = null, state = null } = {}) {
  const el = $(`#tile-${id}`);
  el.querySelector('.tile-value').textContent = value;
  el.querySelector('.tile-value').dataset.value = raw ?? '';
  el.querySelector('.tile-note').textContent = note;
  el.classList.toggle('up', state === 'up');
  el.classList.toggle('down', state === 'down');
}

function dependency(id, up) {
  if (up === undefined) tile(id, DASH, { note: 'not reported' });
  else tile(id, up === 1 ? 'up' : 'down', { note: 'as this instance sees it', raw: String(up), state: up === 1 ? 'up' : 'down' });
}

function showTraffic(now, iv) {
  const waiting = iv ? '' : 'from the next refresh';
  tile('rps', formatRate(iv?.requestsPerSecond), {
    note: iv ? `${formatInt(iv.requests)} in the last ${Math.round(iv.seconds)} s` : waiting,
    raw: iv ? String(iv.requestsPerSecond) : null,
  });
  tile('errors', formatPercent(iv?.serverErrorRatio), {
    note: !iv ? waiting : iv.requests ? `4xx: ${formatPercent(iv.clientErrorRatio)}` : 'no requests',
  });
  const latency = iv?.p50 == null ? DASH : `${formatMs(iv.p50)} / ${formatMs(iv.p99)}`;
  tile('latency', latency, { note: iv?.p50 == null ? waiting || 'no requests' : 'milliseconds' });
  const g = now.gauges;
  tile('streams', formatInt(g.lagoon_http_streams_active), {
    note: g.lagoon_http_connections_active == null ? '' : `${formatInt(g.lagoon_http_connections_active)} connections open`,
  });
  const depth = g.lagoon_usage_queue_depth;
  const capacity = g.lagoon_usage_queue_capacity;
  tile('queue', depth == null ? DASH : `${formatInt(depth)} / ${formatInt(capacity)}`, {
    note: capacity ? `${formatPercent(depth / capacity)} full` : 'records waiting for Postgres',
    raw: depth == null ? null : String(depth),
  });
  dependency('redis', now.dependencies.redis);
  dependency('postgres', now.dependencies.postgres);
}

function showSpend(id, totals) {
  tile(`spend-${id}`, formatUsd(totals.cost_usd), {
    note: totals.unpriced_requests ? `${formatInt(totals.unpriced_requests)} requests without a price` : '',
    raw: totals.cost_usd,
  });
  // The tile rounds; the exact amount is one hover away.
  $(`#tile-spend-${id} .tile-value`).title = `$${totals.cost_usd}`;
  tile(`requests-${id}`, formatInt(totals.requests), {
    note: `${formatInt(totals.total_tokens)} tokens`,
    raw: String(totals.requests),
  });
}

export function startOfUtcDay(now = new Date()) {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())).toISOString().replace('.000Z', 'Z');
}

export function startOfUtcMonth(now = new Date()) {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString().replace('.000Z', 'Z');
}

// Each part is shown as soon as it is known; one failing part does not blank the others.
async function refresh() {
  if (busy) return;
  busy = true;
  const gen = generation;
  const [metrics, today, month] = await Promise.allSettled([
    request('metrics').then((r) => r.text()),
    getJson(`usage${query({ by: 'model', from: startOfUtcDay() })}`),
    getJson(`usage${query({ by: 'model', from: startOfUtcMonth() })}`),
  ]);
  busy = false;
  if (gen !== generation) return;
  if (metrics.status === 'fulfilled') {
    const now = snapshot(metrics.value, Date.now());
    showTraffic(now, interval(previous, now));
    previous = now;
  }
  if (today.status === 'fulfilled') showSpend('today', today.value.totals);
  if (month.status === 'fulfilled') showSpend('month', month.value.totals);
  const failed = [metrics, today, month].find((r) => r.status === 'rejected');
  if (failed) showBanner(failed.reason, { retry: refresh, from: 'overview' });
  else clearBanner('overview');
  $('#overview-updated').textContent = `Updated at ${new Date().toLocaleTimeString()}`;
}

function start() {
  if (timer === null) timer = setInterval(refresh, REFRESH_MS);
}

function stop() {
  clearInterval(timer);
  timer = null;
}

function onVisibility() {
  if (document.hidden) {
    stop();
  } else {
    refresh();
    start();
  }
}

export function init() {
  $('#overview-refresh').addEventListener('click', refresh);
}

export function mount() {
  generation++;
  busy = false;
  previous = null;
  refresh();
  start();
  document.addEventListener('visibilitychange', onVisibility);
}

export function unmount() {
  generation++;
  stop();
  document.removeEventListener('visibilitychange', onVisibility);
}
