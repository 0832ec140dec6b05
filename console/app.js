// The Lagoon operator console: sign-in, then one page at a time chosen by the location hash.
import { clearToken, getToken, onUnauthorized, request, setToken } from './js/api.js';
import { closeAllDialogs, initConfirm, wireCancelButtons } from './js/dialogs.js';
import { $ } from './js/dom.js';
import { clearBanner, describe, initBanner } from './js/notify.js';
import { parseHash } from './js/router.js';
import { initSecret } from './js/secret.js';
import * as keys from './js/keys.js';
import * as overview from './js/overview.js';
import * as usage from './js/usage.js';
import * as users from './js/users.js';

const PAGES = { overview, keys, users, usage };
const TITLES = { overview: 'Overview', keys: 'Keys', users: 'Users', usage: 'Usage & spend' };

let current = null;

function showOnly(id) {
  for (const section of document.querySelectorAll('main > section')) section.hidden = section.id !== id;
}

function leavePage() {
  current?.unmount();
  current = null;
}

function setSignInError(message) {
  const line = $('#signin-error');
  line.textContent = message ?? '';
  line.hidden = !message;
}

function showSignIn(message = null) {
  leavePage();
  closeAllDialogs();
  clearBanner();
  $('#nav').hidden = true;
  $('#sign-out').hidden = true;
  showOnly('signin');
  setSignInError(message);
  document.title = 'Sign in · Lagoon console';
  $('#token').focus();
}

function route() {
  if (!getToken()) {
    showSignIn($('#signin-error').textContent || null);
    return;
  }
  leavePage();
  clearBanner();
  const { name, params } = parseHash();
  $('#nav').hidden = false;
  $('#sign-out').hidden = false;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.route === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  showOnly(`page-${name}`);
  document.title = `${TITLES[name]} · Lagoon console`;
  current = PAGES[name];
  current.mount(params);
}

// The token is tried on the metrics route (no database behind it) before it is kept.
async function signIn(event) {
  event.preventDefault();
  const input = $('#token');
  const token = input.value.trim();
  if (!token) return;
  const button = $('#signin-form button[type="submit"]');
  button.disabled = true;
  setSignInError(null);
  try {
    await request('metrics', { token });
    setToken(token);
    input.value = '';
    route();
    $(`#page-${parseHash().name} h1`).focus();
  } catch (err) {
    clearToken();
    setSignInError(err.status === 401
      ? 'That token was refused by the server. Check the value of LAGOON_ADMIN_TOKEN and try again.'
      : describe(err));
    input.focus();
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  clearToken();
  $('#token').value = '';
  showSignIn();
}

function init() {
  initBanner();
  wireCancelButtons();
  initConfirm();
  initSecret();
  for (const page of Object.values(PAGES)) page.init();
  onUnauthorized(() => {
    clearToken();
    showSignIn('That token was refused by the server (it may have been changed). Sign in again.');
  });
  $('#signin-form').addEventListener('submit', signIn);
  $('#sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  route();
}

init();
