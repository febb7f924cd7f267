// The staff pages: products and stock, inventory, new events, consumer groups and dead letters
// (retry, delete), invoices, sent mails, and the ticket gate.

import { api, el, problemText, show, t, when, yen } from './app.js';
import { inventory } from './inventory.js';
import { recsStaff } from './recs.js';

const views = {
  'staff-products': products,
  'staff-inventory': inventory,
  'staff-recommendations': recsStaff,
  'staff-events': eventsPage,
  'staff-consumers': consumers,
  'staff-invoices': invoices,
  'staff-mails': mails,
  'staff-gate': gate,
};
const view = document.body.dataset.view;
if (views[view]) views[view]();

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

async function products() {
  const node = document.getElementById('staff-products');
  const draw = async () => {
    const res = await api('GET', '/products?limit=100');
    if (!res.ok) return fail(res);
    table(
      node,
      ['SKU', t('js.staff.name'), t('js.staff.price'), t('js.staff.stock')],
      res.body.items.map((p) => {
        const input = el('input', { type: 'number', min: '0', value: String(p.available), 'aria-label': `${p.sku} ${t('js.staff.stock')}` });
        const save = el('button', { type: 'button', text: t('js.staff.save') });
        save.addEventListener('click', async () => {
          const r = await api('PUT', `/admin/products/${encodeURIComponent(p.id)}/stock`, { stock: Number(input.value) });
          if (r.ok) ok(t('js.staff.saved'));
          else fail(r);
        });
        return el('tr', {}, el('td', { text: p.sku }), el('td', { text: p.name }), el('td', { class: 'num', text: yen(p.price) }), el('td', {}, input, ' ', save));
      }),
    );
  };
  await draw();
  const form = document.getElementById('product-form');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { sku: form.sku.value, name: form.name.value, price: Number(form.price.value), stock: Number(form.stock.value) };
    const res = await api('POST', '/admin/products', body);
    if (!res.ok) return fail(res);
    ok(t('js.staff.saved'));
    form.reset();
    await draw();
  });
}

function sectionRow(index) {
  const field = (name, label, attrs) => {
    const id = `s${index}-${name}`;
    return [el('label', { for: id, text: label }), el('input', { id, name: `${name}-${index}`, required: true, ...attrs })];
  };
  return el(
    'div',
    { class: 'row section-row' },
    field('name', t('js.staff.section'), { maxlength: '40', value: String.fromCharCode(65 + index) }),
    field('rows', t('js.staff.rows'), { type: 'number', min: '1', max: '500', value: '5' }),
    field('seats', t('js.staff.seats_per_row'), { type: 'number', min: '1', max: '500', value: '10' }),
    field('price', t('js.staff.price'), { type: 'number', min: '0', value: '8000' }),
  );
}

async function eventsPage() {
  const box = document.getElementById('sections');
  let count = 0;
  const add = () => {
    box.append(sectionRow(count));
    count += 1;
  };
  add();
  document.getElementById('add-section').addEventListener('click', add);
  const list = document.getElementById('staff-events');
  const draw = async () => {
    const res = await api('GET', '/events?limit=100');
    if (!res.ok) return fail(res);
    list.replaceChildren(
      ...res.body.items.map((e) => el('li', {}, el('a', { href: `/events/${encodeURIComponent(e.id)}`, text: e.name }), ` — ${when(e.starts_at)}, ${t('js.seats_count', { n: e.seat_count })}`)),
    );
  };
  await draw();
  const form = document.getElementById('event-form');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const sections = [];
    for (let i = 0; i < count; i += 1) {
      sections.push({
        name: form[`name-${i}`].value,
        rows: Number(form[`rows-${i}`].value),
        seats_per_row: Number(form[`seats-${i}`].value),
        price: Number(form[`price-${i}`].value),
      });
    }
    const body = { name: form.name.value, starts_at: new Date(form.starts_at.value).toISOString(), sections };
    if (form.sale_starts_at.value) body.sale_starts_at = new Date(form.sale_starts_at.value).toISOString();
    const res = await api('POST', '/admin/events', body);
    if (!res.ok) return fail(res);
    ok(t('js.staff.saved'));
    await draw();
  });
}

async function consumers() {
  const node = document.getElementById('consumers');
  const letters = document.getElementById('dead-letters');
  const draw = async () => {
    const res = await api('GET', '/admin/consumers');
    if (!res.ok) return fail(res);
    table(
      node,
      [t('js.staff.topic'), t('js.staff.group'), t('js.staff.processed'), t('js.staff.failed'), t('js.staff.dead'), t('js.staff.lag')],
      res.body.items.map((c) =>
        el('tr', {}, el('td', { text: c.topic }), el('td', { text: c.group }), ...[c.processed, c.failed, c.dead, c.lag].map((n) => el('td', { class: 'num', text: String(n) }))),
      ),
    );
    const dead = await api('GET', '/admin/dead-letters?limit=100');
    if (!dead.ok) return fail(dead);
    if (dead.body.items.length === 0) {
      letters.replaceChildren(el('li', { text: t('js.staff.no_dead') }));
      return;
    }
    letters.replaceChildren(
      ...dead.body.items.map((d) => {
        const retry = el('button', { type: 'button', text: t('js.staff.retry') });
        const remove = el('button', { type: 'button', class: 'secondary', text: t('js.staff.delete') });
        retry.addEventListener('click', () => act('POST', `/admin/dead-letters/${encodeURIComponent(d.id)}/retry`));
        remove.addEventListener('click', () => act('DELETE', `/admin/dead-letters/${encodeURIComponent(d.id)}`));
        return el(
          'li',
          { class: 'card dead-letter', 'data-id': d.id },
          el('p', {}, el('strong', { text: `${d.group} · ${d.topic}` }), ` — ${when(d.dead_at)} · ${t('js.staff.attempts', { n: d.attempts })}`),
          el('p', { class: 'error', text: d.last_error }),
          el('details', {}, el('summary', { text: t('js.staff.payload') }), el('pre', { text: JSON.stringify(d.payload, null, 2) })),
          el('p', { class: 'row' }, retry, remove),
        );
      }),
    );
  };
  const act = async (method, path) => {
    const res = await api(method, path);
    if (!res.ok) return fail(res);
    ok(t('js.staff.saved'));
    await draw();
  };
  await draw();
}

async function invoices() {
  const res = await api('GET', '/admin/invoices?limit=100');
  if (!res.ok) return fail(res);
  table(
    document.getElementById('invoices'),
    [t('js.order_number'), t('js.subtotal'), t('js.tax'), t('js.total'), t('js.order_status')],
    res.body.items.map((i) =>
      el('tr', {}, el('td', { text: i.order_number }), el('td', { class: 'num', text: yen(i.subtotal) }), el('td', { class: 'num', text: yen(i.tax) }), el('td', { class: 'num', text: yen(i.total) }), el('td', { text: i.status })),
    ),
  );
}

async function mails() {
  const res = await api('GET', '/admin/mails?limit=100');
  if (!res.ok) return fail(res);
  table(
    document.getElementById('mails'),
    [t('js.staff.to'), t('js.staff.subject'), t('js.order_date')],
    res.body.items.map((m) => el('tr', {}, el('td', { text: m.to }), el('td', { text: m.subject }), el('td', { text: when(m.sent_at) }))),
  );
}

async function gate() {
  const form = document.getElementById('gate-form');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const res = await api('POST', '/admin/tickets/verify', { qr_payload: form.payload.value.trim() });
    if (!res.ok) return fail(res);
    const v = res.body;
    let text = t('js.gate.invalid');
    if (v.valid && v.already_used) text = t('js.gate.used', { seat: v.seat });
    else if (v.valid) text = t('js.gate.ok', { seat: v.seat });
    show('gate-result', text);
  });
}
