// What every journey shares: Debian's Chromium through playwright-core, a page that fails
// the test on any console error, uncaught exception or failed request, screenshots, and
// an axe-core check of each page.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axePath = require.resolve('axe-core/axe.min.js');
export const base = process.env.MATSURI_URL || 'http://127.0.0.1:8080';
const shots = process.env.MATSURI_SCREENSHOTS || 'screenshots';
mkdirSync(shots, { recursive: true });

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

// A browser context in `locale` (ja or en) and a page watched for problems.
export async function open(browser, { locale = 'ja', viewport } = {}) {
  const context = await browser.newContext({
    locale: locale === 'ja' ? 'ja-JP' : 'en-GB',
    extraHTTPHeaders: { 'Accept-Language': locale },
    viewport: viewport || { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error' || page.offline) return;
    // The browser logs every API refusal the page handles (a declined card, a seat just
    // taken) as a failed load; those are answers, not faults.
    const refusal = /status of 4\d\d/.test(message.text()) && message.location().url.includes('/api/v1/');
    if (!refusal) problems.push(`console: ${message.text()}`);
  });
  page.on('requestfailed', (request) => {
    // A navigation away cancels what the old page still had in flight; a journey that
    // takes the network away (page.offline) expects what fails meanwhile.
    if (request.failure()?.errorText !== 'net::ERR_ABORTED' && !page.offline) {
      problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 500) problems.push(`server error: ${response.status()} ${response.url()}`);
  });
  page.problems = problems;
  return { context, page };
}

// Takes the network away until `back` is called.
export async function goOffline(page) {
  page.offline = true;
  await page.context().setOffline(true);
  return async () => {
    await page.context().setOffline(false);
    page.offline = false;
  };
}

export function noProblems(page) {
  assert.deepEqual(page.problems, [], 'the page had no console errors, failed requests or exceptions');
}

// Writes a screenshot and checks the page with axe-core: no serious or critical violation.
export async function look(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  // evaluate runs outside the page's Content-Security-Policy.
  await page.evaluate(await import('node:fs').then((fs) => fs.readFileSync(axePath, 'utf8')));
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const report = await axe.run(document, { resultTypes: ['violations'] });
    return report.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(result, [], `${name}: axe-core finds no serious violation`);
}

let counter = 0;
let registered = false;
export function uniqueEmail(tag) {
  counter += 1;
  return `${tag}-${Date.now()}-${process.pid}-${counter}@example.com`;
}

export async function register(page, { name, email, password = 'correct horse battery' }) {
  await page.goto(`${base}/register`);
  await page.getByLabel(/お名前|Name/).fill(name);
  await page.getByLabel(/メールアドレス|Email/).fill(email);
  await page.getByLabel(/パスワード|Password/).fill(password);
  if (!registered) {
    registered = true;
    await look(page, 'register');
  }
  await page.getByRole('button', { name: /登録する|Sign up/ }).click();
  await page.waitForURL(`${base}/`);
}

// The demo users `serve --demo` creates.
export const demo = {
  fan: { email: 'fan@matsuri.localhost', password: 'matsuri-fan' },
  staff: { email: 'staff@matsuri.localhost', password: 'matsuri-staff' },
};

// Signs `who` in with the form and waits for `next`. With `redirected`, opens `next`
// first and expects a private page to send the visitor to sign in, and back.
export async function signIn(page, who, next, { redirected = false } = {}) {
  if (redirected) {
    await page.goto(`${base}${next}`);
    await page.waitForURL(`${base}/login?next=${next}`);
  } else {
    await page.goto(`${base}/login?next=${next}`);
  }
  await page.getByLabel(/メールアドレス|Email/).fill(who.email);
  await page.getByLabel(/パスワード|Password/).fill(who.password);
  await page.getByRole('button', { name: /ログイン|Sign in/ }).click();
  await page.waitForURL(`${base}${next}`);
}

// Calls the API straight from the test, as a bearer of `token` (or nobody): set-up and
// checks that no page shows.
export async function call(method, path, token, body) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

// Calls the API from the page as its scripts do: the session cookie and the page's CSRF
// token (the session token itself is out of the script's reach).
export function apiFrom(page, method, path, body) {
  return page.evaluate(
    async ([method, path, body]) => {
      const csrf = document.querySelector('meta[name="csrf-token"]').content;
      const res = await fetch(`/api/v1${path}`, {
        method,
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json().catch(() => null) };
    },
    [method, path, body],
  );
}
