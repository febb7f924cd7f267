// The staff pages: a dead letter retried once the mail server is back, the other pages,
// and the gate.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { base, call, demo, launch, look, noProblems, open, signIn, uniqueEmail } from '../lib.mjs';
import { startSmtp } from '../smtp.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('staff retries a dead letter once the mail server is back, and it leaves the list', async () => {
  // An order whose mails cannot go out: the mail server is down, so the notification
  // group's event dies (one attempt in this run).
  const email = uniqueEmail('mailless');
  const signup = await call('POST', '/auth/register', null, { email, password: 'long enough', name: 'Mailless' });
  const token = signup.body.token;
  const products = await call('GET', '/products');
  const product = products.body.items[0].id;
  const order = await call('POST', '/orders', token, {
    shipping_address: { name: 'M', postal_code: '100-0001', address: 'Tokyo' },
    payment: { method: 'card', card_token: 'tok_visa' },
    items: [{ product_id: product, quantity: 1 }],
  });
  assert.equal(order.status, 201);

  const { context, page } = await open(browser, { locale: 'en' });
  await signIn(page, demo.staff, '/staff/consumers');
  // The payload under each letter names its order.
  const letter = page.locator('li.dead-letter', { hasText: order.body.number }).first();
  for (let i = 0; i < 30 && !(await letter.isVisible()); i += 1) {
    await page.waitForTimeout(500);
    await page.reload();
  }
  await letter.waitFor();
  const id = await letter.getAttribute('data-id');
  await look(page, 'en-staff-consumers');

  const smtp = await startSmtp(Number(process.env.MATSURI_SMTP_PORT));
  try {
    await letter.getByRole('button', { name: 'Retry' }).click();
    await page.locator(`li.dead-letter[data-id="${id}"]`).waitFor({ state: 'detached' });
    // The retried event now goes through: the customer's and the shop's mails arrive.
    for (let i = 0; i < 40 && smtp.received.length === 0; i += 1) await page.waitForTimeout(250);
    assert.ok(smtp.received.length > 0, 'the mail server received the order mails');
    const sent = page.locator('#mails tbody tr', { hasText: email });
    for (let i = 0; i < 20 && !(await sent.isVisible()); i += 1) {
      await page.goto(`${base}/staff/mails`);
      await page.locator('#mails').waitFor();
      await page.waitForTimeout(250);
    }
    await sent.first().waitFor();
    await look(page, 'en-staff-mails');
  } finally {
    smtp.close();
  }
  // A new concert with one section, from the staff page to the public list.
  await page.goto(`${base}/staff/events`);
  const name = `Budokan encore ${Date.now()}`;
  await page.getByLabel('Name', { exact: true }).first().fill(name);
  await page.getByLabel('Starts at').fill('2027-03-01T18:30');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.locator('#staff-done', { hasText: 'Saved.' }).waitFor();
  await page.locator('#staff-events', { hasText: name }).waitFor();
  assert.match(await page.locator('#staff-events').innerText(), /50 seats/);
  for (const view of ['products', 'events', 'invoices', 'gate']) {
    await page.goto(`${base}/staff/${view}`);
    await page.waitForLoadState('networkidle');
    await look(page, `en-staff-${view}`);
  }
  noProblems(page);
  await context.close();
});

test('the gate verifies a ticket once, then says it was used', async () => {
  const email = uniqueEmail('gate');
  const fan = (await call('POST', '/auth/register', null, { email, password: 'long enough', name: 'Gate' })).body.token;
  const event = (await call('GET', '/events')).body.items[0].id;
  const queue = (await call('POST', `/events/${event}/queue`, fan)).body.queue_token;
  let access;
  for (let i = 0; i < 30 && !access; i += 1) {
    const res = await fetch(`${base}/api/v1/events/${event}/queue/status`, { headers: { 'x-queue-token': queue, prefer: 'wait=5' } });
    access = (await res.json()).access_token;
  }
  const seats = (await call('GET', `/events/${event}/seats?status=available`)).body.items;
  const hold = await fetch(`${base}/api/v1/events/${event}/reservations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${fan}`, 'x-access-token': access },
    body: JSON.stringify({ seat_ids: [seats[seats.length - 1].id] }),
  }).then((r) => r.json());
  const paid = await call('POST', `/reservations/${hold.reservation_id}/payment`, fan, { method: 'card', card_token: 'tok_visa' });
  assert.equal(paid.status, 201);
  const payload = paid.body.tickets[0].qr_payload;

  const { context, page } = await open(browser, { locale: 'ja' });
  await signIn(page, demo.staff, '/staff/consumers');
  await page.goto(`${base}/staff/gate`);
  await page.getByLabel('QRコードの内容').fill(payload);
  await page.getByRole('button', { name: '確認して入場済みにする' }).click();
  await page.locator('#gate-result', { hasText: '有効です' }).waitFor();
  await look(page, 'ja-staff-gate');
  await page.getByRole('button', { name: '確認して入場済みにする' }).click();
  await page.locator('#gate-result', { hasText: '入場済みのチケットです' }).waitFor();
  noProblems(page);
  await context.close();
});
