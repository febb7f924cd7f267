// matsuri's service worker, served as /sw.js for the whole site: it shows the Web Push
// messages the server sends a user who has no page open (payload {title, body, url, tag,
// kind}), and a click on one focuses the tab showing the payload's page, or opens it.
// It caches nothing: every page comes from the server.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

// A path on this site, never another one.
function ownPath(url) {
  return typeof url === 'string' && url.startsWith('/') && !url.startsWith('//') ? url : '/chat';
}

self.addEventListener('push', (event) => {
  let payload = {};
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = { body: event.data ? event.data.text() : '' };
  }
  const title = payload.title || 'matsuri';
  event.waitUntil(
    self.registration.showNotification(title, {
      body: payload.body || '',
      tag: payload.tag || undefined,
      icon: '/assets/icon.svg',
      data: { url: ownPath(payload.url) },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = new URL(ownPath(event.notification.data && event.notification.data.url), self.location.origin);
  event.waitUntil(
    (async () => {
      const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const same = open.find((client) => new URL(client.url).pathname === target.pathname);
      return same ? same.focus() : self.clients.openWindow(target.href);
    })(),
  );
});
