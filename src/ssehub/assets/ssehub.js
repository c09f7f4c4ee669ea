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
 */
(function (global) {
  "use strict";

  const CONNECTING = 0, OPEN = 1, CLOSED = 2;

  class SharedEventSource extends EventTarget {
    constructor(url, options) {
      super();
      this.url = new URL(url, global.location.href).href;
      this.withCredentials = Boolean(options && options.withCredentials);
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
      if (this._source) this._source.close();
      if (this._channel) this._channel.close();
      if (this._release) this._release();
    }

    _lead() {
      this.isLeader = true;
      const url = new URL(this.url);
      if (this.lastEventId) url.searchParams.set("lastEventID", this.lastEventId);
      const source = new EventSource(url.href, { withCredentials: this.withCredentials });
      this._source = source;
      source.onopen = () => this._state(OPEN, "open");
      source.onerror = () => {
        this._state(source.readyState === CLOSED ? CLOSED : CONNECTING, "error");
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
      if (message.kind === "state") this._state(message.readyState, message.event, false);
      else if (message.kind === "event") this._deliver(message);
    }

    _state(readyState, type, broadcast = true) {
      this.readyState = readyState;
      if (broadcast && this._channel) {
        this._channel.postMessage({ kind: "state", readyState, event: type });
      }
      this._fire(new Event(type));
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
