// The staff inventory page: stock per SKU with the terms of its net, CSV imports with
// their row errors, the flash-sale switch and the reconciliation report.

import { api, el, problemText, show, t, when } from './app.js';

function fail(res) {
  show('staff-done', '');
  show('staff-error', problemText(res.body));
}
function ok(message) {
  show('staff-error', '');
  show('staff-done', message);
}

function table(node, headings, rows) {
  node.replaceChildren(
    el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, rows),
  );
}

const num = (value) => el('td', { class: 'num', text: String(value) });

async function drawStock() {
  const res = await api('GET', '/admin/inventory/stock');
  if (!res.ok) return fail(res);
  table(
    document.getElementById('inventory-stock'),
    ['SKU', 'book', 'sold', 'purchased', 'samples', 'unshipped', 'net', 'allocatable', 'reserved', 'synced'].map((k) =>
      k === 'SKU' ? k : t(`js.inventory.${k}`),
    ),
    res.body.map((s) =>
      el(
        'tr',
        { 'data-sku': s.sku },
        el('td', { text: s.sku }),
        num(s.book),
        num(s.sold),
        num(s.purchased),
        num(s.samples),
        num(s.unshipped),
        el('td', { class: 'num net', text: String(s.net) }),
        el('td', { class: 'num allocatable', text: String(s.allocatable) }),
        num(s.reserved),
        el('td', { text: when(s.synced_at) }),
      ),
    ),
  );
}

async function drawFlash() {
  const res = await api('GET', '/admin/inventory/flash-sale');
  if (!res.ok) return fail(res);
  const on = res.body.enabled;
  show('flash-state', `${t(on ? 'js.inventory.flash_on' : 'js.inventory.flash_off')} ${when(res.body.since)}`);
  const button = document.getElementById('flash-toggle');
  button.textContent = t(on ? 'js.inventory.turn_off' : 'js.inventory.turn_on');
  button.dataset.enabled = String(on);
}

async function drawReconciliation() {
  const res = await api('GET', '/admin/inventory/reconciliation');
  if (!res.ok) return fail(res);
  const node = document.getElementById('reconciliation');
  if (res.body.length === 0) {
    node.replaceChildren(el('caption', { text: t('js.inventory.nothing_differed') }));
    return;
  }
  table(
    node,
    ['SKU', t('js.inventory.ledger'), t('js.inventory.allocation'), t('js.inventory.reconciled')],
    res.body.map((d) => el('tr', {}, el('td', { text: d.sku }), num(d.ledger), num(d.allocation), el('td', { text: when(d.reconciled_at) }))),
  );
}

export async function inventory() {
  await Promise.all([drawStock(), drawFlash(), drawReconciliation()]);
  const form = document.getElementById('import-form');
  const errors = document.getElementById('import-errors');
  // One key per chosen file: sending it again (a retry, a double click) imports it once.
  let key = crypto.randomUUID();
  form.file.addEventListener('change', () => {
    key = crypto.randomUUID();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = form.file.files[0];
    if (!file) return;
    const csv = new Blob([await file.arrayBuffer()], { type: 'text/csv' });
    const res = await api('POST', `/admin/inventory/imports?kind=${encodeURIComponent(form.kind.value)}`, csv, {
      'Idempotency-Key': key,
    });
    if (!res.ok) {
      fail(res);
      errors.replaceChildren(
        ...(res.body?.errors || []).map((row) => el('li', { text: t('js.inventory.line', { line: row.line, message: row.message }) })),
      );
      return;
    }
    errors.replaceChildren();
    ok(t('js.inventory.imported', { rows: res.body.rows }));
    form.reset();
    key = crypto.randomUUID();
    await drawStock();
  });
  document.getElementById('flash-toggle').addEventListener('click', async (e) => {
    const enabled = e.currentTarget.dataset.enabled !== 'true';
    const res = await api('PUT', '/admin/inventory/flash-sale', { enabled });
    if (!res.ok) return fail(res);
    await Promise.all([drawStock(), drawFlash(), drawReconciliation()]);
  });
}
