// A room's moderation panel (seed 001 §3), for its streamer and staff: the room's
// settings (NG words and the innocent words that contain one, one a line; comments a
// minute per viewer; slow mode; links; comments shown a second per viewer); banning a
// viewer for a while or for good by their id (the room page's "ban" link beside a comment
// fills it in) and lifting a ban; and the review queue, the comments the spam model was
// unsure of, each approved (shown to every viewer then) or rejected. The API lists no
// bans, so the list here is of the bans made on this page.

import { api, el, problemText, show, t, when } from './app.js';
import { clock, drawFacts, loadRoom, roomPath } from './live.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PAGE = 20;
// New held comments are looked for this often while the panel is on screen.
const REVIEW_EVERY_MS = 15000;

if (document.body.dataset.view === 'live-moderation') panel();

function fail(problem) {
  show('mod-done', '');
  show('mod-error', problemText(problem));
}

function done(message) {
  show('mod-error', '');
  show('mod-done', message);
}

async function panel() {
  const room = await loadRoom();
  if (room) drawFacts(room);
  settings();
  review(bans());
}

function lines(text) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

async function settings() {
  const form = document.getElementById('settings-form');
  const fill = (s) => {
    form.ng_words.value = s.ng_words.join('\n');
    form.allowed_words.value = s.allowed_words.join('\n');
    form.rate_limit_per_minute.value = String(s.rate_limit_per_minute);
    form.slow_mode_seconds.value = String(s.slow_mode_seconds);
    form.display_per_second.value = String(s.display_per_second);
    form.links_allowed.checked = s.links_allowed;
  };
  const res = await api('GET', `${roomPath()}/moderation`);
  form.removeAttribute('aria-busy');
  if (!res.ok) {
    fail(res.body);
    return;
  }
  fill(res.body);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = {
      ng_words: lines(form.ng_words.value),
      allowed_words: lines(form.allowed_words.value),
      rate_limit_per_minute: Number(form.rate_limit_per_minute.value),
      slow_mode_seconds: Number(form.slow_mode_seconds.value),
      links_allowed: form.links_allowed.checked,
      display_per_second: Number(form.display_per_second.value),
    };
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    const saved = await api('PUT', `${roomPath()}/moderation`, body);
    button.disabled = false;
    if (saved.ok) {
      fill(saved.body);
      done(t('js.live.saved'));
      return;
    }
    // A rule broken: name the fields by their labels.
    const fields = (saved.body?.errors || []).map((e) => form.elements[e.field]?.labels?.[0]?.textContent || e.field);
    if (fields.length) {
      show('mod-done', '');
      show('mod-error', t('js.live.check_fields', { fields: [...new Set(fields)].join(', ') }));
    } else fail(saved.body);
  });
}

// The ban forms; answers `pick(id, name)`, which puts a viewer in the ban form.
function bans() {
  const form = document.getElementById('ban-form');
  const unbanForm = document.getElementById('unban-form');
  const list = document.getElementById('bans');
  const names = new Map(); // user id -> name, as the room page gave it
  const pick = (id, name) => {
    names.set(id, name);
    form.user_id.value = id;
    show('ban-user-hint', t('js.live.ban_picked', { name: name || id }));
  };
  const picked = new URLSearchParams(location.search);
  if (UUID.test(picked.get('ban') || '')) pick(picked.get('ban').toLowerCase(), picked.get('name') || '');
  const drawEmpty = () => {
    if (!list.querySelector('li[data-user]')) list.replaceChildren(el('li', { class: 'hint', text: t('js.live.no_bans') }));
  };

  async function lift(id) {
    const res = await api('DELETE', `${roomPath()}/bans/${encodeURIComponent(id)}`);
    if (!res.ok) {
      fail(res.body);
      return;
    }
    list.querySelector(`li[data-user="${CSS.escape(id)}"]`)?.remove();
    drawEmpty();
    done(t('js.live.unbanned', { name: names.get(id) || id }));
  }

  function banNode(ban) {
    const name = names.get(ban.user_id) || ban.user_id;
    const term = ban.until ? t('js.live.ban_until', { until: when(ban.until) }) : t('js.live.ban_for_good');
    const button = el('button', { type: 'button', class: 'secondary small', text: t('js.live.lift') });
    button.addEventListener('click', () => lift(ban.user_id));
    return el('li', { 'data-user': ban.user_id }, el('span', { class: 'who', text: name }), ` ${term} `, button);
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const id = form.user_id.value.trim().toLowerCase();
    if (!UUID.test(id)) {
      show('mod-done', '');
      show('mod-error', t('js.live.not_a_user'));
      form.user_id.focus();
      return;
    }
    const seconds = form.seconds.value;
    const body = seconds ? { user_id: id, seconds: Number(seconds) } : { user_id: id };
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    const res = await api('POST', `${roomPath()}/bans`, body);
    button.disabled = false;
    if (!res.ok) {
      fail(res.body);
      return;
    }
    list.querySelector(`li[data-user="${CSS.escape(id)}"]`)?.remove();
    list.querySelector('li.hint')?.remove();
    list.append(banNode(res.body));
    done(t('js.live.banned_done', { name: names.get(id) || id }));
  });

  unbanForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const id = unbanForm.user_id.value.trim().toLowerCase();
    if (!UUID.test(id)) {
      show('mod-done', '');
      show('mod-error', t('js.live.not_a_user'));
      unbanForm.user_id.focus();
      return;
    }
    await lift(id);
    unbanForm.user_id.value = '';
  });
  drawEmpty();
  return (id, name) => {
    pick(id, name);
    form.user_id.focus();
  };
}

// The review queue; `pickForBan(id, name)` puts a held comment's author in the ban form.
function review(pickForBan) {
  const list = document.getElementById('review');
  const more = document.getElementById('review-more');
  const refresh = document.getElementById('review-refresh');
  const shown = new Set();
  let cursor = null;

  const drawEmpty = () => {
    if (shown.size === 0) list.replaceChildren(el('li', { class: 'hint', text: t('js.live.review_empty') }));
    else list.querySelector('li.hint')?.remove();
  };

  async function decide(held, decision, node) {
    for (const button of node.querySelectorAll('button')) button.disabled = true;
    const res = await api('POST', `${roomPath()}/review/${encodeURIComponent(held.id)}`, { decision });
    if (!res.ok && res.status !== 404) {
      for (const button of node.querySelectorAll('button')) button.disabled = false;
      fail(res.body);
      return;
    }
    // 404: another moderator decided it first.
    node.remove();
    shown.delete(held.id);
    drawEmpty();
    if (res.ok) done(decision === 'approve' ? t('js.live.approved') : t('js.live.rejected'));
  }

  function heldNode(held) {
    const approve = el('button', { type: 'button', class: 'small', text: t('js.live.approve') });
    const reject = el('button', { type: 'button', class: 'secondary small', text: t('js.live.reject') });
    const ban = el('button', { type: 'button', class: 'link', text: t('js.live.ban') });
    ban.addEventListener('click', () => pickForBan(held.user.id, held.user.name));
    const node = el(
      'li',
      { class: 'card held', 'data-id': held.id },
      el(
        'p',
        { class: 'comment-head' },
        el('span', { class: 'who', text: held.user.name }),
        el('time', { class: 'at', datetime: held.created_at, text: clock(held.offset_ms) }),
        el('span', { class: 'hint', text: t('js.live.score', { n: Math.round(held.score * 100) }) }),
      ),
      el('p', { class: 'comment-text', text: held.text }),
      el('p', { class: 'comment-actions' }, approve, reject, ban),
    );
    approve.addEventListener('click', () => decide(held, 'approve', node));
    reject.addEventListener('click', () => decide(held, 'reject', node));
    return node;
  }

  // The first page again (`fresh`: new held comments join the list) or the next one.
  async function load(fresh) {
    const after = !fresh && cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const res = await api('GET', `${roomPath()}/review?limit=${PAGE}${after}`);
    list.removeAttribute('aria-busy');
    if (!res.ok) {
      fail(res.body);
      return;
    }
    for (const held of res.body.items) {
      if (shown.has(held.id)) continue;
      shown.add(held.id);
      const next = [...list.querySelectorAll('li[data-id]')].find((n) => n.dataset.id > held.id);
      list.insertBefore(heldNode(held), next || null);
    }
    // A look for new ones keeps the place the list was read up to.
    if (!fresh || !cursor) {
      cursor = res.body.next_cursor;
      more.hidden = !cursor;
    }
    drawEmpty();
  }

  refresh.addEventListener('click', () => load(true));
  more.addEventListener('click', () => load(false));
  setInterval(() => {
    if (document.visibilityState === 'visible') load(true);
  }, REVIEW_EVERY_MS);
  load(true);
}
