// Images (seed 001 §1): the demo fan uploads a real photo on "My images" (sent slowly, so
// the progress bar is seen moving), sees it processing, then its three variants with
// their pixels and bytes; opens the large one (an image, within 1920 px); titles and tags
// it on its own page; finds it by tag and not by another format; attaches it to a post,
// whose card shows the medium size; and deletes the post and then the image, which asks
// first. In Japanese: a GIF is refused before anything is sent, a text file named .png
// by the server once it has arrived, with why, and the post form uploads an image of its
// own. The photos come from MATSURI_SAMPLE_IMAGES, else the shared folder beside the repo.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { apiFrom, base, demo, launch, look, noProblems, open, signIn } from '../lib.mjs';

const samples = process.env.MATSURI_SAMPLE_IMAGES || fileURLToPath(new URL('../../../shared/data/images/', import.meta.url));
const photo = join(samples, 'sunset_by_Aitzol_Berasategi.jpg');
// Processing a 12-megapixel photo takes a debug build a while.
const PROCESSED_MS = 120000;

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const { fan } = demo;

// Sends what the page uploads at `bytesPerSecond` (Chromium's network emulation).
async function slowUploads(page, bytesPerSecond) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: bytesPerSecond,
  });
  return async () => {
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await cdp.detach();
  };
}

// The variants an upload card or an image page lists: name, pixels and bytes.
function variantsOf(list) {
  return list.locator('li[data-variant]').evaluateAll((items) =>
    items.map((item) => ({
      name: item.dataset.variant,
      width: Number(item.dataset.width),
      height: Number(item.dataset.height),
      bytes: Number(item.dataset.bytes),
      text: item.textContent,
      href: item.querySelector('a').getAttribute('href'),
    })),
  );
}

function checkVariants(variants, original) {
  assert.deepEqual(
    variants.map((v) => v.name),
    ['thumbnail', 'medium', 'large'],
  );
  const [thumbnail, medium, large] = variants;
  assert.equal(thumbnail.width, 100);
  assert.equal(thumbnail.height, 100);
  assert.ok(Math.max(medium.width, medium.height) === 800, `medium ${medium.width}×${medium.height}`);
  assert.ok(Math.max(large.width, large.height) === 1920, `large ${large.width}×${large.height}`);
  // The aspect ratio of the original is kept (to a pixel).
  const ratio = original.width / original.height;
  assert.ok(Math.abs(large.width / large.height - ratio) < 0.01, 'large keeps the aspect ratio');
  for (const v of variants) {
    assert.ok(v.bytes > 0, v.name);
    assert.match(v.text, new RegExp(`${v.width}×${v.height}`));
    assert.match(v.text, /\d (B|KB|MB)$/);
    assert.match(v.href, new RegExp(`/images/[0-9a-f-]+/${v.name}\\.webp$`));
  }
}

// Waits for the image in the page's first <img> (or `selector`) to load; answers its size.
async function loaded(page, selector = 'img') {
  const img = page.locator(selector).first();
  await img.evaluate((node) => (node.complete ? null : new Promise((resolve) => node.addEventListener('load', resolve, { once: true }))));
  return img.evaluate((node) => ({ width: node.naturalWidth, height: node.naturalHeight }));
}

test('an upload goes up with its progress, is processed into three variants, is edited, attached to a post, and deleted', async () => {
  const { context, page } = await open(browser, { locale: 'en' });
  await signIn(page, fan, '/images', { redirected: true });
  await page.locator('#images:not([aria-busy])').waitFor();

  // What the progress bar shows, every time it moves.
  await page.evaluate(() => {
    window.progressSeen = [];
    new MutationObserver(() => {
      const bar = document.querySelector('#uploads progress');
      if (bar && window.progressSeen.at(-1) !== bar.value) window.progressSeen.push(bar.value);
    }).observe(document.getElementById('uploads'), { subtree: true, childList: true, characterData: true });
  });
  const fast = await slowUploads(page, 400 * 1024);
  await page.getByLabel('Choose files').setInputFiles(photo);
  const item = page.locator('#uploads li.upload-item').first();
  await item.locator('.upload-name', { hasText: 'sunset_by_Aitzol_Berasategi.jpg' }).waitFor();
  await item.locator('.upload-state', { hasText: 'Uploading…' }).waitFor();
  await page.waitForFunction(() => window.progressSeen.some((value) => value > 0 && value < 100));
  await look(page, 'en-images-uploading');
  await item.locator('.upload-state', { hasText: 'Processing…' }).waitFor();
  await fast();
  const seen = await page.evaluate(() => window.progressSeen);
  assert.equal(seen.at(-1), 100, `the bar ends full: ${seen}`);
  assert.ok(
    seen.every((value, i) => i === 0 || value >= seen[i - 1]),
    `the bar only moves forward: ${seen}`,
  );

  await page.locator('#uploads li.upload-item[data-state="completed"]').waitFor({ timeout: PROCESSED_MS });
  await item.locator('.upload-state', { hasText: 'Completed' }).waitFor();
  const id = await item.getAttribute('data-image-id');
  const image = await apiFrom(page, 'GET', `/images/${id}`);
  assert.equal(image.status, 200);
  assert.equal(image.body.status, 'completed');
  assert.deepEqual([image.body.width, image.body.height], [4272, 2848]);
  const variants = await variantsOf(item.locator('.variants'));
  checkVariants(variants, image.body);
  await loaded(page, '#uploads li.upload-item .thumb');

  // It joins the grid at the top, with its thumbnail, file name and format.
  const card = page.locator(`#images li.image-card[data-id="${id}"]`);
  await card.waitFor();
  assert.equal(await page.locator('#images li.image-card').first().getAttribute('data-id'), id);
  assert.match(await card.innerText(), /sunset_by_Aitzol_Berasategi\.jpg/);
  assert.match(await card.innerText(), /JPEG · 4272×2848 · 1\.1 MB/);
  assert.deepEqual(await loaded(page, `#images li[data-id="${id}"] img.thumb`), { width: 100, height: 100 });
  await look(page, 'en-images');

  // The large variant opens as an image of at most 1920 px.
  const large = variants.find((v) => v.name === 'large');
  const opened = page.waitForResponse((r) => r.url().endsWith(large.href));
  await item.getByRole('link', { name: 'Large' }).click();
  const answer = await opened;
  assert.equal(answer.status(), 200);
  assert.equal(answer.headers()['content-type'], 'image/webp');
  await page.waitForURL(`${base}${large.href}`);
  const size = await loaded(page);
  assert.ok(size.width > 0 && size.width <= 1920, `large is ${size.width} wide`);
  assert.equal(size.width, large.width);
  assert.equal(size.height, large.height);

  // Its page: the medium size, the variants, the details; a title and tags.
  await page.goto(`${base}/images/${id}`);
  await page.locator('#image-body .variants').waitFor();
  checkVariants(await variantsOf(page.locator('#image-body .variants')), image.body);
  const medium = await loaded(page, '#image-body .image-preview img');
  assert.equal(Math.max(medium.width, medium.height), 800);
  const details = await page.locator('#image-body dl.facts').innerText();
  assert.match(details, /File name\s+sunset_by_Aitzol_Berasategi\.jpg/);
  assert.match(details, /Original size\s+4272×2848/);
  assert.match(details, /Taken\s+/);
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByRole('textbox', { name: 'Title', exact: true }).fill('Sunset over the bay');
  await page.getByRole('textbox', { name: 'Tags', exact: true }).fill('sunset, sea , sunset');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#image-done', { hasText: 'Saved.' }).waitFor();
  await page.locator('#image-name', { hasText: 'Sunset over the bay' }).waitFor();
  assert.deepEqual(await page.locator('#image-body .tags li').allInnerTexts(), ['sunset', 'sea']);
  await look(page, 'en-image');

  // Found by its tag and its title, not among the PNGs.
  await page.getByRole('link', { name: 'Back to my images' }).click();
  await page.waitForURL(`${base}/images`);
  await card.waitFor();
  // A filter marks the grid busy at once (the click sends the form), until it is drawn.
  const filter = async () => {
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator('#images:not([aria-busy])').waitFor();
  };
  await page.getByLabel('Tag', { exact: true }).fill('sea');
  await filter();
  assert.ok(await card.isVisible(), 'found by its tag');
  const tagsShown = await page
    .locator('#images li.image-card')
    .evaluateAll((cards) => cards.map((c) => [...c.querySelectorAll('.tags li')].map((li) => li.textContent)));
  assert.ok(tagsShown.every((tags) => tags.includes('sea')), `only images tagged sea: ${JSON.stringify(tagsShown)}`);
  await page.getByLabel('Format').selectOption('png');
  await filter();
  assert.equal(await card.count(), 0);
  await page.locator('#images li.hint', { hasText: 'No images match.' }).waitFor();
  await page.getByRole('button', { name: 'Clear' }).click();
  await page.getByLabel('Title or file name').fill('over the bay');
  await filter();
  assert.match(await card.innerText(), /Sunset over the bay/);

  // Attached to a post: the feed shows its medium size.
  await page.goto(`${base}/posts`);
  const picker = page.getByLabel('One of my images');
  await picker.locator(`option[value="${id}"]`).waitFor({ state: 'attached' });
  await picker.selectOption(id);
  await page.locator('#post-image-preview:not([hidden])').waitFor();
  const words = `The sunset tonight ${Date.now()}`;
  await page.getByLabel("What's happening?").fill(words);
  await page.getByRole('button', { name: 'Post', exact: true }).click();
  const post = page.locator('#posts li.post', { hasText: words });
  await post.waitFor();
  const postId = await post.getAttribute('data-id');
  const picture = post.locator('img.post-image');
  assert.equal(await picture.getAttribute('src'), `/images/${id}/medium.webp`);
  assert.equal(await picture.getAttribute('loading'), 'lazy');
  assert.equal(await picture.getAttribute('alt'), 'Image attached to the post by Demo Fan');
  const shown = await loaded(page, `#posts li[data-id="${postId}"] img.post-image`);
  assert.equal(Math.max(shown.width, shown.height), 800);
  assert.equal(await picker.inputValue(), '', 'the picker is cleared after the post');
  const stored = await apiFrom(page, 'GET', `/posts/${postId}`);
  assert.equal(stored.body.image_id, id);
  await look(page, 'en-posts-image');

  // The post goes first (the feed keeps no card whose image is gone), then the image,
  // which asks first.
  await post.getByRole('button', { name: 'Delete' }).click();
  await post.waitFor({ state: 'detached' });
  await page.goto(`${base}/images`);
  await card.waitFor();
  await card.getByRole('button', { name: 'Delete' }).click();
  await card.getByText('Delete “Sunset over the bay”? This cannot be undone.').waitFor();
  await card.getByRole('button', { name: 'Cancel' }).click();
  assert.ok(await card.isVisible(), 'cancel keeps it');
  await card.getByRole('button', { name: 'Delete' }).click();
  await card.getByRole('button', { name: 'Yes, delete' }).click();
  await card.waitFor({ state: 'detached' });
  await page.locator('#images-done', { hasText: 'Deleted “Sunset over the bay”.' }).waitFor();
  // Asked from outside the page (its console would log each 404) and past the browser's
  // cache, which may keep an immutable variant for a year; the context's cookie is the
  // fan's.
  assert.equal((await context.request.get(`${base}/api/v1/images/${id}`)).status(), 404);
  assert.equal((await context.request.get(`${base}${large.href}`)).status(), 404);

  noProblems(page);
  await context.close();
});

test('what is not an image is refused, by the page or by the server, with why; the post form uploads its own', async () => {
  const { context, page } = await open(browser, { locale: 'ja' });
  await signIn(page, fan, '/images');
  await page.locator('#images:not([aria-busy])').waitFor();
  const asked = [];
  page.on('request', (request) => {
    if (request.url().includes('/uploads/')) asked.push(request.url());
  });

  // A GIF never leaves the browser.
  const gif = Buffer.from('R0lGODlhAQABAAAAACw=', 'base64');
  await page.getByLabel('ファイルを選ぶ').setInputFiles({ name: 'anim.gif', mimeType: 'image/gif', buffer: gif });
  const refused = page.locator('#uploads li.upload-item[data-state="refused"]', { hasText: 'anim.gif' });
  await refused.locator('.upload-state', { hasText: 'アップロードできるのはJPEG・PNG・WebPの画像だけです' }).waitFor();
  assert.deepEqual(asked, []);

  // Text that calls itself a PNG goes up, and the server refuses it on complete.
  const text = Buffer.from('this is a shopping list, not a picture\n'.repeat(20));
  await page.getByLabel('ファイルを選ぶ').setInputFiles({ name: 'list.png', mimeType: 'image/png', buffer: text });
  const fake = page.locator('#uploads li.upload-item', { hasText: 'list.png' });
  await fake.locator('.upload-state', { hasText: '入力内容を確認してください。' }).waitFor();
  assert.equal(await fake.getAttribute('data-state'), 'refused');
  assert.match(await fake.locator('.upload-state').innerText(), /ファイル: is not a JPEG, PNG or WebP image/);
  assert.ok(asked.some((url) => url.endsWith('/complete')), 'the server judged it');
  assert.equal(await page.locator('#images li.image-card', { hasText: 'list.png' }).count(), 0);
  await look(page, 'ja-images-refused');

  // The post form's own upload: the image is chosen for the post when it is ready.
  await page.goto(`${base}/posts`);
  await page.getByLabel('新しくアップロード').setInputFiles(photo);
  const upload = page.locator('#post-uploads li.upload-item');
  await upload.locator('.upload-state', { hasText: '処理中…' }).waitFor({ timeout: PROCESSED_MS });
  await page.locator('#post-uploads li.upload-item[data-state="completed"]').waitFor({ timeout: PROCESSED_MS });
  const id = await upload.getAttribute('data-image-id');
  assert.equal(await page.getByLabel('自分の画像から選ぶ').inputValue(), id);
  const words = `夕焼け ${Date.now()}`;
  await page.getByLabel('いまどうしてる？').fill(words);
  await page.getByRole('button', { name: '投稿する' }).click();
  const post = page.locator('#posts li.post', { hasText: words });
  const picture = post.locator('img.post-image');
  await picture.waitFor();
  assert.equal(await picture.getAttribute('alt'), 'Demo Fanさんが投稿に添付した画像');
  await loaded(page, `#posts li.post:has-text("${words}") img.post-image`);
  await look(page, 'ja-posts-image');

  // Cleaning up: the post, then its image.
  const postId = await post.getAttribute('data-id');
  assert.equal((await apiFrom(page, 'DELETE', `/posts/${postId}`)).status, 204);
  assert.equal((await apiFrom(page, 'DELETE', `/images/${id}`)).status, 204);
  noProblems(page);
  await context.close();
});
