// Recommendations: "recommended for you" (or "popular now") on the storefront's home,
// "bought together" on a product page, and the staff page of batch runs with a button
// that starts one and follows its progress.

import { api, el, problemText, show, t, when, yen } from './app.js';

function cards(items) {
  return items.map((p) =>
    el(
      'li',
      { class: 'card', 'data-product-id': p.product_id, 'data-reason': p.reason || '' },
      el('h2', {}, el('a', { href: `/products/${encodeURIComponent(p.product_id)}`, text: p.name })),
      el('p', { class: 'price', text: yen(p.price) }),
      p.reason ? el('p', { class: 'hint', text: t(`js.recs.reason.${p.reason}`) }) : '',
    ),
  );
}

export async function recommended() {
  const list = document.getElementById('recommended');
  if (!list) return;
  const res = await api('GET', '/recommendations/me?limit=8');
  list.removeAttribute('aria-busy');
  if (!res.ok) {
    list.closest('section').hidden = true;
    return;
  }
  const popular = res.body.items.length > 0 && res.body.items.every((i) => i.reason === 'popular');
  show('recommended-title', t(popular ? 'js.recs.popular' : 'js.recs.for_you'));
  list.dataset.kind = popular ? 'popular' : 'personal';
  if (res.body.items.length === 0) {
    list.replaceChildren(el('li', { text: t('js.recs.none') }));
    return;
  }
  list.replaceChildren(...cards(res.body.items));
}

export async function related(id) {
  const list = document.getElementById('related');
  if (!list) return;
  const res = await api('GET', `/products/${encodeURIComponent(id)}/related?limit=6`);
  list.removeAttribute('aria-busy');
  if (!res.ok || res.body.items.length === 0) {
    list.closest('section').hidden = true;
    return;
  }
  list.replaceChildren(...cards(res.body.items));
}

const fixed = (value) => (typeof value === 'number' ? value.toFixed(3) : '');

async function drawRuns() {
  const res = await api('GET', '/admin/recommendations/runs?limit=20');
  if (!res.ok) {
    show('staff-error', problemText(res.body));
    return false;
  }
  const headings = ['started_at', 'status', 'stage', 'events', 'users', 'items', 'precision', 'recall', 'ndcg', 'popular_precision', 'seconds'];
  const rows = res.body.map((r) => {
    const m = r.metrics || {};
    const seconds = r.timings && typeof r.timings.total_ms === 'number' ? (r.timings.total_ms / 1000).toFixed(1) : '';
    return el(
      'tr',
      { 'data-run-id': r.id, 'data-status': r.status },
      el('td', { text: when(r.started_at) }),
      el('td', { class: 'status', text: t(`js.recs.${r.status}`) }),
      el('td', {}, r.status === 'running' ? el('progress', { max: '100', value: String(r.progress) }) : r.stage),
      el('td', { class: 'num', text: String(r.events) }),
      el('td', { class: 'num', text: String(r.users) }),
      el('td', { class: 'num', text: String(r.items) }),
      el('td', { class: 'num precision', text: fixed(m.precision_at_10) }),
      el('td', { class: 'num', text: fixed(m.recall_at_10) }),
      el('td', { class: 'num', text: fixed(m.ndcg_at_10) }),
      el('td', { class: 'num popular', text: fixed(m.popular_precision_at_10) }),
      el('td', { class: 'num', text: seconds }),
    );
  });
  const table = document.getElementById('recs-runs');
  table.replaceChildren(
    el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col', text: t(`js.recs.${h}`) })))),
    el('tbody', {}, rows),
  );
  return res.body.some((r) => r.status === 'running');
}

async function follow() {
  const running = await drawRuns();
  const button = document.getElementById('recs-run');
  button.disabled = running;
  if (running) setTimeout(follow, 1000);
}

export function recsStaff() {
  const button = document.getElementById('recs-run');
  button.addEventListener('click', async () => {
    show('staff-error', '');
    const res = await api('POST', '/admin/recommendations/runs');
    if (!res.ok) {
      show('staff-error', problemText(res.body));
      return;
    }
    show('staff-done', t('js.recs.started'));
    follow();
  });
  follow();
}
