/*
 * ssehub.js — an EventSource that every tab of an origin shares.
 *
 * Browsers open at most six HTTP/1.1 connections per origin, across all
 * tabs: a seventh EventSource hangs. SharedEventSource opens one real
 * EventSource per URL for all tabs of the origin. One tab (the leader, by a
 * Web Lock) holds it and passes each event to the others over a
 * BroadcastChannel. When the leader tab closes, the next tab takes the lock
 * and reconnects with lastEventID = the last event it saw, so no event is
 * missed. Without Web Locks or BroadcastChannel it is a plain EventSource.
 *
 *   <script src="/_ssehub/ssehub.js"></script>
 *   const source = new SharedEventSource("/.well-known/mercure?topic=a&topic=b");
 *   source.onmessage = (e) => console.log(e.data, e.lastEventId);
 *   source.addEventListener("ssehub-gap", () => reload());  // history could not cover a gap
 *
 * Or as a module: import { SharedEventSource } from "/_ssehub/ssehub.mjs";
 *
 * It never gives up where a native EventSource does: on a 5xx answer (a hub
 * draining or at its connection limit, a proxy's 502/504), on a 401 (after
 * calling `options.onunauthorized`, which may refresh the cookie or return
 * a new URL), and when the device comes back online, it reconnects with
 * jittered exponential backoff and resumes from the last id. Each `error`
 * event carries `reason` ("network", "http") and `status` (the HTTP status,
 * 0 when unknown) and `retryIn` (ms; absent when it gave up: any other 4xx,
 * e.g. a malformed selector, is final and leaves readyState CLOSED).
 */
(function (global) {
  "use strict";

  const CONNECTING = 0, OPEN = 1, CLOSED = 2;
  const BACKOFF_MIN = 1000, BACKOFF_MAX = 30000;  // ms, before jitter

  class SharedEventSource extends EventTarget {
    constructor(url, options) {
      super();
      this.url = new URL(url, global.location.href).href;
      this.withCredentials = Boolean(options && options.withCredentials);
      this.onunauthorized = (options && options.onunauthorized) || null;
      this._failures = 0;  // failed connection attempts in a row
      this._timer = null;
      this.readyState = CONNECTING;
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      this.lastEventId = "";
      this.isLeader = false;
      this._closed = false;
      this._source = null;
      this._seen = new Set();
      this._types = new Set(["ssehub-gap"]);  // named events the leader forwards
      this._online = () => { if (this.isLeader && this.readyState !== OPEN) this._reconnect(0); };
      global.addEventListener("online", this._online);
      const shared = "locks" in global.navigator && "BroadcastChannel" in global;
      if (!shared) {
        this._lead();
        return;
      }
      this._channel = new BroadcastChannel("ssehub:" + this.url);
      this._channel.onmessage = (m) => this._fromLeader(m.data);
      this._channel.postMessage({ kind: "hello" });  // a leader answers with its state
      // Every tab queues for the lock; the holder is the leader until it goes.
      this._release = null;
      global.navigator.locks.request("ssehub:" + this.url, () => {
        if (this._closed) return undefined;
        this._lead();
        return new Promise((resolve) => { this._release = resolve; });
      });
    }

    get CONNECTING() { return CONNECTING; }
    get OPEN() { return OPEN; }
    get CLOSED() { return CLOSED; }

    close() {
      this._closed = true;
      this.readyState = CLOSED;
      clearTimeout(this._timer);
      global.removeEventListener("online", this._online);
      if (this._source) this._source.close();
      if (this._channel) this._channel.close();
      if (this._release) this._release();
    }

    _lead() {
      this.isLeader = true;
      this._connect();
    }

    _connect() {
      if (this._closed) return;
      const source = new EventSource(this._resumeUrl(), { withCredentials: this.withCredentials });
      this._source = source;
      source.onopen = () => {
        this._failures = 0;
        this._state(OPEN, "open");
      };
      source.onerror = () => {
        if (this._source !== source) return;
        if (source.readyState === CLOSED) {
          // The browser gave up for good (a non-200 answer or a wrong type):
          // find out why, then try again unless retrying cannot help.
          this._revive(source);
        } else {  // the browser reconnects by itself (the network dropped)
          this._state(CONNECTING, "error", true, { reason: "network", status: 0 });
        }
      };
      const forward = (event) => {
        const message = { kind: "event", type: event.type, data: event.data, id: event.lastEventId };
        this._deliver(message);
        if (this._channel) this._channel.postMessage(message);
      };
      source.onmessage = forward;
      this._forward = forward;
      for (const type of this._types) source.addEventListener(type, forward);
    }

    _resumeUrl() {
      const url = new URL(this.url);
      if (this.lastEventId) url.searchParams.set("lastEventID", this.lastEventId);
      return url.href;
    }

    async _revive(source) {
      source.close();
      let status = 0, retryAfter = null;
      try {  // the same request once more, for its status (the body is not read)
        const controller = new AbortController();
        const response = await fetch(this._resumeUrl(), {
          headers: { Accept: "text/event-stream" },
          credentials: this.withCredentials ? "include" : "same-origin",
          cache: "no-store",
          signal: controller.signal,
        });
        status = response.status;
        retryAfter = Number(response.headers.get("Retry-After")) || null;
        controller.abort();
      } catch (error) {
        status = 0;  // unreachable: keep trying
      }
      if (this._closed) return;
      const detail = { reason: status === 0 ? "network" : "http", status };
      if (status === 401 && typeof this.onunauthorized === "function") {
        try {
          const next = await this.onunauthorized.call(this, detail);
          if (typeof next === "string" && next) this.url = new URL(next, global.location.href).href;
        } catch (error) { /* the hook failed: back off and try again */ }
        if (this._closed) return;
      }
      const retrying = status === 0 || status === 200 || status === 401 || status === 408 ||
        status === 429 || status >= 500;
      if (!retrying) {
        this._state(CLOSED, "error", true, detail);
        return;
      }
      const wait = this._backoff(retryAfter);
      this._state(CONNECTING, "error", true, { ...detail, retryIn: wait });
      this._reconnect(wait);
    }

    _backoff(retryAfter) {
      this._failures += 1;
      const ceiling = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** (this._failures - 1));
      const jittered = ceiling / 2 + Math.random() * ceiling / 2;  // spread the herd
      return Math.round(retryAfter ? Math.max(jittered, Math.min(retryAfter * 1000, 300000)) : jittered);
    }

    _reconnect(wait) {
      clearTimeout(this._timer);
      this._timer = setTimeout(() => {
        this._timer = null;
        if (this._closed) return;
        if (this._source) this._source.close();
        this._connect();
      }, wait);
    }

    addEventListener(type, listener, options) {
      super.addEventListener(type, listener, options);
      if (["open", "error", "message"].includes(type)) return;
      if (!this._types.has(type)) {
        this._types.add(type);
        if (this._source && this._forward) this._source.addEventListener(type, this._forward);
      }
    }

    _fromLeader(message) {
      if (this._closed) return;
      if (message.kind === "hello") {
        if (this.isLeader && this.readyState === OPEN) {
          this._channel.postMessage({ kind: "state", readyState: OPEN, event: "open" });
        }
        return;
      }
      if (this.isLeader) return;
      if (message.kind === "state") {
        this._state(message.readyState, message.event, false, message.detail);
      }
      else if (message.kind === "event") this._deliver(message);
    }

    _state(readyState, type, broadcast = true, detail = undefined) {
      this.readyState = readyState;
      if (broadcast && this._channel) {
        this._channel.postMessage({ kind: "state", readyState, event: type, detail });
      }
      const event = new Event(type);
      if (detail) Object.assign(event, detail);
      this._fire(event);
    }

    _deliver(message) {
      if (message.id) {
        if (this._seen.has(message.id)) return;  // a replay after fail-over
        this._seen.add(message.id);
        if (this._seen.size > 1000) this._seen.delete(this._seen.values().next().value);
        this.lastEventId = message.id;
      }
      if (this.readyState !== OPEN) this.readyState = OPEN;
      this._fire(new MessageEvent(message.type, {
        data: message.data, lastEventId: message.id || "", origin: new URL(this.url).origin,
      }));
    }

    _fire(event) {
      const handler = this["on" + event.type];
      if (typeof handler === "function") handler.call(this, event);
      this.dispatchEvent(event);
    }
  }

  SharedEventSource.CONNECTING = CONNECTING;
  SharedEventSource.OPEN = OPEN;
  SharedEventSource.CLOSED = CLOSED;
  global.SharedEventSource = SharedEventSource;
})(globalThis);
