// The WebSocket: reconnects with backoff, pings well inside PRESENCE_TTL_SECONDS/2, and
// reports active/idle from page visibility and input. Frames are re-dispatched as events.

import { getToken } from "./api.js";

const PING_EVERY_MS = 10_000; // the server default TTL is 60 s; half of its minimum sane values
const IDLE_AFTER_MS = 60_000; // no input for this long (or a hidden page) reads as idle
const INPUT_EVENTS = ["keydown", "pointerdown", "pointermove", "wheel", "touchstart", "focus"];

export class Realtime extends EventTarget {
  constructor() {
    super();
    this.socket = null;
    this.retry = 0;
    this.closedByUs = false;
    this.state = "active";
    this.lastInput = Date.now();
    this.pingTimer = null;
    this.onInput = () => {
      this.lastInput = Date.now();
      this.updatePresence();
    };
    this.onVisibility = () => this.updatePresence();
  }

  connect() {
    this.closedByUs = false;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/api/v1/messenger/ws?token=${encodeURIComponent(getToken())}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.retry = 0;
      this.state = "active";
      this.updatePresence(true);
      this.emit("status", { online: true });
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === "string") this.emit(frame.type, frame);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.emit("status", { online: false, code: event.code });
      if (event.code === 4401) {
        window.dispatchEvent(new CustomEvent("messenger:unauthorized"));
        return;
      }
      if (!this.closedByUs) {
        const delay = Math.min(30_000, 500 * 2 ** this.retry++) * (0.5 + Math.random() / 2);
        setTimeout(() => this.connect(), delay);
      }
    });
    if (!this.pingTimer) {
      this.pingTimer = setInterval(() => {
        this.send({ type: "ping" });
        this.updatePresence();
      }, PING_EVERY_MS);
      for (const name of INPUT_EVENTS) window.addEventListener(name, this.onInput, { passive: true });
      document.addEventListener("visibilitychange", this.onVisibility);
    }
  }

  close() {
    this.closedByUs = true;
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    for (const name of INPUT_EVENTS) window.removeEventListener(name, this.onInput);
    document.removeEventListener("visibilitychange", this.onVisibility);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Tell the server whether the user is at the keyboard; only changes are sent. */
  updatePresence(force = false) {
    const visible = document.visibilityState === "visible";
    const next = visible && Date.now() - this.lastInput < IDLE_AFTER_MS ? "active" : "idle";
    if (next !== this.state || force) {
      this.state = next;
      this.send({ type: "presence", state: next });
    }
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
