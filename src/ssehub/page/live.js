// The built-in live page: subscribe to one topic, show the latest value big
// and every received event in a log. The source reconnects by itself and
// resumes from the last event ID, so the hub replays what was published
// while the page was away.
"use strict";

const MAX_LOG = 200;
const topic = new URLSearchParams(location.search).get("topic") || "clock";
const $ = (id) => document.getElementById(id);
$("topic").textContent = topic;
document.title = `ssehub — ${topic}`;

function setStatus(text, cls) {
  const el = $("status");
  el.textContent = text;
  el.className = `status ${cls}`;
}

function show(data) {
  const when = /^\d{4}-\d\d-\d\dT/.test(data) ? new Date(data) : null;
  $("value").textContent = when && !isNaN(when) ? when.toLocaleTimeString() : data;
}

function log(text, id, cls) {
  const li = document.createElement("li");
  if (cls) li.className = cls;
  if (id) {
    li.dataset.id = id;
    const span = document.createElement("span");
    span.className = "id";
    span.textContent = `${id.slice(-8)} `;
    li.append(span);
  }
  li.append(document.createTextNode(text));
  const list = $("log");
  list.prepend(li);
  while (list.children.length > MAX_LOG) list.lastElementChild.remove();
}

let received = 0;
// One connection for every open tab of this page (see /_ssehub/ssehub.js);
// a plain EventSource if the helper did not load.
const Source = window.SharedEventSource || EventSource;
const source = new Source(`/.well-known/mercure?topic=${encodeURIComponent(topic)}`);
window.ssehubSource = source;
source.onopen = () => setStatus("live", "live");
source.onerror = () => {
  if (source.readyState === EventSource.CLOSED) setStatus("closed", "closed");
  else setStatus("reconnecting…", "connecting");
};
source.onmessage = (event) => {
  received += 1;
  show(event.data);
  $("meta").textContent = `${received} events received · last at ${new Date().toLocaleTimeString()}`;
  log(event.data, event.lastEventId);
};
source.addEventListener("ssehub-gap", () => {
  log("some events may be missing: the hub no longer had the last one we saw", null, "gap");
});
