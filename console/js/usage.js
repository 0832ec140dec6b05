// Usage & spend: a stacked bar chart of requests, tokens or cost per hour or day, the same numbers as a
// table, and the report as CSV.
import { getJson, query, request } from './api.js';
import { $, emptyRow, h } from './dom.js';
import { formatBucket, formatInt, formatUsd, fromScaled } from './format.js';
import { isoToLocal, localToIso } from './forms.js';
import { clearBanner, showBanner } from './notify.js';
import { navigate } from './router.js';
import { METRICS, MAX_BUCKETS, bucketStarts, bucketTotals, cellNumber, pivot, seriesTotals, STEP_MS, sum, floorUtc } from './series.js';
import { destroyChart, drawChart } from './usage-chart.js';

const TOP = 8;
const RANGES = {
  '24h': { bucket: 'hour', count: 24, unit: 'hour' },
  '7d': { bucket: 'day', count: 7, unit: 'day' },
  '30d': { bucket: 'day', count: 30, unit: 'day' },
};
const BY_LABEL = { model: 'model', key: 'key', user: 'user', none: 'nothing' };

let view = { range: '24h', bucket: 'hour', by: 'model', metric: 'requests', from: '', to: '' };
let generation = 0;

const isoSeconds = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

// A preset ends now and starts at the beginning of the bucket count-1 units back, so it has exactly
// `count` buckets, the last one still filling. Its end is the next whole second: the range ends before
// `to`, and a request that started earlier in this second must be in it.
export function rangeOf(v, now = Date.now()) {
  const preset = RANGES[v.range];
  if (!preset) return { from: v.from, to: v.to };
  const from = floorUtc(now, preset.unit) - (preset.count - 1) * STEP_MS[preset.unit];
  return { from: isoSeconds(from), to: isoSeconds(Math.floor(now / 1000) * 1000 + 1000) };
}

function formatterOf(metric) {
  // Chart.js hands over floats; toFixed keeps tiny amounts out of exponent notation (1e-7).
  return metric === 'cost' ? (v) => formatUsd(Number(v).toFixed(10)) : (v) => formatInt(v);
}

function cellText(value, places, metric) {
  const text = fromScaled(value, places);
  return metric === 'cost' ? formatUsd(text) : formatInt(Number(text));
}

function showTotals(totals) {
  for (const dd of $('#usage-totals').querySelectorAll('dd')) {
    const value = totals?.[dd.dataset.field];
    dd.textContent = value == null ? '—' : dd.dataset.field === 'cost_usd' ? formatUsd(value) : formatInt(value);
    dd.dataset.value = value ?? '';
  }
}

function numberCell(value, places, metric, tag = 'td') {
  return h(tag, { class: value === 0n ? 'zero' : null, text: cellText(value, places, metric) });
}

function renderTable(report, grid) {
  const { metric } = view;
  const labels = grid.series.map((s) => s.label || '(none)');
  $('#usage-head').replaceChildren(h('tr', {},
    h('th', { scope: 'col', text: `Time (UTC, per ${report.bucket})` }),
    ...labels.map((label) => h('th', { scope: 'col', text: label })),
    h('th', { scope: 'col', text: 'Total' })));
  const body = $('#usage-body');
  if (!grid.series.length) {
    emptyRow(body, 2, 'No usage in this range.');
    $('#usage-foot').replaceChildren();
    return;
  }
  const byBucket = bucketTotals(grid);
  body.replaceChildren(...grid.times.map((t, i) => h('tr', {},
    h('th', { scope: 'row', text: formatBucket(t, report.bucket) }),
    ...grid.cells.map((row) => numberCell(row[i], grid.places, metric)),
    numberCell(byBucket[i], grid.places, metric))));
  body.removeAttribute('aria-busy');
  $('#usage-foot').replaceChildren(h('tr', {},
    h('th', { scope: 'row', text: 'Total' }),
    ...seriesTotals(grid).map((v) => numberCell(v, grid.places, metric)),
    h('td', { 'data-testid': 'usage-grand-total', 'data-value': fromScaled(sum(byBucket), grid.places),
      text: cellText(sum(byBucket), grid.places, metric) })));
}

function describeReport(report) {
  const what = METRICS[view.metric].label;
  const by = report.by === 'none' ? '' : ` by ${BY_LABEL[report.by] ?? report.by}`;
  return `${what[0].toUpperCase()}${what.slice(1)} per ${report.bucket}${by}, ${formatBucket(Date.parse(report.from), 'hour')} to ` +
    `${formatBucket(Date.parse(report.to), 'hour')} UTC`;
}

function render(report) {
  const grid = pivot(report, view.metric);
  const caption = describeReport(report);
  $('#usage-caption').textContent = caption;
  showTotals(report.totals);
  renderTable(report, grid);
  const canvas = $('#usage-chart');
  canvas.setAttribute('aria-label', `Stacked bar chart: ${caption}. The table below lists the same numbers.`);
  drawChart(canvas, {
    labels: grid.times.map((t) => formatBucket(t, report.bucket)),
    datasets: grid.series.map((s, i) => ({
      label: s.label || '(none)', other: s.other, data: grid.cells[i].map((v) => cellNumber(v, grid.places)),
    })),
    format: formatterOf(view.metric),
  });
  $('#usage-chart-status').textContent = grid.series.length ? '' : 'No usage in this range.';
}

function seriesQuery(extra = {}) {
  const { from, to } = rangeOf(view);
  return `usage/series${query({ from, to, bucket: view.bucket, by: view.by, top: TOP, ...extra })}`;
}

function checkRange() {
  const { from, to } = rangeOf(view);
  if (!from || !to) throw new Error('Give both ends of the custom range.');
  if (!(Date.parse(from) < Date.parse(to))) throw new Error('The start of the range must be before its end.');
  if (!bucketStarts(from, to, view.bucket)) {
    throw new Error(`That range has more than ${MAX_BUCKETS} ${view.bucket}s: choose day buckets or a shorter range.`);
  }
}

function showLoading() {
  showTotals(null);
  $('#usage-chart-status').textContent = 'Loading…';
  $('#usage-body').setAttribute('aria-busy', 'true');
}

async function load() {
  const gen = ++generation;
  showLoading();
  try {
    checkRange();
    const report = await getJson(seriesQuery());
    if (gen !== generation) return;
    render(report);
    clearBanner('usage');
  } catch (err) {
    if (gen !== generation) return;
    $('#usage-chart-status').textContent = 'No data.';
    showBanner(err, { retry: err.status ? load : null, from: 'usage' });
  }
}

// Fetched with the token (never in a URL), then handed to the browser as a download.
async function exportCsv() {
  const button = $('#usage-export');
  button.disabled = true;
  try {
    checkRange();
    const blob = await (await request(seriesQuery({ format: 'csv' }))).blob();
    const { from, to } = rangeOf(view);
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: `lagoon-usage-${view.by}-${view.bucket}-${from.slice(0, 10)}-${to.slice(0, 10)}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    // The download reads the blob after click() returns.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    showBanner(err, { from: 'usage' });
  } finally {
    button.disabled = false;
  }
}

function readControls(form) {
  const el = form.elements;
  const v = {
    range: el.namedItem('range').value,
    bucket: el.namedItem('bucket').value,
    by: el.namedItem('by').value,
    metric: el.namedItem('metric').value,
  };
  if (v.range === 'custom') {
    v.from = localToIso(el.namedItem('from').value) ?? '';
    v.to = localToIso(el.namedItem('to').value) ?? '';
  }
  return v;
}

function apply(form) {
  try {
    navigate('usage', readControls(form));
  } catch (err) {
    showBanner(err, { from: 'usage' });
  }
}

export function init() {
  const form = $('#usage-controls');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply(form);
  });
  form.addEventListener('change', (event) => {
    const name = event.target.name;
    if (name === 'range') {
      form.classList.toggle('custom', event.target.value === 'custom');
      if (RANGES[event.target.value]) form.elements.namedItem('bucket').value = RANGES[event.target.value].bucket;
    }
    // A custom range waits for the Show button: half-typed dates would each start a query.
    if (name === 'from' || name === 'to' || (name === 'range' && event.target.value === 'custom')) return;
    apply(form);
  });
  $('#usage-export').addEventListener('click', exportCsv);
}

export function mount(params) {
  const range = params.get('range') ?? '24h';
  view = {
    range: RANGES[range] || range === 'custom' ? range : '24h',
    bucket: params.get('bucket') ?? RANGES[range]?.bucket ?? 'hour',
    by: params.get('by') ?? 'model',
    metric: METRICS[params.get('metric')] ? params.get('metric') : 'requests',
    from: params.get('from') ?? '',
    to: params.get('to') ?? '',
  };
  if (!STEP_MS[view.bucket]) view.bucket = 'hour';
  const form = $('#usage-controls');
  for (const name of ['range', 'bucket', 'by', 'metric']) form.elements.namedItem(name).value = view[name];
  form.elements.namedItem('from').value = isoToLocal(view.from);
  form.elements.namedItem('to').value = isoToLocal(view.to);
  form.classList.toggle('custom', view.range === 'custom');
  load();
}

export function unmount() {
  generation++;
  destroyChart();
}
