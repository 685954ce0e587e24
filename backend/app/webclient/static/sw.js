// Service worker: shows pushes as notifications (one per conversation, replaced by newer
// ones), opens the right conversation on click, and closes a conversation's notifications
// when a `conversation.read` push says it was read elsewhere.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function targetUrl(data) {
  if (data.type === "notification" && data.action_url && data.action_url.startsWith("/")) {
    return data.action_url;
  }
  if (data.conversation_id) return `/app/#/c/${encodeURIComponent(data.conversation_id)}`;
  return "/app/#/inbox";
}

async function closeConversation(conversationId) {
  const shown = await self.registration.getNotifications({ tag: `conversation:${conversationId}` });
  shown.forEach((n) => n.close());
}

self.addEventListener("push", (event) => {
  let payload = {};
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = { title: "Messenger", body: event.data ? event.data.text() : "" };
  }
  if (payload.type === "conversation.read") {
    const data = payload.data || {};
    event.waitUntil(closeConversation(data.conversation_id));
    return;
  }
  const data = payload.data || {};
  const tag = data.conversation_id
    ? `conversation:${data.conversation_id}`
    : `notification:${data.notification_id || Date.now()}`;
  event.waitUntil(
    self.registration.showNotification(payload.title || "Messenger", {
      body: payload.body || "",
      tag,
      renotify: true,
      icon: "/app/icon.svg",
      badge: "/app/icon.svg",
      data: { url: targetUrl(data), ...data },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url || "/app/", self.location.origin).href;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = windows.find((c) => new URL(c.url).pathname.startsWith("/app/"));
      if (open) {
        open.postMessage({ type: "open", url });
        return open.focus();
      }
      return self.clients.openWindow(url);
    })(),
  );
});
