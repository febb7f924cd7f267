// What the live pages share (seed 001 §3): the room's API paths, its facts (title, status,
// streamer, viewers), a comment's card with its like button, times as offsets into the
// live, and `follow`, the room's frames as they come. Signed in, they come over the page's
// one socket (realtime.js) subscribed to `live:<id>`, subscribed again whenever the socket
// comes back; signed out, over the room's server-sent event stream, which needs no
// account and resumes by itself after a loss.

import { api, connection, el, lang, problemText, signedIn, t } from './app.js';
import * as socket from './realtime.js';

export const roomId = document.getElementById('room')?.dataset.id || '';
const pageTitle = document.title;

export function roomPath(id = roomId) {
  return `/live/${encodeURIComponent(id)}`;
}

// Milliseconds as `m:ss`, or `h:mm:ss` past the hour.
export function clock(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

function statusText(status) {
  const words = {
    live: t('js.live.status_live'),
    scheduled: t('js.live.status_scheduled'),
    ended: t('js.live.status_ended'),
  };
  return words[status] || status;
}

export function statusBadge(status) {
  return el('span', { class: `live-status ${status}`, text: statusText(status) });
}

export function viewersText(count) {
  return t(count === 1 ? 'js.live.viewers_one' : 'js.live.viewers_many', { n: count });
}

// How long the room has been (or was) on air, in milliseconds; null before it started.
export function airTime(room) {
  if (!room.started_at) return null;
  const end = room.ended_at ? Date.parse(room.ended_at) : Date.now();
  return Math.max(0, end - Date.parse(room.started_at));
}

// Fills the page's title and facts line with `room`.
export function drawFacts(room) {
  const title = document.getElementById('room-title');
  if (title) {
    title.textContent = room.title;
    title.removeAttribute('aria-busy');
  }
  document.title = `${room.title} · ${pageTitle}`;
  const facts = document.getElementById('room-facts');
  if (!facts) return;
  facts.removeAttribute('aria-busy');
  facts.replaceChildren(
    statusBadge(room.status),
    ' ',
    el('span', { class: 'streamer', text: t('js.live.by', { name: room.streamer.name }) }),
    room.status === 'live' ? el('span', { class: 'viewers', text: viewersText(room.viewer_count) }) : null,
  );
}

// Reads the room; on a refusal the facts line says why and the answer is null.
export async function loadRoom() {
  const res = await api('GET', roomPath());
  if (res.ok) return res.body;
  const title = document.getElementById('room-title');
  title?.removeAttribute('aria-busy');
  const facts = document.getElementById('room-facts');
  facts?.removeAttribute('aria-busy');
  facts?.replaceChildren(el('span', { class: 'error', role: 'alert', text: problemText(res.body) }));
  return null;
}

export function likesText(count) {
  return t(count === 1 ? 'js.live.likes_one' : 'js.live.likes_many', { n: count });
}

// A comment's card: who, when into the live, the text, and its actions: a like button
// with the count (`liked`: pressed; `onLike()` when clicked; none with `readOnly`) and, for
// a moderator, delete (`onRemove()`) and, on someone else's comment, a ban link.
export function commentNode(comment, { mine = false, liked = false, readOnly = false, moderator = false, onLike, onRemove } = {}) {
  const actions = el('p', { class: 'comment-actions' });
  if (readOnly) {
    actions.append(el('span', { class: 'hint likes', text: likesText(comment.likes) }));
  } else {
    const like = el(
      'button',
      { type: 'button', class: 'like small', 'aria-pressed': String(liked) },
      el('span', { class: 'heart', 'aria-hidden': 'true', text: '♥' }),
      el('span', { class: 'visually-hidden', text: t('js.live.like') }),
      ' ',
      el('span', { class: 'count', text: String(comment.likes) }),
    );
    like.addEventListener('click', () => onLike?.());
    actions.append(like);
  }
  if (moderator) {
    const remove = el('button', { type: 'button', class: 'secondary small remove', text: t('js.live.remove') });
    remove.addEventListener('click', () => onRemove?.(remove));
    actions.append(remove);
    if (!mine) {
      const ban = new URLSearchParams({ ban: comment.user.id, name: comment.user.name });
      actions.append(el('a', { class: 'ban-link', href: `${roomPath(comment.live_id)}/moderation?${ban}`, text: t('js.live.ban') }));
    }
  }
  return el(
    'li',
    { class: mine ? 'comment mine' : 'comment', 'data-id': comment.id, 'data-user': comment.user.id },
    el(
      'p',
      { class: 'comment-head' },
      el('span', { class: 'who', text: mine ? t('js.live.you') : comment.user.name }),
      el('time', { class: 'at', datetime: comment.created_at, title: new Date(comment.created_at).toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB'), text: clock(comment.offset_ms) }),
    ),
    el('p', { class: 'comment-text', text: comment.text }),
    actions,
  );
}

// Shows a new count on a comment card drawn by `commentNode`.
export function drawLikes(node, likes, liked) {
  const like = node.querySelector('button.like');
  if (!like) return;
  if (liked !== undefined) like.setAttribute('aria-pressed', String(liked));
  like.querySelector('.count').textContent = String(likes);
}

// Hands the room's frames to `handlers[frame.type]`, and calls `ready()` each time the
// room is followed afresh (first, and after each loss), when what came meanwhile is to be
// read from the archive.
export function follow(id, handlers, ready) {
  const dispatch = (frame) => {
    if (frame.live_id && frame.live_id !== id) return;
    handlers[frame.type]?.(frame);
  };
  if (!signedIn) {
    const stream = new EventSource(`/api/v1${roomPath(id)}/stream`);
    stream.addEventListener('open', () => {
      connection('stream', false);
      ready();
    });
    stream.addEventListener('error', () => connection('stream', true));
    stream.addEventListener('message', (event) => {
      try {
        dispatch(JSON.parse(event.data));
      } catch {
        // Not a frame: nothing to show.
      }
    });
    window.addEventListener('pagehide', () => stream.close());
    return;
  }
  const topic = `live:${id}`;
  const subscribe = () => socket.send({ type: 'subscribe', topic });
  for (const type of Object.keys(handlers)) socket.on(type, dispatch);
  socket.on('subscribed', (frame) => {
    if (frame.topic === topic) ready();
  });
  // The socket may be open already (the header's badges start it): subscribe now, or
  // when it opens.
  socket.on('open', subscribe);
  if (!subscribe()) socket.start();
}
