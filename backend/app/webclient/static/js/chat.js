// One conversation: history (scroll back with `before`), live messages, sending with an
// optimistic bubble confirmed by the ack, read positions, per-conversation mute.

import { api, describeError, has } from "./api.js";
import { dot, titleOf } from "./conversations.js";
import { clear, formatTime, h, toast } from "./dom.js";

const PAGE = 50;

export async function renderChat(main, session, conversationId, onLeave) {
  const { store, realtime, user } = session;
  const conversation = await api("GET", `/conversations/${encodeURIComponent(conversationId)}`);
  const messages = h("ol", { class: "messages", id: "messages", "aria-live": "polite" });
  const scroller = h("div", { class: "scroller", id: "scroller" }, messages);
  const olderButton = h("button", { class: "ghost small hidden", id: "load-older" }, "Load older messages");
  const input = h("textarea", { id: "composer", rows: 1, placeholder: "Write a message…", maxlength: 10000 });
  const people = h("div", { class: "people", id: "people" });
  const muteButton = h("button", { class: "ghost small", id: "mute" }, "Mute");
  const blockButton = h("button", { class: "ghost small hidden", id: "block" }, "Block");
  const seen = new Set();
  let nextBefore = null;
  let newestId = null;
  let readUpTo = conversation.last_read_message_id || null;

  function renderPeople() {
    clear(
      people,
      conversation.participant_ids.map((id) =>
        h("span", { class: "person", dataset: { userId: id } }, dot(id === user.sub ? realtime.state : store.stateOf(id)), id === user.sub ? "you" : id),
      ),
    );
  }

  function bubble(message, { pending = false } = {}) {
    const mine = message.sender_id === user.sub;
    return h(
      "li",
      {
        class: `bubble ${mine ? "mine" : "theirs"}${pending ? " pending" : ""}`,
        dataset: { id: message.id || "", clientMsgId: message.client_msg_id || "" },
      },
      mine ? null : h("span", { class: "sender" }, message.sender_id),
      h("span", { class: "content" }, message.content),
      h("span", { class: "meta" }, pending ? "sending…" : formatTime(message.created_at)),
    );
  }

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function addNew(message) {
    if (message.id && seen.has(message.id)) return;
    if (message.id) seen.add(message.id);
    const stick = atBottom();
    messages.append(bubble(message));
    newestId = message.id;
    if (stick || message.sender_id === user.sub) scroller.scrollTop = scroller.scrollHeight;
    markRead();
  }

  /** Move the read position to the newest message once the user can see it. */
  function markRead() {
    if (!newestId || newestId === readUpTo || document.visibilityState !== "visible") return;
    readUpTo = newestId;
    store.markReadLocally(conversation.id);
    if (!has("POST", "/conversations/{conversation_id}/read")) return;
    const frame = { type: "conversation.read", conversation_id: conversation.id, up_to: newestId };
    if (!realtime.send(frame)) {
      api("POST", `/conversations/${conversation.id}/read`, { body: { up_to: newestId } }).catch(() => {});
    }
  }

  async function loadOlder() {
    const data = await api("GET", `/conversations/${conversation.id}/messages`, {
      query: { limit: PAGE, before: nextBefore },
    });
    const firstLoad = nextBefore === null && !messages.children.length;
    const oldHeight = scroller.scrollHeight;
    const fresh = data.messages.filter((m) => !seen.has(m.id));
    fresh.forEach((m) => seen.add(m.id));
    messages.prepend(...fresh.reverse().map((m) => bubble(m)));
    nextBefore = data.next_before;
    olderButton.classList.toggle("hidden", !nextBefore);
    if (firstLoad) {
      if (data.messages.length) newestId = data.messages[0].id;
      scroller.scrollTop = scroller.scrollHeight;
      if (!data.messages.length) messages.append(h("li", { class: "muted pad", id: "no-messages" }, "No messages yet. Say hello!"));
    } else {
      scroller.scrollTop = scroller.scrollHeight - oldHeight;
    }
  }

  async function send() {
    const content = input.value.trim();
    if (!content) return;
    input.value = "";
    document.getElementById("no-messages")?.remove();
    const clientMsgId = crypto.randomUUID();
    const pending = bubble({ sender_id: user.sub, content, client_msg_id: clientMsgId }, { pending: true });
    messages.append(pending);
    scroller.scrollTop = scroller.scrollHeight;
    const confirm = (message) => {
      if (seen.has(message.id)) {
        pending.remove();
        return;
      }
      seen.add(message.id);
      pending.replaceWith(bubble(message));
      newestId = message.id;
      readUpTo = message.id; // sending moves the sender's own position
    };
    const sentLive = realtime.send({
      type: "message.send",
      conversation_id: conversation.id,
      content,
      client_msg_id: clientMsgId,
    });
    if (sentLive) {
      pendingAcks.set(clientMsgId, { confirm, pending, content });
      return;
    }
    try {
      confirm(await api("POST", `/conversations/${conversation.id}/messages`, { body: { content, client_msg_id: clientMsgId } }));
    } catch (error) {
      pending.classList.add("failed");
      pending.querySelector(".meta").textContent = `not sent: ${describeError(error)}`;
    }
  }

  const pendingAcks = new Map();
  const onAck = (e) => {
    const entry = pendingAcks.get(e.detail.client_msg_id);
    if (!entry) return;
    pendingAcks.delete(e.detail.client_msg_id);
    entry.confirm(e.detail.message);
  };
  const onError = (e) => {
    const entry = pendingAcks.get(e.detail.client_msg_id);
    if (!entry) return;
    pendingAcks.delete(e.detail.client_msg_id);
    entry.pending.classList.add("failed");
    entry.pending.querySelector(".meta").textContent = `not sent: ${e.detail.detail || e.detail.code}`;
  };
  const onNew = (e) => {
    if (e.detail.message && e.detail.message.conversation_id === conversation.id) addNew(e.detail.message);
  };
  const onVisible = () => markRead();
  realtime.addEventListener("message.ack", onAck);
  realtime.addEventListener("error", onError);
  realtime.addEventListener("message.new", onNew);
  store.addEventListener("presence", renderPeople);
  document.addEventListener("visibilitychange", onVisible);
  onLeave(() => {
    realtime.removeEventListener("message.ack", onAck);
    realtime.removeEventListener("error", onError);
    realtime.removeEventListener("message.new", onNew);
    store.removeEventListener("presence", renderPeople);
    document.removeEventListener("visibilitychange", onVisible);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      send();
    }
  });
  olderButton.addEventListener("click", () => loadOlder().catch((e) => toast(describeError(e), "error")));
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < 40 && nextBefore && !olderButton.disabled) {
      olderButton.disabled = true;
      loadOlder().finally(() => (olderButton.disabled = false));
    }
  });

  const settingsPath = `/conversations/${conversation.id}/notification-settings`;
  async function loadMute() {
    if (!has("GET", "/conversations/{conversation_id}/notification-settings")) {
      muteButton.remove();
      return;
    }
    const settings = await api("GET", settingsPath);
    muteButton.textContent = settings.muted ? "Unmute" : "Mute";
    muteButton.onclick = async () => {
      const updated = await api("PUT", settingsPath, { body: { muted: !settings.muted } });
      settings.muted = updated.muted;
      muteButton.textContent = updated.muted ? "Unmute" : "Mute";
      toast(updated.muted ? "Muted: no pushes from this conversation" : "Unmuted");
    };
  }

  /** One-to-one conversations offer blocking the other person (GET|PUT|DELETE /blocks). */
  async function loadBlock() {
    const others = conversation.participant_ids.filter((id) => id !== user.sub);
    if (others.length !== 1 || !has("PUT", "/blocks/{user_id}")) return;
    const other = others[0];
    const path = `/blocks/${encodeURIComponent(other)}`;
    let blocked = (await api("GET", "/blocks")).user_ids.includes(other);
    const show = () => {
      blockButton.textContent = blocked ? `Unblock ${other}` : `Block ${other}`;
      blockButton.dataset.blocked = String(blocked);
      blockButton.classList.remove("hidden");
    };
    blockButton.onclick = async () => {
      try {
        blocked = (await api(blocked ? "DELETE" : "PUT", path)).blocked;
        show();
        toast(blocked ? `${other} is blocked: no pushes from them, and they see you offline` : `${other} is unblocked`);
      } catch (e) {
        toast(describeError(e), "error");
      }
    };
    show();
  }

  clear(
    main,
    h(
      "section",
      { class: "chat", dataset: { conversationId: conversation.id } },
      h(
        "header",
        { class: "chat-head" },
        h("div", {}, h("h1", { id: "chat-title" }, titleOf(conversation, user.sub)), people),
        h("div", { class: "chat-actions" }, blockButton, muteButton),
      ),
      h("div", { class: "older" }, olderButton),
      scroller,
      h(
        "form",
        {
          class: "composer",
          onsubmit: (event) => {
            event.preventDefault();
            send();
          },
        },
        input,
        h("button", { class: "primary", type: "submit", id: "send" }, "Send"),
      ),
    ),
  );
  renderPeople();
  await loadOlder();
  markRead();
  loadMute().catch(() => muteButton.remove());
  loadBlock().catch(() => blockButton.remove());
  input.focus();
}
