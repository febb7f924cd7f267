// Chat (seed 001 §2): a fan starts a direct chat with a staff member by their id and
// writes; the staff member's list shows it unread at once, and the fan's message turns
// delivered, then read, without a reload, when the staff member opens it; the reply
// comes back live; older history loads as the conversation scrolls up; the notifications
// switch is there and says how it stands; and the pages on a phone.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { apiFrom, base, demo, launch, look, noProblems, open, signIn } from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const { fan, staff } = demo;

test('a direct chat: unread at once, ticks that turn read live, a reply, older history', async () => {
  const f = await open(browser, { locale: 'ja' });
  const s = await open(browser, { locale: 'en' });
  await signIn(f.page, fan, '/chat', { redirected: true });
  await signIn(s.page, staff, '/chat', { redirected: true });
  const staffMe = await apiFrom(s.page, 'GET', '/me');
  assert.equal(staffMe.status, 200);
  const staffId = staffMe.body.id;
  // Each page shows the caller's own id to give out.
  await s.page.locator('#my-id', { hasText: staffId }).waitFor();
  assert.equal(await s.page.evaluate(() => document.cookie.includes('matsuri_session')), false);
  await f.page.locator('#chats li').first().waitFor();
  await look(f.page, 'ja-chats');

  // The fan starts the chat by the staff member's id; a wrong id is refused in words.
  await f.page.getByLabel('相手のID').fill('not-an-id');
  await f.page.getByRole('button', { name: '始める' }).click();
  await f.page.locator('#start-error', { hasText: 'IDを確かめてください' }).waitFor();
  await f.page.getByLabel('相手のID').fill(staffId);
  await f.page.getByRole('button', { name: '始める' }).click();
  await f.page.waitForURL(new RegExp(`${base}/chat/[0-9a-f-]{36}$`));
  const chatId = f.page.url().split('/').pop();
  await f.page.locator('#chat-name', { hasText: 'Demo Staff' }).waitFor();

  const compose = f.page.getByRole('textbox', { name: 'メッセージを入力' });
  await compose.fill('こんにちは、スタッフさん');
  await compose.press('Enter');
  const mine = f.page.locator('#messages li.mine', { hasText: 'こんにちは、スタッフさん' });
  await mine.waitFor();
  assert.equal(await compose.inputValue(), '', 'Enter sends and clears the box');
  // The staff member's list page has the message, so it is delivered (✓✓) at once.
  await mine.locator('.tick[data-state="delivered"]').waitFor({ timeout: 10000 });

  // The staff member's list shows the new chat, unread, without a reload.
  const item = s.page.locator(`#chats li[data-id="${chatId}"]`);
  await item.locator('.badge[data-count="1"]').waitFor({ timeout: 10000 });
  assert.match(await item.innerText(), /Demo Fan/);
  assert.match(await item.innerText(), /こんにちは、スタッフさん/);
  await s.page.locator('#chat-badge', { hasText: '1' }).waitFor();
  await look(s.page, 'en-chats-unread');

  await item.getByRole('link', { name: 'Demo Fan' }).click();
  await s.page.waitForURL(`${base}/chat/${chatId}`);
  await s.page.locator('#messages li.theirs', { hasText: 'こんにちは、スタッフさん' }).waitFor();
  // Opened and on screen: read, and the fan's tick turns blue with the word, live.
  await mine.locator('.tick[data-state="read"]').waitFor({ timeout: 10000 });
  assert.match(await mine.locator('.tick').innerText(), /既読/);
  await s.page.locator('#chat-badge').waitFor({ state: 'hidden' });

  // Shift+Enter starts a new line; Enter sends.
  const reply = s.page.getByRole('textbox', { name: 'Write a message' });
  await reply.fill('Hello!');
  await reply.press('Shift+Enter');
  await reply.type('How can I help?');
  await reply.press('Enter');
  const answer = f.page.locator('#messages li.theirs', { hasText: 'How can I help?' });
  await answer.waitFor({ timeout: 10000 });
  assert.equal(await answer.locator('.text').innerText(), 'Hello!\nHow can I help?');
  await s.page.locator('#messages li.mine .tick[data-state="read"]').waitFor({ timeout: 10000 });
  await look(f.page, 'ja-chat');
  await look(s.page, 'en-chat');

  // Older history: thirty more messages, then the conversation opened afresh shows the
  // newest and loads the rest as it scrolls to the top.
  for (let i = 1; i <= 30; i += 1) {
    const sent = await apiFrom(f.page, 'POST', `/chats/${chatId}/messages`, {
      text: `履歴 ${i}`,
      client_msg_id: `history-${i}`,
    });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
  }
  // The message itself, by its text alone: "履歴 3" followed by a time such as 00:28
  // would match a looser filter.
  const last = (page, list = '#messages li') =>
    page.locator(list).filter({ has: page.locator('.text', { hasText: /^履歴 30$/ }) });
  await last(f.page).waitFor();
  await s.page.reload();
  const messages = s.page.locator('#messages li.msg');
  await last(s.page).waitFor();
  const firstPage = await messages.count();
  assert.ok(firstPage < 32, `the first page is not the whole history (${firstPage})`);
  await s.page.locator('#messages-box').evaluate((box) => {
    box.scrollTop = 0;
  });
  await s.page.locator('#messages li', { hasText: 'こんにちは、スタッフさん' }).waitFor({ timeout: 10000 });
  await s.page.locator('#history-state', { hasText: 'This is the start of the conversation.' }).waitFor();
  assert.equal(await messages.count(), 32);
  const order = await messages.locator('.text').allInnerTexts();
  assert.equal(order[0], 'こんにちは、スタッフさん');
  assert.equal(order.at(-1), '履歴 30');
  // The staff member has read them all: the fan's page says so, live.
  await last(f.page, '#messages li.mine').locator('.tick[data-state="read"]').waitFor();

  for (const { context, page } of [f, s]) {
    noProblems(page);
    await context.close();
  }
});

test('the notifications switch says how it stands; the chat pages on a phone', async () => {
  const { context, page } = await open(browser, { locale: 'ja', viewport: { width: 375, height: 740 } });
  await signIn(page, fan, '/chat', { redirected: true });
  const state = page.locator('#notify-state');
  await state.filter({ hasText: /./ }).waitFor();
  // Headless Chromium has no push service: the switch shows, or the page explains why not.
  if (await page.locator('#notify-box').isVisible()) {
    const toggle = page.getByRole('switch', { name: '離れているときに通知する' });
    assert.equal(await toggle.isChecked(), false);
    assert.match(await state.innerText(), /オフ|ブロック/);
  } else {
    assert.match(await state.innerText(), /受け取れない/);
  }
  await page.locator(`#chats li.chat-item`).first().waitFor();
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(await overflow(), false, 'the chat list fits a phone');
  await look(page, 'ja-phone-chats');
  await page.locator('#chats li.chat-item a').first().click();
  await page.locator('#messages li.msg').first().waitFor();
  assert.equal(await overflow(), false, 'a conversation fits a phone');
  await look(page, 'ja-phone-chat');
  noProblems(page);
  await context.close();
});
