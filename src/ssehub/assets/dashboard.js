// The ssehub dashboard: totals and per-topic rates from /_ssehub/stats (an
// event a second), a live tail of any topic selector, and a publish form.
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
stats.addEventListener("stats", (e) => showStats(JSON.parse(e.data)));
stats.onopen = () => { $("status").textContent = "live"; $("status").className = "pill live"; };
stats.onerror = () => { $("status").textContent = "reconnecting…"; $("status").className = "pill wait"; };

// -- live tail --------------------------------------------------------------
let tail = null;
const paused = [];

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

function watch() {
  if (tail) tail.close();
  const url = new URL("/.well-known/mercure", location.origin);
  url.searchParams.append("topic", $("selector").value || "*");
  if ($("sub-token").value) url.searchParams.append("authorization", $("sub-token").value);
  const source = tail = new EventSource(url);
  source.onmessage = addTail;
  source.addEventListener("ssehub-gap", addTail);
  source.onerror = async () => {
    if (source.readyState !== EventSource.CLOSED) return;  // it retries by itself
    // refused for good: ask once more to say why (a JWT hub answers 401)
    const answer = await fetch(url, { headers: { Accept: "text/event-stream" } }).catch(() => null);
    if (!answer || answer.ok) return;
    const reason = (await answer.text()).trim();
    const hint = answer.status === 401 ? " — paste a subscriber JWT above" : "";
    addTail({ type: "refused", data: `${answer.status}: ${reason}${hint}`, lastEventId: "" });
  };
}
$("tail-form").addEventListener("submit", (e) => { e.preventDefault(); watch(); });
$("pause").addEventListener("change", () => {
  if (!$("pause").checked) paused.splice(0).forEach(addTail);
});
watch();

// -- publish ----------------------------------------------------------------
$("publish-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = new URLSearchParams({ topic: $("pub-topic").value, data: $("pub-data").value });
  if ($("pub-private").checked) body.append("private", "on");
  const headers = $("pub-token").value ? { Authorization: "Bearer " + $("pub-token").value } : {};
  const response = await fetch("/.well-known/mercure", { method: "POST", body, headers });
  $("pub-result").textContent = `${response.status}: ${(await response.text()).trim()}`;
});
