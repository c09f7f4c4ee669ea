"""A Mercure hub inside a FastAPI app: `HubApp` mounted at /.well-known/mercure.

    SSEHUB_JWT_KEY='!ChangeThisMercureHubJWTSecretKey!' SSEHUB_ANONYMOUS=1 \\
        python -m uvicorn examples.fastapi_mercure:app --port 8000
    open http://127.0.0.1:8000/, then publish with a token:
    curl -d topic=demo -d data=hello -H "Authorization: Bearer $(ssehub token \\
        --jwt-key '!ChangeThisMercureHubJWTSecretKey!' --publish '*')" \\
        http://127.0.0.1:8000/.well-known/mercure

It speaks Mercure as `ssehub serve` does (JWT auth, private updates, URI
templates, resume, CORS, publish origins, the subscriptions API), and reads
the same `SSEHUB_*` variables with the same meanings: `SSEHUB_JWT_KEY`,
`SSEHUB_PUBLISHER_JWT_KEY`, `SSEHUB_SUBSCRIBER_JWT_KEY`, `SSEHUB_JWT_ALGORITHM`,
`SSEHUB_ANONYMOUS`, `SSEHUB_ANONYMOUS_PUBLISH`, `SSEHUB_CORS_ORIGIN`,
`SSEHUB_PUBLISH_ORIGIN`, `SSEHUB_SUBSCRIPTIONS`, `SSEHUB_MAX_TOPICS`; and
`SSEHUB_PAGE=DIR` serves DIR's `index.html` at `/` instead of the demo page.
Your own routes publish with `await hub.publish(...)`.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.routing import Route

from ssehub import Hub
from ssehub.asgi import HubApp
from ssehub.mercure import MERCURE_PATH, METADATA_PATH, MercureConfig

hub = Hub()
mercure = HubApp(hub, config=MercureConfig.from_environ())
app = FastAPI(title="mercure", lifespan=mercure.lifespan)
app.router.routes.append(Route(MERCURE_PATH, mercure))  # the endpoint itself, no redirect
app.mount(MERCURE_PATH, mercure)  # and below it: /.well-known/mercure/subscriptions...
app.router.routes.append(Route(METADATA_PATH, mercure))  # Mercure 1.0: RFC 9728 metadata

PAGE = """<!doctype html>
<meta charset="utf-8"><title>mercure</title>
<h1>Topic <code>demo</code></h1>
<ul id="updates"></ul>
<script>
  const url = new URL("/.well-known/mercure", location.origin);
  url.searchParams.append("topic", "demo");
  const source = new EventSource(url, { withCredentials: true });
  source.onmessage = (event) => {
    const li = document.createElement("li");
    li.textContent = event.data;
    document.getElementById("updates").append(li);
  };
</script>
"""


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    folder = os.environ.get("SSEHUB_PAGE")
    return (Path(folder) / "index.html").read_text() if folder else PAGE
