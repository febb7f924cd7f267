// Shared by every page: the API client (session cookie + CSRF token), texts, yen and
// time formatting, error words from problem codes, the connection banner, and the cart
// and chat badges (header.js keeps the chat badge and the notification bell live).

const texts = JSON.parse(document.getElementById('texts')?.textContent || '{}');
const csrf = document.querySelector('meta[name="csrf-token"]')?.content || '';
export const lang = document.body.dataset.lang || 'ja';
export const signedIn = document.body.dataset.signedIn === 'true';

// The text of `key`, with `{name}` replaced by `values.name`.
export function t(key, values = {}) {
  const text = texts[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ''));
}

export function yen(amount) {
  const n = Math.trunc(Number(amount) || 0);
  const sign = n < 0 ? '-' : '';
  return `${sign}¥${Math.abs(n).toLocaleString('en-US')}`;
}

export function when(rfc3339) {
  if (!rfc3339) return '';
  return new Date(rfc3339).toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB');
}

// The words for a problem document: its code's text, or a general one.
export function problemText(problem) {
  const code = problem && problem.code;
  return (code && texts[`error.${code}`]) || t('error.unknown');
}

// What has lost the server (`api`, `socket`): the banner shows while anything has.
const lost = new Set();
export function connection(source, isLost) {
  if (isLost) lost.add(source);
  else lost.delete(source);
  const banner = document.getElementById('connection');
  if (banner) banner.hidden = lost.size === 0;
}

// Calls the API. Answers {ok, status, body}. A lost connection shows the banner and is
// tried again (every 1, 2, 4… up to 10 s) for reads, and for writes that carry an
// Idempotency-Key, since those are safe to send twice.
export async function api(method, path, body, headers = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', ...headers },
  };
  if (method !== 'GET') init.headers['X-CSRF-Token'] = csrf;
  if (body instanceof Blob) {
    init.headers['Content-Type'] = body.type || 'application/octet-stream';
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const retry = method === 'GET' || 'Idempotency-Key' in headers;
  let pause = 1000;
  for (;;) {
    try {
      const res = await fetch(`/api/v1${path}`, init);
      connection('api', false);
      const text = await res.text();
      let parsed = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = null;
      }
      return { ok: res.ok, status: res.status, body: parsed };
    } catch (error) {
      connection('api', true);
      if (!retry) return { ok: false, status: 0, body: { code: 'unknown' } };
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 10000);
    }
  }
}

// Makes an element from a tag, attributes and children (text is never parsed as HTML).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

// Reads `path` for the view in `node` (marked busy until then). On a refusal the node shows
// its words in place of the view (in an `item` element: `li` in a list) and the answer is
// null; otherwise the answer's body.
export async function loadInto(node, path, item = 'p') {
  const res = await api('GET', path);
  node.removeAttribute('aria-busy');
  if (res.ok) return res.body;
  node.replaceChildren(el(item, { class: 'error', role: 'alert', text: problemText(res.body) }));
  return null;
}

export function show(id, message) {
  const node = document.getElementById(id);
  if (node) node.textContent = message || '';
}

export async function refreshCartBadge(cart) {
  const badge = document.getElementById('cart-badge');
  if (!badge) return;
  let current = cart;
  if (!current) {
    const res = await api('GET', '/cart');
    if (!res.ok) return;
    current = res.body;
  }
  const count = current.items.reduce((sum, line) => sum + line.quantity, 0);
  badge.textContent = String(count);
  badge.setAttribute('aria-label', `${count} ${t('js.items')}`);
}

// Unread messages by chat, for the header's badge: read from the chat list, then kept up
// to date from the socket's `unread` frames (header.js).
const chatUnread = new Map();

function drawChatBadge() {
  const badge = document.getElementById('chat-badge');
  if (!badge) return;
  const total = [...chatUnread.values()].reduce((sum, n) => sum + n, 0);
  badge.textContent = String(total);
  badge.setAttribute('aria-label', t('js.chat.unread', { n: total }));
  badge.hidden = total === 0;
}

export function setChatUnread(chatId, count) {
  chatUnread.set(chatId, count);
  drawChatBadge();
}

// From `chats` (the first page of the chat list) or, without, from the API.
export async function refreshChatBadge(chats) {
  let items = chats;
  if (!items) {
    const res = await api('GET', '/chats?limit=100');
    if (!res.ok) return;
    items = res.body.items;
  }
  chatUnread.clear();
  for (const chat of items) chatUnread.set(chat.id, chat.unread);
  drawChatBadge();
}

if (signedIn) {
  refreshCartBadge();
  if (document.body.dataset.view !== 'chats') refreshChatBadge();
}
