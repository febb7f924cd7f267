// The page's one WebSocket (`/api/v1/ws`; the session cookie authenticates it, and no
// script ever sees the token), shared by every module of the page: the header's badges
// start it on every page of a signed-in visitor, and a page that reads messages starts it
// again once it has read them. It connects, comes back after a loss (after 1, 2, 4… up
// to 15 s, a little at random so that a restarted server is not hit all at once, and at
// once when the browser is back online) with the connection banner up meanwhile, asks
// each time it opens, and at each later start, for every message after the newest one
// the page has seen (`resume`: what came while it was away, or before the page had read
// the API and listened), and hands each frame to the listeners of its type. The server
// pings; nothing here needs to.

import { connection } from './app.js';

const listeners = new Map();
let socket = null;
let everOpened = false;
let newestSeen = '';
let pause = 1000;
let retry = null;
let leaving = false;

// Calls `listener(frame)` for each frame of `type`, for `open` ({comeback}: whether this
// is an open after a loss), for `closed` (the socket is lost; it comes back by itself)
// and for `leaving` (the page is going away).
export function on(type, listener) {
  if (!listeners.has(type)) listeners.set(type, []);
  listeners.get(type).push(listener);
}

function emit(frame) {
  for (const listener of listeners.get(frame.type) || []) listener(frame);
}

// Notes a message the page has (from the API or a frame): the socket resumes after the
// newest (ids sort by time).
export function seen(msgId) {
  if (msgId && msgId > newestSeen) newestSeen = msgId;
}

// Sends a frame if the socket is open; answers whether it did.
export function send(frame) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

// Connects, unless the page is already connected or connecting; then asks for what came
// after the newest message seen, which an open in the meantime would not have.
export function start() {
  if (leaving) return;
  if (socket) {
    if (newestSeen) send({ type: 'resume', after: newestSeen });
    return;
  }
  clearTimeout(retry);
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const current = new WebSocket(`${scheme}${location.host}/api/v1/ws`);
  socket = current;
  current.addEventListener('open', () => {
    const comeback = everOpened;
    everOpened = true;
    pause = 1000;
    connection('socket', false);
    if (newestSeen) send({ type: 'resume', after: newestSeen });
    emit({ type: 'open', comeback });
  });
  current.addEventListener('message', (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type === 'message') seen(frame.msg_id);
    emit(frame);
  });
  current.addEventListener('close', () => {
    if (socket !== current) return;
    socket = null;
    if (leaving) return;
    emit({ type: 'closed' });
    connection('socket', true);
    retry = setTimeout(start, pause * (0.75 + Math.random() * 0.5));
    pause = Math.min(pause * 2, 15000);
  });
}

window.addEventListener('online', () => {
  if (!socket) start();
});
// Leaving the page closes the socket quietly, once the listeners of `leaving` have sent
// what they still owe; a page restored from the back-forward cache connects again.
window.addEventListener('pagehide', () => {
  emit({ type: 'leaving' });
  leaving = true;
  clearTimeout(retry);
  socket?.close(1000);
});
window.addEventListener('pageshow', (event) => {
  if (!event.persisted) return;
  leaving = false;
  start();
});
