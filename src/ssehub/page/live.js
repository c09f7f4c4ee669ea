// The built-in live page: subscribe to one topic and show it either as one
// big live value (the clock) or as a feed, the recent events newest first,
// each with its time and its whole text (logs, multi-line data).
//
//   /?topic=T             the value view, or the feed once data is multi-line
//                         or longer than LONG characters
//   /?topic=T&view=feed   the feed from the start
//   /?topic=T&view=value  the value view whatever the data
//
// The page opens with the topic's newest events (the hub's `newest=N`): the
// value view the newest one, the feed the newest MAX_LOG, so the current
// value and the last lines are there at once, and no more history is read.
// The source reconnects by itself and resumes from the last event ID (which
// wins over `newest` at the hub), so the hub replays what was published
// while the page was away.
"use strict";

const MAX_LOG = 200;  // entries kept and shown
const MAX_TEXT = 20000;  // characters shown of one event's data
const LONG = 80;  // longer data (or any line break) switches to the feed

const params = new URLSearchParams(location.search);
const topic = params.get("topic") || "clock";
const asked = params.get("view");  // "feed", "value" or automatic
const $ = (id) => document.getElementById(id);
$("topic").textContent = topic;
document.title = `ssehub — ${topic}`;

let view = asked === "feed" ? "feed" : "value";
let following = true;  // the feed shows each event as it comes
let pending = 0;  // events received while paused
let received = 0;
const entries = [];  // newest last: { kind: "event" | "gap", id, data, time }
const ids = new Set();

for (const [name, target] of [["to-value", "value"], ["to-feed", "feed"]]) {
  const link = $(name);
  const there = new URLSearchParams(location.search);
  there.set("topic", topic);
  there.set("view", target);
  link.href = `?${there}`;
}

function setStatus(text, cls) {
  const el = $("status");
  el.textContent = text;
  el.className = `status ${cls}`;
}

// The time an event was published: its id when the hub made it (a
// time-ordered UUID, version 7: the first 48 bits are milliseconds), else
// the time it arrived here.
function publishedAt(id) {
  const hex = /^(?:urn:uuid:)?([0-9a-f]{8})-([0-9a-f]{4})-7/i.exec(id || "");
  return hex ? new Date(parseInt(hex[1] + hex[2], 16)) : new Date();
}

function clock(time) {
  const today = time.toDateString() === new Date().toDateString();
  return today ? time.toLocaleTimeString() : time.toLocaleString();
}

function show(data) {
  const when = /^\d{4}-\d\d-\d\dT/.test(data) ? new Date(data) : null;
  $("value").textContent = when && !isNaN(when) ? when.toLocaleTimeString() : data;
}

function setView(next) {
  view = next;
  document.body.className = `view-${view}`;
  $("to-value").toggleAttribute("aria-current", view === "value");
  $("to-feed").toggleAttribute("aria-current", view === "feed");
  $("log-title").firstChild.textContent = view === "feed" ? `Feed of ${topic} ` : "Received events ";
  renderAll();
}

// One list item: in the value view one line (its id's tail and the data),
// in the feed its time over the whole text in a monospace block.
function item(entry) {
  const li = document.createElement("li");
  if (entry.kind === "gap") {
    li.className = "gap";
    li.textContent = "some events may be missing: the hub no longer had the last one we saw";
    return li;
  }
  if (entry.id) li.dataset.id = entry.id;
  if (view === "feed") {
    const time = document.createElement("time");
    time.dateTime = entry.time.toISOString();
    time.textContent = clock(entry.time);
    const pre = document.createElement("pre");
    const cut = entry.data.length - MAX_TEXT;
    pre.textContent = cut > 0 ? `${entry.data.slice(0, MAX_TEXT)}\n… (${cut} more characters)` : entry.data;
    if (!entry.data) pre.className = "empty";
    li.append(time, pre);
  } else {
    if (entry.id) {
      const span = document.createElement("span");
      span.className = "id";
      span.textContent = `${entry.id.slice(-8)} `;
      li.append(span);
    }
    li.append(document.createTextNode(entry.data));
  }
  return li;
}

function renderAll() {
  const list = $("log");
  list.replaceChildren(...entries.map(item).reverse());
  pending = 0;
  renderFollow();
}

function renderFollow() {
  const button = $("follow");
  button.textContent = following ? "Pause" : pending ? `Follow (${pending} new)` : "Follow";
  button.setAttribute("aria-label", following ? "pause the feed" : "follow the feed again");
}

function add(entry) {
  if (entry.id) {
    if (ids.has(entry.id)) return;
    ids.add(entry.id);
  }
  entries.push(entry);
  while (entries.length > MAX_LOG) {
    const old = entries.shift();
    if (old.id) ids.delete(old.id);
  }
  if (entry.kind === "event" && view === "value" && asked !== "value" &&
      (entry.data.length > LONG || /[\r\n]/.test(entry.data))) {
    setView("feed");  // renders every entry, this one too
    return;
  }
  if (view === "feed" && !following) {
    pending += 1;
    renderFollow();
    return;
  }
  const list = $("log");
  list.prepend(item(entry));
  while (list.children.length > MAX_LOG) list.lastElementChild.remove();
}

setView(view);

$("follow").addEventListener("click", () => {
  following = !following;
  if (following) renderAll();
  else renderFollow();
});

function onEvent(entry) {
  received += 1;
  show(entry.data);
  $("meta").textContent = `${received} events received · last at ${new Date().toLocaleTimeString()}`;
  add(entry);
}

// What the page asks for when it opens: the newest event (the value view) or
// the newest MAX_LOG (the feed). A hub whose history bound is lower refuses
// that (400): the page asks again for fewer, down to the newest one.
const NEWEST = view === "feed" ? [MAX_LOG, 100, 50, 20, 1] : [1];
// One connection for every open tab of this page (see /_ssehub/ssehub.js);
// a plain EventSource if the helper did not load.
const Source = window.SharedEventSource || EventSource;
let source = null;

function subscribe(tries) {
  const query = new URLSearchParams({ topic, newest: String(tries[0]) });
  const current = source = new Source(`/.well-known/mercure?${query}`);
  window.ssehubSource = current;
  let opened = false;
  current.onopen = () => { opened = true; setStatus("live", "live"); };
  current.onerror = (event) => {
    if (current.readyState !== EventSource.CLOSED) setStatus("reconnecting…", "connecting");
    else if (!opened && event.status === 400 && tries.length > 1) {
      current.close();  // (it holds the tabs' lock)
      subscribe(tries.slice(1));
    }
    else setStatus("closed", "closed");
  };
  current.onmessage = (event) => {
    onEvent({ kind: "event", id: event.lastEventId, data: event.data, time: publishedAt(event.lastEventId) });
  };
  current.addEventListener("ssehub-gap", () => add({ kind: "gap" }));
}
subscribe(NEWEST);

// A tab that joins a connection another tab already holds gets only the
// events from now on: it asks the open tabs of this topic for what they
// have, and takes the first answer (older than all it received itself).
if (window.SharedEventSource && "BroadcastChannel" in window) {
  const tabs = new BroadcastChannel(`ssehub-page:${topic}:${NEWEST[0]}`);
  let answered = false;
  tabs.onmessage = ({ data: message }) => {
    if (message.kind === "ask" && entries.some((e) => e.kind === "event")) {
      tabs.postMessage({
        kind: "recent",
        entries: entries.filter((e) => e.kind === "event").map((e) => ({ ...e, time: e.time.getTime() })),
      });
    } else if (message.kind === "recent" && !answered && !source.isLeader) {
      answered = true;
      const mine = entries.splice(0);
      ids.clear();
      for (const entry of message.entries) add({ ...entry, time: new Date(entry.time) });
      for (const entry of mine) add(entry);
      const latest = entries.filter((e) => e.kind === "event").pop();
      if (latest) show(latest.data);
      if (!received && latest) {
        $("meta").textContent = `${entries.length} recent events, from another open tab`;
      }
      renderAll();
    }
  };
  tabs.postMessage({ kind: "ask" });
}
