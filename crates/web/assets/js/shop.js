// The storefront's views (seed 000 §1): products, a product, the cart, checkout, the
// thank-you page and the caller's orders. Each draws itself from the public API.

import { api, el, loadInto, problemText, refreshCartBadge, show, t, when, yen } from './app.js';
import { recommended, related } from './recs.js';

const views = { home, product, cart, checkout, orders, order };
const view = document.body.dataset.view;
if (views[view]) views[view]();

function done(node) {
  node.removeAttribute('aria-busy');
}

async function home() {
  recommended();
  const list = document.getElementById('products');
  const page = await loadInto(list, '/products?limit=100', 'li');
  if (!page) return;
  list.replaceChildren(
    ...page.items.map((p) =>
      el(
        'li',
        { class: 'card' },
        el('h2', {}, el('a', { href: `/products/${encodeURIComponent(p.id)}`, text: p.name })),
        el('p', { class: 'price', text: yen(p.price) }),
        el('p', { class: p.available > 0 ? 'stock' : 'stock out', text: stockText(p.available) }),
      ),
    ),
  );
}

function stockText(available) {
  return available > 0 ? `${t('js.in_stock')}: ${available}` : t('js.sold_out');
}

async function product() {
  const box = document.getElementById('product');
  const id = box.dataset.id;
  related(id);
  const res = await api('GET', `/products/${encodeURIComponent(id)}`);
  done(box);
  if (!res.ok) {
    show('add-error', problemText(res.body));
    return;
  }
  const p = res.body;
  show('product-name', p.name);
  show('product-price', yen(p.price));
  show('product-stock', stockText(p.available));
  show('product-description', p.description || '');
  const form = document.getElementById('add-form');
  if (!form) return;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    show('add-error', '');
    show('add-done', '');
    const quantity = Number(form.quantity.value);
    const added = await api('POST', '/cart/items', { product_id: id, quantity });
    if (added.ok) {
      show('add-done', t('js.added'));
      refreshCartBadge(added.body);
    } else {
      show('add-error', problemText(added.body));
    }
  });
}

async function cart() {
  const box = document.getElementById('cart');
  const res = await api('GET', '/cart');
  done(box);
  if (!res.ok) {
    show('cart-error', problemText(res.body));
    return;
  }
  drawCart(box, res.body);
}

function drawCart(box, current) {
  refreshCartBadge(current);
  document.getElementById('to-checkout').hidden = current.items.length === 0;
  if (current.items.length === 0) {
    box.replaceChildren(el('p', { text: t('js.cart_empty') }));
    return;
  }
  const rows = current.items.map((line) => {
    const input = el('input', {
      type: 'number',
      min: '0',
      max: '100',
      value: String(line.quantity),
      'aria-label': `${line.name}: ${t('js.items')}`,
    });
    input.addEventListener('change', () => change(box, line.product_id, Number(input.value)));
    const remove = el('button', { type: 'button', class: 'link', text: t('js.remove') });
    remove.addEventListener('click', () => change(box, line.product_id, 0));
    return el(
      'tr',
      {},
      el('td', {}, el('a', { href: `/products/${encodeURIComponent(line.product_id)}`, text: line.name })),
      el('td', { class: 'num', text: yen(line.price) }),
      el('td', {}, input),
      el('td', { class: 'num', text: yen(line.line_total) }),
      el('td', {}, remove),
    );
  });
  box.replaceChildren(
    el(
      'table',
      { class: 'lines' },
      el('tbody', {}, rows),
      el('tfoot', {}, el('tr', {}, el('th', { colspan: '3', text: t('js.total') }), el('td', { class: 'num', id: 'cart-total', text: yen(current.total) }), el('td'))),
    ),
  );
}

async function change(box, productId, quantity) {
  show('cart-error', '');
  const res = await api('PATCH', `/cart/items/${encodeURIComponent(productId)}`, { quantity });
  if (res.ok) drawCart(box, res.body);
  else show('cart-error', problemText(res.body));
}

async function checkout() {
  const summary = document.getElementById('checkout-summary');
  const current = await api('GET', '/cart');
  if (current.ok) {
    summary.replaceChildren(
      el('p', {}, `${t('js.total')}: `, el('strong', { id: 'checkout-total', text: yen(current.body.total) })),
    );
  }
  const form = document.getElementById('checkout-form');
  // One key per attempt: a retried request after a lost connection replays, a new
  // submission after a refusal is a new attempt.
  let key = crypto.randomUUID();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    show('checkout-error', '');
    const pay = document.getElementById('pay');
    const spinner = document.getElementById('paying');
    pay.disabled = true;
    spinner.hidden = false;
    const body = {
      shipping_address: {
        name: form.name.value,
        postal_code: form.postal_code.value,
        address: form.address.value,
      },
      payment: { method: 'card', card_token: form.card.value },
    };
    const res = await api('POST', '/orders', body, { 'Idempotency-Key': key });
    spinner.hidden = true;
    pay.disabled = false;
    if (res.ok) {
      window.location.assign(`/orders/${encodeURIComponent(res.body.number)}?thanks=1`);
      return;
    }
    key = crypto.randomUUID();
    show('checkout-error', problemText(res.body));
    refreshCartBadge();
  });
}

function statusText(status) {
  return t(`js.status.${status}`);
}

async function orders() {
  const box = document.getElementById('orders');
  const page = await loadInto(box, '/orders?limit=100');
  if (!page) return;
  if (page.items.length === 0) {
    box.replaceChildren(el('p', { text: t('js.no_orders') }));
    return;
  }
  box.replaceChildren(
    el(
      'ul',
      { class: 'orders' },
      page.items.map((o) =>
        el(
          'li',
          { class: 'card' },
          el('a', { href: `/orders/${encodeURIComponent(o.number)}`, text: o.number }),
          el('span', { class: `status ${o.status}`, text: statusText(o.status) }),
          el('span', { text: when(o.created_at) }),
          el('span', { class: 'num', text: yen(o.total) }),
          el('ul', {}, o.items.map((line) => el('li', { text: `${line.name} × ${line.quantity}` }))),
        ),
      ),
    ),
  );
}

async function order() {
  const box = document.getElementById('order');
  const number = box.dataset.number;
  if (new URLSearchParams(window.location.search).has('thanks')) {
    document.getElementById('thanks').hidden = false;
  }
  const o = await loadInto(box, `/orders/${encodeURIComponent(number)}`);
  if (!o) return;
  drawOrder(box, o);
}

// An order's facts and lines, and while it is paid (not shipped) the way to cancel it.
function drawOrder(box, o) {
  const facts = [
    el('dt', { text: t('js.order_number') }),
    el('dd', { id: 'order-number', text: o.number }),
    el('dt', { text: t('js.order_status') }),
    el('dd', { id: 'order-status', text: statusText(o.status) }),
    el('dt', { text: t('js.order_date') }),
    el('dd', { text: when(o.created_at) }),
  ];
  if (o.status === 'cancelled') {
    facts.push(
      el('dt', { text: t('js.refund') }),
      el('dd', { id: 'order-refund', text: o.refunded_at ? `${t('js.refund_done')} (${when(o.refunded_at)})` : t('js.refund_pending') }),
    );
  }
  box.replaceChildren(
    el('dl', { class: 'facts' }, ...facts),
    el(
      'table',
      { class: 'lines' },
      el('tbody', {}, o.items.map((line) => el('tr', {}, el('td', { text: line.name }), el('td', { class: 'num', text: String(line.quantity) }), el('td', { class: 'num', text: yen(line.line_total) })))),
      el(
        'tfoot',
        {},
        el('tr', {}, el('th', { colspan: '2', text: t('js.subtotal') }), el('td', { class: 'num', text: yen(o.subtotal) })),
        el('tr', {}, el('th', { colspan: '2', text: t('js.tax') }), el('td', { class: 'num', text: yen(o.tax) })),
        el('tr', {}, el('th', { colspan: '2', text: t('js.total') }), el('td', { class: 'num', id: 'order-total', text: yen(o.total) })),
      ),
    ),
  );
  if (o.status === 'paid') box.append(cancelBox(box, o));
}

// Cancelling asks once more before it goes: the button shows the question and a second
// button that cancels.
function cancelBox(box, o) {
  const error = el('p', { class: 'error', id: 'cancel-error', role: 'alert' });
  const confirm = el('button', { type: 'button', id: 'cancel-confirm', class: 'danger', text: t('js.cancel_order') });
  const question = el('div', { id: 'cancel-question', hidden: '' }, el('p', { text: t('js.cancel_confirm') }), confirm);
  const start = el('button', { type: 'button', id: 'cancel-order', class: 'secondary', text: t('js.cancel_order') });
  start.addEventListener('click', () => {
    start.hidden = true;
    question.hidden = false;
  });
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    error.textContent = '';
    const res = await api('POST', `/orders/${encodeURIComponent(o.number)}/cancel`);
    confirm.disabled = false;
    if (res.ok) {
      drawOrder(box, res.body);
      return;
    }
    error.textContent = problemText(res.body);
  });
  return el('div', { class: 'cancel' }, start, question, error);
}
