// A live room (seed 001 §3): the video's place, the comments of the last minutes and
// then each one as it comes (kept in order by id, each shown once however it arrives:
// the socket, the archive read to catch up after a loss, or, for one's own, the answer to
// posting it), a like button with the count on each, moved by the room's `comment_likes`
// frames, the top 10 beside, read again when likes change (at most every two seconds),
// and the comment form, whose refusals are told in words: the rate limit with the seconds
// to wait, spam by its reason, held for review, a ban with its end, a room not on air.
// The room's moderators (its streamer and staff) get a delete button on each comment and
// a link that takes its author to the ban form. How many comments the room left out of a
// storm (`comments_skipped`) is said discreetly under the list.

import { api, el, problemText, show, signedIn, t, when } from './app.js';
import { airTime, commentNode, drawFacts, drawLikes, follow, likesText, loadRoom, roomId, roomPath } from './live.js';

// Comment cards kept on screen; older ones make room.
const SHOWN = 200;
// On opening, the comments of this last stretch of the live.
const RECENT_MS = 2 * 60 * 1000;
// Archive pages read at most to catch up.
const CATCH_UP_PAGES = 10;
// The top 10 is read again at most this often.
const TOP_EVERY_MS = 2000;
// The room's status and viewer count are read again this often.
const ROOM_EVERY_MS = 20000;
const MAX_TEXT = 200;

if (document.body.dataset.view === 'live-room') room();

async function whoAmI() {
  if (!signedIn) return null;
  const res = await api('GET', '/me');
  return res.ok ? res.body : null;
}

// Calls `run` at most once every `every` ms, and always once after the last call.
function throttle(run, every) {
  let last = -Infinity;
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      last = performance.now();
      run();
    }, Math.max(0, last + every - performance.now()));
  };
}

async function room() {
  const moderator = document.getElementById('room').dataset.moderator === 'true';
  const list = document.getElementById('comments');
  const scroller = document.getElementById('comment-box');
  const topList = document.getElementById('top');
  const form = document.getElementById('comment-form');
  const input = document.getElementById('comment-text');
  const send = form?.querySelector('button[type="submit"]');
  const [me, first] = await Promise.all([whoAmI(), loadRoom()]);
  if (!first) {
    list.removeAttribute('aria-busy');
    topList.removeAttribute('aria-busy');
    if (form) form.hidden = true;
    return;
  }
  let current = first;
  const shown = new Map(); // comment id -> {comment, node}
  const removed = new Set();
  const liked = new Set(); // what this visitor liked on this page
  let newest = '';
  let skipped = 0;
  let waitUntil = 0;
  let waitTimer = null;

  const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
  const toBottom = () => {
    scroller.scrollTop = scroller.scrollHeight;
  };
  const drawEmpty = () => {
    if (shown.size === 0) {
      if (!list.querySelector('.empty')) list.replaceChildren(el('li', { class: 'hint empty', text: t('js.live.no_comments') }));
    } else list.querySelector('.empty')?.remove();
  };

  function drawRoom(next) {
    current = next;
    drawFacts(next);
    const onAir = next.status === 'live';
    if (form) {
      input.disabled = !onAir;
      send.disabled = !onAir || Date.now() < waitUntil;
    }
    const words = { scheduled: t('js.live.not_started'), ended: t('js.live.ended') }[next.status] || '';
    // Said again only when it changes: the line is read out.
    if (document.getElementById('room-state').textContent !== words) show('room-state', words);
  }

  const refreshTop = throttle(async () => {
    const res = await api('GET', `${roomPath()}/top-comments`);
    topList.removeAttribute('aria-busy');
    if (!res.ok) return;
    const items = res.body.items.map((c) =>
      el(
        'li',
        { class: 'top-item', 'data-id': c.id },
        el('p', { class: 'comment-text', text: c.text }),
        el('p', { class: 'hint' }, `${c.user.name} · `, el('span', { class: 'likes', text: likesText(c.likes) })),
      ),
    );
    topList.replaceChildren(...(items.length ? items : [el('li', { class: 'hint', text: t('js.live.no_top') })]));
  }, TOP_EVERY_MS);

  function setLikes(id, likes) {
    const entry = shown.get(id);
    if (!entry) return;
    entry.comment.likes = likes;
    drawLikes(entry.node, likes, liked.has(id));
  }

  async function toggleLike(id) {
    if (!me) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    const entry = shown.get(id);
    const button = entry?.node.querySelector('button.like');
    if (!entry || button.disabled) return;
    show('comment-error', '');
    const like = !liked.has(id);
    const before = entry.comment.likes;
    if (like) liked.add(id);
    else liked.delete(id);
    setLikes(id, Math.max(0, before + (like ? 1 : -1)));
    button.disabled = true;
    const res = await api(like ? 'PUT' : 'DELETE', `/comments/${encodeURIComponent(id)}/like`);
    button.disabled = false;
    if (res.ok) {
      setLikes(id, res.body.likes);
      refreshTop();
      return;
    }
    if (like) liked.delete(id);
    else liked.add(id);
    setLikes(id, before);
    show('comment-error', t('js.live.like_failed', { why: problemText(res.body) }));
  }

  async function remove(id, button) {
    button.disabled = true;
    const res = await api('DELETE', `${roomPath()}/comments/${encodeURIComponent(id)}`);
    if (!res.ok) {
      button.disabled = false;
      show('comment-error', problemText(res.body));
      return;
    }
    gone(id);
    show('comment-done', t('js.live.removed'));
  }

  function gone(id) {
    removed.add(id);
    const entry = shown.get(id);
    if (entry) {
      entry.node.remove();
      shown.delete(id);
      drawEmpty();
    }
    if (topList.querySelector(`li[data-id="${CSS.escape(id)}"]`)) refreshTop();
  }

  // A comment reaching the page, placed by id (nearly always last), once.
  function arrive(comment) {
    if (shown.has(comment.id) || removed.has(comment.id)) return;
    const atBottom = nearBottom();
    const node = commentNode(comment, {
      mine: Boolean(me) && comment.user.id === me.id,
      liked: liked.has(comment.id),
      moderator,
      onLike: () => toggleLike(comment.id),
      onRemove: (button) => remove(comment.id, button),
    });
    shown.set(comment.id, { comment: { ...comment }, node });
    list.querySelector('.empty')?.remove();
    let next = null;
    for (let n = list.lastElementChild; n && n.dataset.id > comment.id; n = n.previousElementSibling) next = n;
    list.insertBefore(node, next);
    if (comment.id > newest) newest = comment.id;
    while (shown.size > SHOWN) {
      const oldest = list.firstElementChild;
      shown.delete(oldest.dataset.id);
      oldest.remove();
    }
    if (atBottom) toBottom();
  }

  // What came while the room was not followed: the recent stretch the first time, then
  // everything after the newest comment the page has.
  async function catchUp() {
    const from = newest ? `after=${encodeURIComponent(newest)}` : `from_ms=${Math.max(0, (airTime(current) ?? 0) - RECENT_MS)}`;
    let cursor = null;
    for (let page = 0; page < CATCH_UP_PAGES; page += 1) {
      const more = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await api('GET', `${roomPath()}/comments?${from}&limit=100${more}`);
      if (!res.ok) {
        show('comment-error', problemText(res.body));
        break;
      }
      for (const comment of res.body.items) arrive(comment);
      cursor = res.body.next_cursor;
      if (!cursor) break;
    }
    if (list.hasAttribute('aria-busy')) {
      list.removeAttribute('aria-busy');
      toBottom();
    }
    drawEmpty();
  }
  let catching = Promise.resolve();
  // Followed afresh: the comments missed, the top 10 and the room as it now stands (this
  // page is one more viewer).
  const ready = () => {
    catching = catching.finally(catchUp);
    refreshTop();
    api('GET', roomPath()).then((res) => res.ok && drawRoom(res.body));
  };

  function startWaiting(seconds) {
    waitUntil = Date.now() + Math.max(1, Math.ceil(Number(seconds) || 1)) * 1000;
    show('comment-error', t('js.live.rate_limited', { n: Math.ceil((waitUntil - Date.now()) / 1000) }));
    const label = t('js.live.send');
    clearTimeout(waitTimer);
    const tick = () => {
      const rest = waitUntil - Date.now();
      if (rest > 0) {
        send.disabled = true;
        send.textContent = `${label} (${Math.ceil(rest / 1000)})`;
        waitTimer = setTimeout(tick, rest % 1000 || 1000);
        return;
      }
      send.textContent = label;
      send.disabled = current.status !== 'live';
      show('comment-error', '');
    };
    tick();
  }

  function refused(problem) {
    const body = problem || {};
    const spam = {
      ng_word: t('js.live.spam_ng_word'),
      repeated: t('js.live.spam_repeated'),
      classifier: t('js.live.spam_classifier'),
    };
    if (body.code === 'rate_limited') startWaiting(body.retry_after);
    else if (body.code === 'spam_detected') show('comment-error', spam[body.reason] || spam.classifier);
    else if (body.code === 'banned') {
      show('comment-error', body.until ? t('js.live.banned_until', { until: when(body.until) }) : t('js.live.banned'));
    } else if (body.code === 'live_not_active') {
      show('comment-error', t('js.live.not_active'));
      api('GET', roomPath()).then((res) => res.ok && drawRoom(res.body));
    } else show('comment-error', problemText(body));
  }

  form?.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (Date.now() < waitUntil) return;
    show('comment-error', '');
    show('comment-done', '');
    const text = input.value.trim();
    if (!text) {
      input.focus();
      return;
    }
    if ([...text].length > MAX_TEXT) {
      show('comment-error', t('js.live.too_long'));
      return;
    }
    send.disabled = true;
    const res = await api('POST', `${roomPath()}/comments`, { text });
    send.disabled = current.status !== 'live';
    if (res.status === 201) {
      input.value = '';
      arrive(res.body);
      toBottom();
    } else if (res.status === 202) {
      input.value = '';
      show('comment-done', t('js.live.held'));
    } else refused(res.body);
    input.focus();
  });

  follow(
    roomId,
    {
      comment: arrive,
      comment_likes: (frame) => {
        setLikes(frame.comment_id, frame.likes);
        refreshTop();
      },
      comment_removed: (frame) => gone(frame.comment_id),
      comments_skipped: (frame) => {
        skipped += Number(frame.count) || 0;
        const note = document.getElementById('skipped');
        note.textContent = t('js.live.skipped', { n: skipped });
        note.hidden = false;
      },
    },
    ready,
  );
  drawRoom(current);
  let polling = false;
  setInterval(async () => {
    if (polling) return;
    polling = true;
    const res = await api('GET', roomPath());
    polling = false;
    if (res.ok) drawRoom(res.body);
  }, ROOM_EVERY_MS);
}
