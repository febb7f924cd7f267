// The staff inventory page (seed 002): a book-stock file with one bad row is refused with
// that row's error and nothing applied; fixed, it is imported and the storefront's stock
// follows.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { base, call, demo, launch, look, noProblems, open, signIn } from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

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

// A marketplace channel (the simulated one `.ci/browser` starts): staff connect it, see it
// run and list its share, and disconnect it.
const marketplace = process.env.MATSURI_MARKETPLACE_URL;
for (const locale of ['ja', 'en']) {
  test(`staff connect a marketplace and see it list its share (${locale})`, { skip: !marketplace && 'MATSURI_MARKETPLACE_URL is not set' }, async () => {
    const { context, page } = await open(browser, { locale });
    await signIn(page, demo.staff, '/staff/inventory');
    const name = `market-${locale}-${Date.now()}`;
    const form = page.locator('#channel-form');
    await form.getByLabel(locale === 'ja' ? '名前 (英小文字・数字)' : 'Name (lower-case letters, digits)').fill(name);
    await form.getByLabel(locale === 'ja' ? 'API の URL' : 'API URL').fill(marketplace);
    await form.getByLabel(locale === 'ja' ? 'トークン' : 'Token').fill('dev-marketplace');
    await form.getByRole('button', { name: locale === 'ja' ? '連携する' : 'Connect' }).click();
    const row = page.locator(`#channels tr[data-channel="${name}"]`);
    await row.waitFor();
    // The channel job runs every second; the page shows it when drawn again.
    const ok = locale === 'ja' ? '正常' : 'OK';
    for (let i = 0; i < 40 && !(await row.locator('.channel-status.ok').count()); i++) {
      await page.waitForTimeout(500);
      await page.reload();
    }
    await row.locator('.channel-status', { hasText: ok }).waitFor();
    const listed = Number(await row.locator('td.num').first().innerText());
    assert.ok(listed > 0, `the channel lists its share (${listed})`);
    await look(page, `${locale}-staff-channels`);
    await row.getByRole('button', { name: locale === 'ja' ? '解除' : 'Disconnect' }).click();
    await row.waitFor({ state: 'detached' });
    noProblems(page);
    await context.close();
  });
}
