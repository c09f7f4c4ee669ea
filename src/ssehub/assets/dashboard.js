// The ssehub dashboard: totals and per-topic rates from /_ssehub/stats (an
// event a second), a live tail of any topic selector, and a publish form,
// in the Mercure dialect the hub speaks (its snapshot says which).
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const history = new Map();  // topic -> events/s over the last minute
let previous = null;

function number(n) { return n.toLocaleString(); }

function sparkline(canvas, values) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = canvas.clientWidth * ratio;
  canvas.height = canvas.clientHeight * ratio;
  const ctx = canvas.getContext("2d");
  const max = Math.max(1, ...values);
  ctx.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue("--accent");
  ctx.lineWidth = 2 * ratio;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / 59) * canvas.width;
    const y = canvas.height - (v / max) * (canvas.height - 4 * ratio) - 2 * ratio;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function showStats(s) {
  $("worker").textContent = `process ${s.pid}`;
  $("connections").textContent = number(s.connections);
  $("subscribers").textContent = number(s.subscribers);
  $("published").textContent = number(s.events_published);
  $("delivered").textContent = number(s.events_delivered);
  $("drops").textContent = `${s.disconnects.slow} / ${s.disconnects.stalled}`;
  const seconds = previous ? Math.max(0.001, s.time - previous.time) : 1;
  const rate = previous ? (s.events_published - previous.events_published) / seconds : 0;
  $("rate").textContent = number(Math.round(rate));
  // topics, not selectors: `*` (this page's own tail), templates and URL
  // patterns (`/:id`, `*`, `(...)`) name no topic of their own: no card
  const named = (t) => t !== "*" && !t.includes("{") && !/\/:[A-Za-z_$]|[*(]/.test(t);
  const topics = new Set([
    ...Object.keys(s.events_by_topic),
    ...Object.keys(s.subscribers_by_topic).filter(named),
  ]);
  for (const topic of topics) {
    const before = previous ? previous.events_by_topic[topic] || 0 : s.events_by_topic[topic] || 0;
    // a topic seen for the first time: seed its chart with its average rate
    // since the hub started (not zero: it may have been publishing for hours)
    const average = (s.events_by_topic[topic] || 0) / Math.max(1, s.time - (s.since || s.time));
    const series = history.get(topic) || new Array(60).fill(previous ? 0 : average);
    series.push(previous ? ((s.events_by_topic[topic] || 0) - before) / seconds : average);
    series.splice(0, series.length - 60);
    history.set(topic, series);
  }
  const list = $("topics");
  list.replaceChildren();
  const ranked = [...history.entries()].sort((a, b) => b[1].reduce((x, y) => x + y) - a[1].reduce((x, y) => x + y));
  for (const [topic, series] of ranked.slice(0, 12)) {
    const box = document.createElement("div");
    box.className = "topic";
    box.dataset.topic = topic;
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = topic;
    const canvas = document.createElement("canvas");
    const nums = document.createElement("div");
    nums.className = "nums";
    const watching = s.subscribers_by_topic[topic] || 0;
    nums.textContent = `${series[series.length - 1].toFixed(1)} events/s · ${watching} ${watching === 1 ? "subscriber" : "subscribers"} · ${number(s.events_by_topic[topic] || 0)} in all`;
    box.append(name, canvas, nums);
    list.append(box);
    sparkline(canvas, series);
  }
  const drops = $("disconnects");
  if (s.recent_disconnects.length) {
    drops.replaceChildren(...s.recent_disconnects.slice().reverse().map((d) => {
      const li = document.createElement("li");
      li.textContent = `${new Date(d.time * 1000).toLocaleTimeString()} · ${d.reason} · ${d.topics.join(", ")}`;
      return li;
    }));
  }
  previous = s;
}

const stats = new EventSource("stats" + (token ? `?token=${encodeURIComponent(token)}` : ""));
let dialects = null;  // the Mercure the hub speaks ("both", "1.0", "0.x"): from the first snapshot
let statsOpen = false, tailReady = false;
stats.addEventListener("stats", (e) => {
  const snapshot = JSON.parse(e.data);
  if (dialects === null) {
    dialects = snapshot.mercure_dialects || "0.x";
    offerKinds(dialects);
    watch();
  }
  showStats(snapshot);
});
function ready() {
  if (!statsOpen || !tailReady) return;
  $("status").textContent = "live";
  $("status").className = "pill live";
}
stats.onopen = () => { statsOpen = true; ready(); };
stats.onerror = () => {
  statsOpen = false;
  $("status").textContent = "reconnecting…";
  $("status").className = "pill wait";
};

// -- live tail --------------------------------------------------------------
// The tail speaks the hub's Mercure: 0.x `topic=` (a topic, a URI template or
// `*`), 1.0 `match=` (exact) or `match_urlpattern=`; the subscriber token goes
// in the Authorization header (1.0 takes none in the URL), so it reads the
// stream with fetch() and ssehub.js's parser, and resumes from the last id.
const KINDS = {
  topic: ["topic", "topic or URI template (Mercure 0.x)", "lastEventID"],
  match: ["match", "exact topic (Mercure 1.0)", "last_event_id"],
  match_urlpattern: ["match_urlpattern", "URL pattern (Mercure 1.0)", "last_event_id"],
};
let tail = null;  // the running tail's AbortController
const paused = [];

function offerKinds(spoken) {
  const names = spoken === "1.0" ? ["match", "match_urlpattern"]
    : spoken === "0.x" ? ["topic"] : ["topic", "match", "match_urlpattern"];
  $("sub-kind").replaceChildren(...names.map((name) => {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = KINDS[name][1];
    return option;
  }));
  $("sub-kind").hidden = names.length === 1;
}

function addTail(e) {
  if ($("pause").checked) { paused.push(e); return; }
  const filter = $("filter").value;
  if (filter && !e.data.includes(filter) && !(e.type || "").includes(filter)) return;
  const li = document.createElement("li");
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = `${new Date().toLocaleTimeString()} ${e.type !== "message" ? e.type + " " : ""}`;
  li.append(meta, document.createTextNode(e.data));
  li.dataset.id = e.lastEventId;
  const list = $("tail");
  list.prepend(li);
  while (list.children.length > 200) list.lastElementChild.remove();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function watch() {
  if (tail) tail.abort();
  const controller = tail = new AbortController();
  const [param, , resume] = KINDS[$("sub-kind").value] || KINDS.topic;
  const url = new URL("/.well-known/mercure", location.origin);
  url.searchParams.append(param, $("selector").value || "*");
  const headers = { Accept: "text/event-stream" };
  const bearer = $("sub-token").value.trim();
  if (bearer) headers.Authorization = "Bearer " + bearer;
  let lastId = "", failures = 0;
  while (tail === controller) {
    if (lastId) url.searchParams.set(resume, lastId);
    try {
      const answer = await fetch(url, { headers, cache: "no-store", signal: controller.signal });
      if (!answer.ok) {  // refused: say why (a JWT hub answers 401), and stop
        const reason = (await answer.text()).trim();
        const hint = answer.status === 401 ? " — paste a subscriber JWT above" : "";
        addTail({ type: "refused", data: `${answer.status}: ${reason}${hint}`, lastEventId: "" });
        tailReady = true;
        ready();
        return;
      }
      failures = 0;
      tailReady = true;
      ready();
      const parser = new SharedEventSource.Parser((event) => {
        if (event.id) lastId = event.id;
        if (event.type !== "ssehub-live" && tail === controller) {
          addTail({ type: event.type, data: event.data, lastEventId: event.id });
        }
      });
      const reader = answer.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    failures += 1;
    await sleep(Math.min(30000, 500 * 2 ** failures));
  }
}
$("tail-form").addEventListener("submit", (e) => { e.preventDefault(); watch(); });
$("pause").addEventListener("change", () => {
  if (!$("pause").checked) paused.splice(0).forEach(addTail);
});

// -- publish ----------------------------------------------------------------
$("publish-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = new URLSearchParams({ topic: $("pub-topic").value, data: $("pub-data").value });
  if ($("pub-private").checked) body.append("private", "on");
  const headers = $("pub-token").value ? { Authorization: "Bearer " + $("pub-token").value } : {};
  const response = await fetch("/.well-known/mercure", { method: "POST", body, headers });
  $("pub-result").textContent = `${response.status}: ${(await response.text()).trim()}`;
});
