// Reading and filling the create/edit forms. The parsers are pure (tested under Node); a field left blank
// reads as null, which the API takes as "unset" or "the default".

export class FieldError extends Error {
  constructor(param, message) {
    super(message);
    this.param = param;
  }
}

export function parseList(text) {
  const items = String(text ?? '').split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
  return items.length ? items : null;
}

export function parseCount(text, param, label) {
  const t = String(text ?? '').trim();
  if (!t) return null;
  if (!/^\d+$/.test(t)) throw new FieldError(param, `${label} must be a whole number (0 or more).`);
  return Number(t);
}

export function parseBudget(text) {
  const t = String(text ?? '').trim().replace(/^\$/, '');
  if (!t) return null;
  if (!/^\d+(\.\d+)?$/.test(t)) throw new FieldError('budget_usd', 'Budget must be an amount in USD, such as 12.50.');
  return t;
}

// Tags: NAME=VALUE lines, or a JSON object of strings.
export function parseTags(text) {
  const t = String(text ?? '').trim();
  if (!t) return null;
  if (t.startsWith('{')) return parseTagsJson(t);
  const tags = {};
  for (const line of t.split('\n').map((s) => s.trim()).filter(Boolean)) {
    const eq = line.indexOf('=');
    if (eq <= 0) throw new FieldError('tags', `Tag "${line}" is not NAME=VALUE.`);
    tags[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return tags;
}

function parseTagsJson(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FieldError('tags', `Tags are not valid JSON: ${err.message}`);
  }
  // Any JSON values, as the API and the CLI take them: what they stored must survive an edit.
  const ok = value && typeof value === 'object' && !Array.isArray(value);
  if (!ok) throw new FieldError('tags', 'Tags in JSON must be an object, like {"team":"search"}.');
  return Object.keys(value).length ? value : null;
}

// NAME=VALUE lines when they read back the same; otherwise (a name with '=', a line break, a value
// that is not a string) the tags as JSON, which parseTags reads back exactly.
export function tagsText(tags) {
  const entries = Object.entries(tags ?? {});
  const plain = entries.every(([k, v]) => typeof v === 'string' && k.trim() === k && v.trim() === v &&
    !/[=\n\r]/.test(k) && !/[\n\r]/.test(v) && k !== '' && !k.startsWith('{'));
  return plain ? entries.map(([k, v]) => `${k}=${v}`).join('\n') : JSON.stringify(tags, null, 1);
}

// datetime-local holds the operator's local time without a zone; the API wants RFC 3339 in UTC.
export function localToIso(value) {
  if (!value) return null;
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) throw new FieldError('expires_at', 'Expiry is not a valid date and time.');
  return t.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function isoToLocal(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// The members whose value differs between two readings of the same form. A budget's period is sent along
// with its amount, since the API refuses a period without a budget and a period for a budget being removed.
export function changes(before, after) {
  const out = {};
  for (const [name, value] of Object.entries(after)) {
    if (JSON.stringify(value) !== JSON.stringify(before[name])) out[name] = value;
  }
  if ('budget_usd' in out || 'budget_period' in out) {
    if (after.budget_usd === null) delete out.budget_period;
    else Object.assign(out, { budget_usd: after.budget_usd, budget_period: after.budget_period });
  }
  return out;
}

export function withoutNulls(values) {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== null));
}

// --- The DOM side: the policy fields shared by the key and user forms (a <template> in index.html).

export function addPolicyFields(form) {
  const slot = form.querySelector('[data-role="policy"]');
  slot.append(document.getElementById('policy-fields').content.cloneNode(true));
  const expires = form.elements.namedItem('expires_at');
  const hint = slot.querySelector('[data-role="utc-hint"]');
  const showUtc = () => {
    let iso = null;
    try {
      iso = localToIso(expires.value);
    } catch {
      iso = null;
    }
    hint.textContent = iso ? `${iso} in UTC.` : 'Blank: never.';
  };
  expires.addEventListener('input', showUtc);
  form.addEventListener('policy-filled', showUtc);
}

export function readPolicy(form) {
  const el = form.elements;
  const endpoints = [...form.querySelectorAll('input[name="endpoints"]:checked')].map((c) => c.value);
  return {
    models: parseList(el.namedItem('models').value),
    endpoints: endpoints.length ? endpoints : null,
    expires_at: localToIso(el.namedItem('expires_at').value),
    max_concurrent: parseCount(el.namedItem('max_concurrent').value, 'max_concurrent', 'Max concurrent'),
  };
}

export function fillPolicy(form, record) {
  const el = form.elements;
  el.namedItem('models').value = (record?.allowed_models ?? []).join(', ');
  const allowed = new Set(record?.allowed_endpoints ?? []);
  for (const box of form.querySelectorAll('input[name="endpoints"]')) box.checked = allowed.has(box.value);
  el.namedItem('expires_at').value = isoToLocal(record?.expires_at);
  el.namedItem('max_concurrent').value = record?.max_concurrent ?? '';
  form.dispatchEvent(new Event('policy-filled'));
}

export function readBudget(form) {
  return {
    budget_usd: parseBudget(form.elements.namedItem('budget_usd').value),
    budget_period: form.elements.namedItem('budget_period').value,
  };
}

export function fillBudget(form, record) {
  form.elements.namedItem('budget_usd').value = record?.budget_usd ?? '';
  form.elements.namedItem('budget_period').value = record?.budget_period ?? 'total';
}
