// Concerts (seeds 001 §4, 003): the event list; an event's waiting room (long-polled with
// `Prefer: wait`), moving on by itself when admitted, or saying the event is sold out; the
// seat map by section and row, up to four seats, kept live by the socket's `seats` frames
// on the event's topic (and polled only while the socket is down), or the best seats
// side by side; the hold with its countdown, the wallet and the payment; and the caller's
// tickets with their QR codes.

import { api, el, loadInto, problemText, show, signedIn, t, when, yen } from './app.js';
import * as socket from './realtime.js';

const views = { events, event: eventPage, tickets };
const view = document.body.dataset.view;
if (views[view]) views[view]();

const MAX_SEATS = 4;

async function events() {
  const list = document.getElementById('events');
  const page = await loadInto(list, '/events?limit=100', 'li');
  if (!page) return;
  list.replaceChildren(
    ...page.items.map((e) =>
      el(
        'li',
        { class: 'card' },
        el('h2', {}, el('a', { href: `/events/${encodeURIComponent(e.id)}`, text: e.name })),
        el('p', { text: when(e.starts_at) }),
        el('p', { text: t('js.seats_count', { n: e.seat_count.toLocaleString('en-US') }) }),
      ),
    ),
  );
}

// What the page keeps for an event across reloads of this tab: the queue token and the
// access token (neither is the account's session, which no script can read).
function kept(id, name) {
  try {
    return JSON.parse(sessionStorage.getItem(`${name}:${id}`) || 'null');
  } catch {
    return null;
  }
}
function keep(id, name, value) {
  if (value === null) sessionStorage.removeItem(`${name}:${id}`);
  else sessionStorage.setItem(`${name}:${id}`, JSON.stringify(value));
}

function countdown(node, until, onEnd) {
  const end = new Date(until).getTime();
  const tick = () => {
    const left = Math.max(0, Math.round((end - Date.now()) / 1000));
    node.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
    if (left === 0) {
      clearInterval(timer);
      if (onEnd) onEnd();
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
  return timer;
}

function section(id) {
  for (const part of ['join-box', 'waiting-box', 'seats-box', 'hold-box', 'sold-out-box']) {
    document.getElementById(part).hidden = part !== id;
  }
}

async function eventPage() {
  const box = document.getElementById('event');
  const id = box.dataset.id;
  const res = await api('GET', `/events/${encodeURIComponent(id)}`);
  box.removeAttribute('aria-busy');
  if (!res.ok) {
    show('event-error', problemText(res.body));
    return;
  }
  const event = res.body;
  show('event-name', event.name);
  show('event-when', when(event.starts_at));
  show(
    'event-prices',
    event.sections.map((s) => `${s.name} ${yen(s.price)}`).join(' · '),
  );
  if (!signedIn) return;
  const access = kept(id, 'access');
  if (access && new Date(access.expires_at).getTime() > Date.now()) {
    seats(event, access);
  } else if (kept(id, 'queue')) {
    wait(event);
  } else {
    section('join-box');
    document.getElementById('join').addEventListener('click', () => join(event), { once: true });
  }
}

async function join(event) {
  const res = await api('POST', `/events/${encodeURIComponent(event.id)}/queue`);
  if (!res.ok) {
    show('event-error', problemText(res.body));
    return;
  }
  if (res.body.state === 'sold_out') {
    section('sold-out-box');
    return;
  }
  keep(event.id, 'queue', { token: res.body.queue_token });
  wait(event);
}

async function wait(event) {
  section('waiting-box');
  const queue = kept(event.id, 'queue');
  for (;;) {
    const res = await api('GET', `/events/${encodeURIComponent(event.id)}/queue/status`, undefined, {
      'X-Queue-Token': queue.token,
      Prefer: 'wait=20',
    });
    if (!res.ok) {
      keep(event.id, 'queue', null);
      show('event-error', problemText(res.body));
      section('join-box');
      return;
    }
    const status = res.body;
    if (status.state === 'active') {
      const access = { token: status.access_token, expires_at: status.access_expires_at };
      keep(event.id, 'access', access);
      keep(event.id, 'queue', null);
      seats(event, access);
      return;
    }
    if (status.state === 'sold_out') {
      keep(event.id, 'queue', null);
      section('sold-out-box');
      return;
    }
    if (status.state !== 'waiting') {
      keep(event.id, 'queue', null);
      show('event-error', t('js.queue.expired'));
      section('join-box');
      return;
    }
    show('queue-position', status.position ? t('js.queue.position', { n: status.position.toLocaleString('en-US') }) : t('js.queue.soon'));
    const minutes = Math.max(1, Math.round((status.estimated_wait_seconds || 0) / 60));
    show('queue-wait', t('js.queue.wait', { n: minutes }));
    const pause = (status.poll_after_seconds || 0) * 1000;
    if (pause) await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

async function seats(event, access) {
  section('seats-box');
  countdown(document.getElementById('access-left'), access.expires_at, () => {
    keep(event.id, 'access', null);
    show('seats-error', t('js.access_over'));
  });
  const map = document.getElementById('seat-map');
  const chosen = new Set();
  const holdButton = document.getElementById('hold');
  let items = [];
  let byId = new Map();
  // The newest change heard of each seat: a frame from one node may come after a later
  // one from another.
  const versions = new Map();
  const redraw = () =>
    drawMap(map, items, chosen, () => {
      holdButton.disabled = chosen.size === 0;
      show('chosen', t('js.chosen', { n: chosen.size, max: MAX_SEATS }));
    });
  let refreshing = false;
  const refresh = async () => {
    // One refresh at a time: while the connection is down, the one in flight retries.
    if (refreshing) return;
    refreshing = true;
    try {
      const res = await api('GET', `/events/${encodeURIComponent(event.id)}/seats`);
      if (!res.ok) return;
      items = res.body.items;
      byId = new Map(items.map((seat) => [seat.id, seat]));
      redraw();
    } finally {
      refreshing = false;
    }
  };
  let live = false;
  let open = true;
  const topic = `event:${event.id}`;
  socket.on('seats', (frame) => {
    if (!open || frame.event_id !== event.id) return;
    if (frame.resync) {
      refresh();
      return;
    }
    let changed = false;
    for (const change of frame.changes) {
      if ((versions.get(change.seat_id) ?? -1) >= change.version) continue;
      versions.set(change.seat_id, change.version);
      const seat = byId.get(change.seat_id);
      if (seat && seat.status !== 'sold' && seat.status !== change.status) {
        seat.status = change.status;
        changed = true;
      }
    }
    if (changed) redraw();
  });
  socket.on('subscribed', (frame) => {
    if (frame.topic !== topic || !open) return;
    live = true;
    map.dataset.live = 'true';
    // What changed before the subscription, or while the socket was away.
    refresh();
  });
  const notLive = () => {
    live = false;
    map.dataset.live = 'false';
  };
  socket.on('closed', notLive);
  const subscribe = () => socket.send({ type: 'subscribe', topic });
  // A socket may look open while the network is gone: poll (and say so) until it is
  // back, then subscribe again.
  window.addEventListener('offline', notLive);
  window.addEventListener('online', () => {
    if (open) subscribe();
  });
  socket.on('open', () => {
    if (open) subscribe();
  });
  await refresh();
  if (!subscribe()) socket.start();
  const timer = setInterval(() => {
    if (!live) refresh();
  }, 3000);
  const held = (reservation) => {
    open = false;
    clearInterval(timer);
    socket.send({ type: 'unsubscribe', topic });
    hold(event, reservation);
  };
  const refused = async (res) => {
    if (res.body?.code === 'access_token_invalid') keep(event.id, 'access', null);
    show('seats-error', problemText(res.body));
    chosen.clear();
    await refresh();
  };
  holdButton.addEventListener('click', async () => {
    show('seats-error', '');
    holdButton.disabled = true;
    const res = await api(
      'POST',
      `/events/${encodeURIComponent(event.id)}/reservations`,
      { seat_ids: [...chosen] },
      { 'X-Access-Token': access.token },
    );
    if (res.ok) held(res.body);
    else await refused(res);
  });
  const best = document.getElementById('best-form');
  const sections = document.getElementById('best-section');
  sections.replaceChildren(
    el('option', { value: '', text: t('js.best.any') }),
    ...event.sections.map((s) => el('option', { value: s.name, text: `${s.name} ${yen(s.price)}` })),
  );
  best.addEventListener('submit', async (e) => {
    e.preventDefault();
    show('seats-error', '');
    const body = { quantity: Number(best.quantity.value) };
    if (best.section.value) body.section = best.section.value;
    const res = await api('POST', `/events/${encodeURIComponent(event.id)}/reservations`, body, {
      'X-Access-Token': access.token,
    });
    if (res.ok) held(res.body);
    else await refused(res);
  });
}

function drawMap(map, items, chosen, changed) {
  const sections = new Map();
  for (const seat of items) {
    if (!sections.has(seat.section)) sections.set(seat.section, new Map());
    const rows = sections.get(seat.section);
    if (!rows.has(seat.row)) rows.set(seat.row, []);
    rows.get(seat.row).push(seat);
  }
  for (const id of [...chosen]) {
    if (!items.some((s) => s.id === id && s.status === 'available')) chosen.delete(id);
  }
  const parts = [];
  for (const [name, rows] of sections) {
    const rowNodes = [];
    for (const [row, list] of rows) {
      const buttons = list.map((seat) => {
        const picked = chosen.has(seat.id);
        const label = t('js.seat_label', { section: name, row, number: seat.number, price: yen(seat.price), status: t(`js.seat.${seat.status}`) });
        const button = el('button', {
          type: 'button',
          class: `seat ${seat.status}${picked ? ' picked' : ''}`,
          'data-seat': seat.id,
          'aria-label': label,
          'aria-pressed': picked ? 'true' : 'false',
          title: label,
          disabled: seat.status !== 'available',
          text: String(seat.number),
        });
        button.addEventListener('click', () => {
          if (chosen.has(seat.id)) chosen.delete(seat.id);
          else if (chosen.size < MAX_SEATS) chosen.add(seat.id);
          drawMap(map, items, chosen, changed);
        });
        return button;
      });
      rowNodes.push(el('div', { class: 'seat-row' }, el('span', { class: 'row-label', text: t('js.row', { row }) }), buttons));
    }
    parts.push(el('section', { class: 'map-section' }, el('h3', { text: name }), rowNodes));
  }
  map.replaceChildren(...parts);
  changed();
}

async function hold(event, reservation) {
  section('hold-box');
  show('hold-amount', yen(reservation.amount));
  show('hold-seats', t('js.seats_count', { n: reservation.seat_ids.length }));
  countdown(document.getElementById('hold-left'), reservation.expires_at, () => {
    show('pay-error', problemText({ code: 'reservation_expired' }));
  });
  const balance = async () => {
    const res = await api('GET', '/wallet');
    if (res.ok) show('wallet-balance', yen(res.body.balance));
  };
  await balance();
  const charge = document.getElementById('charge-form');
  charge.addEventListener('submit', async (e) => {
    e.preventDefault();
    show('pay-error', '');
    const amount = Number(charge.amount.value);
    const res = await api('POST', '/wallet/charge', { amount }, { 'Idempotency-Key': crypto.randomUUID() });
    if (res.ok) show('wallet-balance', yen(res.body.balance));
    else show('pay-error', problemText(res.body));
  });
  const pay = async (body) => {
    show('pay-error', '');
    const res = await api('POST', `/reservations/${encodeURIComponent(reservation.reservation_id)}/payment`, body, {
      'Idempotency-Key': `${reservation.reservation_id}:${body.method}:${body.card_token || ''}`,
    });
    if (res.ok) {
      keep(event.id, 'access', null);
      window.location.assign('/tickets?new=1');
      return;
    }
    show('pay-error', problemText(res.body));
    balance();
  };
  document.getElementById('pay-wallet').addEventListener('click', () => pay({ method: 'wallet' }));
  const card = document.getElementById('card-form');
  card.addEventListener('submit', (e) => {
    e.preventDefault();
    pay({ method: 'card', card_token: card.card.value });
  });
}

async function tickets() {
  const list = document.getElementById('tickets');
  const page = await loadInto(list, '/tickets?limit=100', 'li');
  if (!page) return;
  if (page.items.length === 0) {
    list.replaceChildren(el('li', { text: t('js.no_tickets') }));
    return;
  }
  list.replaceChildren(
    ...page.items.map((ticket) =>
      el(
        'li',
        { class: 'card ticket' },
        el('h2', { text: t('js.seat_name', { section: ticket.section, row: ticket.row, number: ticket.number }) }),
        el('p', { class: `status ${ticket.status}`, text: t(`js.ticket.${ticket.status}`) }),
        el('img', { src: `/api/v1/tickets/${encodeURIComponent(ticket.id)}/qr.svg`, alt: t('js.qr_alt'), width: '200', height: '200' }),
        el('details', {}, el('summary', { text: t('js.qr_payload') }), el('code', { class: 'payload', text: ticket.qr_payload })),
      ),
    ),
  );
}
