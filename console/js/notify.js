// Error messages: the page-wide banner and the message line of each form. Both are role="alert", so a
// screen reader reads them out when they appear.
import { $ } from './dom.js';

export function describe(err) {
  const message = err?.message || String(err);
  if (err?.status === 503) {
    const after = Number(err.retryAfter);
    const when = after > 0 ? `in ${after} s` : 'in a few seconds';
    return `${message} Lagoon or one of its dependencies is unavailable right now; retry ${when}.`;
  }
  return message;
}

let retryAction = null;
let owner = null;

// `from` names who raised the banner, so that a page clears only its own message when it recovers.
export function showBanner(err, { retry = null, from = null } = {}) {
  // A refused token is handled by signing out; the sign-in form says so.
  if (err?.status === 401) return;
  $('#banner-text').textContent = describe(err);
  retryAction = retry;
  owner = from;
  $('#banner-retry').hidden = !retry;
  $('#banner').hidden = false;
}

export function clearBanner(from = null) {
  if (from !== null && owner !== from) return;
  $('#banner').hidden = true;
  $('#banner-text').textContent = '';
  retryAction = null;
  owner = null;
}

export function initBanner() {
  $('#banner-dismiss').addEventListener('click', () => clearBanner());
  $('#banner-retry').addEventListener('click', () => {
    const retry = retryAction;
    clearBanner();
    retry?.();
  });
}

export function showFormError(form, err) {
  const line = form.querySelector('[data-role="error"]');
  line.textContent = describe(err);
  line.hidden = false;
  // The API names the offending member; the form's fields carry the same names.
  const field = err?.param && form.elements.namedItem(err.param);
  if (field && typeof field.focus === 'function') field.focus();
}

export function clearFormError(form) {
  const line = form.querySelector('[data-role="error"]');
  line.hidden = true;
  line.textContent = '';
}
