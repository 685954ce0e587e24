// The notification inbox: newest first, live `notification.new`, mark read / read all.

import { api, describeError, has } from "./api.js";
import { clear, emptyState, formatTime, h, toast } from "./dom.js";

export async function renderInbox(main, session, onLeave) {
  const list = h("ul", { class: "inbox", id: "inbox-list" });
  const more = h("button", { class: "ghost small hidden", id: "inbox-more" }, "Older notifications");
  const readAll = h("button", { class: "ghost small", id: "read-all" }, "Mark all read");
  clear(
    main,
    h(
      "section",
      { class: "page" },
      h("header", { class: "page-head" }, h("h1", {}, "Inbox"), readAll),
      list,
      more,
    ),
  );
  if (!has("GET", "/notifications")) {
    readAll.remove();
    clear(list, emptyState("This server has no notification inbox yet."));
    return;
  }
  let cursor = null;

  function item(n) {
    const unread = !n.read_at;
    const el = h(
      "li",
      { class: `notification${unread ? " unread" : ""} priority-${n.priority || "normal"}`, dataset: { id: n.id } },
      h("div", { class: "notification-title" }, n.title, h("span", { class: "tag" }, n.type)),
      n.body ? h("p", {}, n.body) : null,
      h(
        "div",
        { class: "meta" },
        formatTime(n.created_at),
        n.action_url && n.action_url.startsWith("/") ? h("a", { href: n.action_url }, "Open") : null,
        n.action_url && n.action_url.startsWith("https://")
          ? h("a", { href: n.action_url, rel: "noopener noreferrer", target: "_blank" }, "Open")
          : null,
      ),
    );
    if (unread) {
      el.append(
        h(
          "button",
          {
            class: "ghost small",
            onclick: async (event) => {
              event.currentTarget.remove();
              try {
                await api("POST", `/notifications/${n.id}/read`);
                el.classList.remove("unread");
                session.store.unreadNotifications = Math.max(0, session.store.unreadNotifications - 1);
                session.store.emit("inbox");
              } catch (error) {
                toast(describeError(error), "error");
              }
            },
          },
          "Mark read",
        ),
      );
    }
    return el;
  }

  async function load() {
    const data = await api("GET", "/notifications", { query: { limit: 30, cursor } });
    if (!cursor && !data.notifications.length) list.append(emptyState("Nothing here yet."));
    list.append(...data.notifications.map(item));
    cursor = data.next_cursor;
    more.classList.toggle("hidden", !cursor);
  }

  more.addEventListener("click", () => load().catch((e) => toast(describeError(e), "error")));
  readAll.addEventListener("click", async () => {
    try {
      const result = await api("POST", "/notifications/read-all");
      list.querySelectorAll(".unread").forEach((el) => el.classList.remove("unread"));
      list.querySelectorAll(".notification button").forEach((el) => el.remove());
      session.store.unreadNotifications = 0;
      session.store.emit("inbox");
      toast(`${result.updated} marked read`);
    } catch (error) {
      toast(describeError(error), "error");
    }
  });
  const onNew = (e) => {
    list.querySelector(".empty")?.remove();
    list.prepend(item(e.detail.notification));
  };
  session.realtime.addEventListener("notification.new", onNew);
  onLeave(() => session.realtime.removeEventListener("notification.new", onNew));
  await load();
}
