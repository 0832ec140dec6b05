// Users: a filtered listing, create and edit in one dialog, and deactivation after a confirmation.
import { getJson, query, sendJson } from './api.js';
import { confirm, onSubmit } from './dialogs.js';
import { $, emptyRow, fillRows, h, skeletonRows, statusPill, updatePager } from './dom.js';
import { formatBudget, formatInt, formatTime, formatUsd } from './format.js';
import { addPolicyFields, changes, fillBudget, fillPolicy, readBudget, readPolicy, withoutNulls } from './forms.js';
import { clearBanner, showBanner } from './notify.js';
import { navigate } from './router.js';

const LIMIT = 100;
const COLUMNS = 9;

let view = { q: '', status: '', offset: 0 };
let generation = 0;
let editing = null; // { id, before } while the dialog edits a user

function actions(user) {
  const who = `user ${user.name}`;
  return h('td', { class: 'actions' },
    h('button', { type: 'button', class: 'secondary small', 'aria-label': `Keys of ${who}`, 'data-action': 'keys',
      onclick: () => navigate('keys', { user: user.id }) }, 'Keys'),
    h('button', { type: 'button', class: 'secondary small', 'aria-label': `Edit ${who}`, 'data-action': 'edit',
      onclick: () => openEdit(user) }, 'Edit'),
    h('button', { type: 'button', class: 'secondary small', 'aria-label': `Deactivate ${who}`, 'data-action': 'deactivate',
      disabled: !user.is_active, onclick: () => deactivate(user) }, 'Deactivate'));
}

function row(user) {
  return h('tr', { 'data-user-id': user.id },
    h('td', { class: 'num', text: user.id }),
    h('td', { class: 'name', 'data-testid': 'user-name', text: user.name }),
    h('td', {}, statusPill(user.is_active ? 'active' : 'inactive')),
    h('td', { class: 'num', text: formatInt(user.keys_active) }),
    h('td', { text: formatBudget(user.budget_usd, user.budget_period) }),
    h('td', { class: 'num', text: formatUsd(user.spend?.today_usd) }),
    h('td', { class: 'num', text: formatUsd(user.spend?.month_usd) }),
    h('td', { text: user.expires_at ? formatTime(user.expires_at) : 'never' }),
    actions(user));
}

async function load() {
  const gen = ++generation;
  const body = $('#users-body');
  skeletonRows(body, COLUMNS);
  try {
    const users = await getJson(`users${query({ q: view.q, status: view.status, limit: LIMIT, offset: view.offset })}`);
    if (gen !== generation) return;
    if (users.length) fillRows(body, users.map(row));
    else emptyRow(body, COLUMNS, view.offset ? 'No more users.' : 'No users match.');
    updatePager($('#users-pager'), { offset: view.offset, limit: LIMIT, count: users.length });
    clearBanner('users');
  } catch (err) {
    if (gen !== generation) return;
    emptyRow(body, COLUMNS, 'Could not load the users.');
    showBanner(err, { retry: load, from: 'users' });
  }
}

function openDialog(title, submitLabel, user) {
  const form = $('#user-form');
  form.reset();
  $('#user-dialog-title').textContent = title;
  form.querySelector('button[type="submit"]').textContent = submitLabel;
  form.querySelector('[data-role="name-field"]').hidden = !!user;
  form.elements.namedItem('name').disabled = !!user;
  form.querySelector('[data-role="budget-fields"]').hidden = !user;
  fillBudget(form, user);
  fillPolicy(form, user);
  $('#user-dialog').showModal();
  form.querySelector('input:not([disabled]):not([type="hidden"])').focus();
}

function readForm(form) {
  return { ...readBudget(form), ...readPolicy(form) };
}

function openCreate() {
  editing = null;
  openDialog('Create user', 'Create user', null);
}

function openEdit(user) {
  openDialog(`Edit user ${user.name}`, 'Save changes', user);
  editing = { id: user.id, before: readForm($('#user-form')) };
}

async function submit() {
  const form = $('#user-form');
  if (editing) {
    const patch = changes(editing.before, readForm(form));
    if (Object.keys(patch).length) await sendJson('PATCH', `users/${encodeURIComponent(editing.id)}`, patch);
    $('#user-dialog').close();
    load();
    return;
  }
  const name = form.elements.namedItem('name').value.trim();
  await sendJson('POST', 'users', { name, ...withoutNulls(readPolicy(form)) });
  $('#user-dialog').close();
  // The new user is shown even when the listing has more pages than one.
  navigate('users', { q: name });
}

async function deactivate(user) {
  const done = await confirm({
    title: `Deactivate user ${user.name}?`,
    text: `All of ${user.name}'s keys stop working at once. The user and its usage history are kept.`,
    confirmLabel: 'Deactivate',
    action: () => sendJson('DELETE', `users/${encodeURIComponent(user.id)}`),
  });
  if (done) load();
}

export function init() {
  const filter = $('#users-filter');
  filter.addEventListener('submit', (event) => {
    event.preventDefault();
    navigate('users', { q: filter.elements.namedItem('q').value.trim(), status: filter.elements.namedItem('status').value });
  });
  filter.querySelector('[data-action="clear"]').addEventListener('click', () => navigate('users'));
  const pager = $('#users-pager');
  pager.querySelector('[data-action="prev"]').addEventListener('click',
    () => navigate('users', { ...view, offset: Math.max(0, view.offset - LIMIT) }));
  pager.querySelector('[data-action="next"]').addEventListener('click',
    () => navigate('users', { ...view, offset: view.offset + LIMIT }));
  $('#user-create').addEventListener('click', openCreate);
  const form = $('#user-form');
  addPolicyFields(form);
  onSubmit(form, submit);
}

export function mount(params) {
  view = { q: params.get('q') ?? '', status: params.get('status') ?? '', offset: Math.max(0, Number(params.get('offset')) || 0) };
  const filter = $('#users-filter');
  filter.elements.namedItem('q').value = view.q;
  filter.elements.namedItem('status').value = view.status;
  load();
}

export function unmount() {
  generation++;
}
