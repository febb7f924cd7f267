// A room's replay (seed 001 §3), as Niconico and YouTube replay a live's chat: a play /
// pause button and a scrubber over the room's time on air (from its start to its end, or
// to now while it is still on air, or to its last comment's moment if that is later),
// and beside the video's place the comments whose moment has passed, the newest last.
// The archive is read a minute of the live at a time (`from_ms` / `to_ms`, every page of
// it by `next_cursor`), the minute the scrubber is in and the next one, each once.

import { api, el, problemText, show, t } from './app.js';
import { airTime, clock, commentNode, drawFacts, loadRoom, roomPath } from './live.js';

// The stretch of the live read at once, in milliseconds.
const WINDOW_MS = 60 * 1000;
// Comments shown at most: the newest whose moment has passed.
const SHOWN = 50;
// Playback moves the scrubber this often.
const TICK_MS = 250;
// Pages of one window read at most.
const PAGES_PER_WINDOW = 50;

if (document.body.dataset.view === 'live-archive') replay();

async function replay() {
  const list = document.getElementById('comments');
  const playButton = document.getElementById('play');
  const scrubber = document.getElementById('scrubber');
  const room = await loadRoom();
  list.removeAttribute('aria-busy');
  if (!room) return;
  drawFacts(room);
  if (!room.started_at) {
    list.replaceChildren(el('li', { class: 'hint empty', text: t('js.live.replay_not_started') }));
    return;
  }

  const windows = new Map(); // window index -> comments of it, oldest first
  const loading = new Set(); // window indexes being read
  let duration = airTime(room);
  let position = 0;
  let playing = false;
  let lastTick = 0;
  let timer = null;
  let drawn = null; // the ids shown, to draw the list only when they change

  async function readWindow(index) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < PAGES_PER_WINDOW; page += 1) {
      const more = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const path = `${roomPath()}/comments?from_ms=${index * WINDOW_MS}&to_ms=${(index + 1) * WINDOW_MS}&limit=100${more}`;
      const res = await api('GET', path);
      if (!res.ok) {
        show('replay-state', problemText(res.body));
        return null;
      }
      items.push(...res.body.items);
      cursor = res.body.next_cursor;
      if (!cursor) break;
    }
    items.sort((a, b) => a.offset_ms - b.offset_ms || (a.id < b.id ? -1 : 1));
    return items;
  }

  // Reads window `index` unless it is read or being read; draws again once it is.
  function ensure(index) {
    if (index < 0 || windows.has(index) || loading.has(index)) return;
    show('replay-state', t('js.loading'));
    loading.add(index);
    readWindow(index).then((items) => {
      loading.delete(index);
      // A window the archive refused stays empty: its words are shown, and it is not
      // asked for again at every step of the playback.
      windows.set(index, items || []);
      if (!items) return;
      const last = items.at(-1);
      if (last && last.offset_ms > duration) setDuration(last.offset_ms);
      if (loading.size === 0) show('replay-state', '');
      draw();
    });
  }

  // The scrubber moves by whole seconds (its step), so its end is the second after the
  // last moment: dragged there, it shows everything.
  function setDuration(ms) {
    duration = Math.max(0, ms);
    scrubber.max = String(Math.ceil(duration / 1000) * 1000);
    drawClock();
  }

  function drawClock() {
    const words = `${clock(position)} / ${clock(duration)}`;
    show('position', words);
    show('clock', clock(position));
    scrubber.setAttribute('aria-valuetext', words);
  }

  // The comments whose moment has passed: from the scrubber's window and the one before.
  function draw() {
    const index = Math.floor(position / WINDOW_MS);
    ensure(index);
    ensure(index + 1);
    const passed = [...(windows.get(index - 1) || []), ...(windows.get(index) || [])].filter((c) => c.offset_ms <= position);
    const visible = passed.slice(-SHOWN);
    const key = visible.map((c) => c.id).join(' ');
    if (key === drawn) return;
    drawn = key;
    if (visible.length === 0) {
      list.replaceChildren(el('li', { class: 'hint empty', text: t('js.live.replay_none_yet') }));
      return;
    }
    list.replaceChildren(...visible.map((c) => commentNode(c, { readOnly: true })));
    const box = document.getElementById('comment-box');
    box.scrollTop = box.scrollHeight;
  }

  function moveTo(ms) {
    position = Math.min(Math.max(0, ms), duration);
    scrubber.value = String(position);
    drawClock();
    draw();
  }

  function setPlaying(on) {
    playing = on;
    playButton.setAttribute('aria-pressed', String(on));
    playButton.textContent = on ? t('js.live.pause') : t('js.live.play');
    clearInterval(timer);
    if (!on) return;
    if (position >= duration) moveTo(0);
    lastTick = performance.now();
    timer = setInterval(() => {
      const now = performance.now();
      const step = now - lastTick;
      lastTick = now;
      if (!room.ended_at) setDuration(Math.max(duration, airTime(room)));
      moveTo(position + step);
      if (position >= duration) setPlaying(false);
    }, TICK_MS);
  }

  playButton.addEventListener('click', () => setPlaying(!playing));
  scrubber.addEventListener('input', () => {
    if (!room.ended_at) setDuration(Math.max(duration, airTime(room)));
    moveTo(Number(scrubber.value));
  });
  setDuration(duration);
  scrubber.disabled = false;
  playButton.disabled = false;
  moveTo(0);
}
