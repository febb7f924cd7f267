// Concerts (seeds 001 §4, 003): queue, admission, a seat, a hold, the wallet, the QR
// code; two fans racing for one seat; the seat map on a phone; the gate; the map kept live
// by the socket, and the best seats picked by the server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { base, goOffline, launch, look, noProblems, open, register, uniqueEmail } from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

// Signs a new fan up and brings them through the waiting room to the seat map.
async function admitted(locale, tag) {
  const { context, page } = await open(browser, { locale });
  await register(page, { name: tag, email: uniqueEmail(tag) });
  await page.goto(`${base}/events`);
  await page.locator('#events li a').first().waitFor();
  await look(page, `${locale}-events-${tag}`);
  await page.locator('#events li a').first().click();
  await page.getByRole('button', { name: /待機列に並ぶ|Join the queue/ }).click();
  // The waiting room moves on by itself once the scheduler admits the fan.
  await page.locator('#seats-box').waitFor({ state: 'visible', timeout: 30000 });
  await page.locator('button.seat.available').first().waitFor();
  return { context, page };
}

async function availableSeat(page, nth) {
  return page.locator('button.seat.available').nth(nth);
}

for (const locale of ['ja', 'en']) {
  test(`queue, pick a seat, hold, pay from the wallet, see the QR code (${locale})`, async () => {
    const { context, page } = await admitted(locale, `fan-${locale}`);
    assert.match(await page.locator('#access-left').innerText(), /^\d+:\d\d$/);
    await look(page, `${locale}-seat-map`);
    const seat = await availableSeat(page, locale === 'ja' ? 3 : 7);
    await seat.click();
    assert.equal(await seat.getAttribute('aria-pressed'), 'true');
    await page.getByRole('button', { name: /この席を確保する|Hold these seats/ }).click();
    await page.locator('#hold-box').waitFor({ state: 'visible' });
    assert.match(await page.locator('#hold-left').innerText(), /^\d+:\d\d$/);
    await look(page, `${locale}-hold`);

    await page.getByRole('button', { name: /チャージする|Add to the wallet/ }).click();
    await page.locator('#wallet-balance', { hasText: '¥10,000' }).waitFor();
    await page.getByRole('button', { name: /ウォレットで支払う|Pay from the wallet/ }).click();
    await page.waitForURL(`${base}/tickets?new=1`);
    const ticket = page.locator('#tickets li.ticket').first();
    await ticket.waitFor();
    const qr = ticket.locator('img');
    await qr.waitFor();
    assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 0), 'the QR code is drawn');
    assert.match(await ticket.innerText(), locale === 'ja' ? /有効/ : /Valid/);
    await look(page, `${locale}-tickets`);
    noProblems(page);
    await context.close();
  });
}

test('two fans race for one seat: one holds it, the other is told it was just taken', async () => {
  const a = await admitted('ja', 'racer-a');
  const b = await admitted('ja', 'racer-b');
  // Both pick the same seat, then both ask at once.
  const id = await (await availableSeat(a.page, 20)).getAttribute('data-seat');
  for (const { page } of [a, b]) await page.locator(`button.seat[data-seat="${id}"]`).click();
  await Promise.all([a, b].map(({ page }) => page.locator('#hold').click()));
  const outcome = async ({ page }) => {
    const held = page.locator('#hold-box');
    const taken = page.locator('#seats-error', { hasText: 'この席はたった今ほかの方に取られました。' });
    await Promise.race([held.waitFor({ state: 'visible' }), taken.waitFor()]);
    return (await held.isVisible()) ? 'held' : 'taken';
  };
  const outcomes = [await outcome(a), await outcome(b)].sort();
  assert.deepEqual(outcomes, ['held', 'taken']);
  const loser = (await a.page.locator('#hold-box').isVisible()) ? b : a;
  await look(loser.page, 'ja-seat-just-taken');
  for (const { context, page } of [a, b]) {
    noProblems(page);
    await context.close();
  }
});

test('the seat map on a phone, and a lost connection', async () => {
  const { context, page } = await open(browser, { locale: 'ja', viewport: { width: 375, height: 740 } });
  await register(page, { name: 'phone', email: uniqueEmail('phone') });
  await page.goto(`${base}/events`);
  await page.locator('#events li a').first().click();
  await page.getByRole('button', { name: '待機列に並ぶ' }).click();
  await page.locator('button.seat.available').first().waitFor({ timeout: 30000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'only the seat map scrolls sideways, not the page');
  await look(page, 'ja-phone-seat-map');
  // The map refreshes while open: with the network gone the page says so, and it
  // carries on by itself once the network is back.
  const back = await goOffline(page);
  const banner = page.locator('#connection');
  await banner.waitFor({ state: 'visible', timeout: 10000 });
  assert.match(await banner.innerText(), /接続が切れました/);
  await look(page, 'ja-phone-offline');
  await back();
  await banner.waitFor({ state: 'hidden', timeout: 20000 });
  noProblems(page);
  await context.close();
});

test('the seat map follows other fans live, and the best seats are picked for you', async () => {
  const a = await admitted('en', 'live-a');
  const b = await admitted('en', 'live-b');
  await a.page.locator('#seat-map[data-live="true"]').waitFor({ timeout: 15000 });
  const seat = await availableSeat(b.page, 30);
  const id = await seat.getAttribute('data-seat');
  await seat.click();
  await b.page.getByRole('button', { name: 'Hold these seats' }).click();
  await b.page.locator('#hold-box').waitFor({ state: 'visible' });
  // Fan A's map hears of the hold over the socket, without reloading.
  await a.page.locator(`button.seat.held[data-seat="${id}"]`).waitFor({ timeout: 10000 });
  await look(a.page, 'en-seat-map-live');

  await a.page.locator('#best-quantity').selectOption('3');
  await a.page.getByRole('button', { name: 'Hold the best seats together' }).click();
  await a.page.locator('#hold-box').waitFor({ state: 'visible' });
  assert.match(await a.page.locator('#hold-seats').innerText(), /3/);
  await look(a.page, 'en-best-hold');
  for (const { context, page } of [a, b]) {
    noProblems(page);
    await context.close();
  }
});
