// My images (seed 001 §1). The upload area: files dropped on it or picked go up one after
// another through upload.js, each with its own card (the PUT's progress, then
// "processing…", then its variants with their sizes, or why it failed), and join the
// grid below as they finish. The grid: one's images, newest first, filtered by text, tag,
// format and width, more by the cursor, each with its thumbnail, title, file name and
// tags, an edit form for the title and tags, and a delete that asks first. An image's
// page: the medium size (linking to the large one), the variants with their sizes, what
// is known of the original (taken_at as the camera's clock said it, so in UTC, which is
// how the server keeps it), the same edit and delete, and, while it is processing, read
// again until it is done.

import { api, el, lang, loadInto, show, t, when } from './app.js';
import {
  bytesText,
  failureText,
  imageName,
  imagePath,
  pixelsText,
  problemWords,
  safeUrl,
  thumbnail,
  uploadItem,
  variantList,
  waitForImage,
} from './upload.js';

const PAGE = 24;
const MAX_TAGS = 20;

const views = { images: gallery, image: single };
const view = document.body.dataset.view;
if (views[view]) views[view]();

// The tags typed in a field: separated by commas (ASCII or Japanese) or new lines, each
// once, in the order given.
function parseTags(text) {
  const tags = text
    .split(/[,、，\n]/)
    .map((tag) => tag.trim())
    .filter(Boolean);
  return [...new Set(tags)];
}

function tagList(tags) {
  if (!tags.length) return el('p', { class: 'hint', text: t('js.image.no_tags') });
  return el('ul', { class: 'tags', 'aria-label': t('js.image.tags') }, tags.map((tag) => el('li', { text: tag })));
}

// When a photo was taken: the camera's clock, which the server keeps as UTC.
function takenText(rfc3339) {
  if (!rfc3339) return t('js.image.unknown');
  return new Date(rfc3339).toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB', { timeZone: 'UTC' });
}

// The edit and delete of `image`, with their own form and question. `onSaved(image)`
// follows a change the server took, `onDeleted(image)` a deletion; `error` shows refusals.
function imageActions(image, { onSaved, onDeleted, error }) {
  const idOf = (what) => `${what}-${image.id}`;
  const edit = el('button', { type: 'button', class: 'secondary small', 'aria-expanded': 'false', 'aria-controls': idOf('edit'), text: t('js.image.edit') });
  const remove = el('button', { type: 'button', class: 'secondary small', text: t('js.image.delete') });
  const title = el('input', { id: idOf('title'), name: 'title', maxlength: '200', value: image.title || '' });
  const tags = el('input', { id: idOf('tags'), name: 'tags', value: image.tags.join(', '), 'aria-describedby': idOf('tags-hint') });
  const save = el('button', { type: 'submit', class: 'small', text: t('js.image.save') });
  const cancel = el('button', { type: 'button', class: 'secondary small', text: t('js.image.cancel') });
  const form = el(
    'form',
    { class: 'stack image-edit', id: idOf('edit'), hidden: true },
    el('label', { for: idOf('title'), text: t('js.image.title') }),
    title,
    el('label', { for: idOf('tags'), text: t('js.image.tags') }),
    tags,
    el('p', { class: 'hint', id: idOf('tags-hint'), text: t('js.image.tags_hint') }),
    el('p', { class: 'row' }, save, cancel),
  );
  const yes = el('button', { type: 'button', class: 'small', text: t('js.image.confirm_yes') });
  const no = el('button', { type: 'button', class: 'secondary small', text: t('js.image.cancel') });
  const question = el('p', { class: 'confirm', id: idOf('confirm') });
  const confirm = el('div', { class: 'confirm-box', role: 'group', 'aria-labelledby': idOf('confirm'), hidden: true }, question, el('p', { class: 'row' }, yes, no));

  const editing = (open) => {
    form.hidden = !open;
    edit.setAttribute('aria-expanded', String(open));
    if (open) title.focus();
  };
  edit.addEventListener('click', () => {
    confirm.hidden = true;
    editing(form.hidden);
  });
  cancel.addEventListener('click', () => {
    editing(false);
    edit.focus();
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    const chosen = parseTags(tags.value);
    if (chosen.length > MAX_TAGS) {
      error.textContent = t('js.image.tags_hint');
      tags.focus();
      return;
    }
    save.disabled = true;
    const res = await api('PATCH', imagePath(image.id), { title: title.value.trim() || null, tags: chosen });
    save.disabled = false;
    if (res.ok) onSaved(res.body);
    else error.textContent = problemWords(res.body);
  });

  remove.addEventListener('click', () => {
    editing(false);
    question.textContent = t('js.image.confirm_delete', { name: imageName(image) });
    confirm.hidden = false;
    no.focus();
  });
  no.addEventListener('click', () => {
    confirm.hidden = true;
    remove.focus();
  });
  yes.addEventListener('click', async () => {
    error.textContent = '';
    yes.disabled = true;
    const res = await api('DELETE', imagePath(image.id));
    yes.disabled = false;
    if (res.ok) onDeleted(image);
    else error.textContent = problemWords(res.body);
  });
  return el('div', { class: 'image-actions' }, el('p', { class: 'row' }, edit, remove), form, confirm);
}

// What the grid says of an image besides its name: format, pixels, bytes.
function factsText(image) {
  const parts = [image.format.toUpperCase()];
  if (image.width && image.height) parts.push(pixelsText(image.width, image.height));
  parts.push(bytesText(image.bytes));
  return parts.join(' · ');
}

// A card of the grid. `onSaved`, `onDeleted` as for imageActions.
function imageCard(image, handlers) {
  const error = el('p', { class: 'error', role: 'alert' });
  return el(
    'li',
    { class: `card image-card ${image.status}`, 'data-id': image.id, 'data-status': image.status },
    thumbnail(image),
    el('h3', { class: 'image-title' }, el('a', { href: imagePath(image.id), text: imageName(image) })),
    image.title ? el('p', { class: 'hint filename', text: image.filename }) : null,
    image.status === 'failed' ? el('p', { class: 'error', text: failureText(image.failure_reason) }) : null,
    el('p', { class: 'hint', text: factsText(image) }),
    tagList(image.tags),
    imageActions(image, { ...handlers, error }),
    error,
  );
}

// Calls `onFiles(files)` for the files dropped on `zone`, and keeps a file dropped beside
// it from opening in the tab (and the page being lost).
function dropTarget(zone, onFiles) {
  const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes('Files');
  zone.addEventListener('dragover', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove('over');
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    onFiles([...(event.dataTransfer?.files || [])]);
  });
  for (const kind of ['dragover', 'drop']) {
    window.addEventListener(kind, (event) => {
      if (carriesFiles(event) && !zone.contains(event.target)) event.preventDefault();
    });
  }
}

async function gallery() {
  const list = document.getElementById('images');
  const more = document.getElementById('more');
  const filters = document.getElementById('filters');
  const uploads = document.getElementById('uploads');
  const input = document.getElementById('upload-file');
  let cursor = null;
  let reads = 0; // the latest read's number: an older answer is not drawn

  const query = () => {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(filters)) {
      if (String(value).trim()) params.set(name, String(value).trim());
    }
    return params;
  };
  const empty = () => {
    if (list.querySelector('li.image-card')) return;
    const filtered = [...query().keys()].length > 0;
    list.replaceChildren(el('li', { class: 'hint', text: t(filtered ? 'js.image.none_match' : 'js.image.none') }));
  };
  const cardOf = (id) => list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  const handlers = {
    onSaved: (image) => {
      const card = imageCard(image, handlers);
      cardOf(image.id)?.replaceWith(card);
      card.querySelector('.image-actions button')?.focus();
      show('images-done', t('js.image.saved'));
    },
    onDeleted: (image) => {
      cardOf(image.id)?.remove();
      show('images-done', t('js.image.deleted', { name: imageName(image) }));
      empty();
    },
  };
  const load = async (fresh) => {
    reads += 1;
    const mine = reads;
    const params = query();
    params.set('limit', String(PAGE));
    if (!fresh && cursor) params.set('cursor', cursor);
    more.disabled = true;
    if (fresh) list.setAttribute('aria-busy', 'true');
    const res = await api('GET', `/images?${params}`);
    if (mine !== reads) return;
    more.disabled = false;
    list.removeAttribute('aria-busy');
    if (!res.ok) {
      show('images-error', problemWords(res.body));
      return;
    }
    show('images-error', '');
    const cards = res.body.items.map((image) => imageCard(image, handlers));
    if (fresh) list.replaceChildren(...cards);
    else list.append(...cards);
    cursor = res.body.next_cursor;
    more.hidden = !cursor;
    empty();
    for (const image of res.body.items) if (image.status === 'processing') follow(image.id);
  };
  // An image still processing (uploaded from another page, or before a reload) is read
  // until it is done, once however often the grid is drawn, and its card drawn again.
  const followed = new Set();
  const follow = async (id) => {
    if (followed.has(id)) return;
    followed.add(id);
    const outcome = await waitForImage(id);
    followed.delete(id);
    if (outcome.image) cardOf(id)?.replaceWith(imageCard(outcome.image, handlers));
  };

  // One upload at a time, in the order given; each joins the grid when it has an image.
  let queue = Promise.resolve();
  const upload = (files) => {
    show('upload-error', '');
    for (const file of files) {
      const { node, run } = uploadItem(file);
      uploads.prepend(node);
      queue = queue.then(async () => {
        const image = await run().catch(() => null);
        if (!image) return;
        list.querySelector('li.hint')?.remove();
        cardOf(image.id)?.remove();
        list.prepend(imageCard(image, handlers));
      });
    }
  };
  input.addEventListener('change', () => {
    upload([...input.files]);
    input.value = '';
  });
  dropTarget(document.getElementById('dropzone'), upload);

  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    load(true);
  });
  // The fields are cleared after the reset event.
  filters.addEventListener('reset', () => setTimeout(() => load(true)));
  more.addEventListener('click', () => load(false));
  await load(true);
}

// The medium size, linking to the large one.
function preview(image) {
  const medium = image.variants.find((variant) => variant.name === 'medium');
  const large = image.variants.find((variant) => variant.name === 'large');
  if (image.status !== 'completed' || !medium) return null;
  const picture = el('img', {
    src: safeUrl(medium.url),
    width: medium.width,
    height: medium.height,
    alt: t('js.image.preview_alt', { name: imageName(image) }),
  });
  return el(
    'figure',
    { class: 'image-preview' },
    large ? el('a', { href: safeUrl(large.url), title: t('js.image.open_large') }, picture) : picture,
  );
}

function facts(image) {
  const rows = [
    ['js.image.filename', image.filename],
    ['js.image.format', image.format.toUpperCase()],
    ['js.image.size', image.width && image.height ? pixelsText(image.width, image.height) : t('js.image.unknown')],
    ['js.image.bytes', bytesText(image.bytes)],
    ['js.image.taken_at', takenText(image.taken_at)],
    ['js.image.created_at', when(image.created_at)],
  ];
  return el(
    'dl',
    { class: 'facts' },
    rows.flatMap(([label, value]) => [el('dt', { text: t(label) }), el('dd', { text: value })]),
    el('dt', { text: t('js.image.tags') }),
    el('dd', {}, tagList(image.tags)),
  );
}

async function single() {
  const body = document.getElementById('image-body');
  const heading = document.getElementById('image-name');
  const id = document.getElementById('image').dataset.id;
  const error = document.getElementById('image-error');
  const draw = (image) => {
    heading.textContent = imageName(image);
    const status = el('p', { class: `image-status ${image.status}`, role: 'status' });
    if (image.status === 'processing') {
      status.classList.add('spinner');
      status.textContent = t('js.upload.processing');
    } else if (image.status === 'failed') {
      status.textContent = t('js.upload.failed', { why: failureText(image.failure_reason) });
    } else {
      status.textContent = t('js.image.status.completed');
    }
    const variants = image.variants.length ? [el('h2', { text: t('js.image.variants') }), variantList(image)] : [];
    body.replaceChildren(
      status,
      preview(image),
      ...variants,
      el('h2', { text: t('js.image.details') }),
      facts(image),
      imageActions(image, {
        onSaved: (changed) => {
          draw(changed);
          show('image-done', t('js.image.saved'));
        },
        onDeleted: () => location.assign('/images'),
        error,
      }),
    );
  };
  const image = await loadInto(body, imagePath(id));
  if (!image) return;
  draw(image);
  if (image.status === 'processing') {
    // Drawn again only when it moves on, so that an edit begun meanwhile is kept.
    const outcome = await waitForImage(id, (now) => {
      if (now.status !== 'processing') draw(now);
    });
    if (outcome.words) show('image-error', outcome.words);
    else if (outcome.pending) show('image-done', t('js.upload.still_processing'));
  }
}
