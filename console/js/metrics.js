// Reads GET /admin/v1/metrics (Prometheus text exposition, version 0.0.4) and turns two readings into
// rates and latency quantiles. No DOM here, so it is tested under Node.

// The console's own polling, scrapes and probes are not gateway traffic.
export const NON_GATEWAY_ROUTES = new Set(['/admin/v1', '/console', '/metrics', '/healthz', '/readyz', 'unmatched']);

const GAUGES = new Set([
  'lagoon_http_streams_active',
  'lagoon_http_connections_active',
  'lagoon_usage_queue_depth',
  'lagoon_usage_queue_capacity',
]);

export function parseValue(text) {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

// Label values may hold escaped quotes, backslashes and newlines, so they are read character by character.
function parseLabels(line, pos, labels) {
  for (;;) {
    while (line[pos] === ' ' || line[pos] === ',') pos++;
    if (line[pos] === '}') return pos + 1;
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(pos));
    if (!m) return -1;
    pos += m[0].length;
    let value = '';
    while (pos < line.length && line[pos] !== '"') {
      if (line[pos] === '\\') {
        value += line[pos + 1] === 'n' ? '\n' : line[pos + 1] ?? '';
        pos += 2;
      } else {
        value += line[pos++];
      }
    }
    if (pos >= line.length) return -1;
    labels[m[1]] = value;
    pos++;
  }
}

export function parseSample(line) {
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
  if (!name) return null;
  const labels = {};
  let pos = name.length;
  if (line[pos] === '{') pos = parseLabels(line, pos + 1, labels);
  if (pos < 0) return null;
  const text = line.slice(pos).trim().split(/\s+/)[0];
  if (!text) return null;
  const value = parseValue(text);
  if (Number.isNaN(value) && text !== 'NaN') return null;
  return { name, labels, value };
}

export function parsePrometheus(text) {
  const samples = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const sample = parseSample(line);
    if (sample) samples.push(sample);
  }
  return samples;
}

function seriesKey(labels) {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const isGateway = (labels) => !NON_GATEWAY_ROUTES.has(labels.route ?? '');

// One reading: the gateway's request counters and latency buckets per series, gauges summed over their
// labels, and each dependency's up/down.
export function snapshot(text, time) {
  const snap = { time, requests: new Map(), buckets: new Map(), gauges: {}, dependencies: {} };
  for (const { name, labels, value } of parsePrometheus(text)) {
    if (name === 'lagoon_http_requests_total' && isGateway(labels)) {
      snap.requests.set(seriesKey(labels), { status: Number(labels.status), value });
    } else if (name === 'lagoon_http_request_duration_seconds_bucket' && isGateway(labels)) {
      snap.buckets.set(seriesKey(labels), { le: parseValue(labels.le), value });
    } else if (name === 'lagoon_dependency_up' && labels.dependency) {
      snap.dependencies[labels.dependency] = value;
    } else if (GAUGES.has(name)) {
      snap.gauges[name] = (snap.gauges[name] ?? 0) + value;
    }
  }
  return snap;
}

// A counter that went down was reset (the process restarted): all of its value is new.
function increase(before, now) {
  if (before === undefined || now < before) return now;
  return now - before;
}

// The value below which a fraction q of the observations fall, interpolated inside the bucket that holds
// it, as Prometheus' histogram_quantile does. `buckets` is [[upperBound, cumulativeCount], ...] sorted.
export function quantile(q, buckets) {
  if (!buckets.length) return null;
  const total = buckets[buckets.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lowerBound = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lowerBound;
      return lowerBound + (le - lowerBound) * ((rank - below) / (count - below));
    }
    lowerBound = le;
    below = count;
  }
  return lowerBound;
}

function bucketIncreases(before, now) {
  const byBound = new Map();
  for (const [key, b] of now.buckets) {
    byBound.set(b.le, (byBound.get(b.le) ?? 0) + increase(before.buckets.get(key)?.value, b.value));
  }
  const sorted = [...byBound].sort((a, b) => a[0] - b[0]);
  // Series that reset separately can leave a bucket below the one before it; cumulative counts never fall.
  for (let i = 1; i < sorted.length; i++) sorted[i][1] = Math.max(sorted[i][1], sorted[i - 1][1]);
  return sorted;
}

// What happened between two readings, or null on the first one.
export function interval(before, now) {
  if (!before) return null;
  const seconds = (now.time - before.time) / 1000;
  if (!(seconds > 0)) return null;
  let total = 0;
  let serverErrors = 0;
  let clientErrors = 0;
  for (const [key, s] of now.requests) {
    const d = increase(before.requests.get(key)?.value, s.value);
    total += d;
    if (s.status >= 500) serverErrors += d;
    else if (s.status >= 400) clientErrors += d;
  }
  const buckets = bucketIncreases(before, now);
  return {
    seconds,
    requests: total,
    requestsPerSecond: total / seconds,
    serverErrorRatio: total > 0 ? serverErrors / total : null,
    clientErrorRatio: total > 0 ? clientErrors / total : null,
    p50: quantile(0.5, buckets),
    p99: quantile(0.99, buckets),
  };
}
