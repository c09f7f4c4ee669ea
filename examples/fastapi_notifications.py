"""Broadcast notifications to every open page, with resume, using FastAPI.

    uvicorn examples.fastapi_notifications:app --timeout-graceful-shutdown 5
    open http://127.0.0.1:8000/ in a few tabs, then:
    curl -X POST 'http://127.0.0.1:8000/notify?text=deploy+finished'

One `Hub` is shared by the app's routes (`await hub.publish(...)`) and the
subscribe endpoint at /events. A page that reconnects (network drop,
laptop sleep) gets what it missed from history via `Last-Event-ID`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from ssehub import Hub
from ssehub.asgi import HubApp

hub = Hub()
events = HubApp(hub)
app = FastAPI(title="notifications", lifespan=events.lifespan)
app.mount("/events", events)  # GET /events/?topic=notes

PAGE = """<!doctype html>
<meta charset="utf-8"><title>notifications</title>
<h1>Notifications</h1>
<ul id="notes"></ul>
<script>
  const source = new EventSource("/events/?topic=notes");
  source.onmessage = (event) => {
    const li = document.createElement("li");
    li.textContent = event.data;
    li.dataset.id = event.lastEventId;
    document.getElementById("notes").append(li);
  };
</script>
"""


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return PAGE


@app.post("/notify")
async def notify(text: str) -> dict[str, str]:
    return {"id": await hub.publish("notes", text)}
