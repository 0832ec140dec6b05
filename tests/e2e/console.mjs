// The operator console in headless Chromium (puppeteer-core), against a running Lagoon:
//   LAGOON_URL=http://127.0.0.1:PORT LAGOON_ADMIN_TOKEN=... LAGOON_MODEL=<a priced model> \
//   CONSOLE_SCREENSHOTS=/tmp/shots node tests/e2e/console.mjs
// Signs in (a wrong token first), creates a user and a key, calls the API with the key, waits for the
// usage to show on the Overview and the Usage page, exports CSV, revokes the key, checks that names are
// shown as text, and looks at a phone-sized viewport. Any page error, console error, CSP violation,
// JavaScript dialog or unexpected HTTP error fails the run. Prints one JSON line; exit 0 only if all passed.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const WAIT_MS = 15_000;
const RUN_LIMIT_MS = 90_000;  // below the 100 s the ctest wrapper allows, so the failure is reported
const TOKEN_KEY = 'lagoon.adminToken';
const XSS = '<img src=x onerror=alert(1)>';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.log(JSON.stringify({ ok: false, error: `${name} is not set` }));
    process.exit(1);
  }
  return value;
}

const BASE = required('LAGOON_URL').replace(/\/+$/, '');
const ADMIN_TOKEN = required('LAGOON_ADMIN_TOKEN');
const MODEL = required('LAGOON_MODEL');
const SHOTS = process.env.CONSOLE_SCREENSHOTS || path.join(tmpdir(), 'lagoon-console-screenshots');
mkdirSync(SHOTS, { recursive: true });

const suffix = randomBytes(4).toString('hex');
const USER_NAME = `console-user-${suffix}`;
const XSS_USER = `${XSS}-${suffix}`;
const KEY_NAME = 'console key';

const problems = []; // collected from the page; any one fails the run at the end
const screenshots = [];
const facts = {};
let step = 'start';
let allowedStatus = null; // the one HTTP error status the current step expects from the admin API
let browser = null;
let page = null;

class CheckFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new CheckFailed(`${step}: ${message}`);
}

// The whole page, or with `viewport` only what a 1280×800 window shows (for docs/).
async function shot(name, { viewport = false } = {}) {
  const file = path.join(SHOTS, name);
  await page.screenshot({ path: file, fullPage: !viewport });
  screenshots.push(file);
}

const visible = (selector) => page.waitForSelector(selector, { visible: true, timeout: WAIT_MS });
const hidden = (selector) => page.waitForSelector(selector, { hidden: true, timeout: WAIT_MS });
const waitFor = (fn, ...args) => page.waitForFunction(fn, { timeout: WAIT_MS, polling: 100 }, ...args);

// --- What the page reports about itself.

function watch() {
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // Chromium logs every HTTP error as "Failed to load resource"; those are judged by status below.
    if (msg.text().startsWith('Failed to load resource')) return;
    problems.push(`console error: ${msg.text()}`);
  });
  page.on('dialog', async (dialog) => {
    problems.push(`unexpected ${dialog.type()}(): ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('response', (response) => {
    const status = response.status();
    if (status < 400) return;
    const url = response.url();
    if (url.includes('/admin/v1/') && status === allowedStatus) return;
    problems.push(`HTTP ${status} for ${response.request().method()} ${url}`);
  });
  page.on('requestfailed', (request) => {
    const url = request.url();
    if (!url.startsWith('http')) return; // blob: of the CSV download
    problems.push(`request failed: ${url} (${request.failure()?.errorText})`);
  });
}

// --- Helpers on the console's own markup.

async function rowId(tbody, testid, text, attribute) {
  return page.$$eval(`${tbody} tr`, (rows, { testid, text, attribute }) => {
    const row = rows.find((r) => r.querySelector(`[data-testid="${testid}"]`)?.textContent === text);
    return row ? row.getAttribute(attribute) : null;
  }, { testid, text, attribute });
}

async function waitForRow(tbody, testid, text, attribute) {
  await waitFor((tbody, testid, text) => [...document.querySelectorAll(`${tbody} tr`)]
    .some((r) => r.querySelector(`[data-testid="${testid}"]`)?.textContent === text), tbody, testid, text);
  return rowId(tbody, testid, text, attribute);
}

async function goTo(hash, section) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await visible(section);
}

async function tableLoaded(tbody) {
  await waitFor((tbody) => {
    const body = document.querySelector(tbody);
    return body && !body.hasAttribute('aria-busy') && body.rows.length > 0;
  }, tbody);
}

async function typeInto(selector, text) {
  await page.$eval(selector, (el) => { el.value = ''; });
  await page.type(selector, text);
}

async function pageScrollWidth() {
  return page.evaluate(() => document.documentElement.scrollWidth);
}

function chat(key) {
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hello from the console test' }] });
  const out = execFileSync('curl', [
    '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10',
    '-H', `Authorization: Bearer ${key}`, '-H', 'Content-Type: application/json', '-d', body,
    `${BASE}/api/v1/chat/completions`,
  ], { encoding: 'utf8', timeout: WAIT_MS });
  return Number(out.trim());
}

// --- The steps.

async function signIn() {
  step = 'open the console';
  const response = await page.goto(`${BASE}/console/`, { waitUntil: 'load', timeout: WAIT_MS });
  check(response.status() === 200, `GET /console/ answered ${response.status()}`);
  const headers = response.headers();
  check((headers['content-security-policy'] ?? '').includes("default-src 'self'"), `CSP header: ${headers['content-security-policy']}`);
  check((headers['x-frame-options'] ?? '').toUpperCase() === 'DENY', `X-Frame-Options: ${headers['x-frame-options']}`);
  check(headers['referrer-policy'] === 'no-referrer', `Referrer-Policy: ${headers['referrer-policy']}`);
  await visible('#signin-form');

  step = 'sign in with a wrong token (keyboard)';
  check(await page.evaluate(() => document.activeElement?.id === 'token'), 'the token field does not have focus');
  allowedStatus = 401;
  await page.keyboard.type(`wrong-token-${suffix}`);
  await page.keyboard.press('Enter');
  await visible('[data-testid="signin-error"]');
  const refusal = await page.$eval('[data-testid="signin-error"]', (el) => el.textContent);
  check(/refused/i.test(refusal), `sign-in error reads "${refusal}"`);
  allowedStatus = null;
  check(await page.evaluate((k) => sessionStorage.getItem(k) === null, TOKEN_KEY), 'a refused token was kept');

  step = 'sign in with the right token (keyboard)';
  await typeInto('[data-testid="token-input"]', ADMIN_TOKEN);
  await page.keyboard.press('Enter');
  await visible('#page-overview');
  check(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY) === ADMIN_TOKEN, 'the token is not in sessionStorage');
  check(await page.evaluate(() => document.cookie === ''), 'the console set a cookie');

  step = 'Tab reaches the navigation, with a visible focus ring';
  await page.evaluate(() => document.activeElement?.blur());
  let inNav = false;
  for (let i = 0; i < 10 && !inNav; i++) {
    await page.keyboard.press('Tab');
    inNav = await page.evaluate(() => !!document.activeElement?.closest('nav'));
  }
  check(inNav, 'ten Tabs did not reach the navigation');
  const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(ring !== 'none', 'the focused link has no outline');

  step = 'Overview shows health and spend';
  await waitFor(() => document.querySelector('[data-testid="overview-updated"]')?.textContent.startsWith('Updated'));
  await waitFor(() => ['redis', 'postgres'].every((d) => document.querySelector(`[data-testid="${d}"]`)?.textContent === 'up'));
  await shot('overview.png');
}

async function createUsers() {
  step = 'Users: create a user';
  await page.click('#nav a[href="#users"]');
  await visible('#page-users');
  await tableLoaded('#users-body');
  for (const name of [USER_NAME, XSS_USER]) {
    await page.click('[data-testid="user-create"]');
    await visible('[data-testid="user-dialog"]');
    await typeInto('[data-testid="user-form-name"]', name);
    await page.keyboard.press('Enter');
    await hidden('[data-testid="user-dialog"]');
    await waitForRow('#users-body', 'user-name', name, 'data-user-id');
  }
  await goTo('#users', '#page-users');
  facts.userId = await waitForRow('#users-body', 'user-name', USER_NAME, 'data-user-id');
  check(facts.userId, 'the new user has no row');

  step = 'Users: edit the budget';
  await page.click(`#users-body tr[data-user-id="${facts.userId}"] button[data-action="edit"]`);
  await visible('[data-testid="user-dialog"]');
  await typeInto('#user-form input[name="budget_usd"]', '10');
  await page.select('#user-form select[name="budget_period"]', 'monthly');
  await page.click('[data-testid="user-form-submit"]');
  await hidden('[data-testid="user-dialog"]');
  await waitFor((id) => document.querySelector(`#users-body tr[data-user-id="${id}"]`)?.textContent.includes('$10.00 monthly'),
    facts.userId);

  step = 'Users: a name is shown as text';
  await waitForRow('#users-body', 'user-name', XSS_USER, 'data-user-id');
  await shot('users.png');
}

async function readSecretAndClose() {
  await visible('[data-testid="secret-dialog"]');
  const key = await page.$eval('[data-testid="secret-key"]', (el) => el.textContent);
  check(key.startsWith('sk-'), `the shown key starts "${key.slice(0, 6)}"`);
  const curl = await page.$eval('[data-testid="secret-curl"]', (el) => el.textContent);
  check(curl.includes(key) && curl.includes('/api/v1/chat/completions'), 'the curl example lacks the key or the path');
  check(/not be shown again/.test(await page.$eval('[data-testid="secret-dialog"]', (el) => el.textContent)),
    'no "will not be shown again" note');
  await page.click('[data-testid="secret-copy"]');
  await waitFor(() => document.querySelector('[data-testid="secret-copy-status"]')?.textContent !== '');
  await page.click('[data-testid="secret-done"]');
  await hidden('[data-testid="secret-dialog"]');
  return key;
}

async function keyIsForgotten(key) {
  const found = await page.evaluate((key) => {
    const stores = [sessionStorage, localStorage].flatMap((s) => Object.keys(s).map((k) => s.getItem(k)));
    const inputs = [...document.querySelectorAll('input, textarea')].map((el) => el.value);
    return {
      dom: document.documentElement.outerHTML.includes(key),
      storage: stores.some((v) => v.includes(key)),
      inputs: inputs.some((v) => v.includes(key)),
    };
  }, key);
  check(!found.dom, 'the key is still in the DOM after the dialog closed');
  check(!found.storage, 'the key is in web storage');
  check(!found.inputs, 'the key is in a form field');
}

async function createKey() {
  step = 'Keys: open the user\'s keys';
  await page.click(`#users-body tr[data-user-id="${facts.userId}"] button[data-action="keys"]`);
  await visible('#page-keys');
  await waitFor((id) => location.hash === `#keys?user=${id}`, facts.userId);
  await tableLoaded('#keys-body');

  step = 'Keys: Escape closes the create dialog';
  await page.click('[data-testid="key-create"]');
  await visible('[data-testid="key-dialog"]');
  await page.keyboard.press('Escape');
  await hidden('[data-testid="key-dialog"]');

  step = 'Keys: create a key';
  await page.click('[data-testid="key-create"]');
  await visible('[data-testid="key-dialog"]');
  const user = await page.$eval('[data-testid="key-form-user"]', (el) => el.value);
  check(user === facts.userId, `the user field holds "${user}", not the filtered user ${facts.userId}`);
  await typeInto('[data-testid="key-form-name"]', KEY_NAME);
  await typeInto('[data-testid="key-form-rpm"]', '600');
  await typeInto('#key-form textarea[name="tags"]', 'suite=console');
  await page.click('[data-testid="key-form-submit"]');
  const key = await readSecretAndClose();
  facts.keyId = await waitForRow('#keys-body', 'key-name', KEY_NAME, 'data-key-id');
  check(facts.keyId, 'the new key has no row');
  const cells = await page.$eval(`#keys-body tr[data-key-id="${facts.keyId}"]`, (tr) => tr.textContent);
  check(cells.includes('600') && cells.includes('suite=console'), `the key's row lacks its rpm or tag: ${cells}`);
  await keyIsForgotten(key);

  step = 'Keys: edit the limit and the budget';
  await page.click(`#keys-body tr[data-key-id="${facts.keyId}"] button[data-action="edit"]`);
  await visible('[data-testid="key-dialog"]');
  await typeInto('[data-testid="key-form-rpm"]', '900');
  await typeInto('#key-form input[name="budget_usd"]', '5');
  await page.select('#key-form select[name="budget_period"]', 'daily');
  await page.click('[data-testid="key-form-submit"]');
  await hidden('[data-testid="key-dialog"]');
  await waitFor((id) => {
    const text = document.querySelector(`#keys-body tr[data-key-id="${id}"]`)?.textContent ?? '';
    return text.includes('900 / default') && text.includes('$5.00 daily');
  }, facts.keyId);
  await shot('keys.png');
  return key;
}

async function useKey(key) {
  step = 'the key works with curl';
  const statuses = [chat(key), chat(key), chat(key)];
  check(statuses.every((s) => s === 200), `chat completions answered ${statuses.join(', ')}`);
}

async function spendShows() {
  step = 'Overview: requests and spend today';
  await page.click('#nav a[href="#overview"]');
  await visible('#page-overview');
  // Usage rows reach Postgres through the background flusher; the page refreshes every 5 s.
  await waitFor(() => {
    const requests = Number(document.querySelector('[data-testid="requests-today"]')?.dataset.value || 0);
    const cost = document.querySelector('[data-testid="spend-today"]')?.dataset.value || '0';
    return requests >= 3 && /[1-9]/.test(cost);
  });
  facts.spendToday = await page.$eval('[data-testid="spend-today"]', (el) => el.textContent);
  await shot('overview-spend.png');
  await shot('overview-window.png', { viewport: true });

  step = 'Usage: last 24 h, hourly, by key';
  await page.click('#nav a[href="#usage"]');
  await visible('#page-usage');
  await page.select('[data-testid="usage-range"]', '24h');
  await page.select('[data-testid="usage-by"]', 'key');
  await waitFor(() => location.hash.includes('by=key'));
  await waitFor((name) => {
    const requests = Number(document.querySelector('[data-testid="usage-total-requests"]')?.dataset.value || 0);
    const total = Number(document.querySelector('[data-testid="usage-grand-total"]')?.dataset.value || 0);
    const heads = [...document.querySelectorAll('#usage-head th')].map((th) => th.textContent);
    return requests >= 3 && total >= 3 && heads.includes(name);
  }, KEY_NAME);
  check(/[1-9]/.test(await page.$eval('[data-testid="usage-total-cost"]', (el) => el.dataset.value)), 'the usage cost is zero');
  const drawn = await page.evaluate(() => {
    const chart = window.Chart?.getChart(document.querySelector('[data-testid="usage-chart"]'));
    return chart ? chart.data.datasets.map((d) => d.label) : null;
  });
  check(drawn?.includes(KEY_NAME), `the chart's datasets are ${JSON.stringify(drawn)}`);

  step = 'Usage: cost metric';
  await page.select('[data-testid="usage-metric"]', 'cost');
  await waitFor(() => location.hash.includes('metric=cost') &&
    /[1-9]/.test(document.querySelector('[data-testid="usage-grand-total"]')?.dataset.value ?? ''));
  await shot('usage.png');
  await shot('usage-window.png', { viewport: true });
}

async function exportCsv() {
  step = 'Usage: export CSV';
  const session = await browser.target().createCDPSession();
  // A directory of its own: Chromium overwrites a file of the same name, which an earlier run left.
  const downloads = mkdtempSync(path.join(SHOTS, 'download-'));
  await session.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
  const before = new Set(readdirSync(downloads));
  const answer = page.waitForResponse((r) => r.url().includes('/admin/v1/usage/series') && r.url().includes('format=csv'),
    { timeout: WAIT_MS });
  await page.click('[data-testid="usage-export"]');
  const response = await answer;
  check(response.status() === 200, `the CSV answered ${response.status()}`);
  check(!response.url().includes(ADMIN_TOKEN), 'the token is in the CSV URL');
  // The browser writes the file itself; wait (bounded) until it is there and complete.
  const deadline = Date.now() + WAIT_MS;
  let file = null;
  while (!file && Date.now() < deadline) {
    file = readdirSync(downloads).find((f) => !before.has(f) && f.endsWith('.csv') && statSync(path.join(downloads, f)).size > 0);
    if (!file) await new Promise((r) => setTimeout(r, 100));
  }
  check(file, 'no CSV file was downloaded');
  // Chromium does not keep the body of a fetch the page turned into a Blob, so the file is what is read.
  const text = readFileSync(path.join(downloads, file), 'utf8');
  check(text.startsWith('time,series,label,requests,'), `the CSV starts "${text.slice(0, 40)}"`);
  check(text.includes(KEY_NAME), 'the CSV has no row for the key');
  facts.csv = file;
}

async function revoke(key) {
  step = 'Keys: revoke with confirmation';
  await goTo(`#keys?user=${facts.userId}`, '#page-keys');
  await waitForRow('#keys-body', 'key-name', KEY_NAME, 'data-key-id');
  await page.click(`#keys-body tr[data-key-id="${facts.keyId}"] button[data-action="revoke"]`);
  await visible('[data-testid="confirm-dialog"]');
  await page.click('[data-testid="confirm-ok"]');
  await hidden('[data-testid="confirm-dialog"]');
  await waitFor((id) => document.querySelector(`#keys-body tr[data-key-id="${id}"] [data-testid="status"]`)?.textContent === 'revoked',
    facts.keyId);

  step = 'a revoked key is refused';
  // Revocation reaches every instance's cache through Redis; give it the same bounded wait as the page.
  const deadline = Date.now() + WAIT_MS;
  let status = chat(key);
  facts.revokeAttempts = 1;
  while (status !== 401 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    status = chat(key);
    facts.revokeAttempts++;
  }
  check(status === 401, `the revoked key got ${status}`);
}

async function namesAreText() {
  step = 'Keys: a key named like markup is shown as text';
  await page.click('[data-testid="key-create"]');
  await visible('[data-testid="key-dialog"]');
  await typeInto('[data-testid="key-form-name"]', XSS);
  await page.click('[data-testid="key-form-submit"]');
  const key = await readSecretAndClose();
  await waitForRow('#keys-body', 'key-name', XSS, 'data-key-id');
  await keyIsForgotten(key);
  const images = await page.evaluate(() => [...document.querySelectorAll('img')].filter((i) => i.getAttribute('src') === 'x').length);
  check(images === 0, `${images} <img src=x> elements are in the page`);
}

async function phone() {
  step = 'phone width: no horizontal page scroll';
  await page.setViewport({ width: 390, height: 844 });
  for (const [hash, section, table] of [['#overview', '#page-overview', null], ['#users', '#page-users', '#users-body'],
    ['#usage', '#page-usage', '#usage-body'], [`#keys?user=${facts.userId}`, '#page-keys', '#keys-body']]) {
    await goTo(hash, section);
    if (table) await tableLoaded(table);
    const width = await pageScrollWidth();
    check(width <= 391, `${hash} is ${width}px wide at 390px`);
  }
  await shot('keys-phone.png');
  await page.setViewport({ width: 1280, height: 800 });
}

async function signOut() {
  step = 'sign out';
  await page.click('[data-testid="sign-out"]');
  await visible('#signin-form');
  check(await page.evaluate(() => sessionStorage.length === 0), 'sessionStorage is not empty after signing out');
  check(await page.$eval('#nav', (nav) => nav.hidden), 'the navigation is still shown');
}

async function main() {
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: WAIT_MS,
    protocolTimeout: WAIT_MS,
    // No network but loopback here: without these Chromium keeps trying to reach Google's services.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  page = await browser.newPage();
  page.setDefaultTimeout(WAIT_MS);
  await page.setViewport({ width: 1280, height: 800 });
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline code'} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  watch();

  await signIn();
  await createUsers();
  const key = await createKey();
  await useKey(key);
  await spendShows();
  await exportCsv();
  await revoke(key);
  await namesAreText();
  await phone();
  await signOut();

  step = 'the page reported no errors';
  check(problems.length === 0, problems.join('; '));
}

const limit = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, step, error: `the run took over ${RUN_LIMIT_MS / 1000} s`, problems }));
  process.exit(1);
}, RUN_LIMIT_MS);

let ok = false;
try {
  await main();
  ok = true;
  console.log(JSON.stringify({ ok: true, screenshots, ...facts }));
} catch (err) {
  const failure = path.join(SHOTS, 'failure.png');
  if (page) await page.screenshot({ path: failure, fullPage: true }).then(() => screenshots.push(failure)).catch(() => {});
  console.log(JSON.stringify({ ok: false, step, error: err instanceof CheckFailed ? err.message
    : `${step}: ${err.name === 'TimeoutError' ? err.message : err.stack ?? err}`, problems, screenshots }));
} finally {
  clearTimeout(limit);
  await browser?.close().catch(() => {});
}
process.exit(ok ? 0 : 1);
