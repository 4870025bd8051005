// The websocket feed (/v1/ws): one connection, resubscribed after every reconnect.
//
// The feed keeps the set of channels the page wants. When the socket opens it subscribes to
// all of them; when it drops, or goes silent for longer than a few heartbeats, it reconnects
// with a growing delay. `resync(channel)` unsubscribes and subscribes again, which makes the
// server send a fresh book snapshot.

const SILENCE_MS = 16000; // the server sends a heartbeat every 5 s on an idle connection
const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10000;

export class Feed {
  /**
   * @param {string} url websocket URL
   * @param {{onMessage: Function, onStatus: Function, onOpen: Function}} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.channels = new Set();
    this.socket = null;
    this.delay = MIN_DELAY_MS;
    this.lastMessage = 0;
    this.timer = null;
    this.watchdog = setInterval(() => this.checkSilence(), 2000);
  }

  connect() {
    clearTimeout(this.timer);
    this.handlers.onStatus("connecting");
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      console.warn("websocket:", error);
      this.retry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.delay = MIN_DELAY_MS;
      this.lastMessage = Date.now();
      this.handlers.onStatus("live");
      if (this.channels.size) this.send({ op: "subscribe", channels: [...this.channels] });
      this.handlers.onOpen();
    };
    socket.onmessage = (event) => {
      this.lastMessage = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && typeof message === "object") this.handlers.onMessage(message);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.handlers.onStatus("reconnecting");
      this.retry();
    };
    socket.onerror = () => socket.close();
  }

  retry() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
  }

  checkSilence() {
    const open = this.socket && this.socket.readyState === WebSocket.OPEN;
    if (open && Date.now() - this.lastMessage > SILENCE_MS) this.socket.close();
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  subscribe(channels) {
    const fresh = channels.filter((c) => !this.channels.has(c));
    fresh.forEach((c) => this.channels.add(c));
    if (fresh.length) this.send({ op: "subscribe", channels: fresh });
  }

  unsubscribe(channels) {
    const held = channels.filter((c) => this.channels.has(c));
    held.forEach((c) => this.channels.delete(c));
    if (held.length) this.send({ op: "unsubscribe", channels: held });
  }

  /** Subscribe to `channel` afresh, e.g. for a new book snapshot after a gap. */
  resync(channel) {
    this.send({ op: "unsubscribe", channels: [channel] });
    this.channels.add(channel);
    this.send({ op: "subscribe", channels: [channel] });
  }
}
