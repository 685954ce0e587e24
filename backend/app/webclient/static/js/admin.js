// Admin console: device statistics, the device table (filters, keyset pages), push
// delivery over time and notification history. Sections whose endpoint the server lacks
// say so instead of failing.

import { api, describeError, has } from "./api.js";
import { barChart, stackedColumns } from "./charts.js";
import { clear, emptyState, formatTime, h, toast } from "./dom.js";

const PAGE_SIZE = 10;

function statTile(label, value, id) {
  return h("div", { class: "tile", id }, h("span", { class: "tile-value" }, Number(value).toLocaleString()), h("span", { class: "tile-label" }, label));
}

async function deviceStats() {
  const s = await api("GET", "/admin/devices/stats");
  return h(
    "div",
    { class: "stats" },
    h("div", { class: "tiles" }, statTile("devices", s.total, "stat-total"), statTile("active", s.active, "stat-active"), statTile("inactive", s.inactive, "stat-inactive")),
    h(
      "div",
      { class: "charts" },
      barChart(s.by_provider, { id: "chart-provider", title: "By provider" }),
      barChart(s.by_platform, { id: "chart-platform", title: "By platform" }),
      barChart(
        Object.fromEntries(Object.entries(s.idle_over_days).map(([d, n]) => [`> ${d} days`, n])),
        { id: "chart-idle", title: "Active devices idle for" },
      ),
    ),
  );
}

function deviceTable() {
  const filters = {
    user_id: h("input", { id: "filter-user", placeholder: "user id" }),
    platform: h("select", { id: "filter-platform" }, ["", "android", "ios", "web"].map((v) => h("option", { value: v }, v || "any platform"))),
    provider: h("select", { id: "filter-provider" }, ["", "fcm", "apns", "web_push"].map((v) => h("option", { value: v }, v || "any provider"))),
    is_active: h("select", { id: "filter-active" }, [["", "active or not"], ["true", "active"], ["false", "inactive"]].map(([v, t]) => h("option", { value: v }, t))),
  };
  const rows = h("tbody", { id: "admin-device-rows" });
  const prev = h("button", { class: "ghost small", id: "devices-prev", disabled: true }, "← Previous");
  const next = h("button", { class: "ghost small", id: "devices-next", disabled: true }, "Next →");
  const pageLabel = h("span", { class: "muted", id: "devices-page" });
  const cursors = [null]; // cursor of each page seen so far
  let page = 0;

  async function load() {
    const query = { limit: PAGE_SIZE, cursor: cursors[page] };
    for (const [k, el] of Object.entries(filters)) query[k] = el.value.trim();
    const data = await api("GET", "/admin/devices", { query });
    clear(
      rows,
      data.devices.length
        ? data.devices.map((d) =>
            h(
              "tr",
              { class: d.is_active ? "" : "inactive" },
              h("td", {}, d.id),
              h("td", {}, d.user_id),
              h("td", {}, d.device_name || "—"),
              h("td", {}, h("span", { class: "tag" }, d.provider), " ", d.platform),
              h("td", {}, h("code", {}, d.token_preview)),
              h("td", {}, h("span", { class: `pill ${d.is_active ? "ok" : "off"}` }, d.is_active ? "active" : "inactive")),
              h("td", {}, d.last_used_at ? formatTime(d.last_used_at) : "never"),
            ),
          )
        : h("tr", {}, h("td", { colspan: 7 }, emptyState("No devices match."))),
    );
    cursors[page + 1] = data.next_cursor;
    next.disabled = !data.next_cursor;
    prev.disabled = page === 0;
    pageLabel.textContent = `page ${page + 1}`;
  }

  const reload = () => {
    cursors.length = 1;
    page = 0;
    load().catch((e) => toast(describeError(e), "error"));
  };
  for (const el of Object.values(filters)) el.addEventListener("change", reload);
  next.addEventListener("click", () => {
    page += 1;
    load().catch((e) => toast(describeError(e), "error"));
  });
  prev.addEventListener("click", () => {
    page = Math.max(0, page - 1);
    load().catch((e) => toast(describeError(e), "error"));
  });
  const card = h(
    "div",
    { class: "card" },
    h("h2", {}, "Devices"),
    h("div", { class: "filters" }, Object.values(filters)),
    h(
      "table",
      { class: "table", id: "admin-devices" },
      h("thead", {}, h("tr", {}, ["#", "User", "Name", "Provider", "Token", "Status", "Last push"].map((t) => h("th", {}, t)))),
      rows,
    ),
    h("div", { class: "pager" }, prev, pageLabel, next),
  );
  return { card, load };
}

async function pushStats() {
  const card = h("div", { class: "card", id: "push-stats" }, h("h2", {}, "Push deliveries, last 24 hours"));
  if (!has("GET", "/admin/push/stats")) {
    card.append(emptyState("This server has no delivery statistics yet."));
    return card;
  }
  const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
  const data = await api("GET", "/admin/push/stats", { query: { since, bucket: "hour" } });
  const outcomes = new Set();
  const buckets = data.buckets.map((b) => {
    const parts = {};
    for (const byOutcome of Object.values(b.by_provider || {})) {
      for (const [outcome, n] of Object.entries(byOutcome)) {
        parts[outcome] = (parts[outcome] || 0) + n;
        outcomes.add(outcome);
      }
    }
    const start = new Date(b.start);
    return { label: start.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }), parts };
  });
  const order = ["delivered", "retry_scheduled", "token_dead", "failed", "provider_not_configured"];
  const series = [...order.filter((o) => outcomes.has(o)), ...[...outcomes].filter((o) => !order.includes(o))];
  card.append(buckets.length && series.length ? stackedColumns(buckets, series, { id: "chart-push", title: "Outcomes per hour" }) : emptyState("No pushes in the last 24 hours."));
  return card;
}

async function notificationHistory() {
  const card = h("div", { class: "card" }, h("h2", {}, "Notification history"));
  if (!has("GET", "/admin/notifications")) {
    card.append(emptyState("This server has no notification history yet."));
    return card;
  }
  const data = await api("GET", "/admin/notifications", { query: { limit: 20 } });
  if (!data.notifications.length) {
    card.append(emptyState("No notifications sent yet."));
    return card;
  }
  card.append(
    h(
      "table",
      { class: "table", id: "admin-notifications" },
      h("thead", {}, h("tr", {}, ["Title", "Type", "Target", "Status", "Recipients", "Push delivered", "Read", "Created"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        data.notifications.map((n) =>
          h(
            "tr",
            {},
            h("td", {}, n.title),
            h("td", {}, h("span", { class: "tag" }, n.type)),
            h("td", {}, typeof n.target === "string" ? n.target : JSON.stringify(n.target)),
            h("td", {}, h("span", { class: "pill" }, n.status)),
            h("td", {}, n.recipients),
            h("td", {}, n.push ? `${n.push.delivered} / ${n.push.delivered + n.push.failed + n.push.token_dead + n.push.pending}` : "—"),
            h("td", {}, n.in_app ? `${n.in_app.read} / ${n.in_app.read + n.in_app.unread}` : "—"),
            h("td", {}, formatTime(n.created_at)),
          ),
        ),
      ),
    ),
  );
  return card;
}

function guarded(promise, title) {
  return promise.catch((error) => h("div", { class: "card" }, h("h2", {}, title), h("p", { class: "error" }, describeError(error))));
}

export async function renderAdmin(main, session) {
  if (!(session.user.roles || []).includes("admin")) {
    clear(main, emptyState("The admin console needs the admin role."));
    return;
  }
  clear(main, h("section", { class: "page" }, h("h1", {}, "Admin console"), h("p", { class: "muted" }, "Loading…")));
  const table = deviceTable();
  const [stats, push, history] = await Promise.all([
    guarded(deviceStats(), "Device statistics"),
    guarded(pushStats(), "Push deliveries"),
    guarded(notificationHistory(), "Notification history"),
    table.load().catch((e) => toast(describeError(e), "error")),
  ]);
  clear(
    main,
    h(
      "section",
      { class: "page admin" },
      h("header", { class: "page-head" }, h("h1", {}, "Admin console")),
      stats,
      push,
      table.card,
      history,
    ),
  );
}
