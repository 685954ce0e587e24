// Devices: the caller's list, Web Push in this browser (service worker + pushManager +
// POST /devices/register), removing this browser, and a test push.

import { api, describeError, has } from "./api.js";
import { clear, emptyState, formatTime, h, toast } from "./dom.js";

const SW_URL = "/app/sw.js";

export async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    return await navigator.serviceWorker.register(SW_URL, { scope: "/app/" });
  } catch {
    return null;
  }
}

function base64UrlToBytes(value) {
  const padded = value.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((value.length + 3) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function browserName() {
  const ua = navigator.userAgent;
  const name = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom/.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
  return `${name}${os ? " on " + os : ""}`;
}

async function currentSubscription() {
  const registration = await registerServiceWorker();
  if (!registration || !("pushManager" in registration)) return { registration, subscription: null };
  return { registration, subscription: await registration.pushManager.getSubscription() };
}

async function enablePush(status) {
  status.textContent = "Asking for permission…";
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error("notifications are blocked for this site");
  const { registration } = await currentSubscription();
  if (!registration) throw new Error("service workers are not available here");
  await navigator.serviceWorker.ready;
  const { public_key: key } = await api("GET", "/push/vapid-public-key", { auth: false });
  status.textContent = "Subscribing with the browser's push service…";
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: base64UrlToBytes(key),
  });
  await api("POST", "/devices/register", {
    body: {
      device_token: JSON.stringify(subscription.toJSON()),
      platform: "web",
      provider: "web_push",
      device_name: browserName(),
    },
  });
}

async function disablePush() {
  const { subscription } = await currentSubscription();
  if (!subscription) return;
  try {
    await api("DELETE", `/devices/${encodeURIComponent(subscription.endpoint)}`);
  } finally {
    await subscription.unsubscribe();
  }
}

export async function renderDevices(main, session) {
  const table = h("tbody", { id: "device-rows" });
  const status = h("p", { class: "muted", id: "push-status" });
  const enable = h("button", { class: "primary", id: "enable-push" }, "Enable push in this browser");
  const disable = h("button", { class: "ghost hidden", id: "disable-push" }, "Remove this browser");
  const test = h("button", { class: "ghost", id: "test-push" }, "Send a test push");
  const results = h("ul", { class: "results", id: "test-results" });

  async function refresh() {
    const { devices } = await api("GET", "/devices");
    if (!devices.length) {
      clear(table, h("tr", {}, h("td", { colspan: 5 }, emptyState("No devices registered."))));
    } else {
      clear(
        table,
        devices.map((d) =>
          h(
            "tr",
            { class: d.is_active ? "" : "inactive" },
            h("td", {}, d.device_name || "Unnamed device"),
            h("td", {}, h("span", { class: "tag" }, d.provider), " ", d.platform),
            h("td", {}, h("span", { class: `pill ${d.is_active ? "ok" : "off"}` }, d.is_active ? "active" : "inactive")),
            h("td", {}, formatTime(d.registered_at)),
            h("td", {}, d.last_used_at ? formatTime(d.last_used_at) : "never"),
          ),
        ),
      );
    }
    const { subscription } = await currentSubscription();
    disable.classList.toggle("hidden", !subscription);
    enable.classList.toggle("hidden", !!subscription);
    status.textContent = subscription ? "This browser receives push notifications." : "This browser is not subscribed to push notifications.";
  }

  enable.addEventListener("click", async () => {
    try {
      await enablePush(status);
      toast("Push enabled in this browser");
    } catch (error) {
      toast(`Could not enable push: ${describeError(error)}`, "error");
    }
    await refresh().catch(() => {});
  });
  disable.addEventListener("click", async () => {
    try {
      await disablePush();
      toast("This browser no longer receives pushes");
    } catch (error) {
      toast(describeError(error), "error");
    }
    await refresh().catch(() => {});
  });
  test.addEventListener("click", async () => {
    try {
      const data = await api("POST", "/devices/test");
      clear(
        results,
        data.results.length
          ? data.results.map((r) => h("li", {}, h("span", { class: `pill ${r.outcome === "delivered" ? "ok" : "warn"}` }, r.outcome), ` device #${r.device_token_id} (${r.provider})`))
          : h("li", { class: "muted" }, "No active devices to push to."),
      );
    } catch (error) {
      toast(describeError(error), "error");
    }
  });

  const pushSupported = "serviceWorker" in navigator && "PushManager" in window && has("GET", "/push/vapid-public-key");
  clear(
    main,
    h(
      "section",
      { class: "page" },
      h("header", { class: "page-head" }, h("h1", {}, "Devices")),
      h(
        "div",
        { class: "card" },
        h("h2", {}, "This browser"),
        status,
        h("div", { class: "actions" }, pushSupported ? enable : null, disable, test),
        results,
      ),
      h(
        "div",
        { class: "card" },
        h("h2", {}, "Your devices"),
        h("p", { class: "muted" }, "Other devices are removed from the device itself (the API never shows their tokens)."),
        h(
          "table",
          { class: "table" },
          h("thead", {}, h("tr", {}, ["Device", "Provider", "Status", "Registered", "Last push"].map((t) => h("th", {}, t)))),
          table,
        ),
      ),
    ),
  );
  await refresh();
}
