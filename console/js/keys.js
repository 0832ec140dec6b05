// Keys: a filtered listing with edit, rotate and revoke. Rotation shows the new secret once, like create.
import { getJson, query, sendJson } from './api.js';
import { confirm } from './dialogs.js';
import { $, emptyRow, fillRows, h, skeletonRows, statusPill, tagList, updatePager } from './dom.js';
import { formatBudget, formatLimit, formatTime, formatUsd } from './format.js';
import { initKeyForm, openCreateKey, openEditKey } from './key-form.js';
import { clearBanner, showBanner } from './notify.js';
import { navigate } from './router.js';
import { showSecret } from './secret.js';

const LIMIT = 100;
const COLUMNS = 12;

let view = { user: '', q: '', status: '', tag: [], offset: 0 };
let generation = 0;

export function keyStatus(key, now = Date.now()) {
  if (key.status) return key.status;
  if (!key.is_active || (key.revoked_at && Date.parse(key.revoked_at) <= now)) return 'revoked';
  if (key.expires_at && Date.parse(key.expires_at) <= now) return 'expired';
  return 'active';
}

const labelOf = (key) => key.name ?? key.prefix;

function statusCell(key) {
  const status = keyStatus(key);
  const cell = h('td', {}, statusPill(status));
  if (status !== 'revoked' && key.revoked_at) cell.append(h('span', { class: 'note', text: `stops ${formatTime(key.revoked_at)}` }));
  if (key.replaced_by != null) cell.append(h('span', { class: 'note', text: `replaced by key ${key.replaced_by}` }));
  if (status === 'active' && key.expires_at) cell.append(h('span', { class: 'note', text: `expires ${formatTime(key.expires_at)}` }));
  return cell;
}

function actions(key) {
  const revoked = keyStatus(key) === 'revoked';
  const what = `key ${labelOf(key)}`;
  return h('td', { class: 'actions' },
    h('button', { type: 'button', class: 'secondary small', 'aria-label': `Edit ${what}`, 'data-action': 'edit',
      disabled: revoked, onclick: () => openEditKey(key) }, 'Edit'),
    h('button', { type: 'button', class: 'secondary small', 'aria-label': `Rotate ${what}`, 'data-action': 'rotate',
      disabled: revoked, onclick: () => rotate(key) }, 'Rotate'),
    h('button', { type: 'button', class: 'secondary small', 'aria-label': `Revoke ${what}`, 'data-action': 'revoke',
      disabled: revoked, onclick: () => revoke(key) }, 'Revoke'));
}

function row(key) {
  return h('tr', { 'data-key-id': key.id },
    h('td', { class: 'num', text: key.id }),
    h('td', { class: 'name', 'data-testid': 'key-name', text: key.name ?? '—' }),
    h('td', {}, h('code', { text: key.prefix })),
    h('td', { class: 'name', text: key.user_name ?? `#${key.user_id}` }),
    statusCell(key),
    h('td', { text: `${formatLimit(key.rpm_limit)} / ${formatLimit(key.tpm_limit)}` }),
    h('td', { text: formatBudget(key.budget_usd, key.budget_period) }),
    h('td', { class: 'num', text: formatUsd(key.spend?.today_usd) }),
    h('td', { class: 'num', text: formatUsd(key.spend?.month_usd) }),
    h('td', { class: 'name' }, tagList(key.tags)),
    h('td', { text: key.last_used_at ? formatTime(key.last_used_at) : 'never' }),
    actions(key));
}

async function load() {
  const gen = ++generation;
  const body = $('#keys-body');
  skeletonRows(body, COLUMNS);
  try {
    const params = { user: view.user, q: view.q, status: view.status, tag: view.tag, limit: LIMIT, offset: view.offset };
    const keys = await getJson(`keys${query(params)}`);
    if (gen !== generation) return;
    if (keys.length) fillRows(body, keys.map(row));
    else emptyRow(body, COLUMNS, view.offset ? 'No more keys.' : 'No keys match.');
    updatePager($('#keys-pager'), { offset: view.offset, limit: LIMIT, count: keys.length });
    clearBanner('keys');
  } catch (err) {
    if (gen !== generation) return;
    emptyRow(body, COLUMNS, 'Could not load the keys.');
    showBanner(err, { retry: load, from: 'keys' });
  }
}

// Names for the user fields' suggestions; the listing works without them.
async function loadUserNames() {
  try {
    const users = await getJson(`users${query({ status: 'active', limit: 1000 })}`);
    $('#user-names').replaceChildren(...users.map((u) => h('option', { value: u.name, label: `#${u.id}` })));
  } catch (err) {
    showBanner(err, { from: 'keys' });
  }
}

async function revoke(key) {
  const done = await confirm({
    title: `Revoke key ${labelOf(key)}?`,
    text: `Requests with ${key.prefix}… are refused from now on. This cannot be undone.`,
    confirmLabel: 'Revoke key',
    action: () => sendJson('DELETE', `keys/${encodeURIComponent(key.id)}`),
  });
  if (done) load();
}

async function rotate(key) {
  const created = await confirm({
    title: `Rotate key ${labelOf(key)}?`,
    text: 'A new key with the same settings is made; the old one keeps working for the grace period, then stops.',
    confirmLabel: 'Rotate key',
    danger: false,
    askGrace: true,
    action: ({ grace }) => sendJson('POST', `keys/${encodeURIComponent(key.id)}/rotate`, grace ? { grace } : {}),
  });
  if (!created) return;
  await showSecret(created, 'Key rotated');
  load();
}

function readFilter(form) {
  const tags = form.elements.namedItem('tag').value.split(',').map((s) => s.trim()).filter(Boolean);
  return {
    user: form.elements.namedItem('user').value.trim(),
    q: form.elements.namedItem('q').value.trim(),
    status: form.elements.namedItem('status').value,
    tag: tags,
  };
}

export function init() {
  const filter = $('#keys-filter');
  filter.addEventListener('submit', (event) => {
    event.preventDefault();
    navigate('keys', readFilter(filter));
  });
  filter.querySelector('[data-action="clear"]').addEventListener('click', () => navigate('keys'));
  const pager = $('#keys-pager');
  pager.querySelector('[data-action="prev"]').addEventListener('click',
    () => navigate('keys', { ...view, offset: Math.max(0, view.offset - LIMIT) }));
  pager.querySelector('[data-action="next"]').addEventListener('click',
    () => navigate('keys', { ...view, offset: view.offset + LIMIT }));
  $('#key-create').addEventListener('click', () => openCreateKey(view.user));
  initKeyForm(() => load());
}

export function mount(params) {
  view = {
    user: params.get('user') ?? '',
    q: params.get('q') ?? '',
    status: params.get('status') ?? '',
    tag: params.getAll('tag'),
    offset: Math.max(0, Number(params.get('offset')) || 0),
  };
  const filter = $('#keys-filter');
  filter.elements.namedItem('user').value = view.user;
  filter.elements.namedItem('q').value = view.q;
  filter.elements.namedItem('status').value = view.status;
  filter.elements.namedItem('tag').value = view.tag.join(', ');
  load();
  loadUserNames();
}

export function unmount() {
  generation++;
}
