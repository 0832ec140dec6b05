// The operator console's pure logic (console/js/{format,metrics,series,forms}.js) under Node's test
// runner: node --test tests/e2e/console_logic.test.mjs
import assert from 'node:assert/strict';
import test from 'node:test';

import { formatUsd, isPositiveDecimal, toScaled, fromScaled, formatMs } from '../../console/js/format.js';
import { interval, parsePrometheus, quantile, snapshot } from '../../console/js/metrics.js';
import { bucketStarts, pivot, bucketTotals, seriesTotals } from '../../console/js/series.js';
import { changes, parseTags, parseList, parseBudget, parseCount, tagsText } from '../../console/js/forms.js';
import { describe as describeError } from '../../console/js/notify.js';
import { query } from '../../console/js/api.js';

test('costs keep small amounts visible and round large ones to cents', () => {
  const cases = [
    ['0', '$0.00'], ['0.000000', '$0.00'], ['0.000123', '$0.000123'], ['0.00012349', '$0.000123'],
    ['0.0000005', '$0.000001'], ['0.0000004', '<$0.000001'], ['0.0123', '$0.0123'], ['0.5', '$0.50'],
    ['0.99999', '$1.00'], ['12.345', '$12.35'], ['1234567.891', '$1,234,567.89'], ['7', '$7.00'],
    ['', '—'], [null, '—'], ['1e-7', '—'],
  ];
  for (const [input, shown] of cases) assert.equal(formatUsd(input), shown, `formatUsd(${input})`);
});

test('decimal strings sum exactly', () => {
  const sum = toScaled('0.1', 4) + toScaled('0.2', 4) + toScaled('0.0003', 4);
  assert.equal(fromScaled(sum, 4), '0.3003');
  assert.equal(isPositiveDecimal('0.000001'), true);
  assert.equal(isPositiveDecimal('0.000'), false);
  assert.equal(formatMs(0.0123), '12.3');
});

test('the Prometheus text format is read with escaped label values and skipped comments', () => {
  const samples = parsePrometheus([
    '# HELP lagoon_http_requests_total Requests.',
    '# TYPE lagoon_http_requests_total counter',
    'lagoon_http_requests_total{route="/api/v1/chat/completions",status="200",outcome="ok"} 7',
    'weird{label="a \\"quoted\\" \\\\ value\\n",other="x"} 1.5e3',
    'lagoon_http_streams_active 2',
    'h_bucket{le="+Inf"} +Inf',
    'broken{label="unterminated} 3',
  ].join('\n'));
  assert.equal(samples.length, 4);
  assert.deepEqual(samples[0].labels, { route: '/api/v1/chat/completions', status: '200', outcome: 'ok' });
  assert.equal(samples[1].labels.label, 'a "quoted" \\ value\n');
  assert.equal(samples[1].value, 1500);
  assert.equal(samples[2].value, 2);
  assert.equal(samples[3].value, Infinity);
});

test('quantiles interpolate inside the bucket that holds them', () => {
  const buckets = [[0.01, 50], [0.1, 90], [1, 100], [Infinity, 100]];
  assert.equal(quantile(0.5, buckets), 0.01);
  assert.ok(Math.abs(quantile(0.7, buckets) - 0.055) < 1e-9);
  assert.ok(Math.abs(quantile(0.99, buckets) - 0.91) < 1e-9);
  assert.equal(quantile(0.5, [[0.1, 0], [Infinity, 0]]), null);
  assert.equal(quantile(0.99, [[0.1, 1], [Infinity, 10]]), 0.1);
});

function exposition(chat200, chat500, admin200, buckets) {
  return [
    `lagoon_http_requests_total{route="/api/v1/chat/completions",status="200",outcome="ok"} ${chat200}`,
    `lagoon_http_requests_total{route="/api/v1/chat/completions",status="500",outcome="upstream_error"} ${chat500}`,
    `lagoon_http_requests_total{route="/admin/v1",status="200",outcome="ok"} ${admin200}`,
    ...buckets.map(([le, n]) => `lagoon_http_request_duration_seconds_bucket{route="/api/v1/chat/completions",le="${le}"} ${n}`),
    'lagoon_http_request_duration_seconds_bucket{route="/admin/v1",le="+Inf"} 1000',
    'lagoon_dependency_up{dependency="redis"} 1',
    'lagoon_dependency_up{dependency="postgres"} 0',
    'lagoon_usage_queue_depth 3',
    'lagoon_usage_queue_capacity 10000',
  ].join('\n');
}

test('rates come from counter increases on gateway routes only', () => {
  const before = snapshot(exposition(10, 0, 500, [['0.1', 5], ['1', 10], ['+Inf', 10]]), 0);
  const after = snapshot(exposition(28, 2, 900, [['0.1', 15], ['1', 30], ['+Inf', 30]]), 10_000);
  assert.equal(interval(null, after), null);
  const iv = interval(before, after);
  assert.equal(iv.requests, 20);
  assert.equal(iv.requestsPerSecond, 2);
  assert.equal(iv.serverErrorRatio, 0.1);
  assert.equal(iv.p50, 0.1);
  assert.ok(Math.abs(iv.p99 - (0.1 + 0.9 * (19.8 - 10) / 10)) < 1e-9);
  assert.equal(after.dependencies.redis, 1);
  assert.equal(after.dependencies.postgres, 0);
  assert.equal(after.gauges.lagoon_usage_queue_depth, 3);
});

test('a counter that went down counts as restarted', () => {
  const before = snapshot(exposition(100, 0, 0, []), 0);
  const after = snapshot(exposition(4, 0, 0, []), 5000);
  assert.equal(interval(before, after).requests, 4);
});

test('usage series fill missing buckets with zero and sum exactly', () => {
  const report = {
    bucket: 'hour', from: '2026-12-02T10:30:00Z', to: '2026-12-02T13:10:00Z',
    series: [{ name: 'a', label: 'a', other: false }, { name: null, label: 'other', other: true }],
    rows: [
      { time: '2026-12-02T10:00:00Z', series: 0, requests: 2, total_tokens: 10, cost_usd: '0.1' },
      { time: '2026-12-02T12:00:00Z', series: 1, requests: 1, total_tokens: 5, cost_usd: '0.000123' },
      { time: '2026-12-02T12:00:00Z', series: 0, requests: 4, total_tokens: 1, cost_usd: '0.2' },
    ],
  };
  assert.deepEqual(bucketStarts(report.from, report.to, 'hour').map((t) => new Date(t).toISOString().slice(11, 13)),
    ['10', '11', '12', '13']);
  const requests = pivot(report, 'requests');
  assert.deepEqual(requests.cells, [[2n, 0n, 4n, 0n], [0n, 0n, 1n, 0n]]);
  assert.deepEqual(bucketTotals(requests), [2n, 0n, 5n, 0n]);
  const cost = pivot(report, 'cost');
  assert.equal(cost.places, 6);
  assert.deepEqual(seriesTotals(cost).map((v) => fromScaled(v, cost.places)), ['0.300000', '0.000123']);
  assert.equal(bucketStarts('2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', 'hour'), null);
  assert.equal(bucketStarts('2026-11-03T00:00:00Z', '2026-12-03T00:00:00Z', 'day').length, 30);
});

test('form fields parse to what the API takes', () => {
  assert.deepEqual(parseTags('team=search\n env = prod \n'), { team: 'search', env: 'prod' });
  assert.deepEqual(parseTags('{"a":"b"}'), { a: 'b' });
  assert.equal(parseTags(' '), null);
  assert.throws(() => parseTags('novalue'), /NAME=VALUE/);
  assert.throws(() => parseTags('{"a":'), /not valid JSON/);
  // Whatever the API stored reads back the same after an edit of something else.
  for (const tags of [{ team: 'search' }, { note: 'a\nb' }, { 'a=b': 'c' }, { n: 1, o: { p: true } }, { ' x': 'y' }, { '{a': 'b' }]) {
    assert.deepEqual(parseTags(tagsText(tags)), tags, JSON.stringify(tags));
  }
  assert.equal(tagsText({ team: 'search', env: 'prod' }), 'team=search\nenv=prod');
  assert.deepEqual(parseList('llama-*, qwen\nmistral'), ['llama-*', 'qwen', 'mistral']);
  assert.equal(parseList(''), null);
  assert.equal(parseBudget('$12.50'), '12.50');
  assert.throws(() => parseBudget('12,50'), (e) => e.param === 'budget_usd');
  assert.equal(parseCount('0', 'rpm', 'RPM'), 0);
  assert.throws(() => parseCount('-1', 'rpm', 'RPM'), (e) => e.param === 'rpm');
});

test('an edit sends only what changed, and a budget with its period', () => {
  const before = { name: 'a', rpm: null, budget_usd: null, budget_period: 'total', tags: {} };
  assert.deepEqual(changes(before, { ...before }), {});
  assert.deepEqual(changes(before, { ...before, rpm: 0 }), { rpm: 0 });
  assert.deepEqual(changes(before, { ...before, budget_period: 'daily' }), {});
  assert.deepEqual(changes(before, { ...before, budget_usd: '5' }), { budget_usd: '5', budget_period: 'total' });
  const budgeted = { ...before, budget_usd: '5', budget_period: 'daily' };
  assert.deepEqual(changes(budgeted, { ...budgeted, budget_period: 'monthly' }), { budget_usd: '5', budget_period: 'monthly' });
  assert.deepEqual(changes(budgeted, { ...budgeted, budget_usd: null }), { budget_usd: null });
});

test('a 503 says to retry, with the server\'s Retry-After when it gives one', () => {
  assert.match(describeError({ status: 503, message: 'Postgres is unavailable.', retryAfter: '2' }),
    /^Postgres is unavailable\. .*retry in 2 s\.$/);
  assert.match(describeError({ status: 503, message: 'Busy.', retryAfter: null }), /retry in a few seconds\.$/);
  assert.equal(describeError({ status: 409, message: 'a user named "x" already exists' }), 'a user named "x" already exists');
});

test('query strings encode a space as %20, which the admin API reads as a space (it reads "+" as a plus)', () => {
  assert.equal(query({ q: '<img src=x>-a+b', status: '', tag: ['team:a b', 'env:prod'], offset: null }),
    '?q=%3Cimg%20src%3Dx%3E-a%2Bb&tag=team%3Aa%20b&tag=env%3Aprod');
  assert.equal(query({}), '');
});
