// Client-side state shared by the pages: the conversation list with unread counts, the
// presence of everyone in it, and the unread inbox count. Kept fresh by WebSocket frames;
// presence has no push event in the API, so it is polled for the listed participants.

import { api, has } from "./api.js";

const PRESENCE_POLL_MS = 3_000;
const MAX_PAGES = 5; // at most 5 x 100 conversations in the sidebar

export class Store extends EventTarget {
  constructor({ user, realtime, onChange }) {
    super();
    this.user = user;
    this.realtime = realtime;
    this.onChange = onChange;
    this.conversations = new Map(); // id -> conversation (with unread_count)
    this.presence = new Map(); // user id -> {online, state}
    this.unreadNotifications = 0;
    this.openConversation = null;
    this.timer = null;
    realtime.addEventListener("message.new", (e) => this.onMessage(e.detail.message));
    realtime.addEventListener("message.ack", (e) => this.onMessage(e.detail.message));
    realtime.addEventListener("conversation.read", (e) => this.onRead(e.detail));
    realtime.addEventListener("notification.new", () => {
      this.unreadNotifications += 1;
      this.emit("inbox");
    });
    realtime.addEventListener("status", (e) => {
      if (e.detail.online) this.refresh(); // catch up on what was missed while disconnected
    });
  }

  async start() {
    await this.refresh();
    this.timer = setInterval(() => this.pollPresence(), PRESENCE_POLL_MS);
  }

  stop() {
    clearInterval(this.timer);
  }

  async refresh() {
    const list = [];
    let cursor = null;
    for (let page = 0; page < MAX_PAGES; page++) {
      const data = await api("GET", "/conversations", { query: { limit: 100, cursor } });
      list.push(...data.conversations);
      cursor = data.next_cursor;
      if (!cursor) break;
    }
    const previous = this.conversations;
    this.conversations = new Map(
      list.map((c) => [
        c.id,
        { ...c, unread_count: c.unread_count ?? previous.get(c.id)?.unread_count ?? 0 },
      ]),
    );
    if (has("GET", "/unread")) {
      try {
        const unread = await api("GET", "/unread");
        for (const conversation of this.conversations.values()) {
          conversation.unread_count = unread.conversations[conversation.id] || 0;
        }
        this.unreadNotifications = unread.notifications || 0;
        this.emit("inbox");
      } catch {
        /* counts stay as listed */
      }
    } else if (has("GET", "/notifications")) {
      try {
        const inbox = await api("GET", "/notifications", { query: { unread_only: true, limit: 100 } });
        this.unreadNotifications = inbox.notifications.length;
        this.emit("inbox");
      } catch {
        /* no badge */
      }
    }
    await this.pollPresence(false);
    this.onChange();
  }

  async pollPresence(notify = true) {
    const ids = new Set();
    for (const c of this.conversations.values()) {
      for (const id of c.participant_ids) if (id !== this.user.sub) ids.add(id);
    }
    if (!ids.size || document.visibilityState === "hidden") return;
    try {
      const data = await api("GET", "/presence", { query: { user_ids: [...ids].slice(0, 1000).join(",") } });
      let changed = false;
      for (const [id, info] of Object.entries(data.presence)) {
        const state = info.state || (info.online ? "active" : "offline");
        if (this.presence.get(id) !== state) changed = true;
        this.presence.set(id, state);
      }
      if (changed && notify) {
        this.onChange();
        this.emit("presence");
      }
    } catch {
      /* presence is best effort */
    }
  }

  stateOf(userId) {
    return this.presence.get(userId) || "offline";
  }

  onMessage(message) {
    if (!message) return;
    const conversation = this.conversations.get(message.conversation_id);
    if (!conversation) {
      this.refresh(); // a conversation we were just added to
      return;
    }
    conversation.last_message = message;
    conversation.last_activity = message.created_at;
    if (message.sender_id !== this.user.sub && this.openConversation !== message.conversation_id) {
      conversation.unread_count = (conversation.unread_count || 0) + 1;
    }
    this.onChange();
  }

  onRead(frame) {
    const conversation = this.conversations.get(frame.conversation_id);
    if (!conversation) return;
    conversation.unread_count = frame.unread_count ?? 0;
    conversation.last_read_message_id = frame.last_read_message_id;
    this.onChange();
  }

  markReadLocally(conversationId) {
    const conversation = this.conversations.get(conversationId);
    if (conversation && conversation.unread_count) {
      conversation.unread_count = 0;
      this.onChange();
    }
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
