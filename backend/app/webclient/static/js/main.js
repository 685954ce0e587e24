// The shell: sign-in, navigation, the live connection, and the hash router (#/c/<id>, ...).

import { api, claims, getToken, has, loadRoutes, setToken } from "./api.js";
import { clear, h, toast } from "./dom.js";
import { Realtime } from "./realtime.js";
import { Store } from "./store.js";
import { renderChat } from "./chat.js";
import { renderConversationList, renderNewConversation } from "./conversations.js";
import { renderInbox } from "./inbox.js";
import { renderPreferences } from "./preferences.js";
import { renderDevices, registerServiceWorker } from "./devices.js";
import { renderAdmin } from "./admin.js";

const root = document.getElementById("root");
let session = null;

function signInView(message) {
  const input = h("textarea", {
    id: "token-input",
    rows: 5,
    placeholder: "eyJhbGciOiJIUzI1NiIs…",
    spellcheck: "false",
    autocomplete: "off",
  });
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const form = h(
    "form",
    {
      class: "card signin",
      onsubmit: async (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!claims(token)) {
          error.textContent = "That is not a JWT (three base64url parts).";
          return;
        }
        setToken(token);
        await start();
      },
    },
    h("div", { class: "brand big" }, h("img", { src: "/app/icon.svg", alt: "" }), "Messenger"),
    h("h1", {}, "Sign in"),
    h(
      "p",
      { class: "muted" },
      "Paste the JWT your application issued. For a local server: ",
      h("code", {}, "messenger token --user alice --name Alice"),
      ". It is kept in this tab only.",
    ),
    input,
    error,
    h("button", { class: "primary", type: "submit", id: "signin" }, "Sign in"),
  );
  clear(root, h("div", { class: "signin-page" }, form));
  root.className = "";
  input.focus();
}

function signOut(message) {
  if (session) {
    session.realtime.close();
    session.store.stop();
  }
  session = null;
  delete root.dataset.ready;
  setToken(null);
  location.hash = "";
  signInView(message);
}

function navLink(href, label, id, badge) {
  return h("a", { href, id, class: "nav-link" }, h("span", {}, label), badge || null);
}

function shell(user) {
  const isAdmin = Array.isArray(user.roles) && user.roles.includes("admin");
  const inboxBadge = h("span", { class: "badge hidden", id: "inbox-badge" });
  const connection = h("span", { class: "conn", id: "connection", title: "Live connection" });
  const nav = h(
    "nav",
    { class: "nav" },
    navLink("#/", "Chats", "nav-chats"),
    navLink("#/inbox", "Inbox", "nav-inbox", inboxBadge),
    navLink("#/preferences", "Notifications", "nav-preferences"),
    navLink("#/devices", "Devices", "nav-devices"),
    isAdmin ? navLink("#/admin", "Admin", "nav-admin") : null,
  );
  const sidebar = h(
    "aside",
    { class: "sidebar" },
    h(
      "header",
      { class: "sidebar-head" },
      h("div", { class: "brand" }, h("img", { src: "/app/icon.svg", alt: "" }), "Messenger"),
      h("button", { class: "ghost", id: "signout", onclick: () => signOut() }, "Sign out"),
    ),
    h(
      "div",
      { class: "me" },
      connection,
      h("strong", { id: "me-name" }, user.name || user.sub),
      h("span", { class: "muted" }, user.name ? ` @${user.sub}` : ""),
    ),
    nav,
    h(
      "div",
      { class: "list-head" },
      h("h2", {}, "Conversations"),
      h("a", { href: "#/new", class: "button small", id: "new-conversation" }, "New"),
    ),
    h("ul", { class: "conversations", id: "conversation-list" }),
  );
  const main = h("main", { class: "main", id: "main" });
  clear(root, h("div", { class: "layout" }, sidebar, main));
  root.className = "";
  return { main, connection, inboxBadge };
}

// Every route renders into a fresh container: a page still loading when the user (or a
// hashchange racing the first render) moves on finishes in a detached element, never over
// the page that replaced it, and its live subscriptions are dropped at once.
let routeGeneration = 0;

async function route() {
  if (!session) return;
  const generation = ++routeGeneration;
  const main = h("div", { class: "route" });
  session.dom.main.replaceChildren(main);
  const hash = location.hash.replace(/^#/, "") || "/";
  for (const link of document.querySelectorAll(".nav-link")) {
    link.classList.toggle("active", link.getAttribute("href") === "#" + hash);
  }
  session.cleanup.forEach((fn) => fn());
  session.cleanup = [];
  const onLeave = (fn) => (generation === routeGeneration ? session.cleanup.push(fn) : fn());
  const parts = hash.split("/").filter(Boolean);
  // Set here, not by the page: a page that finishes loading after the user left it must not
  // claim to be open (messages to an open conversation do not count as unread).
  session.store.openConversation = parts[0] === "c" && parts[1] ? decodeURIComponent(parts[1]) : null;
  try {
    if (parts[0] === "c" && parts[1]) await renderChat(main, session, decodeURIComponent(parts[1]), onLeave);
    else if (parts[0] === "new") renderNewConversation(main, session);
    else if (parts[0] === "inbox") await renderInbox(main, session, onLeave);
    else if (parts[0] === "preferences") await renderPreferences(main, session);
    else if (parts[0] === "devices") await renderDevices(main, session);
    else if (parts[0] === "admin") await renderAdmin(main, session);
    else
      clear(
        main,
        h(
          "div",
          { class: "welcome" },
          h("h1", {}, "Welcome"),
          h("p", { class: "muted" }, "Pick a conversation on the left, or start a new one."),
        ),
      );
  } catch (error) {
    if (generation === routeGeneration) toast(`Could not open this page: ${error.message || error}`, "error");
  }
  if (generation !== routeGeneration) return;
  renderConversationList(session);
}

async function start() {
  const user = claims(getToken());
  if (!user) return signInView();
  await loadRoutes();
  try {
    // One authenticated call proves the token before anything else is shown.
    await api("GET", "/devices");
  } catch (error) {
    setToken(null);
    return signInView(error.status === 401 ? "The server refused this token." : String(error));
  }
  const dom = shell(user);
  const realtime = new Realtime();
  const store = new Store({ user, realtime, onChange: () => renderConversationList(session) });
  session = { user, realtime, store, dom, cleanup: [], has };
  realtime.addEventListener("status", (e) => {
    dom.connection.classList.toggle("up", e.detail.online);
    dom.connection.title = e.detail.online ? "Connected" : "Reconnecting…";
  });
  store.addEventListener("inbox", () => {
    const n = store.unreadNotifications;
    dom.inboxBadge.textContent = n > 99 ? "99+" : String(n);
    dom.inboxBadge.classList.toggle("hidden", !n);
  });
  realtime.connect();
  await store.start();
  registerServiceWorker();
  await route();
  root.dataset.ready = "true"; // fully started: list, presence and first page shown
}

window.addEventListener("hashchange", route);
window.addEventListener("messenger:unauthorized", () => {
  if (session) signOut("Your session ended (token expired or refused). Paste a new token.");
});
navigator.serviceWorker?.addEventListener("message", (event) => {
  if (event.data && event.data.type === "open" && typeof event.data.url === "string") {
    location.hash = new URL(event.data.url, location.href).hash;
  }
});

start();
