// The create/edit key dialog. A created key's secret goes straight to the show-once dialog.
import { sendJson } from './api.js';
import { onSubmit } from './dialogs.js';
import { $ } from './dom.js';
import {
  addPolicyFields, changes, fillBudget, fillPolicy, parseCount, parseTags, readBudget, readPolicy, tagsText, withoutNulls,
} from './forms.js';
import { showSecret } from './secret.js';

let editing = null; // { id, before } while the dialog edits a key
let afterSave = () => {};

function readForm(form) {
  const el = form.elements;
  const name = el.namedItem('name').value.trim();
  return {
    name: name || null,
    rpm: parseCount(el.namedItem('rpm').value, 'rpm', 'Requests per minute'),
    tpm: parseCount(el.namedItem('tpm').value, 'tpm', 'Tokens per minute'),
    ...readBudget(form),
    ...readPolicy(form),
    // The API takes no null for tags: an empty object removes them.
    tags: parseTags(el.namedItem('tags').value) ?? {},
  };
}

function fill(form, key) {
  const el = form.elements;
  el.namedItem('name').value = key?.name ?? '';
  el.namedItem('rpm').value = key?.rpm_limit ?? '';
  el.namedItem('tpm').value = key?.tpm_limit ?? '';
  el.namedItem('tags').value = tagsText(key?.tags);
  fillBudget(form, key);
  fillPolicy(form, key);
}

function open(title, submitLabel, key) {
  const form = $('#key-form');
  form.reset();
  $('#key-dialog-title').textContent = title;
  form.querySelector('button[type="submit"]').textContent = submitLabel;
  form.querySelector('[data-role="user-field"]').hidden = !!key;
  form.elements.namedItem('user').disabled = !!key;
  fill(form, key);
  $('#key-dialog').showModal();
}

export function openCreateKey(user) {
  editing = null;
  open('Create key', 'Create key', null);
  const field = $('#key-form').elements.namedItem('user');
  field.value = user ?? '';
  (user ? $('#key-form').elements.namedItem('name') : field).focus();
}

export function openEditKey(key) {
  editing = null;  // set only once this key's form is read: a save can never go to another key
  open(`Edit key ${key.name ?? key.prefix}`, 'Save changes', key);
  try {
    editing = { id: key.id, before: readForm($('#key-form')) };
  } catch (err) {
    $('#key-dialog').close();
    throw err;
  }
  $('#key-form').elements.namedItem('name').focus();
}

async function create(form) {
  const values = readForm(form);
  if (values.budget_usd === null) values.budget_period = null;
  const user = form.elements.namedItem('user').value.trim();
  // A user id goes as a number, so that a name made of digits cannot be mistaken for it (the API refuses
  // such names anyway).
  const body = { user: /^\d+$/.test(user) ? Number(user) : user, ...withoutNulls(values) };
  const created = await sendJson('POST', 'keys', body);
  $('#key-dialog').close();
  await showSecret(created, 'Key created');
}

async function submit() {
  const form = $('#key-form');
  if (!editing) {
    await create(form);
  } else {
    const patch = changes(editing.before, readForm(form));
    if (Object.keys(patch).length) await sendJson('PATCH', `keys/${encodeURIComponent(editing.id)}`, patch);
    $('#key-dialog').close();
  }
  afterSave();
}

export function initKeyForm(onSaved) {
  afterSave = onSaved;
  const form = $('#key-form');
  addPolicyFields(form);
  onSubmit(form, submit);
}
