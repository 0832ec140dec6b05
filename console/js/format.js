// Formatting for display. No DOM here, so tests/e2e/console_logic.test.mjs can import it under Node.

export const DASH = '—';

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

// Amounts arrive as exact decimal strings ("0.000123"); they are rounded as digits, with BigInt, because a
// float would turn small costs into 0.00012299999.
export function parseDecimal(text) {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(String(text ?? '').trim());
  if (!m || (m[2] === '' && !m[3])) return null;
  return { negative: m[1] === '-', whole: m[2] || '0', fraction: m[3] || '' };
}

// The amount scaled by 10^places, rounded half up, as a BigInt (sign not included).
function scaled(dec, places) {
  const digits = BigInt(dec.whole + dec.fraction.padEnd(places + 1, '0').slice(0, places + 1));
  return digits / 10n + (digits % 10n >= 5n ? 1n : 0n);
}

function digitsOf(value, places) {
  const s = value.toString().padStart(places + 1, '0');
  return { whole: s.slice(0, s.length - places), fraction: s.slice(s.length - places) };
}

function trimFraction(fraction, keep) {
  let end = fraction.length;
  while (end > keep && fraction[end - 1] === '0') end--;
  return fraction.slice(0, end);
}

// "$12.35", "$0.0123", "$0.000123": whole dollars to cents, under a dollar to 4 places, under a cent to 6,
// so a day of cheap requests never reads as $0.00.
export function formatUsd(text) {
  const dec = parseDecimal(text);
  if (!dec) return DASH;
  const sign = dec.negative ? '-' : '';
  if (!/[1-9]/.test(dec.whole + dec.fraction)) return '$0.00';
  const wholeIsZero = !/[1-9]/.test(dec.whole);
  const places = !wholeIsZero ? 2 : dec.fraction.startsWith('00') ? 6 : 4;
  const value = scaled(dec, places);
  if (value === 0n) return `<${sign}$0.000001`;
  const { whole, fraction } = digitsOf(value, places);
  const shown = places === 2 ? fraction : trimFraction(fraction, 2);
  return `${sign}$${integer.format(BigInt(whole))}.${shown}`;
}

export function isPositiveDecimal(text) {
  const dec = parseDecimal(text);
  return !!dec && !dec.negative && /[1-9]/.test(dec.whole + dec.fraction);
}

// Decimal strings summed exactly: each is scaled to a common number of places.
export function fractionPlaces(texts) {
  return texts.reduce((max, t) => Math.max(max, parseDecimal(t)?.fraction.length ?? 0), 0);
}

export function toScaled(text, places) {
  const dec = parseDecimal(text);
  if (!dec) return 0n;
  const digits = BigInt(dec.whole + dec.fraction.padEnd(places, '0').slice(0, places));
  return dec.negative ? -digits : digits;
}

export function fromScaled(value, places) {
  const negative = value < 0n;
  const { whole, fraction } = digitsOf(negative ? -value : value, places);
  return (negative ? '-' : '') + (places ? `${whole}.${fraction}` : whole);
}

export function formatInt(n) {
  return n == null || Number.isNaN(Number(n)) ? DASH : integer.format(n);
}

export function formatRate(perSecond) {
  if (perSecond == null) return DASH;
  return perSecond.toFixed(perSecond >= 100 ? 0 : perSecond >= 10 ? 1 : 2);
}

export function formatPercent(ratio) {
  if (ratio == null) return DASH;
  const p = ratio * 100;
  return `${p.toFixed(p >= 10 || p === 0 ? 1 : 2)}%`;
}

export function formatMs(seconds) {
  if (seconds == null) return DASH;
  const ms = seconds * 1000;
  return ms.toFixed(ms >= 100 ? 0 : ms >= 10 ? 1 : 2);
}

// Times are shown in UTC, like the buckets of the usage reports.
export function formatTime(iso) {
  if (!iso) return DASH;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function formatBucket(ms, bucket) {
  const iso = new Date(ms).toISOString();
  return bucket === 'day' ? iso.slice(0, 10) : `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

export function formatBudget(amount, period) {
  if (amount == null) return DASH;
  return `${formatUsd(amount)}${period ? ` ${period}` : ''}`;
}

export function formatLimit(limit) {
  if (limit == null) return 'default';
  return limit === 0 ? 'unlimited' : formatInt(limit);
}
