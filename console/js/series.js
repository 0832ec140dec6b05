// Turns GET /admin/v1/usage/series into a grid of buckets × series for the chart and the table. The API
// sends rows only for the (bucket, series) pairs that have data; every other cell is zero. No DOM here.
import { fractionPlaces, toScaled, fromScaled } from './format.js';

export const STEP_MS = { hour: 3_600_000, day: 86_400_000 };
export const MAX_BUCKETS = 2000;

export function floorUtc(ms, bucket) {
  const d = new Date(ms);
  return bucket === 'day'
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours());
}

// Bucket starts from the one holding `from` up to `to` (exclusive); null when there would be too many.
export function bucketStarts(fromIso, toIso, bucket) {
  const step = STEP_MS[bucket];
  const end = Date.parse(toIso);
  const times = [];
  for (let t = floorUtc(Date.parse(fromIso), bucket); t < end; t += step) {
    if (times.length === MAX_BUCKETS) return null;
    times.push(t);
  }
  return times;
}

export const METRICS = {
  requests: { label: 'requests', field: 'requests' },
  tokens: { label: 'tokens', field: 'total_tokens' },
  cost: { label: 'cost (USD)', field: 'cost_usd' },
};

// cells[series][bucket] are BigInts scaled by 10^places (places is 0 except for cost), so sums are exact.
export function pivot(report, metric) {
  const field = METRICS[metric].field;
  const places = metric === 'cost' ? fractionPlaces(report.rows.map((r) => r[field])) : 0;
  const times = bucketStarts(report.from, report.to, report.bucket) ?? [];
  const index = new Map(times.map((t, i) => [t, i]));
  for (const row of report.rows) {
    const t = floorUtc(Date.parse(row.time), report.bucket);
    if (!index.has(t)) index.set(t, -1);
  }
  // Rows outside [from, to) should not happen; if they do they are shown rather than dropped.
  const allTimes = [...index.keys()].sort((a, b) => a - b);
  const position = new Map(allTimes.map((t, i) => [t, i]));
  const cells = report.series.map(() => allTimes.map(() => 0n));
  for (const row of report.rows) {
    const i = position.get(floorUtc(Date.parse(row.time), report.bucket));
    if (cells[row.series]) cells[row.series][i] += toScaled(String(row[field] ?? 0), places);
  }
  return { times: allTimes, series: report.series, cells, places };
}

export function sum(values) {
  return values.reduce((a, b) => a + b, 0n);
}

export function bucketTotals(grid) {
  return grid.times.map((_, i) => sum(grid.cells.map((row) => row[i])));
}

export function seriesTotals(grid) {
  return grid.cells.map((row) => sum(row));
}

export function cellNumber(value, places) {
  return Number(fromScaled(value, places));
}
