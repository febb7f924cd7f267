// Recommendations (seed 000 §3): a new buyer first sees what is popular; they look at two
// products and buy one; staff run the batch from their page and watch it finish; the
// buyer's home then recommends products of the same kind, never the one they bought, and
// the product page shows what is bought together.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { base, call, demo, launch, look, noProblems, open, register, signIn, uniqueEmail } from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const ITEMS = 8;

// A group of products and shoppers who each look at four neighbouring ones and buy one.
async function shopWithTaste(tag) {
  const staff = await call('POST', '/auth/login', null, demo.staff);
  assert.equal(staff.status, 200);
  const products = [];
  for (let n = 0; n < ITEMS; n += 1) {
    const created = await call('POST', '/admin/products', staff.body.token, {
      sku: `REC-${tag}-${n}`,
      name: `Fan goods ${tag} ${n}`,
      price: 1000 + n * 100,
      stock: 50,
    });
    assert.equal(created.status, 201);
    products.push(created.body.id);
  }
  for (let k = 0; k < 6; k += 1) {
    const shopper = await call('POST', '/auth/register', null, {
      email: uniqueEmail(`shopper-${tag}`),
      password: 'correct horse battery',
      name: `Shopper ${k}`,
    });
    assert.equal(shopper.status, 201);
    for (let offset = 0; offset < 4; offset += 1) {
      const product_id = products[(k + offset) % ITEMS];
      assert.equal((await call('POST', '/activity', shopper.body.token, { kind: 'view', product_id })).status, 202);
    }
    const bought = products[k % ITEMS];
    assert.equal((await call('POST', '/activity', shopper.body.token, { kind: 'purchase', product_id: bought })).status, 202);
  }
  return products;
}

async function cardsOf(page, selector) {
  return page.locator(`${selector} li[data-product-id]`).evaluateAll((items) => items.map((li) => li.dataset.productId));
}

for (const locale of ['ja', 'en']) {
  test(`a buyer is recommended what they did not buy (${locale})`, async () => {
    const tag = `${locale}${Date.now()}`;
    const products = await shopWithTaste(tag);

    const { context, page } = await open(browser, { locale });
    await register(page, { name: locale === 'ja' ? '花子' : 'Hanako', email: uniqueEmail(`recs-${locale}`) });
    // A newcomer: popular now.
    await page.locator('#recommended[data-kind="popular"] li').first().waitFor();
    assert.equal(await page.locator('#recommended-title').innerText(), locale === 'ja' ? 'いま人気の商品' : 'Popular now');
    await look(page, `${locale}-recs-popular`);

    await page.goto(`${base}/products/${products[1]}`);
    await page.locator('#product-name', { hasText: `Fan goods ${tag} 1` }).waitFor();
    await page.goto(`${base}/products/${products[0]}`);
    await page.locator('#product-name', { hasText: `Fan goods ${tag} 0` }).waitFor();
    await page.getByRole('button', { name: /カートに入れる|Add to cart/ }).click();
    await page.locator('#add-done').waitFor({ state: 'visible' });
    await page.goto(`${base}/checkout`);
    await page.getByLabel(locale === 'ja' ? 'お名前' : 'Name', { exact: true }).fill('Hanako Yamada');
    await page.getByLabel(locale === 'ja' ? '郵便番号' : 'Postal code').fill('150-0001');
    await page.getByLabel(locale === 'ja' ? '住所' : 'Address').fill('Jingumae, Shibuya, Tokyo');
    await page.getByRole('button', { name: /注文を確定する|Place the order/ }).click();
    await page.waitForURL(/\/orders\/\d{8}-\d+\?thanks=1$/);

    const staff = await open(browser, { locale });
    await signIn(staff.page, demo.staff, '/staff/recommendations');
    await staff.page.locator('#recs-runs').waitFor();
    await staff.page.getByRole('button', { name: locale === 'ja' ? '今すぐ実行' : 'Run now' }).click();
    await staff.page.locator('#staff-done', { hasText: locale === 'ja' ? '実行を開始しました' : 'The run has started' }).waitFor();
    await staff.page.locator('#recs-runs tbody tr:first-child[data-status="succeeded"]').waitFor({ timeout: 60_000 });
    assert.match(await staff.page.locator('#recs-runs tbody tr:first-child .precision').innerText(), /^\d\.\d{3}$/);
    await look(staff.page, `${locale}-staff-recommendations`);
    noProblems(staff.page);
    await staff.context.close();

    await page.goto(`${base}/`);
    await page.locator('#recommended[data-kind="personal"] li').first().waitFor();
    assert.equal(await page.locator('#recommended-title').innerText(), locale === 'ja' ? 'あなたへのおすすめ' : 'Recommended for you');
    const recommended = await cardsOf(page, '#recommended');
    assert.ok(recommended.length > 0);
    assert.ok(!recommended.includes(products[0]), 'what they bought is not recommended');
    assert.ok(recommended.some((id) => products.includes(id)), 'products of the same kind are');
    await look(page, `${locale}-recs-home`);

    await page.goto(`${base}/products/${products[2]}`);
    await page.locator('#related li[data-product-id]').first().waitFor();
    const related = await cardsOf(page, '#related');
    assert.ok(!related.includes(products[2]));
    assert.ok(related.every((id) => products.includes(id)), 'related products are of the same kind');
    noProblems(page);
    await context.close();
  });
}
