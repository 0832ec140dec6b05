// The one showing of a new key's secret (after create or rotate). The secret is only ever in this dialog's
// text; closing the dialog empties it, and nothing keeps a reference to it.
import { $ } from './dom.js';
import { formatTime } from './format.js';

function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

function exampleModel(key) {
  return (key.allowed_models ?? []).find((m) => !/[*?[]/.test(m)) ?? 'llama-3.3-70b';
}

export function curlExample(origin, secret, model) {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello' }] });
  return [
    `curl ${origin}/api/v1/chat/completions \\`,
    `  -H "Authorization: Bearer ${secret}" \\`,
    '  -H "Content-Type: application/json" \\',
    `  -d ${shellQuote(body)}`,
  ].join('\n');
}

function selectSecret() {
  const range = document.createRange();
  range.selectNodeContents($('#secret-key'));
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

async function copySecret() {
  const status = $('#secret-copy-status');
  try {
    await navigator.clipboard.writeText($('#secret-key').textContent);
    status.textContent = 'Copied to the clipboard.';
  } catch {
    // No clipboard permission (or not a secure context): leave it selected for Ctrl+C / ⌘C.
    selectSecret();
    status.textContent = 'Selected: press Ctrl+C (⌘C on a Mac) to copy.';
  }
}

function forget() {
  $('#secret-key').textContent = '';
  $('#secret-curl').textContent = '';
  $('#secret-copy-status').textContent = '';
  $('#secret-replaces').textContent = '';
  window.getSelection()?.removeAllRanges();
}

let closed = null;

export function initSecret() {
  const dialog = $('#secret-dialog');
  $('#secret-copy').addEventListener('click', copySecret);
  $('#secret-done').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    forget();
    closed?.();
    closed = null;
  });
}

// Resolves when the operator has closed the dialog.
export function showSecret(created, title) {
  $('#secret-title').textContent = title;
  $('#secret-key').textContent = created.key;
  $('#secret-curl').textContent = curlExample(location.origin, created.key, exampleModel(created));
  $('#secret-replaces').textContent = created.replaces != null
    ? `It replaces key ${created.replaces}, which stops working ${created.old_key_revoked_at ? `at ${formatTime(created.old_key_revoked_at)}` : 'now'}.`
    : '';
  const dialog = $('#secret-dialog');
  dialog.showModal();
  $('#secret-copy').focus();
  return new Promise((resolve) => {
    closed = resolve;
  });
}
