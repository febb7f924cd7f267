// The storefront (seed 000 §1): register, buy two items, see the order; a declined card;
// an order cancelled before it ships.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { base, launch, look, noProblems, open, register, uniqueEmail } from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function addToCart(page, productName, expectedBadge) {
  await page.goto(`${base}/`);
  await page.locator('#products').getByRole('link', { name: productName, exact: true }).click();
  await page.getByRole('button', { name: /カートに入れる|Add to cart/ }).click();
  await page.getByRole('status').filter({ hasText: /カートに追加しました|Added to your cart/ }).waitFor();
  // The badge counts without a reload.
  await assert.doesNotReject(page.locator('#cart-badge', { hasText: String(expectedBadge) }).waitFor());
}

for (const locale of ['ja', 'en']) {
  test(`register and buy two items (${locale})`, async () => {
    const { context, page } = await open(browser, { locale });
    await register(page, { name: locale === 'ja' ? '花子' : 'Hanako', email: uniqueEmail(`buyer-${locale}`) });
    await page.locator('#products li').first().waitFor();
    await look(page, `${locale}-home`);
    assert.match(await page.locator('#products').innerText(), /¥3,500/);

    await addToCart(page, 'Tour T-shirt (M)', 1);
    await look(page, `${locale}-product`);
    await addToCart(page, 'Penlight', 2);

    await page.goto(`${base}/cart`);
    await page.locator('#cart-total').waitFor();
    assert.equal(await page.locator('#cart-total').innerText(), '¥6,300');
    await look(page, `${locale}-cart`);

    await page.getByRole('link', { name: /レジに進む|Go to checkout/ }).click();
    await page.getByLabel(locale === 'ja' ? 'お名前' : 'Name', { exact: true }).fill('Hanako Yamada');
    await page.getByLabel(locale === 'ja' ? '郵便番号' : 'Postal code').fill('150-0001');
    await page.getByLabel(locale === 'ja' ? '住所' : 'Address').fill('Jingumae, Shibuya, Tokyo');
    await look(page, `${locale}-checkout`);
    await page.getByRole('button', { name: /注文を確定する|Place the order/ }).click();

    await page.waitForURL(/\/orders\/\d{8}-\d+\?thanks=1$/);
    const thanks = page.locator('#thanks');
    await thanks.waitFor();
    assert.equal(
      await thanks.innerText(),
      locale === 'ja' ? 'ご注文ありがとうございました' : 'Thank you for your order',
    );
    const number = await page.locator('#order-number').innerText();
    await look(page, `${locale}-thanks`);
    await page.locator('#cart-badge', { hasText: '0' }).waitFor();

    await page.goto(`${base}/orders`);
    const listed = page.getByRole('link', { name: number });
    await listed.waitFor();
    assert.match(await page.locator('#orders').innerText(), locale === 'ja' ? /支払い済み/ : /Paid/);
    await look(page, `${locale}-orders`);
    noProblems(page);
    await context.close();
  });
}

test('a declined card shows its message and keeps the cart', async () => {
  const { context, page } = await open(browser, { locale: 'ja' });
  await register(page, { name: '太郎', email: uniqueEmail('declined') });
  await addToCart(page, 'Muffler towel', 1);
  await page.goto(`${base}/checkout`);
  await page.getByLabel('お名前', { exact: true }).fill('山田 太郎');
  await page.getByLabel('郵便番号').fill('150-0001');
  await page.getByLabel('住所').fill('東京都渋谷区');
  await page.getByLabel(/tok_declined/).check();
  await page.getByRole('button', { name: '注文を確定する' }).click();
  const error = page.locator('#checkout-error');
  await error.filter({ hasText: 'カードが承認されませんでした' }).waitFor();
  await look(page, 'ja-checkout-declined');
  assert.equal(page.url(), `${base}/checkout`);
  await page.goto(`${base}/cart`);
  await page.locator('#cart-total', { hasText: '¥2,000' }).waitFor();
  await page.locator('#cart-badge', { hasText: '1' }).waitFor();
  noProblems(page);
  await context.close();
});

test('a customer cancels an order before it ships: the units go back on sale and the payment is refunded', async () => {
  const { context, page } = await open(browser, { locale: 'en' });
  await register(page, { name: 'Kenji', email: uniqueEmail('cancel') });
  await page.goto(`${base}/`);
  await page.locator('#products').getByRole('link', { name: 'Penlight', exact: true }).click();
  const stock = page.locator('#product-stock');
  await stock.filter({ hasText: /In stock/ }).waitFor();
  const before = await stock.innerText();
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.getByRole('status').filter({ hasText: 'Added to your cart' }).waitFor();
  await page.goto(`${base}/checkout`);
  await page.getByLabel('Name', { exact: true }).fill('Kenji Sato');
  await page.getByLabel('Postal code').fill('150-0001');
  await page.getByLabel('Address').fill('Jingumae, Shibuya, Tokyo');
  await page.getByRole('button', { name: 'Place the order' }).click();
  await page.waitForURL(/\/orders\/\d{8}-\d+\?thanks=1$/);
  const status = page.locator('#order-status');
  await status.filter({ hasText: 'Paid' }).waitFor();

  // The first button asks; the second cancels.
  await page.getByRole('button', { name: 'Cancel this order' }).click();
  await page.locator('#cancel-question', { hasText: 'The payment will be refunded' }).waitFor();
  await look(page, 'en-order-cancel-confirm');
  await page.locator('#cancel-confirm').click();
  await status.filter({ hasText: 'Cancelled' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Cancel this order' }).count(), 0);
  // The refund follows from the event; the page shows it once it is made.
  await assert.doesNotReject(async () => {
    for (let i = 0; i < 50; i += 1) {
      await page.reload();
      await status.filter({ hasText: 'Cancelled' }).waitFor();
      if ((await page.locator('#order-refund').innerText()).startsWith('Refunded')) return;
      await page.waitForTimeout(200);
    }
    throw new Error('no refund');
  });
  await look(page, 'en-order-cancelled');

  await page.goto(`${base}/`);
  await page.locator('#products').getByRole('link', { name: 'Penlight', exact: true }).click();
  await stock.filter({ hasText: /In stock/ }).waitFor();
  assert.equal(await stock.innerText(), before, 'the unit is on sale again');
  noProblems(page);
  await context.close();
});

test('pages for signed-in users send visitors to sign in, and the language switches', async () => {
  const { context, page } = await open(browser, { locale: 'en' });
  await page.goto(`${base}/cart`);
  await page.waitForURL(`${base}/login?next=/cart`);
  assert.equal(await page.locator('h1').innerText(), 'Sign in');
  await look(page, 'en-login');
  // The switch stays on the page it was used on.
  await page.getByRole('link', { name: '日本語' }).click();
  await page.locator('h1', { hasText: 'ログイン' }).waitFor();
  assert.equal(page.url(), `${base}/login?next=/cart`);
  noProblems(page);
  await context.close();
});

test('the storefront fits a phone', async () => {
  const { context, page } = await open(browser, { locale: 'ja', viewport: { width: 375, height: 740 } });
  await page.goto(`${base}/`);
  await page.locator('#products li').first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'nothing wider than the screen');
  await look(page, 'ja-phone-home');
  noProblems(page);
  await context.close();
});
