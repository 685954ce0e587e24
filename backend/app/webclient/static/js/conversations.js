// The conversation list (sidebar) and the "new conversation" form.

import { api, describeError } from "./api.js";
import { clear, h } from "./dom.js";

export function titleOf(conversation, me) {
  if (conversation.title) return conversation.title;
  const others = conversation.participant_ids.filter((id) => id !== me);
  return others.length ? others.join(", ") : "Just you";
}

function others(conversation, me) {
  return conversation.participant_ids.filter((id) => id !== me);
}

/** Presence dot: one other participant -> theirs; a group -> the "best" state among them. */
function groupState(store, conversation) {
  const states = others(conversation, store.user.sub).map((id) => store.stateOf(id));
  if (states.includes("active")) return "active";
  if (states.includes("idle")) return "idle";
  return "offline";
}

export function dot(state, label) {
  return h("span", { class: `dot dot-${state}`, title: label || state, dataset: { state } });
}

function activity(c) {
  return (c.last_message && c.last_message.created_at) || c.last_activity || c.created_at;
}

export function renderConversationList(session) {
  const list = document.getElementById("conversation-list");
  if (!list || !session) return;
  const { store } = session;
  const items = [...store.conversations.values()].sort((a, b) => (activity(a) < activity(b) ? 1 : -1));
  if (!items.length) {
    clear(list, h("li", { class: "muted pad" }, "No conversations yet."));
    return;
  }
  clear(
    list,
    items.map((c) => {
      const unread = c.unread_count || 0;
      const preview = c.last_message
        ? `${c.last_message.sender_id === store.user.sub ? "You: " : ""}${c.last_message.content}`
        : `${c.participant_ids.length} participants`;
      return h(
        "li",
        {},
        h(
          "a",
          {
            href: `#/c/${encodeURIComponent(c.id)}`,
            class: `conversation${location.hash === `#/c/${c.id}` ? " active" : ""}${unread ? " has-unread" : ""}`,
            dataset: { conversationId: c.id },
          },
          h("span", { class: "avatar" }, titleOf(c, store.user.sub).slice(0, 1).toUpperCase(), dot(groupState(store, c))),
          h(
            "span",
            { class: "conversation-text" },
            h("span", { class: "conversation-title" }, titleOf(c, store.user.sub)),
            h("span", { class: "conversation-preview" }, preview),
          ),
          h("span", { class: `badge unread${unread ? "" : " hidden"}`, dataset: { unread: String(unread) } }, unread > 99 ? "99+" : String(unread)),
        ),
      );
    }),
  );
}

export function renderNewConversation(main, session) {
  const participants = h("input", { id: "participants", placeholder: "bob, carol", required: true });
  const title = h("input", { id: "conversation-title", placeholder: "Optional" });
  const error = h("p", { class: "error", role: "alert" });
  clear(
    main,
    h(
      "form",
      {
        class: "card narrow",
        onsubmit: async (event) => {
          event.preventDefault();
          const ids = participants.value.split(",").map((s) => s.trim()).filter(Boolean);
          try {
            const created = await api("POST", "/conversations", {
              body: { title: title.value.trim() || null, participant_ids: ids },
            });
            await session.store.refresh();
            location.hash = `#/c/${created.id}`;
          } catch (e) {
            error.textContent = describeError(e);
          }
        },
      },
      h("h1", {}, "New conversation"),
      h("label", {}, "Participants (user ids, comma-separated)", participants),
      h("label", {}, "Title", title),
      error,
      h("button", { class: "primary", type: "submit", id: "create-conversation" }, "Create"),
    ),
  );
  participants.focus();
}
