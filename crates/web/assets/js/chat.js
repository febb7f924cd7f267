// Chat (seed 001 §2). The list: the caller's chats, most recent first, with their unread
// counts, kept live from the socket; starting a chat by the other people's ids (there is
// no directory of users, so each shows their own id to give out); the notifications
// switch. A conversation: the newest messages, older ones as it scrolls up; new ones as
// they come; sending with a client id, over the socket when it is open and else through
// the API, a message waiting (and sent again with the same id) until one of them takes
// it; ticks on one's own messages (sent ✓, delivered ✓✓, read ✓✓ in blue) from the
// history and then from the `delivered` and `read` frames; and the receipts the other
// way: `delivered` for every message that arrives, `read` while the conversation is on
// screen. The socket is the page's one (header.js keeps the header's badges live from it).

import { api, el, lang, loadInto, problemText, refreshChatBadge, setChatUnread, show, t } from './app.js';
import { notificationsSwitch } from './push.js';
import * as socket from './realtime.js';

const views = { chats, chat: conversation };
const view = document.body.dataset.view;
if (views[view]) views[view]();

const PAGE = 20;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function whoAmI() {
  const res = await api('GET', '/me');
  return res.ok ? res.body : null;
}

// A chat's name as the caller sees it: its title, else the other members' names.
function chatName(chat, me) {
  if (chat.title) return chat.title;
  const others = chat.members.filter((m) => m.id !== me.id).map((m) => m.name);
  return others.join(lang === 'ja' ? '、' : ', ') || t('js.chat.only_you');
}

function clock(rfc3339) {
  const at = new Date(rfc3339);
  const locale = lang === 'ja' ? 'ja-JP' : 'en-GB';
  const today = at.toDateString() === new Date().toDateString();
  const options = today
    ? { hour: '2-digit', minute: '2-digit' }
    : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
  return at.toLocaleString(locale, options);
}

function unreadBadge(count) {
  return el(
    'span',
    { class: 'badge', 'data-count': String(count) },
    el('span', { 'aria-hidden': 'true', text: String(count) }),
    el('span', { class: 'visually-hidden', text: t('js.chat.unread', { n: count }) }),
  );
}

// Receipts, at most one per chat and kind every quarter second, for the newest message
// asked for meanwhile (and the rest when the page goes away): over the socket when it is
// open, else through the API.
const receipts = new Map();
let receiptTimer = null;
function acknowledge(kind, chatId, msgId) {
  const key = `${kind} ${chatId}`;
  if ((receipts.get(key)?.msgId || '') >= msgId) return;
  receipts.set(key, { kind, chatId, msgId });
  if (!receiptTimer) receiptTimer = setTimeout(sendReceipts, 250);
}
socket.on('leaving', sendReceipts);

function sendReceipts() {
  clearTimeout(receiptTimer);
  receiptTimer = null;
  const due = [...receipts.values()];
  receipts.clear();
  for (const { kind, chatId, msgId } of due) {
    if (socket.send({ type: kind, chat_id: chatId, msg_id: msgId })) continue;
    const chat = `/chats/${encodeURIComponent(chatId)}`;
    if (kind === 'read') {
      api('POST', `${chat}/read`, { msg_id: msgId }).then((res) => {
        if (res.ok) setChatUnread(chatId, res.body.unread);
      });
    } else {
      api('POST', `${chat}/messages/${encodeURIComponent(msgId)}/delivered`);
    }
  }
}

// Every message from someone else that reaches this page is delivered.
function deliveredOnArrival(me) {
  socket.on('message', (m) => {
    if (m.sender_id !== me.id) acknowledge('delivered', m.chat_id, m.msg_id);
  });
}

async function chats() {
  const me = await whoAmI();
  const idNode = document.getElementById('my-id');
  idNode.removeAttribute('aria-busy');
  if (!me) return;
  idNode.textContent = me.id;
  document.getElementById('copy-id').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(me.id);
      show('copied', t('js.chat.copied'));
    } catch {
      getSelection().selectAllChildren(idNode);
      show('copied', t('js.chat.selected'));
    }
  });
  notificationsSwitch(me.id);
  startForm(me);

  const list = document.getElementById('chats');
  let items = [];
  const draw = () => {
    refreshChatBadge(items);
    if (items.length === 0) {
      list.replaceChildren(el('li', { class: 'hint', text: t('js.chat.none') }));
      return;
    }
    list.replaceChildren(...items.map((chat) => chatItem(chat, me)));
  };
  const load = async () => {
    const page = await loadInto(list, '/chats?limit=100', 'li');
    if (!page) return;
    items = page.items;
    for (const chat of items) socket.seen(chat.last_message?.id);
    draw();
  };
  deliveredOnArrival(me);
  socket.on('message', (m) => {
    const chat = items.find((c) => c.id === m.chat_id);
    if (!chat) {
      load();
      return;
    }
    if ((chat.last_message?.id || '') < m.msg_id) {
      chat.last_message = { id: m.msg_id, sender_id: m.sender_id, text: m.text, created_at: m.created_at };
      items = [chat, ...items.filter((c) => c !== chat)];
      draw();
    }
  });
  socket.on('unread', (frame) => {
    const chat = items.find((c) => c.id === frame.chat_id);
    if (!chat) return;
    chat.unread = frame.count;
    draw();
  });
  socket.on('open', ({ comeback }) => {
    if (comeback) load();
  });
  await load();
  socket.start();
}

function chatItem(chat, me) {
  const last = chat.last_message;
  const from = last && last.sender_id === me.id ? `${t('js.chat.you')}: ` : '';
  return el(
    'li',
    { class: chat.unread > 0 ? 'card chat-item unread' : 'card chat-item', 'data-id': chat.id },
    el(
      'p',
      { class: 'chat-head' },
      el('a', { href: `/chat/${encodeURIComponent(chat.id)}`, class: 'chat-name', text: chatName(chat, me) }),
      chat.unread > 0 ? unreadBadge(chat.unread) : null,
    ),
    el(
      'p',
      { class: 'hint chat-last' },
      last ? el('span', { class: 'preview', text: `${from}${last.text}` }) : t('js.chat.no_messages'),
      last ? el('time', { datetime: last.created_at, text: clock(last.created_at) }) : null,
    ),
  );
}

function startForm(me) {
  const form = document.getElementById('start-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    show('start-error', '');
    const ids = form.member_ids.value.split(/[\s,、]+/).filter(Boolean);
    if (ids.length === 0 || ids.some((id) => !UUID.test(id) || id.toLowerCase() === me.id)) {
      show('start-error', t('js.chat.members_invalid'));
      form.member_ids.focus();
      return;
    }
    const body = { member_ids: ids };
    const title = form.title.value.trim();
    if (title) body.title = title;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    const res = await api('POST', '/chats', body);
    button.disabled = false;
    if (res.ok) {
      location.assign(`/chat/${encodeURIComponent(res.body.id)}`);
      return;
    }
    const aboutMembers = res.body?.errors?.some((e) => e.field === 'member_ids');
    show('start-error', aboutMembers ? t('js.chat.members_invalid') : problemText(res.body));
  });
}

// A client id for a message: a UUID where the page may make one, else 128 random bits.
function clientMsgId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function conversation() {
  const box = document.getElementById('conversation');
  const chatId = box.dataset.id;
  const title = document.getElementById('chat-name');
  const list = document.getElementById('messages');
  const scroller = document.getElementById('messages-box');
  const form = document.getElementById('compose');
  const input = document.getElementById('compose-text');
  const olderButton = document.getElementById('older');
  const [me, found] = await Promise.all([whoAmI(), api('GET', `/chats/${encodeURIComponent(chatId)}`)]);
  title.removeAttribute('aria-busy');
  if (!me || !found.ok) {
    list.removeAttribute('aria-busy');
    show('chat-error', problemText(found.body));
    form.hidden = true;
    return;
  }
  const chat = found.body;
  title.textContent = chatName(chat, me);
  document.title = `${chatName(chat, me)} · ${document.title}`;
  const names = new Map(chat.members.map((m) => [m.id, m.name]));
  show('chat-members', t('js.chat.members', { names: chat.members.map((m) => m.name).join(lang === 'ja' ? '、' : ', ') }));
  setChatUnread(chat.id, chat.unread);
  const others = chat.members.filter((m) => m.id !== me.id).map((m) => m.id);

  // What each other member has (delivered) and has read, up to which message; and the
  // marks the history gives (every other member has or read up to there).
  const deliveredBy = new Map();
  const readBy = new Map();
  const floor = { delivered: '', read: '' };
  const everyone = (marks, id) => others.length > 0 && others.every((u) => (marks.get(u) || '') >= id);
  const stateOf = (m) => {
    if (m.id <= floor.read || everyone(readBy, m.id)) return 'read';
    if (m.id <= floor.delivered || everyone(deliveredBy, m.id)) return 'delivered';
    return 'sent';
  };

  const shown = new Map(); // msg id -> {message, node}
  const waiting = new Map(); // client_msg_id -> {message, node, via}
  let older = null;
  let loadingOlder = false;
  let newestFromOthers = '';
  let reportedRead = '';

  const ticks = () => ({
    sending: ['…', t('js.chat.sending')],
    failed: ['!', t('js.chat.failed')],
    sent: ['✓', t('js.chat.sent')],
    delivered: ['✓✓', t('js.chat.delivered')],
    read: ['✓✓', t('js.chat.read')],
  });
  function drawTick(node, state) {
    const tick = node.querySelector('.tick');
    if (!tick) return;
    const [marks, words] = ticks()[state];
    tick.className = `tick ${state}`;
    tick.dataset.state = state;
    const visible = state === 'read' || state === 'failed';
    tick.replaceChildren(
      el('span', { 'aria-hidden': 'true', text: marks }),
      el('span', { class: visible ? 'tick-word' : 'visually-hidden', text: words }),
    );
    if (state === 'failed') {
      const again = el('button', { type: 'button', class: 'link', text: t('js.chat.retry') });
      again.addEventListener('click', () => transmit(node.dataset.client));
      tick.append(' ', again);
    }
  }

  function messageNode(m) {
    const mine = m.sender_id === me.id;
    const who = mine ? t('js.chat.you') : names.get(m.sender_id) || '';
    const node = el(
      'li',
      { class: mine ? 'msg mine' : 'msg theirs', 'data-id': m.id || null, 'data-client': m.client_msg_id || null },
      el('p', { class: mine || chat.kind === 'direct' ? 'who visually-hidden' : 'who', text: who }),
      el('p', { class: 'text', text: m.text }),
      el('p', { class: 'meta' }, el('time', { datetime: m.created_at, text: clock(m.created_at) }), mine ? el('span', { class: 'tick' }) : null),
    );
    if (mine) drawTick(node, m.id ? stateOf(m) : 'sending');
    return node;
  }

  // Places a stored message's node by id, before any still waiting for the server.
  function place(node, id) {
    const next = [...list.children].find((n) => !n.dataset.id || n.dataset.id > id);
    list.insertBefore(node, next || null);
  }

  function learn(m) {
    if (m.sender_id === me.id) {
      if (m.read_at && m.id > floor.read) floor.read = m.id;
      if (m.delivered_at && m.id > floor.delivered) floor.delivered = m.id;
    } else if (m.id > newestFromOthers) newestFromOthers = m.id;
    socket.seen(m.id);
  }

  const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const toBottom = () => {
    scroller.scrollTop = scroller.scrollHeight;
  };

  function drawHistoryState() {
    olderButton.hidden = !older;
    show('history-state', older || shown.size === 0 ? '' : t('js.chat.beginning'));
    if (shown.size === 0 && waiting.size === 0) {
      list.replaceChildren(el('li', { class: 'hint empty', text: t('js.chat.no_messages') }));
    } else list.querySelector('.empty')?.remove();
  }

  // A page of history (newest first), above what is shown.
  function addHistory(items) {
    const height = scroller.scrollHeight;
    const top = scroller.scrollTop;
    for (const m of items) {
      if (shown.has(m.id)) continue;
      learn(m);
      const node = messageNode(m);
      shown.set(m.id, { message: m, node });
      place(node, m.id);
    }
    for (const { message, node } of shown.values()) drawTick(node, stateOf(message));
    drawHistoryState();
    scroller.scrollTop = top + (scroller.scrollHeight - height);
  }

  async function loadOlder() {
    if (loadingOlder || !older) return;
    loadingOlder = true;
    show('history-state', t('js.loading'));
    const res = await api('GET', `/chats/${encodeURIComponent(chatId)}/messages?before=${encodeURIComponent(older)}&limit=${PAGE}`);
    loadingOlder = false;
    if (!res.ok) {
      show('history-state', problemText(res.body));
      return;
    }
    older = res.body.next_cursor;
    addHistory(res.body.items);
  }

  // A message arriving (a frame, or the answer to a send): shown once, in order.
  function arrive(m) {
    if (shown.has(m.id)) return;
    const wasAtBottom = nearBottom();
    const own = m.sender_id === me.id && waiting.get(m.client_msg_id);
    if (own) {
      settle(m.client_msg_id, m.id, m.created_at);
      return;
    }
    learn(m);
    const node = messageNode(m);
    shown.set(m.id, { message: m, node });
    place(node, m.id);
    drawHistoryState();
    if (m.sender_id !== me.id) {
      show('chat-news', t('js.chat.news', { name: names.get(m.sender_id) || '', text: m.text }));
      markSeen();
    }
    if (wasAtBottom) toBottom();
  }

  // The server took a waiting message: it is stored as `msgId`.
  function settle(clientId, msgId, createdAt) {
    const pending = waiting.get(clientId);
    if (!pending) return;
    waiting.delete(clientId);
    if (shown.has(msgId)) {
      pending.node.remove();
      return;
    }
    const message = { ...pending.message, id: msgId, created_at: createdAt };
    pending.node.dataset.id = msgId;
    const time = pending.node.querySelector('time');
    time.dateTime = createdAt;
    time.textContent = clock(createdAt);
    shown.set(msgId, { message, node: pending.node });
    place(pending.node, msgId);
    socket.seen(msgId);
    drawTick(pending.node, stateOf(message));
  }

  async function transmit(clientId) {
    const pending = waiting.get(clientId);
    if (!pending) return;
    drawTick(pending.node, 'sending');
    const { text } = pending.message;
    if (socket.send({ type: 'send', chat_id: chatId, client_msg_id: clientId, text })) {
      pending.via = 'socket';
      return;
    }
    pending.via = 'api';
    const res = await api('POST', `/chats/${encodeURIComponent(chatId)}/messages`, { text, client_msg_id: clientId });
    if (res.ok) settle(clientId, res.body.id, res.body.created_at);
    else if (res.status === 0) pending.via = null;
    else {
      drawTick(pending.node, 'failed');
      show('chat-error', problemText(res.body));
    }
  }

  function sendText(text) {
    const clientId = clientMsgId();
    const message = { client_msg_id: clientId, sender_id: me.id, text, created_at: new Date().toISOString() };
    const node = messageNode(message);
    list.append(node);
    waiting.set(clientId, { message, node, via: null });
    drawHistoryState();
    toBottom();
    transmit(clientId);
  }

  // Read while on screen, else only delivered: up to the newest message from the others
  // (one's own messages are read already).
  function markSeen() {
    if (!newestFromOthers) return;
    if (document.visibilityState === 'visible') {
      if (newestFromOthers > reportedRead) {
        reportedRead = newestFromOthers;
        acknowledge('read', chatId, newestFromOthers);
      }
    } else acknowledge('delivered', chatId, newestFromOthers);
  }

  function receipt(marks, frame) {
    if (frame.chat_id !== chatId || frame.user_id === me.id) return;
    if ((marks.get(frame.user_id) || '') < frame.msg_id) marks.set(frame.user_id, frame.msg_id);
    for (const { message, node } of shown.values()) {
      if (message.sender_id === me.id) drawTick(node, stateOf(message));
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    show('chat-error', '');
    const text = input.value.trim();
    if (!text) return;
    if ([...text].length > 4000) {
      show('chat-error', t('js.chat.too_long'));
      return;
    }
    input.value = '';
    sendText(text);
    input.focus();
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  olderButton.addEventListener('click', loadOlder);
  scroller.addEventListener('scroll', () => {
    if (scroller.scrollTop < 80) loadOlder();
  });
  document.addEventListener('visibilitychange', markSeen);

  deliveredOnArrival(me);
  socket.on('message', (frame) => {
    if (frame.chat_id !== chatId) return;
    arrive({
      id: frame.msg_id,
      chat_id: frame.chat_id,
      sender_id: frame.sender_id,
      text: frame.text,
      client_msg_id: frame.client_msg_id,
      created_at: frame.created_at,
    });
  });
  socket.on('sent', (frame) => {
    if (frame.chat_id === chatId) settle(frame.client_msg_id, frame.msg_id, frame.created_at);
  });
  socket.on('delivered', (frame) => receipt(deliveredBy, frame));
  socket.on('read', (frame) => receipt(readBy, frame));
  // A refused send does not say which message: the API, asked again, does.
  socket.on('error', (frame) => {
    if (frame.in_reply_to !== 'send') return;
    for (const [clientId, pending] of waiting) if (pending.via === 'socket') transmit(clientId);
  });
  // Back after a loss: what waited goes again (the same client id is stored once).
  socket.on('open', () => {
    for (const [clientId, pending] of waiting) if (pending.via !== 'api') transmit(clientId);
  });

  const first = await api('GET', `/chats/${encodeURIComponent(chatId)}/messages?limit=${PAGE}`);
  list.removeAttribute('aria-busy');
  if (!first.ok) {
    show('chat-error', problemText(first.body));
    return;
  }
  older = first.body.next_cursor;
  addHistory(first.body.items);
  toBottom();
  if (chat.unread === 0) reportedRead = newestFromOthers;
  markSeen();
  socket.start();
}
