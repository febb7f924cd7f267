// Posts and notifications (seed 000 §2). The feed: newest first, more by the cursor,
// readable signed out; signed in, a compose box on top (with an image to attach: one of
// one's own processed images, or a new one uploaded there through upload.js), a like
// button on each post that turns (and changes the count) at once and rolls back with the
// server's words if it refuses, and a delete button on one's own posts. A post with an
// image shows its medium size, loaded as it comes into view. A post's page: the post and
// who liked it. The notifications: likes gathered per post ("A and 12 others liked your
// post") and chat messages ("A: text"), the unread ones marked until "mark all as read",
// kept live from the page's socket, and the header's bell with them.

import { api, el, loadInto, problemText, show, signedIn, t, when } from './app.js';
import { noteText, ownPath, setBell, showNewest } from './header.js';
import * as socket from './realtime.js';
import { imageName, imagePath, problemWords, safeUrl, uploadItem } from './upload.js';

const PAGE = 20;
const MAX_TEXT = 2000;

const views = { posts: feed, post: single, notifications };
const view = document.body.dataset.view;
if (views[view]) views[view]();

async function whoAmI() {
  if (!signedIn) return null;
  const res = await api('GET', '/me');
  return res.ok ? res.body : null;
}

function postPath(id) {
  return `/posts/${encodeURIComponent(id)}`;
}

function likesText(count) {
  return t(count === 1 ? 'js.post.likes_one' : 'js.post.likes_many', { n: count });
}

// A post's image: its medium size (public, as every variant is), or words once it is gone.
function postImage(post) {
  const picture = el('img', {
    class: 'post-image',
    src: `${imagePath(post.image_id)}/medium.webp`,
    loading: 'lazy',
    alt: t('js.post.image_alt', { name: post.author.name }),
  });
  picture.addEventListener('error', () => picture.replaceWith(el('p', { class: 'hint', text: t('js.post.image_gone') })), { once: true });
  return picture;
}

// The compose box's image: one of `me`'s processed images from the list, or one uploaded
// there, which the list then offers chosen. Answers what the post form needs: the chosen
// image's id (empty for none), whether an upload is under way, and a reset.
function attachPicker() {
  const select = document.getElementById('post-image');
  const preview = document.getElementById('post-image-preview');
  const input = document.getElementById('post-upload');
  const uploads = document.getElementById('post-uploads');
  const thumbs = new Map(); // image id -> thumbnail URL
  let uploading = 0;

  const option = (image) => {
    const thumb = image.variants.find((variant) => variant.name === 'thumbnail');
    thumbs.set(image.id, safeUrl(thumb?.url));
    return el('option', { value: image.id, text: imageName(image) });
  };
  const drawPreview = () => {
    const url = thumbs.get(select.value);
    preview.hidden = !url;
    if (url) preview.src = url;
    else preview.removeAttribute('src');
  };
  select.addEventListener('change', drawPreview);
  api('GET', '/images?limit=100').then((res) => {
    if (!res.ok) return;
    const ready = res.body.items.filter((image) => image.status === 'completed');
    select.append(...ready.map(option));
  });
  input.addEventListener('change', async () => {
    const [file] = input.files;
    input.value = '';
    if (!file) return;
    const { node, run } = uploadItem(file);
    uploads.replaceChildren(node);
    uploading += 1;
    const image = await run().catch(() => null);
    uploading -= 1;
    if (image?.status !== 'completed') return;
    select.querySelector(`option[value="${CSS.escape(image.id)}"]`)?.remove();
    select.querySelector('option[value=""]').after(option(image));
    select.value = image.id;
    drawPreview();
  });
  return {
    chosen: () => select.value,
    busy: () => uploading > 0,
    reset: () => {
      select.value = '';
      uploads.replaceChildren();
      drawPreview();
    },
  };
}

// A post's card. `onLiked()` follows each like or unlike the server confirms, `onGone(post)`
// a deletion.
function postNode(post, me, { onLiked = () => {}, onGone = () => {} } = {}) {
  const own = me && post.author.id === me.id;
  const button = el(
    'button',
    { type: 'button', class: 'like', 'aria-pressed': String(post.liked_by_me) },
    el('span', { class: 'heart', 'aria-hidden': 'true', text: '♥' }),
    ` ${t('js.post.like')}`,
  );
  const count = el('a', { class: 'likers-link', href: postPath(post.id), text: likesText(post.like_count) });
  const node = el(
    'li',
    { class: 'card post', 'data-id': post.id },
    el(
      'p',
      { class: 'post-head' },
      el('strong', { class: 'author', text: post.author.name }),
      el('time', { datetime: post.created_at, text: when(post.created_at) }),
    ),
    el('p', { class: 'post-text', text: post.text }),
    post.image_id ? postImage(post) : null,
    el('p', { class: 'post-actions' }, button, count),
  );

  // What the server last said, what is shown (at once, before it answers), and which
  // click is the latest: only the latest one's answer is drawn.
  let confirmed = { liked: post.liked_by_me, count: post.like_count };
  let shown = confirmed;
  let sequence = 0;
  const draw = () => {
    button.setAttribute('aria-pressed', String(shown.liked));
    count.textContent = likesText(shown.count);
  };
  button.addEventListener('click', async () => {
    if (!me) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    show('feed-error', '');
    const liked = !shown.liked;
    shown = { liked, count: Math.max(0, shown.count + (liked ? 1 : -1)) };
    draw();
    sequence += 1;
    const mine = sequence;
    const res = await api(liked ? 'PUT' : 'DELETE', `${postPath(post.id)}/like`);
    if (res.ok) confirmed = { liked: res.body.liked, count: res.body.like_count };
    if (mine !== sequence) return;
    shown = confirmed;
    draw();
    if (res.ok) onLiked();
    else show('feed-error', t('js.post.like_failed', { why: problemText(res.body) }));
  });

  if (own) {
    const remove = el('button', { type: 'button', class: 'secondary delete', text: t('js.post.delete') });
    remove.addEventListener('click', async () => {
      remove.disabled = true;
      const res = await api('DELETE', postPath(post.id));
      remove.disabled = false;
      if (res.ok) onGone(post);
      else show('feed-error', problemText(res.body));
    });
    node.querySelector('.post-actions').append(remove);
  }
  return node;
}

async function feed() {
  const me = await whoAmI();
  const list = document.getElementById('posts');
  const more = document.getElementById('more');
  let cursor = null;
  const empty = () => {
    if (!list.querySelector('li.post')) list.replaceChildren(el('li', { class: 'hint', text: t('js.post.none') }));
  };
  const gone = (post) => {
    list.querySelector(`li[data-id="${CSS.escape(post.id)}"]`)?.remove();
    empty();
  };
  const add = (items) => {
    for (const post of items) {
      if (list.querySelector(`li[data-id="${CSS.escape(post.id)}"]`)) continue;
      list.append(postNode(post, me, { onGone: gone }));
    }
  };
  const took = (page) => {
    list.querySelector('li.hint')?.remove();
    add(page.items);
    cursor = page.next_cursor;
    more.hidden = !cursor;
    empty();
  };
  // More, after what is shown: a refusal keeps the list and says why.
  more.addEventListener('click', async () => {
    more.disabled = true;
    const res = await api('GET', `/posts?limit=${PAGE}&cursor=${encodeURIComponent(cursor)}`);
    more.disabled = false;
    if (res.ok) took(res.body);
    else show('feed-error', problemText(res.body));
  });

  const form = document.getElementById('post-form');
  const input = document.getElementById('post-text');
  if (form && me) {
    const attach = attachPicker();
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      show('post-error', '');
      const text = input.value.trim();
      if (!text) {
        show('post-error', t('js.post.empty'));
        input.focus();
        return;
      }
      if ([...text].length > MAX_TEXT) {
        show('post-error', t('js.post.too_long'));
        return;
      }
      if (attach.busy()) {
        show('post-error', t('js.post.wait_upload'));
        return;
      }
      const button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      const imageId = attach.chosen();
      const res = await api('POST', '/posts', imageId ? { text, image_id: imageId } : { text });
      button.disabled = false;
      if (!res.ok) {
        show('post-error', problemWords(res.body));
        return;
      }
      input.value = '';
      attach.reset();
      list.querySelector('li.hint')?.remove();
      list.prepend(postNode(res.body, me, { onGone: gone }));
      show('post-error', '');
      input.focus();
    });
  }
  const first = await loadInto(list, `/posts?limit=${PAGE}`, 'li');
  if (first) took(first);
}

async function single() {
  const list = document.getElementById('posts');
  const likers = document.getElementById('likers');
  const more = document.getElementById('more');
  const id = list.dataset.id;
  const me = await whoAmI();
  const post = await loadInto(list, postPath(id), 'li');
  if (!post) {
    likers.removeAttribute('aria-busy');
    return;
  }
  let cursor = null;
  const likerNode = (like) =>
    el(
      'li',
      { 'data-id': like.user.id },
      el('span', { class: 'author', text: like.user.name }),
      ' ',
      el('time', { class: 'hint', datetime: like.liked_at, text: when(like.liked_at) }),
    );
  const load = async (fresh) => {
    more.disabled = true;
    const after = !fresh && cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page = await loadInto(likers, `${postPath(id)}/likes?limit=${PAGE}${after}`, 'li');
    more.disabled = false;
    if (!page) return;
    const nodes = page.items.map(likerNode);
    if (fresh) likers.replaceChildren(...nodes);
    else likers.append(...nodes);
    if (!likers.querySelector('li[data-id]')) likers.replaceChildren(el('li', { class: 'hint', text: t('js.post.no_likers') }));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  list.replaceChildren(
    postNode(post, me, {
      onLiked: () => load(true),
      onGone: () => location.assign('/posts'),
    }),
  );
  more.addEventListener('click', () => load(false));
  await load(true);
}

function noteNode(note) {
  const words = noteText(note);
  const href = ownPath(note.url);
  return el(
    'li',
    { class: note.read ? 'card note' : 'card note unread', 'data-id': note.id, 'data-kind': note.kind },
    el(
      'p',
      { class: 'note-head' },
      note.read ? null : el('span', { class: 'dot' }, el('span', { 'aria-hidden': 'true', text: '●' }), el('span', { class: 'visually-hidden', text: t('js.note.unread') })),
      href ? el('a', { href, class: 'note-text', text: words }) : el('span', { class: 'note-text', text: words }),
    ),
    note.kind === 'post_liked' && note.text ? el('p', { class: 'hint excerpt', text: note.text }) : null,
    el('p', { class: 'hint' }, el('time', { datetime: note.updated_at, text: when(note.updated_at) })),
  );
}

async function notifications() {
  const list = document.getElementById('notes');
  const more = document.getElementById('more');
  const readAll = document.getElementById('read-all');
  const items = new Map(); // id -> notification, in the order shown
  let unread = 0;
  let cursor = null;

  const draw = () => {
    const sorted = [...items.values()];
    list.replaceChildren(...(sorted.length ? sorted.map(noteNode) : [el('li', { class: 'hint', text: t('js.note.none') })]));
    readAll.disabled = unread === 0;
    setBell(unread);
    const newest = sorted.find((note) => !note.read);
    if (newest) showNewest(newest);
  };
  const load = async (fresh) => {
    more.disabled = true;
    const after = !fresh && cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page = await loadInto(list, `/notifications?limit=${PAGE}${after}`, 'li');
    more.disabled = false;
    if (!page) return;
    if (fresh) items.clear();
    for (const note of page.items) items.set(note.id, note);
    unread = page.unread_count;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    draw();
  };

  // A notification as it now stands goes to the top; the count comes from the API.
  socket.on('notification', (frame) => {
    const note = { ...frame };
    delete note.type;
    items.delete(note.id);
    const rest = [...items.entries()];
    items.clear();
    items.set(note.id, note);
    for (const [id, other] of rest) items.set(id, other);
    show('read-state', '');
    api('GET', '/notifications?limit=1').then((res) => {
      if (res.ok) unread = res.body.unread_count;
      draw();
    });
  });
  socket.on('open', ({ comeback }) => {
    if (comeback) load(true);
  });

  readAll.addEventListener('click', async () => {
    readAll.disabled = true;
    const res = await api('POST', '/notifications/read', {});
    if (!res.ok) {
      readAll.disabled = false;
      show('read-state', problemText(res.body));
      return;
    }
    unread = res.body.unread_count;
    for (const note of items.values()) note.read = true;
    draw();
    show('read-state', t('js.note.all_read'));
  });
  more.addEventListener('click', () => load(false));
  await load(true);
  socket.start();
}
