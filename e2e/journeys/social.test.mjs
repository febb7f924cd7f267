// Posts and notifications (seed 000 §2): a staff member writes a post; a fan likes it,
// the button and the count turning at once; the staff member's bell shows it unread
// without a reload and the notifications page says who; an unlike and a like again add
// no second notification; a third user's like gathers into the same one ("… and 1 other
// liked your post"), live; a refused like rolls back with the server's words; the
// likers list; marking all read; deleting one's own post; the feed signed out. The bell
// is live on every page, the shop's too, each page over one socket that the chat pages
// share.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  apiFrom,
  base,
  demo,
  launch,
  look,
  noProblems,
  open,
  register,
  signIn,
  uniqueEmail,
} from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const { fan, staff } = demo;

test('a like reaches the author live, gathers with the next one, and is told once per liker', async () => {
  const s = await open(browser, { locale: 'en' });
  const f = await open(browser, { locale: 'ja' });
  const v = await open(browser, { locale: 'en' });

  // The notifications page is private: a visitor signs in first.
  await s.page.goto(`${base}/notifications`);
  await s.page.waitForURL(`${base}/login?next=/notifications`);
  await signIn(s.page, staff, '/notifications');
  const staffMe = await apiFrom(s.page, 'GET', '/me');
  assert.equal(staffMe.status, 200);
  const staffName = staffMe.body.name;
  // Start from nothing unread, whatever the journeys before left.
  const cleared = await apiFrom(s.page, 'POST', '/notifications/read', {});
  assert.equal(cleared.status, 200);
  assert.equal(cleared.body.unread_count, 0);

  await signIn(f.page, fan, '/posts');
  const fanMe = await apiFrom(f.page, 'GET', '/me');
  const fanName = fanMe.body.name;
  assert.equal(fanName, 'Demo Fan');

  // The staff member writes a post; it tops the feed with a delete button.
  const words = `Today's rehearsal went well ${Date.now()}`;
  await s.page.goto(`${base}/posts`);
  await s.page.getByLabel("What's happening?").fill(words);
  await s.page.getByRole('button', { name: 'Post', exact: true }).click();
  const mine = s.page.locator('#posts li.post', { hasText: words });
  await mine.waitFor();
  assert.equal(await s.page.locator('#posts li.post').first().getAttribute('data-id'), await mine.getAttribute('data-id'));
  const postId = await mine.getAttribute('data-id');
  assert.equal(await s.page.getByLabel("What's happening?").inputValue(), '');
  await mine.getByRole('button', { name: 'Delete' }).waitFor();
  assert.match(await mine.innerText(), new RegExp(staffName));
  await s.page.locator('#bell-badge').waitFor({ state: 'hidden' });

  // The fan likes it: pressed and counted at once, and so it stays.
  await f.page.reload();
  const card = f.page.locator(`#posts li.post[data-id="${postId}"]`);
  await card.waitFor();
  assert.equal(await card.getByRole('button', { name: '削除' }).count(), 0, 'only the author may delete');
  const like = card.getByRole('button', { name: 'いいね' });
  assert.equal(await like.getAttribute('aria-pressed'), 'false');
  await like.click();
  assert.equal(await like.getAttribute('aria-pressed'), 'true');
  assert.equal(await card.locator('.likers-link').innerText(), 'いいね 1件');
  await look(f.page, 'ja-posts');

  // The author's bell shows it without a reload.
  await s.page.locator('#bell-badge[data-count="1"]').waitFor({ timeout: 10000 });
  assert.equal(await s.page.locator('#bell-badge').getAttribute('aria-label'), '1 unread notification');
  await look(s.page, 'en-posts');

  // Unlike and like again: one notification still, unread once.
  const answered = (method) =>
    f.page.waitForResponse((r) => r.url().endsWith(`/posts/${postId}/like`) && r.request().method() === method);
  const unliked = answered('DELETE');
  await like.click();
  assert.equal(await card.locator('.likers-link').innerText(), 'いいね 0件');
  await unliked;
  const liked = answered('PUT');
  await like.click();
  await liked;
  assert.equal(await like.getAttribute('aria-pressed'), 'true');
  await f.page.reload();
  await card.locator('button.like[aria-pressed="true"]').waitFor();
  assert.equal(await card.locator('.likers-link').innerText(), 'いいね 1件');

  await s.page.getByRole('link', { name: /^Notifications/ }).click();
  await s.page.waitForURL(`${base}/notifications`);
  const note = s.page.locator(`#notes li.note:has(a[href="/posts/${postId}"])`);
  await note.waitFor();
  assert.equal(await s.page.locator('#notes li.note.unread').count(), 1);
  assert.equal(await note.locator('.note-text').innerText(), `${fanName} liked your post`);
  assert.equal(await note.locator('a').getAttribute('href'), `/posts/${postId}`);
  await s.page.locator('#bell-badge[data-count="1"]').waitFor();

  // A signed-out visitor reads the feed, and a like asks them to sign in first.
  await v.page.goto(`${base}/posts`);
  const seen = v.page.locator(`#posts li.post[data-id="${postId}"]`);
  await seen.waitFor();
  assert.equal(await v.page.locator('#post-form').count(), 0);
  await look(v.page, 'en-posts-signed-out');
  await seen.getByRole('button', { name: 'Like' }).click();
  await v.page.waitForURL(`${base}/login?next=%2Fposts`);

  // A third user likes it: the same notification gathers them, live on the page.
  await register(v.page, { name: 'Third Liker', email: uniqueEmail('liker') });
  await v.page.goto(`${base}/posts`);
  const theirs = v.page.locator(`#posts li.post[data-id="${postId}"]`);
  await theirs.getByRole('button', { name: 'Like' }).click();
  await theirs.locator('.likers-link', { hasText: '2 likes' }).waitFor();
  await note.locator('.note-text', { hasText: 'Third Liker and 1 other liked your post' }).waitFor({ timeout: 10000 });
  assert.equal(await s.page.locator('#notes li.note.unread').count(), 1);
  await s.page.reload();
  await note.locator('.note-text', { hasText: 'Third Liker and 1 other liked your post' }).waitFor();
  await look(s.page, 'en-notifications');

  // The fan's notifications page, in Japanese.
  await f.page.goto(`${base}/notifications`);
  await f.page.locator('#notes li').first().waitFor();
  await look(f.page, 'ja-notifications');

  // Marking all read: nothing unread, the bell goes.
  await s.page.getByRole('button', { name: 'Mark all as read' }).click();
  await s.page.locator('#read-state', { hasText: 'All marked as read.' }).waitFor();
  assert.equal(await s.page.locator('#notes li.note.unread').count(), 0);
  await s.page.locator('#bell-badge').waitFor({ state: 'hidden' });
  await s.page.reload();
  await note.waitFor();
  assert.equal(await s.page.locator('#notes li.note.unread').count(), 0);

  // Who liked it, newest first, on the post's page.
  await note.getByRole('link').click();
  await s.page.waitForURL(`${base}/posts/${postId}`);
  await s.page.locator('#likers li', { hasText: 'Third Liker' }).waitFor();
  assert.deepEqual(await s.page.locator('#likers li .author').allInnerTexts(), ['Third Liker', fanName]);
  await look(s.page, 'en-post');

  for (const { context, page } of [s, f, v]) {
    noProblems(page);
    await context.close();
  }
});

test('the bell is live on every page, over the one socket each page holds', async () => {
  const a = await open(browser, { locale: 'en' });
  const one = await open(browser, { locale: 'en' });
  const two = await open(browser, { locale: 'en' });
  // The sockets each page of the author's opens, counted by the page itself.
  await a.context.addInitScript(() => {
    const Socket = window.WebSocket;
    window.socketsOpened = 0;
    window.WebSocket = class extends Socket {
      constructor(...args) {
        super(...args);
        window.socketsOpened += 1;
      }
    };
  });
  const sockets = () => a.page.evaluate(() => window.socketsOpened);
  const visit = async (path) => {
    const opened = a.page.waitForEvent('websocket');
    await a.page.goto(`${base}${path}`);
    await opened;
  };

  await register(a.page, { name: 'Bell Author', email: uniqueEmail('bell') });
  await visit('/posts');
  const made = await apiFrom(a.page, 'POST', '/posts', { text: `Ring the bell ${Date.now()}` });
  assert.equal(made.status, 201);
  const postId = made.body.id;
  await register(one.page, { name: 'First Ringer', email: uniqueEmail('ringer') });
  await register(two.page, { name: 'Second Ringer', email: uniqueEmail('ringer') });
  await a.page.locator('#bell-badge').waitFor({ state: 'hidden' });

  // The first like: on the feed, the badge comes up and says who, without a reload.
  assert.equal((await apiFrom(one.page, 'PUT', `/posts/${postId}/like`)).status, 200);
  await a.page.locator('#bell-badge[data-count="1"]').waitFor({ timeout: 10000 });
  const latest = a.page.locator('#bell-latest a');
  await latest.filter({ hasText: 'First Ringer liked your post' }).waitFor({ timeout: 10000 });
  assert.equal(await latest.getAttribute('href'), `/posts/${postId}`);
  assert.equal(await sockets(), 1, 'the feed holds one socket');

  // The shop's front page, which has no live view of its own: the bell reads where it
  // stands, and the second like gathers into it there, live.
  await visit('/');
  await latest.filter({ hasText: 'First Ringer liked your post' }).waitFor();
  assert.equal((await apiFrom(two.page, 'PUT', `/posts/${postId}/like`)).status, 200);
  await latest.filter({ hasText: 'Second Ringer and 1 other liked your post' }).waitFor({ timeout: 10000 });
  assert.equal(await a.page.locator('#bell-badge').getAttribute('data-count'), '1', 'gathered into one');
  await look(a.page, 'en-shop-bell');
  assert.equal(await sockets(), 1, 'the shop page holds one socket');

  // The chat list starts the socket again once it has read its chats: the same one.
  await visit('/chat');
  await a.page.locator('#chats:not([aria-busy])').waitFor();
  await latest.filter({ hasText: 'Second Ringer and 1 other liked your post' }).waitFor();
  assert.equal(await sockets(), 1, 'the chat page shares the one socket');

  // Marked read on the notifications page, the words go with the badge.
  await visit('/notifications');
  await latest.filter({ hasText: 'Second Ringer and 1 other liked your post' }).waitFor();
  await a.page.getByRole('button', { name: 'Mark all as read' }).click();
  await a.page.locator('#bell-badge').waitFor({ state: 'hidden' });
  assert.equal(await latest.count(), 0);
  assert.equal(await sockets(), 1, 'the notifications page holds one socket');

  for (const { context, page } of [a, one, two]) {
    noProblems(page);
    await context.close();
  }
});

test('a refused like rolls back with the words; an own post can be deleted', async () => {
  const { context, page } = await open(browser, { locale: 'ja' });
  await signIn(page, fan, '/posts');
  await page.getByLabel('いまどうしてる？').fill(`消す投稿 ${Date.now()}`);
  await page.getByRole('button', { name: '投稿する' }).click();
  const card = page.locator('#posts li.post').first();
  await card.getByRole('button', { name: '削除' }).waitFor();
  const id = await card.getAttribute('data-id');

  await page.route('**/api/v1/posts/*/like', (route) =>
    route.fulfill({
      status: 429,
      contentType: 'application/problem+json',
      body: JSON.stringify({ type: 'about:blank', title: 'Too Many Requests', status: 429, code: 'rate_limited' }),
    }),
  );
  const like = card.getByRole('button', { name: 'いいね' });
  await like.click();
  await page.locator('#feed-error', { hasText: 'いいねを反映できませんでした' }).waitFor();
  assert.match(await page.locator('#feed-error').innerText(), /少し待ってから/);
  assert.equal(await like.getAttribute('aria-pressed'), 'false');
  assert.equal(await card.locator('.likers-link').innerText(), 'いいね 0件');
  await page.unroute('**/api/v1/posts/*/like');

  await card.getByRole('button', { name: '削除' }).click();
  await page.locator(`#posts li[data-id="${id}"]`).waitFor({ state: 'detached' });
  const gone = await page.evaluate(async (id) => (await fetch(`/api/v1/posts/${id}`)).status, id);
  assert.equal(gone, 404);
  noProblems(page);
  await context.close();
});
