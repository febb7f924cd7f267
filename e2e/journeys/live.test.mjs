// Live comments (seed 001 §3): two viewers and the streamer in the demo room; a comment
// from the fan reaches the other viewer live, once on the fan's own screen, and its like
// moves the count on every screen and the top 10; the streamer deletes it and it goes
// from both viewers' screens. The fan's 11th comment within a minute is refused with the
// seconds to wait, in words. On the moderation panel the streamer sets an NG word (the
// viewer's comment holding it is refused in words), bans the viewer from a comment's ban
// link (refused in words) and lifts the ban, and approves a comment the spam model held
// (it reaches the fan then). A streamer opens a room, goes on air, comments and ends it;
// its replay shows the comments as the scrubber passes them, and as it plays to the end.
// A visitor who is not signed in follows the room over the event stream, on a phone.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { apiFrom, base, demo, launch, look, noProblems, open, register, signIn, uniqueEmail } from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const { fan } = demo;
const streamer = { email: 'streamer@matsuri.localhost', password: 'matsuri-streamer' };
const DEMO_ROOM = 'Matsuri Live: opening night';

// What this run writes is marked, so a run again within a minute finds its own.
const tag = String(Date.now()).slice(-5);
// Nine comments the fan sends after the first, unlike each other (so none is a repeat).
// The default spam model passes each of them with any five-digit tag (checked for all
// 100,000): the journey is about the page, not about where the model draws its line.
const CHEERS = [
  'ギターソロすごい',
  '次の曲なにかな',
  '照明がきれい',
  'アンコール待ってます',
  '今日の衣装かわいい',
  'セトリ最高',
  'バンドの音が好き',
  'この曲大好き',
  '今夜来てよかった',
].map((cheer) => `${cheer} ${tag}`);

// A page's room, once its comments are read.
async function roomReady(page) {
  await page.locator('#comments:not([aria-busy])').waitFor();
  await page.locator('#top:not([aria-busy])').waitFor();
}

async function post(page, label, text) {
  const box = page.getByRole('textbox', { name: label });
  await box.fill(text);
  await box.press('Enter');
}

// The id of the demo room, from the rooms page, where the rooms on air come first.
async function demoRoomId(page) {
  const card = page.locator('#rooms li.room', { hasText: DEMO_ROOM });
  await card.waitFor();
  assert.equal(await card.getAttribute('class'), 'card room live');
  assert.equal(await page.locator('#rooms li.room').first().getAttribute('class'), 'card room live');
  return card.getAttribute('data-id');
}

test('a comment reaches the other viewer, the streamer deletes it, and refusals are told in words', async () => {
  const a = await open(browser, { locale: 'ja' });
  const b = await open(browser, { locale: 'en' });
  const s = await open(browser, { locale: 'en' });

  // The fan finds the rooms from the site's navigation.
  await signIn(a.page, fan, '/');
  await a.page.getByRole('navigation', { name: 'main' }).getByRole('link', { name: 'ライブ' }).click();
  await a.page.waitForURL(`${base}/live`);
  const roomId = await demoRoomId(a.page);
  await a.page.locator('#rooms li.room').first().getByRole('link', { name: '視聴する' }).waitFor();
  assert.equal(await a.page.locator('#open-form').count(), 0, 'a fan opens no rooms');
  await look(a.page, 'ja-live-rooms');
  const room = `/live/${roomId}`;
  await a.page.goto(`${base}${room}`);

  const bName = `Viewer ${tag}`;
  await register(b.page, { name: bName, email: uniqueEmail('live') });
  await b.page.goto(`${base}${room}`);
  const bMe = await apiFrom(b.page, 'GET', '/me');
  const bId = bMe.body.id;

  await signIn(s.page, streamer, room);
  for (const { page } of [a, b, s]) await roomReady(page);
  // Only the room's moderators have the way to its moderation panel.
  assert.equal(await a.page.locator(`a[href="${room}/moderation"]`).count(), 0);
  await s.page.locator(`a[href="${room}/moderation"]`).waitFor();

  // The fan comments: it shows at once, once, and reaches viewer B.
  const words = `今夜は最高！ ${tag}`;
  await post(a.page, 'コメントする', words);
  const mine = a.page.locator('#comments li.comment.mine', { hasText: words });
  await mine.waitFor();
  assert.equal(await a.page.getByRole('textbox', { name: 'コメントする' }).inputValue(), '');
  const commentId = await mine.getAttribute('data-id');
  const theirs = b.page.locator(`#comments li.comment[data-id="${commentId}"]`);
  await theirs.waitFor();
  assert.match(await theirs.innerText(), /Demo Fan/);
  assert.equal(await theirs.getByRole('button', { name: 'Delete' }).count(), 0, 'a viewer deletes nothing');

  // B likes it: pressed and counted at once; the frame moves the fan's count (after the
  // socket's copy of the comment, which must not have made a second card) and the top 10.
  const like = theirs.locator('button.like');
  await like.click();
  assert.equal(await like.getAttribute('aria-pressed'), 'true');
  await theirs.locator('button.like .count', { hasText: '1' }).waitFor();
  await mine.locator('button.like .count', { hasText: '1' }).waitFor();
  assert.equal(await a.page.locator(`#comments li[data-id="${commentId}"]`).count(), 1, 'shown once');
  await a.page.locator('#top li', { hasText: words }).waitFor();
  await look(a.page, 'ja-live-room');
  await look(b.page, 'en-live-room');

  // The streamer deletes it: gone from both viewers' screens and from the top 10.
  const moderated = s.page.locator(`#comments li.comment[data-id="${commentId}"]`);
  await moderated.getByRole('link', { name: 'Ban' }).waitFor();
  await look(s.page, 'en-live-room-moderator');
  await moderated.getByRole('button', { name: 'Delete' }).click();
  await s.page.locator('#comment-done', { hasText: 'The comment was deleted.' }).waitFor();
  await mine.waitFor({ state: 'detached' });
  await theirs.waitFor({ state: 'detached' });
  await a.page.locator('#top li', { hasText: words }).waitFor({ state: 'detached' });

  // The fan's 11th comment within the minute is refused, with the seconds to wait.
  for (const cheer of CHEERS) {
    await post(a.page, 'コメントする', cheer);
    await a.page.locator('#comments li.comment.mine', { hasText: cheer }).waitFor();
  }
  const onceMore = `もう一言だけ ${tag}`;
  await post(a.page, 'コメントする', onceMore);
  const limited = a.page.locator('#comment-error', { hasText: /コメントの送りすぎです。\d+秒後にまたコメントできます。/ });
  await limited.waitFor();
  await a.page.getByRole('button', { name: /^送信 \(\d+\)$/ }).waitFor();
  assert.equal(await a.page.getByRole('button', { name: /^送信/ }).isDisabled(), true);
  assert.equal(await a.page.locator('#comments li.comment', { hasText: onceMore }).count(), 0);
  await look(a.page, 'ja-live-rate-limited');

  // The streamer sets an NG word on the panel; B's comment holding it, in another form,
  // is refused in words.
  const hello = `Hello from viewer ${tag}`;
  await post(b.page, 'Write a comment', hello);
  const bComment = s.page.locator('#comments li.comment', { hasText: hello });
  await bComment.waitFor();
  await bComment.getByRole('link', { name: 'Ban' }).click();
  await s.page.waitForURL(new RegExp(`${room}/moderation\\?ban=${bId}`));
  await s.page.locator('#settings-form:not([aria-busy])').waitFor();
  await s.page.locator('#ban-user-hint', { hasText: `Banning ${bName}.` }).waitFor();
  assert.equal(await s.page.getByLabel('User id', { exact: true }).inputValue(), bId);
  await s.page.getByLabel('NG words (one a line)').fill('ナイフ');
  await s.page.getByRole('button', { name: 'Save' }).click();
  await s.page.locator('#mod-done', { hasText: 'Saved.' }).waitFor();
  await post(b.page, 'Write a comment', 'ﾅｲﾌ');
  await b.page.locator('#comment-error', { hasText: 'Not sent: the comment holds a word this room does not allow.' }).waitFor();

  // Banned for a minute from the comment's link: refused with the ban's end; lifted: back.
  await s.page.locator('#ban-form').getByLabel('1 minute').check();
  await s.page.locator('#ban-form').getByRole('button', { name: 'Ban' }).click();
  await s.page.locator('#mod-done', { hasText: `${bName} is banned.` }).waitFor();
  await s.page.locator('#bans li', { hasText: `${bName} until` }).waitFor();
  await post(b.page, 'Write a comment', `Can I still talk? ${tag}`);
  await b.page.locator('#comment-error', { hasText: /^You are banned from commenting here until .+\.$/ }).waitFor();
  await look(s.page, 'en-live-moderation');
  await s.page.locator('#bans li', { hasText: bName }).getByRole('button', { name: 'Lift' }).click();
  await s.page.locator('#mod-done', { hasText: `The ban of ${bName} is lifted.` }).waitFor();
  const back = `Thanks for letting me back ${tag}`;
  await post(b.page, 'Write a comment', back);
  await b.page.locator('#comments li.comment.mine', { hasText: back }).waitFor();

  // A comment the spam model is unsure of is held; approved on the panel, it reaches the fan.
  await post(b.page, 'Write a comment', 'check out my channel too');
  await b.page.locator('#comment-done', { hasText: 'Your comment is held for review' }).waitFor();
  await s.page.getByRole('button', { name: 'Refresh' }).click();
  const held = s.page.locator('#review li.held', { hasText: bName }).filter({ hasText: 'check out my channel too' });
  await held.waitFor();
  await held.getByRole('button', { name: 'Approve' }).click();
  await s.page.locator('#mod-done', { hasText: 'Approved: it is shown to everyone.' }).waitFor();
  await held.waitFor({ state: 'detached' });
  await a.page.locator('#comments li.comment', { hasText: bName }).filter({ hasText: 'check out my channel too' }).waitFor();

  // The room is left as it was found.
  await s.page.getByLabel('NG words (one a line)').fill('');
  await s.page.getByRole('button', { name: 'Save' }).click();
  await s.page.locator('#mod-done', { hasText: 'Saved.' }).waitFor();

  for (const { context, page } of [a, b, s]) {
    noProblems(page);
    await context.close();
  }
});

test('a streamer opens a room, goes on air and ends it; the replay shows its comments in time', async () => {
  const { context, page } = await open(browser, { locale: 'ja' });
  await signIn(page, streamer, '/live');
  await page.locator('#rooms:not([aria-busy])').waitFor();
  const title = `リハーサル配信 ${Date.now()}`;
  await page.getByLabel('タイトル').fill(title);
  await page.getByRole('button', { name: '作成する' }).click();
  const card = page.locator('#rooms li.room', { hasText: title });
  await card.locator('.live-status', { hasText: '配信予定' }).waitFor();
  await card.getByRole('button', { name: '配信を始める' }).click();
  await card.locator('.live-status', { hasText: '配信中' }).waitFor();
  await look(page, 'ja-live-rooms-streamer');
  const roomId = await card.getAttribute('data-id');

  await card.getByRole('link', { name: '視聴する' }).click();
  await page.waitForURL(`${base}/live/${roomId}`);
  await roomReady(page);
  for (const text of ['一曲目はこれ', 'みんなありがとう']) {
    await post(page, 'コメントする', text);
    await page.locator('#comments li.comment.mine', { hasText: text }).waitFor();
  }

  await page.goto(`${base}/live`);
  await card.getByRole('button', { name: '配信を終了する' }).click();
  await card.locator('.live-status', { hasText: '配信終了' }).waitFor();
  await page.goto(`${base}/live/${roomId}`);
  await page.locator('#room-state', { hasText: '配信は終了しました' }).waitFor();
  assert.equal(await page.getByRole('textbox', { name: 'コメントする' }).isDisabled(), true);

  // The replay: nothing before the first comment's moment, both at the end.
  await page.goto(`${base}/live/${roomId}/archive`);
  const scrubber = page.getByLabel('再生位置');
  await page.locator('#scrubber:not([disabled])').waitFor();
  const end = Number(await scrubber.getAttribute('max'));
  assert.ok(end > 0, `the room was on air a while (${end} ms)`);
  await page.locator('#comments li.empty', { hasText: 'この時点までのコメントはありません。' }).waitFor();
  await scrubber.fill(String(end));
  await page.locator('#comments li.comment', { hasText: '一曲目はこれ' }).waitFor();
  await page.locator('#comments li.comment', { hasText: 'みんなありがとう' }).waitFor();
  await look(page, 'ja-live-replay');
  // Back to the start and played: the comments come back as their moments pass, and the
  // player stops by itself at the end.
  await scrubber.fill('0');
  await page.locator('#comments li.empty').waitFor();
  await page.getByRole('button', { name: '▶ 再生' }).click();
  await page.locator('#comments li.comment', { hasText: '一曲目はこれ' }).waitFor({ timeout: end + 10000 });
  await page.locator('#comments li.comment', { hasText: 'みんなありがとう' }).waitFor({ timeout: end + 10000 });
  await page.locator('#play[aria-pressed="false"]', { hasText: '▶ 再生' }).waitFor({ timeout: end + 10000 });
  const [at, length] = (await page.locator('#position').innerText()).split(' / ');
  assert.equal(at, length, 'played to the end');
  noProblems(page);
  await context.close();
});

test('a visitor who is not signed in follows the room on a phone', async () => {
  const v = await open(browser, { locale: 'en', viewport: { width: 375, height: 740 } });
  const s = await open(browser, { locale: 'en' });
  await v.page.goto(`${base}/live`);
  const roomId = await demoRoomId(v.page);
  await v.page.goto(`${base}/live/${roomId}`);
  await roomReady(v.page);
  await v.page.getByRole('link', { name: 'Sign in to comment and like' }).waitFor();
  assert.equal(await v.page.locator('#comment-form').count(), 0);

  // The streamer comments; the visitor's event stream brings it.
  await signIn(s.page, streamer, `/live/${roomId}`);
  await roomReady(s.page);
  const words = `Welcome, everyone ${tag}`;
  await post(s.page, 'Write a comment', words);
  await v.page.locator('#comments li.comment', { hasText: words }).waitFor();
  const overflow = await v.page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'the room fits a phone');
  await look(v.page, 'en-phone-live-room');
  for (const { context, page } of [v, s]) {
    noProblems(page);
    await context.close();
  }
});
