// The staff inventory page (seed 002): a book-stock file with one bad row is refused with
// that row's error and nothing applied; fixed, it is imported and the storefront's stock
// follows.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { base, demo, launch, look, noProblems, open, signIn } from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function call(method, path, token, body) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

for (const locale of ['ja', 'en']) {
  test(`staff fix a refused stock file and the storefront follows (${locale})`, async () => {
    const login = await call('POST', '/auth/login', null, demo.staff);
    assert.equal(login.status, 200);
    const sku = `INV-${locale}-${Date.now()}`;
    const created = await call('POST', '/admin/products', login.body.token, { sku, name: `Ledger book ${locale}`, price: 1200, stock: 5 });
    assert.equal(created.status, 201);
    const product = created.body.id;
    const today = new Date().toISOString().slice(0, 10);

    const { context, page } = await open(browser, { locale });
    await signIn(page, demo.staff, '/staff/inventory');
    const row = page.locator(`#inventory-stock tr[data-sku="${sku}"]`);
    await row.locator('.allocatable', { hasText: '5' }).waitFor();

    const form = page.locator('#import-form');
    await form.getByLabel(locale === 'ja' ? '種類' : 'Kind').selectOption('book');
    const upload = (csv) =>
      form.getByLabel(locale === 'ja' ? 'ファイル' : 'File').setInputFiles({ name: 'book.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await upload(`store,sku,quantity,as_of\nmain,${sku},42,${today}\nmain,NO-SUCH-SKU,1,${today}\n`);
    await form.getByRole('button', { name: locale === 'ja' ? '取り込む' : 'Import' }).click();
    const error = page.locator('#import-errors li').first();
    await error.waitFor();
    assert.match(await error.innerText(), locale === 'ja' ? /3 行目: unknown SKU "NO-SUCH-SKU"/ : /Line 3: unknown SKU "NO-SUCH-SKU"/);
    assert.match(await page.locator('#staff-error').innerText(), locale === 'ja' ? /何も取り込んでいません/ : /nothing was imported/);
    await look(page, `${locale}-staff-inventory-refused`);
    // Nothing was applied.
    assert.equal(await row.locator('.allocatable').innerText(), '5');

    await upload(`store,sku,quantity,as_of\nmain,${sku},42,${today}\n`);
    await form.getByRole('button', { name: locale === 'ja' ? '取り込む' : 'Import' }).click();
    await page.locator('#staff-done', { hasText: locale === 'ja' ? '1 行を取り込みました' : '1 rows imported' }).waitFor();
    assert.equal(await page.locator('#import-errors li').count(), 0);
    await row.locator('.allocatable', { hasText: '42' }).waitFor();
    assert.equal(await row.locator('.net').innerText(), '42');
    await look(page, `${locale}-staff-inventory`);

    await page.goto(`${base}/products/${product}`);
    await page.locator('#product-stock', { hasText: '42' }).waitFor();
    noProblems(page);
    await context.close();
  });
}
