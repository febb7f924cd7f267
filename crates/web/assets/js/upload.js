// The image upload flow (seed 001 §1), shared by my images and the post form. A file is
// checked here first (JPEG, PNG or WebP, 1 byte to 20 MiB), but the server is the judge:
// it is asked for an upload URL, the bytes are PUT there with exactly the headers it
// names, the upload is completed (the server then reads what arrived, and a file that is
// not what it was declared to be is refused, with why), and the image is read every
// second until its variants exist or it failed, for three minutes at most. The PUT goes
// by XMLHttpRequest, whose upload reports its progress (fetch's does not), and carries
// only those headers, no CSRF token: the URL's signature is the permission, on the
// embedded store (this server's signed endpoint) as on S3 (the bucket's presigned URL,
// on another origin, which would refuse a header it did not sign). Also what both pages
// show of an image: its thumbnail, its variants with their sizes, and the API's
// refusals in words.

import { api, el, lang, problemText, t } from './app.js';

export const TYPES = ['image/jpeg', 'image/png', 'image/webp'];
export const MAX_BYTES = 20 * 1024 * 1024;
const VARIANTS = ['thumbnail', 'medium', 'large'];
const POLL_MS = 1000;
const POLL_FOR_MS = 180000;

export function imagePath(id) {
  return `/images/${encodeURIComponent(id)}`;
}

// What the pages call an image: its title, else its file name.
export function imageName(image) {
  return image.title || image.filename;
}

// A URL from the API that a link or an image may use: a path of this site, or http(s).
export function safeUrl(url) {
  if (typeof url !== 'string') return null;
  if (url.startsWith('/') && !url.startsWith('//')) return url;
  return /^https?:\/\//i.test(url) ? url : null;
}

// 1.1 MB, 312.5 KB, 20 B (in units of 1024).
export function bytesText(count) {
  const bytes = Math.max(0, Number(count) || 0);
  const number = (value) => value.toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB', { maximumFractionDigits: 1 });
  if (bytes < 1024) return t('js.image.bytes_b', { n: bytes });
  if (bytes < 1024 * 1024) return t('js.image.bytes_kb', { n: number(bytes / 1024) });
  return t('js.image.bytes_mb', { n: number(bytes / (1024 * 1024)) });
}

export function pixelsText(width, height) {
  return t('js.image.pixels', { width, height });
}

export function variantName(name) {
  return t(`js.image.variant.${name}`);
}

// The words for a stored failure reason (its code when there are none for it).
export function failureText(reason) {
  const key = `js.image.failure.${reason}`;
  const text = t(key);
  if (text !== key) return text;
  return reason || t('js.image.unknown');
}

function fieldName(field) {
  const key = `js.field.${field}`;
  const text = t(key);
  return text === key ? field : text;
}

// The words for a refusal of the API: its code's words, then when to try again, or each
// refused field with the server's reason, or else the server's detail.
export function problemWords(problem) {
  const parts = [problemText(problem)];
  const errors = Array.isArray(problem?.errors) ? problem.errors : [];
  if (problem?.retry_after) {
    parts.push(t('js.upload.retry_after', { n: problem.retry_after }));
  } else if (errors.length) {
    for (const error of errors) {
      parts.push(error.field ? `${fieldName(error.field)}: ${error.message}` : String(error.message || ''));
    }
  } else if (problem?.detail) {
    parts.push(problem.detail);
  }
  return parts.join(' ');
}

// Why `file` is not sent at all, or null.
export function refusal(file) {
  const name = file.name;
  if (!TYPES.includes(file.type)) return t('js.upload.bad_type', { name });
  if (file.size === 0) return t('js.upload.empty', { name });
  if (file.size > MAX_BYTES) return t('js.upload.too_big', { name, size: bytesText(file.size) });
  return null;
}

// PUTs `file` as `ticket` says; `onProgress(fraction)` hears it go. Answers {ok} or
// {words}: the server's problem (this server's endpoint answers problem+json), else the
// status (a bucket answers XML).
function put(ticket, file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(ticket.method || 'PUT', ticket.url);
    for (const [name, value] of Object.entries(ticket.headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve({ ok: true });
        return;
      }
      let problem = null;
      try {
        problem = JSON.parse(xhr.responseText);
      } catch {
        problem = null;
      }
      resolve({ ok: false, words: problem?.code ? problemWords(problem) : t('js.upload.put_failed', { status: xhr.status }) });
    });
    for (const kind of ['error', 'timeout', 'abort']) {
      xhr.addEventListener(kind, () => resolve({ ok: false, words: t('js.upload.network') }));
    }
    xhr.send(file);
  });
}

// Reads image `id` every second while it is processing, three minutes at most, telling
// `onRead(image)` of each answer. Answers {image} once it is completed or failed,
// {pending: id} when it is still processing then, or {words} when the API refused.
export async function waitForImage(id, onRead = () => {}) {
  const until = Date.now() + POLL_FOR_MS;
  for (;;) {
    const res = await api('GET', imagePath(id));
    if (!res.ok) return { words: problemWords(res.body) };
    onRead(res.body);
    if (res.body.status !== 'processing') return { image: res.body };
    if (Date.now() >= until) return { pending: id };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// Uploads `file` and waits for its image, telling `onStep(step, value)` of `sending`
// (the fraction sent) and `processing` (the image's id). Answers as waitForImage does,
// or {words} when the file was refused on the way.
export async function uploadImage(file, onStep = () => {}) {
  const refused = refusal(file);
  if (refused) return { words: refused };
  const ticket = await api('POST', '/uploads/presigned-url', { filename: file.name, content_type: file.type, size: file.size });
  if (!ticket.ok) return { words: problemWords(ticket.body) };
  onStep('sending', 0);
  const sent = await put(ticket.body, file, (fraction) => onStep('sending', fraction));
  if (!sent.ok) return { words: sent.words };
  const completed = await api('POST', `/uploads/${encodeURIComponent(ticket.body.upload_id)}/complete`);
  if (!completed.ok) return { words: problemWords(completed.body) };
  onStep('processing', completed.body.image_id);
  return waitForImage(completed.body.image_id);
}

// An image's thumbnail once it has one, else where it stands in words.
export function thumbnail(image) {
  const thumb = (image.variants || []).find((variant) => variant.name === 'thumbnail');
  if (image.status === 'completed' && thumb) {
    return el('img', {
      class: 'thumb',
      src: safeUrl(thumb.url),
      width: thumb.width,
      height: thumb.height,
      alt: t('js.image.thumb_alt', { name: imageName(image) }),
      loading: 'lazy',
    });
  }
  return el('span', { class: `thumb-box ${image.status}`, text: t(`js.image.status.${image.status}`) });
}

// An image's variants, smallest first, each a link to itself with its pixels and bytes.
export function variantList(image) {
  const rank = (variant) => VARIANTS.indexOf(variant.name);
  const variants = [...(image.variants || [])].sort((a, b) => rank(a) - rank(b));
  return el(
    'ul',
    { class: 'variants', 'aria-label': t('js.image.variants') },
    variants.map((variant) =>
      el(
        'li',
        { 'data-variant': variant.name, 'data-width': variant.width, 'data-height': variant.height, 'data-bytes': variant.bytes },
        el('a', { href: safeUrl(variant.url), text: variantName(variant.name) }),
        ' ',
        el('span', { class: 'dims', text: pixelsText(variant.width, variant.height) }),
        ' · ',
        el('span', { class: 'bytes', text: bytesText(variant.bytes) }),
      ),
    ),
  );
}

function detailsLink(id) {
  return el('a', { href: imagePath(id), text: t('js.image.details') });
}

// The card of one upload: its name and size, the PUT's progress bar, where it stands, and
// once done its thumbnail and variants, or why not. `run()` uploads the file and answers
// the image (completed or failed) or null.
export function uploadItem(file) {
  const bar = el('progress', { max: '100', value: '0', 'aria-label': t('js.upload.progress', { name: file.name }) });
  const percent = el('span', { class: 'percent', 'aria-hidden': 'true', text: '0%' });
  const state = el('p', { class: 'upload-state', role: 'status', text: t('js.upload.preparing') });
  const result = el('div', { class: 'upload-result' });
  const node = el(
    'li',
    { class: 'card upload-item', 'data-state': 'preparing' },
    el('p', { class: 'upload-head' }, el('strong', { class: 'upload-name', text: file.name }), el('span', { class: 'hint', text: bytesText(file.size) })),
    el('p', { class: 'upload-bar' }, bar, percent),
    state,
    result,
  );
  const stage = (name, words) => {
    node.dataset.state = name;
    state.textContent = words;
    state.classList.toggle('spinner', name === 'processing');
    state.classList.toggle('error', name === 'refused' || name === 'failed');
  };
  const run = () => uploadImage(file, (step, value) => {
    if (step === 'sending') {
      if (node.dataset.state !== 'sending') stage('sending', t('js.upload.sending'));
      const whole = Math.round(value * 100);
      bar.value = whole;
      percent.textContent = `${whole}%`;
    } else if (step === 'processing') {
      node.dataset.imageId = value;
      stage('processing', t('js.upload.processing'));
    }
  }).then((outcome) => {
    if (outcome.words) {
      stage('refused', outcome.words);
      return null;
    }
    if (outcome.pending) {
      stage('pending', t('js.upload.still_processing'));
      result.append(detailsLink(outcome.pending));
      return null;
    }
    const { image } = outcome;
    if (image.status === 'completed') {
      stage('completed', t('js.upload.completed'));
      result.append(thumbnail(image), el('div', {}, variantList(image), detailsLink(image.id)));
    } else {
      stage('failed', t('js.upload.failed', { why: failureText(image.failure_reason) }));
    }
    return image;
  });
  return { node, run };
}
