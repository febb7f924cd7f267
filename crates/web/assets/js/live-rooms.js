// The live rooms (seed 001 §3): every room, those on air first, each with its title,
// streamer, status and viewer count (read again every half minute), a link to watch it
// and, once it has been on air, to its replay. A streamer or staff member opens a room
// here (it starts scheduled), puts their rooms on air and ends them; staff may do so for
// every room.

import { api, el, problemText, show, signedIn, t } from './app.js';
import { roomPath, statusBadge, viewersText } from './live.js';

const PAGE = 50;
// Rooms on air first, then those to come, then those over; newest first within each.
const ORDER = { live: 0, scheduled: 1, ended: 2 };
const REFRESH_MS = 30000;

if (document.body.dataset.view === 'live-rooms') rooms();

async function whoAmI() {
  if (!signedIn) return null;
  const res = await api('GET', '/me');
  return res.ok ? res.body : null;
}

async function rooms() {
  const list = document.getElementById('rooms');
  const more = document.getElementById('more');
  const form = document.getElementById('open-form');
  const me = await whoAmI();
  let items = new Map(); // id -> room, newest first
  let cursor = null;

  const owns = (room) => Boolean(me) && (me.role === 'staff' || me.id === room.streamer.id);

  async function act(room, step, button) {
    button.disabled = true;
    show('rooms-error', '');
    const res = await api('POST', `${roomPath(room.id)}/${step}`);
    button.disabled = false;
    if (!res.ok) {
      show('rooms-done', '');
      show('rooms-error', problemText(res.body));
      return;
    }
    items.set(room.id, res.body);
    draw();
    show('rooms-done', t(step === 'start' ? 'js.live.started' : 'js.live.ended_done', { title: room.title }));
  }

  function card(room) {
    const path = roomPath(room.id);
    const links = el('p', { class: 'row' }, el('a', { href: path, text: room.status === 'live' ? t('js.live.watch') : t('js.live.open_room') }));
    if (room.started_at) links.append(el('a', { href: `${path}/archive`, text: t('js.live.replay') }));
    if (owns(room)) links.append(el('a', { href: `${path}/moderation`, text: t('js.live.moderation') }));
    const node = el(
      'li',
      { class: `card room ${room.status}`, 'data-id': room.id },
      el('h2', {}, el('a', { href: path, text: room.title })),
      el(
        'p',
        { class: 'room-facts' },
        statusBadge(room.status),
        ' ',
        el('span', { class: 'streamer', text: t('js.live.by', { name: room.streamer.name }) }),
        room.status === 'live' ? el('span', { class: 'viewers', text: viewersText(room.viewer_count) }) : null,
      ),
      links,
    );
    const step = { scheduled: ['start', t('js.live.start')], live: ['end', t('js.live.end')] }[room.status];
    if (owns(room) && step) {
      const button = el('button', { type: 'button', class: step[0] === 'end' ? 'secondary' : null, text: step[1] });
      button.addEventListener('click', () => act(room, step[0], button));
      node.append(el('p', {}, button));
    }
    return node;
  }

  function draw() {
    const sorted = [...items.values()].sort((a, b) => ORDER[a.status] - ORDER[b.status]);
    list.replaceChildren(...(sorted.length ? sorted.map(card) : [el('li', { class: 'hint', text: t('js.live.no_rooms') })]));
  }

  // The first page again (`fresh`: rooms read before keep their place, new ones go on
  // top) or the next one.
  async function load(fresh) {
    const after = !fresh && cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const res = await api('GET', `/live?limit=${PAGE}${after}`);
    list.removeAttribute('aria-busy');
    if (!res.ok) {
      show('rooms-error', problemText(res.body));
      return;
    }
    if (fresh) {
      const known = items;
      items = new Map(res.body.items.map((room) => [room.id, room]));
      for (const [id, room] of known) if (!items.has(id)) items.set(id, room);
    } else for (const room of res.body.items) items.set(room.id, room);
    if (!fresh || !cursor) {
      cursor = res.body.next_cursor;
      more.hidden = !cursor;
    }
    draw();
  }

  form?.addEventListener('submit', async (event) => {
    event.preventDefault();
    const title = form.title.value.trim();
    if (!title) {
      form.title.focus();
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    const res = await api('POST', '/live', { title });
    button.disabled = false;
    if (!res.ok) {
      show('rooms-done', '');
      show('rooms-error', problemText(res.body));
      return;
    }
    form.title.value = '';
    items = new Map([[res.body.id, res.body], ...items]);
    draw();
    show('rooms-error', '');
    show('rooms-done', t('js.live.opened', { title: res.body.title }));
  });
  more.addEventListener('click', () => load(false));
  await load(true);
  setInterval(() => {
    if (document.visibilityState === 'visible') load(true);
  }, REFRESH_MS);
}
