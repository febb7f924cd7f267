// The "notify me when I'm away" switch: on, it asks the browser's permission, registers
// the service worker (/sw.js, which shows the Web Push messages the server sends while
// the user has no page open), subscribes with the server's VAPID key and hands the
// subscription to the API; off, it unsubscribes and deletes it. The subscription's id is
// kept in localStorage, by user. A browser without Push, or one where the site's
// notifications are blocked, is told so instead.

import { api, t } from './app.js';

const supported = () =>
  window.isSecureContext && 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

// The application server key, base64url as the API gives it, as the bytes Push wants.
function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export async function notificationsSwitch(userId) {
  const box = document.getElementById('notify-box');
  const toggle = document.getElementById('notify');
  const state = document.getElementById('notify-state');
  const say = (text) => {
    state.textContent = text;
  };
  if (!supported()) {
    say(t('js.chat.notify_unsupported'));
    return;
  }
  const stored = `push-subscription:${userId}`;
  const draw = (on) => {
    toggle.checked = on;
    toggle.disabled = Notification.permission === 'denied';
    if (Notification.permission === 'denied') say(t('js.chat.notify_blocked'));
    else say(on ? t('js.chat.notify_on') : t('js.chat.notify_off'));
  };
  const registration = await navigator.serviceWorker.getRegistration('/');
  const subscription = registration && (await registration.pushManager.getSubscription());
  box.hidden = false;
  draw(Boolean(subscription && localStorage.getItem(stored)));

  async function turnOn() {
    if ((await Notification.requestPermission()) !== 'granted') return false;
    const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    await navigator.serviceWorker.ready;
    const key = await api('GET', '/push/vapid-public-key');
    if (!key.ok) return false;
    const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key.body.key) });
    const { endpoint, keys } = sub.toJSON();
    const saved = await api('POST', '/push/subscriptions', { endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } });
    if (!saved.ok) {
      await sub.unsubscribe();
      return false;
    }
    localStorage.setItem(stored, saved.body.id);
    return true;
  }

  async function turnOff() {
    const reg = await navigator.serviceWorker.getRegistration('/');
    const sub = reg && (await reg.pushManager.getSubscription());
    if (sub) await sub.unsubscribe();
    const id = localStorage.getItem(stored);
    if (id) {
      const gone = await api('DELETE', `/push/subscriptions/${encodeURIComponent(id)}`);
      if (gone.ok || gone.status === 404) localStorage.removeItem(stored);
    }
  }

  toggle.addEventListener('change', async () => {
    const wanted = toggle.checked;
    toggle.disabled = true;
    say(t('js.chat.notify_working'));
    let on = !wanted;
    try {
      if (wanted) on = await turnOn();
      else {
        await turnOff();
        on = false;
      }
    } catch {
      on = false;
    }
    draw(on);
    if (wanted && !on && Notification.permission !== 'denied') say(t('js.chat.notify_failed'));
  });
}
