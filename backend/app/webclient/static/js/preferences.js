// Notification preferences (push, email, quiet hours, digest) and per-conversation mutes.

import { api, describeError, has } from "./api.js";
import { clear, emptyState, h, toast } from "./dom.js";

const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function checkbox(id, checked) {
  return h("input", { type: "checkbox", id, checked: !!checked });
}

async function preferencesForm() {
  if (!has("GET", "/notification-preferences")) {
    return h("div", { class: "card" }, h("h2", {}, "Delivery"), emptyState("This server has no notification preferences yet."));
  }
  const prefs = await api("GET", "/notification-preferences");
  const push = checkbox("pref-push", prefs.push);
  const email = checkbox("pref-email", prefs.email);
  const address = h("input", { id: "pref-email-address", type: "email", value: prefs.email_address || "", placeholder: "from your account" });
  const quiet = checkbox("pref-quiet", !!prefs.quiet_hours);
  const quietStart = h("input", { id: "pref-quiet-start", type: "time", value: prefs.quiet_hours?.start || "22:00" });
  const quietEnd = h("input", { id: "pref-quiet-end", type: "time", value: prefs.quiet_hours?.end || "07:00" });
  const quietZone = h("input", { id: "pref-quiet-tz", value: prefs.quiet_hours?.timezone || localZone });
  const digest = checkbox("pref-digest", prefs.digest?.enabled);
  const digestTime = h("input", { id: "pref-digest-time", type: "time", value: prefs.digest?.time || "08:00" });
  const digestZone = h("input", { id: "pref-digest-tz", value: prefs.digest?.timezone || localZone });
  const error = h("p", { class: "error", role: "alert" });
  return h(
    "form",
    {
      class: "card",
      id: "preferences-form",
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        try {
          await api("PUT", "/notification-preferences", {
            body: {
              push: push.checked,
              email: email.checked,
              email_address: address.value.trim() || null,
              quiet_hours: quiet.checked ? { start: quietStart.value, end: quietEnd.value, timezone: quietZone.value.trim() } : null,
              digest: { enabled: digest.checked, time: digestTime.value, timezone: digestZone.value.trim() },
            },
          });
          toast("Preferences saved");
        } catch (e) {
          error.textContent = describeError(e);
        }
      },
    },
    h("h2", {}, "Delivery"),
    h("label", { class: "row" }, push, "Push notifications to my devices"),
    h("label", { class: "row" }, email, "Email notifications"),
    h("label", {}, "Email address", address),
    h("h2", {}, "Quiet hours"),
    h("label", { class: "row" }, quiet, "No message pushes between"),
    h("div", { class: "inline" }, quietStart, h("span", {}, "and"), quietEnd, quietZone),
    h("h2", {}, "Daily digest"),
    h("label", { class: "row" }, digest, "Email me what I have not read, daily at"),
    h("div", { class: "inline" }, digestTime, digestZone),
    error,
    h("button", { class: "primary", type: "submit", id: "save-preferences" }, "Save"),
  );
}

async function mutesCard(session) {
  const rows = [];
  const canMute = has("GET", "/conversations/{conversation_id}/notification-settings");
  for (const c of [...session.store.conversations.values()].slice(0, 50)) {
    if (!canMute) break;
    const path = `/conversations/${c.id}/notification-settings`;
    let settings;
    try {
      settings = await api("GET", path);
    } catch {
      continue;
    }
    const box = checkbox(`mute-${c.id}`, settings.muted);
    box.addEventListener("change", async () => {
      try {
        await api("PUT", path, { body: { muted: box.checked } });
        toast(box.checked ? "Muted" : "Unmuted");
      } catch (e) {
        box.checked = !box.checked;
        toast(describeError(e), "error");
      }
    });
    rows.push(h("label", { class: "row" }, box, c.title || c.participant_ids.filter((id) => id !== session.user.sub).join(", ") || "Just you"));
  }
  return h(
    "div",
    { class: "card" },
    h("h2", {}, "Muted conversations"),
    rows.length ? rows : emptyState(canMute ? "No conversations." : "Not available on this server."),
  );
}

export async function renderPreferences(main, session) {
  clear(main, h("section", { class: "page" }, h("h1", {}, "Notifications"), h("p", { class: "muted" }, "Loading…")));
  const [form, mutes] = await Promise.all([preferencesForm(), mutesCard(session)]);
  clear(main, h("section", { class: "page" }, h("header", { class: "page-head" }, h("h1", {}, "Notifications")), h("div", { class: "grid2" }, form, mutes)));
}
