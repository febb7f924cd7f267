// The header's live badges, on every page of a signed-in visitor, from the page's one
// socket (realtime.js; the chat and posts pages use the same connection). The
// notification bell: the unread count on its badge and, beside it, the words of the newest
// unread notification ("A and 12 others liked your post"), linking to what it is about;
// a `notification` frame (a new one, or one gathering more likes) shows its words and
// reads the count again. The chat badge: the socket's `unread` frames, which take the
// place of notifications for a member who is online. Both are read again when the socket
// comes back after a loss. The notifications page and the chat list keep their own
// lists, and these badges with them.

import { api, el, refreshChatBadge, setChatUnread, signedIn, t } from './app.js';
import * as socket from './realtime.js';

// The words of a notification: gathered likes count the others (`actor_count` − 1).
export function noteText(note) {
  const name = note.actors[0]?.name || '';
  if (note.kind === 'post_liked') {
    const others = Math.max(0, note.actor_count - 1);
    if (others === 0) return t('js.note.liked', { name });
    if (others === 1) return t('js.note.liked_and_one', { name });
    return t('js.note.liked_and_many', { name, n: others });
  }
  if (note.kind === 'chat_message') return t('js.note.message', { name, text: note.text });
  return note.text;
}

// Only a path of this site is followed.
export function ownPath(url) {
  return typeof url === 'string' && url.startsWith('/') && !url.startsWith('//') ? url : null;
}

// Shows `count` unread on the badge; nothing unread clears the words beside it too.
export function setBell(count) {
  const badge = document.getElementById('bell-badge');
  if (!badge) return;
  badge.textContent = String(count);
  badge.dataset.count = String(count);
  badge.setAttribute('aria-label', t(count === 1 ? 'js.bell.unread_one' : 'js.bell.unread_many', { n: count }));
  badge.hidden = count === 0;
  if (count === 0) document.getElementById('bell-latest')?.replaceChildren();
}

// Shows the words of `note` beside the bell, a link to what it is about.
export function showNewest(note) {
  const href = ownPath(note.url) || '/notifications';
  document.getElementById('bell-latest')?.replaceChildren(el('a', { href, text: noteText(note) }));
}

// Reads the count again, and with `newest` shows the newest notification if unread.
async function refreshBell({ newest }) {
  const res = await api('GET', '/notifications?limit=1');
  if (!res.ok) return;
  setBell(res.body.unread_count);
  const top = res.body.items[0];
  if (newest && top && !top.read) showNewest(top);
}

const view = document.body.dataset.view;
if (signedIn) {
  if (view !== 'notifications') {
    // A frame is the notification as it now stands: its words at once, the count after.
    socket.on('notification', (frame) => {
      showNewest(frame);
      refreshBell({ newest: false });
    });
    refreshBell({ newest: true });
  }
  socket.on('unread', (frame) => setChatUnread(frame.chat_id, frame.count));
  socket.on('open', ({ comeback }) => {
    if (!comeback) return;
    if (view !== 'notifications') refreshBell({ newest: true });
    if (view !== 'chats') refreshChatBadge();
  });
  socket.start();
}
