// The staff inventory page: stock per SKU with the terms of its net, CSV imports with
// their row errors, the flash-sale switch, the reconciliation report and the marketplace
// channels with their status.

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
    ['SKU', 'book', 'sold', 'purchased', 'samples', 'unshipped', 'net', 'allocatable', 'reserved', 'channels', 'synced'].map((k) =>
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
        num(s.channels),
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

async function drawChannels() {
  const res = await api('GET', '/admin/channels');
  if (!res.ok) return fail(res);
  const node = document.getElementById('channels');
  if (res.body.length === 0) {
    node.replaceChildren(el('caption', { text: t('js.inventory.no_channels') }));
    return;
  }
  table(
    node,
    ['channel', 'status', 'listed', 'last_pull', 'last_push', 'remove'].map((k) => t(`js.inventory.${k}`)),
    res.body.map((c) => {
      const remove = el('button', { type: 'button', class: 'link', text: t('js.inventory.remove') });
      remove.addEventListener('click', async () => {
        const gone = await api('DELETE', `/admin/channels/${encodeURIComponent(c.id)}`);
        if (!gone.ok) return fail(gone);
        await Promise.all([drawStock(), drawChannels()]);
      });
      return el(
        'tr',
        { 'data-channel': c.name },
        el('td', {}, el('strong', { text: c.name }), el('br', {}), el('small', { text: c.base_url })),
        el('td', { class: `channel-status ${c.status}`, title: c.last_error || '', text: t(`js.inventory.status_${c.status}`) }),
        num(c.listed),
        el('td', { text: when(c.last_pull_at) }),
        el('td', { text: when(c.last_push_at) }),
        el('td', {}, remove),
      );
    }),
  );
}

export async function inventory() {
  await Promise.all([drawStock(), drawFlash(), drawReconciliation(), drawChannels()]);
  const channelForm = document.getElementById('channel-form');
  channelForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = (id) => document.getElementById(id).value;
    const body = { name: value('c-name'), base_url: value('c-url'), token: value('c-token') };
    const res = await api('POST', '/admin/channels', body);
    if (!res.ok) return fail(res);
    ok(t('js.inventory.channel_added', { name: res.body.name }));
    channelForm.reset();
    await drawChannels();
  });
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
    await Promise.all([drawStock(), drawFlash(), drawReconciliation(), drawChannels()]);
  });
}
