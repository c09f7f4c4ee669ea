/*
 * ssehub.js — an EventSource that every tab of an origin shares.
 *
 * Browsers open at most six HTTP/1.1 connections per origin, across all
 * tabs: a seventh EventSource hangs. SharedEventSource opens one stream per
 * hub for all tabs of the origin, even when they ask for different topics.
 * One tab (the leader, by a Web Lock) holds it, subscribed to the union of
 * every tab's selectors, and passes each event to the others over a
 * BroadcastChannel; each tab keeps only the events of its own selectors. The
 * hub names them: the stream asks for `tagged=1` (an ssehub extension) and
 * each event carries `matched: topic=<selector>` lines, which the leader
 * reads with fetch() and the small parser below (a native EventSource drops
 * unknown fields). When a tab joins with new selectors or leaves, the
 * leader reconnects with the new union, resuming after the last event it
 * saw; when the leader tab closes, the next tab takes the lock and resumes
 * the same way, so no tab misses an event or sees one twice. Without Web
 * Locks or BroadcastChannel each tab holds its own stream.
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
 * e.g. a malformed selector, or a 200 that is not an event stream, is final
 * and leaves readyState CLOSED).
 */
(function (global) {
  "use strict";

  const CONNECTING = 0, OPEN = 1, CLOSED = 2;
  const BACKOFF_MIN = 1000, BACKOFF_MAX = 30000;  // ms, before jitter
  const RETRY = 1000;  // ms before reconnecting after a stream ended, unless it said `retry:`
  const GRACE = 300;  // ms the old stream is still read once its successor is open
  const MAX_LINE = 16 * 1024 * 1024;  // characters: a peer that never ends a line
  const SELECTOR = /^(topic|match|match_exact|match_urlpattern)$/;
  const RESUME = ["lastEventID", "last_event_id", "tagged", "newest"];
  const SNAPSHOT_WAIT = 5000;  // ms a joining tab waits for its own `newest` replay

  // The hub's URL without selectors, and the selectors as the hub's `matched:` tags name them.
  function scope(href) {
    const url = new URL(href, global.location.href);
    const keys = [];
    for (const [name, value] of url.searchParams) {
      if (SELECTOR.test(name)) keys.push((name === "match_exact" ? "match" : name) + "=" + value);
    }
    for (const name of [...new Set(url.searchParams.keys())]) {
      if (SELECTOR.test(name) || RESUME.includes(name)) url.searchParams.delete(name);
    }
    return { hub: url.href, keys };
  }

  // An event stream parser (WHATWG HTML "Server-sent events") that also keeps `matched:` lines.
  class Parser {
    constructor(dispatch) {
      this.dispatch = dispatch;
      this.text = "";
      this.afterCR = false;
      this.data = [];
      this.type = "";
      this.matched = [];
      this.lastId = "";
      this.retry = null;
    }

    feed(text) {
      if (this.afterCR && text[0] === "\n") text = text.slice(1);  // a CRLF split across reads
      this.afterCR = false;
      const buffer = this.text + text;
      const ends = /\r\n|\r|\n/g;
      let start = 0, found;
      while ((found = ends.exec(buffer)) !== null) {
        if (found[0] === "\r" && found.index === buffer.length - 1) this.afterCR = true;
        this.line(buffer.slice(start, found.index));
        start = ends.lastIndex;
      }
      this.text = buffer.slice(start);
      if (this.text.length > MAX_LINE) throw new Error("event stream line too long");
    }

    line(line) {
      if (line === "") return this.end();
      if (line[0] === ":") return undefined;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "data") this.data.push(value);
      else if (field === "event") this.type = value;
      else if (field === "id") { if (!value.includes("\0")) this.lastId = value; }
      else if (field === "retry") { if (/^[0-9]+$/.test(value)) this.retry = Number(value); }
      else if (field === "matched") this.matched.push(value);
      return undefined;
    }

    end() {
      const { data, type, matched } = this;
      this.data = [];
      this.type = "";
      this.matched = [];
      if (data.length) this.dispatch({ type: type || "message", data: data.join("\n"), id: this.lastId, matched });
    }
  }

  class SharedEventSource extends EventTarget {
    constructor(url, options) {
      super();
      this.url = new URL(url, global.location.href).href;
      this.withCredentials = Boolean(options && options.withCredentials);
      this.onunauthorized = (options && options.onunauthorized) || null;
      const { hub, keys } = scope(this.url);
      this._keys = new Set(keys);
      // `newest=N` (the hub's current state on open): the leader's first stream asks for it;
      // a tab that joins a stream fetches its own, once (`_snapshot`)
      this._newest = new URL(this.url).searchParams.get("newest");
      this._snapshot = null;  // while that runs: the stream's events for this tab, held
      this._failures = 0;  // failed connection attempts in a row
      this._timer = null;
      this._rescoping = null;
      this.readyState = CONNECTING;
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      this.lastEventId = "";  // of the last event this tab got
      this._streamId = "";  // of the last event on the shared stream (any tab's)
      this.isLeader = false;
      this._closed = false;
      this._stream = null;  // the leader's current stream, and one being replaced
      this._old = null;
      this._covered = false;  // the stream carries this tab's selectors (and is past their replay)
      this._pending = false;  // ... once its replay ends (the `ssehub-live` marker)
      this._seen = new Set();
      this._tab = Math.random().toString(36).slice(2) + Date.now().toString(36);
      this._tabs = new Map();  // the other tabs: id -> { keys, since }
      this._online = () => { if (this.isLeader && this.readyState !== OPEN) this._reconnect(0); };
      global.addEventListener("online", this._online);
      const shared = "locks" in global.navigator && "BroadcastChannel" in global;
      if (!shared) {
        this._lead();
        return;
      }
      const name = "ssehub:" + hub;
      this._channel = new BroadcastChannel(name);
      this._channel.onmessage = (m) => this._fromTab(m.data);
      this._hidden = () => this._post({ kind: "leave", tab: this._tab });
      this._shown = (e) => { if (e.persisted) this._post({ kind: "join", tab: this._tab, keys }); };
      global.addEventListener("pagehide", this._hidden);
      global.addEventListener("pageshow", this._shown);
      // a lock per tab, held while it lives: the leader forgets tabs that died without a word
      global.navigator.locks.request(name + ":tab:" + this._tab, () => {
        if (this._closed) return undefined;
        return new Promise((resolve) => { this._untab = resolve; });
      });
      this._post({ kind: "join", tab: this._tab, keys });  // the others answer, the leader rescopes
      // Every tab queues for the lock; the holder is the leader until it goes.
      this._release = null;
      global.navigator.locks.request(name, () => {
        if (this._closed) return undefined;
        this._lead();
        return new Promise((resolve) => { this._release = resolve; });
      });
    }

    get CONNECTING() { return CONNECTING; }
    get OPEN() { return OPEN; }
    get CLOSED() { return CLOSED; }

    close() {
      if (this._closed) return;
      this._post({ kind: "leave", tab: this._tab });
      this._closed = true;
      this.readyState = CLOSED;
      clearTimeout(this._timer);
      clearTimeout(this._rescoping);
      clearInterval(this._pruning);
      global.removeEventListener("online", this._online);
      global.removeEventListener("pagehide", this._hidden);
      global.removeEventListener("pageshow", this._shown);
      for (const stream of [this._stream, this._old]) if (stream) stream.controller.abort();
      if (this._channel) this._channel.close();
      if (this._release) this._release();
      if (this._untab) this._untab();
    }

    _post(message) {
      if (this._channel && !this._closed) this._channel.postMessage(message);
    }

    // -- the leader ----------------------------------------------------------

    _lead() {
      this.isLeader = true;
      this._pruning = setInterval(() => this._prune(), 2000);
      this._prune().then(() => this._connect());
    }

    _union() {
      const union = new Set(this._keys);
      for (const tab of this._tabs.values()) for (const key of tab.keys) union.add(key);
      return [...union].sort();
    }

    async _prune() {  // forget tabs whose lock is gone (closed or crashed without a word)
      if (!this._channel || !global.navigator.locks.query) return;
      try {
        const held = new Set((await global.navigator.locks.query()).held.map((lock) => lock.name));
        const prefix = "ssehub:" + scope(this.url).hub + ":tab:";
        const old = Date.now() - 2000;
        for (const [tab, entry] of this._tabs) {
          if (entry.since < old && !held.has(prefix + tab)) this._forget(tab);
        }
      } catch (error) { /* no lock manager: rely on the tabs' leave messages */ }
    }

    _forget(tab) {
      if (this._tabs.delete(tab) && this.isLeader) this._rescope();
    }

    _rescope() {  // the union changed: reconnect with it, soon (joins come in bursts)
      if (!this.isLeader || this._rescoping !== null) return;
      this._rescoping = setTimeout(() => {
        this._rescoping = null;
        if (this._closed || this._timer !== null) return;  // a reconnection will use the union
        const union = this._union();
        const current = this._stream;
        if (current && current.keys.join("\n") === union.join("\n")) return;
        this._connect();
      }, 30);
    }

    _streamUrl(keys, newest) {
      const url = new URL(scope(this.url).hub);
      for (const key of keys) {
        const at = key.indexOf("=");
        url.searchParams.append(key.slice(0, at), key.slice(at + 1));
      }
      url.searchParams.set("tagged", "1");
      if (newest) url.searchParams.set("newest", newest);
      if (this._streamId) {
        const v1 = keys.some((key) => key.startsWith("match"));
        url.searchParams.set(v1 ? "last_event_id" : "lastEventID", this._streamId);
      }
      return url.href;
    }

    async _connect() {
      if (this._closed) return;
      clearTimeout(this._timer);
      this._timer = null;
      const keys = this._union();
      const stream = { controller: new AbortController(), keys, parser: null };
      const previous = this._stream;
      this._stream = stream;
      if (previous && previous.parser && previous !== this._old) {  // read on until this one is open
        if (this._old) this._old.controller.abort();
        this._old = previous;
      } else if (previous && previous !== this._old) {
        previous.controller.abort();  // it was not open yet
      }
      const resumed = Boolean(this._streamId);
      // the current state this tab asked for, on its first stream (a resume wins at the hub)
      const newest = !resumed && !this._covered ? this._newest : null;
      let response;
      try {
        response = await global.fetch(this._streamUrl(keys, newest), {
          headers: { Accept: "text/event-stream" },
          credentials: this.withCredentials ? "include" : "same-origin",
          cache: "no-store",
          signal: stream.controller.signal,
        });
      } catch (error) {
        if (this._stream === stream) this._failed(0, null);
        return;
      }
      if (this._stream !== stream) { stream.controller.abort(); return; }
      const type = response.headers.get("Content-Type") || "";
      if (response.status !== 200 || !/^text\/event-stream\b/i.test(type)) {
        stream.controller.abort();  // the body is not read
        this._failed(response.status, Number(response.headers.get("Retry-After")) || null, response.status === 200);
        return;
      }
      this._failures = 0;
      const old = this._old;
      if (old) setTimeout(() => { old.controller.abort(); if (this._old === old) this._old = null; }, GRACE);
      // for the other tabs, any replay is someone else's; this one asked for its newest
      this._post({ kind: "state", readyState: OPEN, event: "open", union: keys, replay: resumed || Boolean(newest) });
      this._state(OPEN, "open", false, undefined, { union: keys, replay: resumed });
      stream.parser = new Parser((event) => {
        if (this._stream !== stream && this._old !== stream) return;
        const message = { kind: "event", ...event };
        this._fromStream(message);
        this._post(message);
      });
      try {
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          stream.parser.feed(decoder.decode(value, { stream: true }));
        }
      } catch (error) { /* aborted, or the network dropped */ }
      if (this._closed || this._stream !== stream) return;  // replaced on purpose
      // it ended: come back after its `retry`, resuming from the last id
      const retry = stream.parser.retry === null ? RETRY : Math.min(stream.parser.retry, 300000);
      this._state(CONNECTING, "error", true, { reason: "network", status: 0, retryIn: retry });
      this._reconnect(retry);
    }

    async _failed(status, retryAfter, final = false) {
      for (const stream of [this._stream, this._old]) if (stream) stream.controller.abort();
      this._old = null;
      const detail = { reason: status === 0 ? "network" : "http", status };
      if (status === 401 && typeof this.onunauthorized === "function") {
        try {
          const next = await this.onunauthorized.call(this, detail);
          if (typeof next === "string" && next) this._retarget(next);
        } catch (error) { /* the hook failed: back off and try again */ }
        if (this._closed) return;
      }
      const retrying = !final && (status === 0 || status === 401 || status === 408 ||
        status === 429 || status >= 500);
      if (!retrying) {
        this._state(CLOSED, "error", true, detail);
        return;
      }
      const wait = this._backoff(retryAfter);
      this._state(CONNECTING, "error", true, { ...detail, retryIn: wait });
      this._reconnect(wait);
    }

    _retarget(next) {  // the hook gave a new URL (a fresh token in it): same selectors
      this.url = new URL(next, global.location.href).href;
      this._keys = new Set(scope(this.url).keys);
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
        this._connect();
      }, wait);
    }

    // -- every tab -------------------------------------------------------------

    _fromTab(message) {
      if (this._closed) return;
      const kind = message.kind;
      if (kind === "join" || kind === "here") {
        this._tabs.set(message.tab, { keys: message.keys, since: Date.now() });
        if (kind === "join") {
          this._post({ kind: "here", tab: this._tab, keys: [...this._keys] });
          if (this.isLeader && this.readyState === OPEN && this._stream && this._stream.parser) {
            this._post({ kind: "state", readyState: OPEN, event: "open", union: this._stream.keys, replay: false });
          }
        }
        if (this.isLeader && message.keys.some((key) => !this._stream || !this._stream.keys.includes(key))) {
          this._rescope();
        }
        return;
      }
      if (kind === "leave") {
        this._forget(message.tab);
        return;
      }
      if (this.isLeader) return;
      if (kind === "state") this._state(message.readyState, message.event, false, message.detail, message);
      else if (kind === "event") this._fromStream(message);
    }

    _fromStream(message) {  // an event of the shared stream: is it this tab's?
      if (message.id) this._streamId = message.id;
      if (this._pending) {
        if (message.type === "ssehub-live") {  // the replay was for the others
          this._pending = false;
          this._covered = true;
          if (this._snapshot && this._snapshot.done) this._flushSnapshot();
          return;
        }
        const untagged = !message.matched.length && !message.type.startsWith("ssehub-");
        if (untagged) this._covered = !(this._pending = false);  // not an ssehub hub: no replay marker
      }
      const matched = message.matched;
      if (matched.length && !matched.some((key) => this._keys.has(key))) return;
      if (this._pending && message.type.startsWith("ssehub-")) return;  // the others' gap
      if (this._snapshot) this._snapshot.held.push(message);  // even during the others' replay
      else if (this._covered) this._deliver(message);
    }

    // A tab that joins an open stream asks the hub for its own `newest=N` (its selectors only),
    // reads it up to the `ssehub-live` marker, and holds the stream's events meanwhile. Then it
    // delivers that state, and of what it held what came after its newest event: if that one
    // is among them, what follows it; if not, it is older than all of them (the held events
    // start at the shared stream's resume point or at the join, before the fetch).
    async _takeSnapshot() {
      const snapshot = this._snapshot = { held: [], events: [], done: false };
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), SNAPSHOT_WAIT);
      try {
        const url = new URL(scope(this.url).hub);
        for (const key of this._keys) {
          const at = key.indexOf("=");
          url.searchParams.append(key.slice(0, at), key.slice(at + 1));
        }
        url.searchParams.set("newest", this._newest);
        const response = await global.fetch(url.href, {
          headers: { Accept: "text/event-stream" },
          credentials: this.withCredentials ? "include" : "same-origin",
          cache: "no-store",
          signal: controller.signal,
        });
        if (response.status === 200) {
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let live = false;
          const parser = new Parser((event) => {
            if (event.type === "ssehub-live") live = true;
            else if (!live) snapshot.events.push({ kind: "event", ...event });
          });
          while (!live) {
            const { value, done } = await reader.read();
            if (done) break;
            parser.feed(decoder.decode(value, { stream: true }));
          }
        }
      } catch (error) { /* no state to add: the stream's events alone */ }
      clearTimeout(timer);
      controller.abort();
      snapshot.done = true;
      if (!this._closed && !this._pending) this._flushSnapshot();  // else at the others' marker
    }

    _flushSnapshot() {
      const { events, held } = this._snapshot;
      this._snapshot = null;
      for (const event of events) this._deliver(event);
      const last = events.length ? events[events.length - 1].id : "";
      const at = last ? held.findIndex((m) => m.id === last) : -1;
      for (const message of held.slice(at + 1)) this._deliver(message);
    }

    _state(readyState, type, broadcast = true, detail = undefined, stream = undefined) {
      if (type === "open" && stream) {
        if (!this._keys.size || [...this._keys].every((key) => stream.union.includes(key))) {
          if (!this._covered && !this._pending) {
            // joining: the replay (from the others' last id) is not for this tab
            if (stream.replay) this._pending = true;
            else this._covered = true;
            if (this._newest && !this.isLeader && !this._snapshot) this._takeSnapshot();
          }
        } else {
          this._covered = this._pending = false;  // a stream with this tab's selectors comes next
          readyState = CONNECTING;
          type = null;
        }
      }
      if (broadcast) this._post({ kind: "state", readyState, event: type, detail, ...(stream || {}) });
      this.readyState = readyState;
      if (type === null) return;
      const event = new Event(type);
      if (detail) Object.assign(event, detail);
      this._fire(event);
    }

    _deliver(message) {
      if (message.id) {
        if (this._seen.has(message.id)) return;  // a replay after a reconnection
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
  SharedEventSource.Parser = Parser;  // its event stream parser (keeps `matched:`), for ssehub's pages
  global.SharedEventSource = SharedEventSource;
})(globalThis);
