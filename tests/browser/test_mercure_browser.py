"""A page on the hub's origin uses ssehub as it would use a Mercure hub:
`EventSource` to subscribe, `fetch` with an HS256 JWT to publish — public,
private (token by cookie or query parameter), multi-topic, URI topics and
URI templates,
in real Chromium against both front ends: `ssehub serve` and
`examples/fastapi_mercure.py` under uvicorn, configured alike by
`SSEHUB_JWT_KEY`, `SSEHUB_ANONYMOUS=1` and `SSEHUB_PAGE`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.support.asgi import wait_until
from tests.support.frontends import FRONTENDS, Frontend
from tests.support.helpers import free_port

pytestmark = pytest.mark.browser

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
BOOK = "https://example.com/books/1"

PAGE = """<!doctype html><meta charset="utf-8"><title>mercure</title>
<script>
  const hub = new URL("/.well-known/mercure", location.origin);
  window.got = {};
  window.opened = 0;
  window.listen = (name, topics, query) => {
    const url = new URL(hub);
    for (const t of topics) url.searchParams.append("topic", t);
    for (const [k, v] of Object.entries(query || {})) url.searchParams.append(k, v);
    window.got[name] = [];
    const source = new EventSource(url, { withCredentials: true });
    source.onopen = () => { window.opened += 1; };
    source.onmessage = (e) => window.got[name].push(e.data);
  };
  window.publish = async (token, fields) => {
    const body = new URLSearchParams();
    for (const [k, v] of fields) body.append(k, v);
    const r = await fetch(hub, { method: "POST", body,
      headers: { Authorization: "Bearer " + token } });
    return [r.status, await r.text()];
  };
</script>"""


@pytest.mark.parametrize("kind", FRONTENDS)
def test_page_subscribes_and_publishes_as_with_a_mercure_hub(
    browser: Any, tmp_path: Path, kind: str
) -> None:
    (tmp_path / "index.html").write_text(PAGE)
    env = {"SSEHUB_JWT_KEY": SECRET, "SSEHUB_ANONYMOUS": "1", "SSEHUB_PAGE": str(tmp_path)}
    hub = Frontend(kind, env, free_port())
    page = browser.new_page()
    try:
        page.goto(f"{hub.url}/")
        reader = jwt.encode({"mercure": {"subscribe": [BOOK]}}, SECRET, algorithm="HS256")
        writer = jwt.encode({"mercure": {"publish": ["*"]}}, SECRET, algorithm="HS256")
        page.evaluate(
            f"document.cookie = 'mercureAuthorization={reader}; path=/.well-known/mercure'"
        )
        page.evaluate(f"listen('cookie', [{json.dumps(BOOK)}])")  # the cookie carries the token
        page.wait_for_function("() => window.opened === 1")
        page.evaluate(
            "document.cookie = 'mercureAuthorization=; max-age=0; path=/.well-known/mercure'"
        )
        page.evaluate(f"listen('public', [{json.dumps(BOOK)}])")
        page.evaluate(f"listen('query', [{json.dumps(BOOK)}], {{authorization: '{reader}'}})")
        page.evaluate("listen('multi', ['a', 'b'])")
        page.evaluate("listen('template', ['https://example.com/books/{id}'])")
        page.wait_for_function("() => window.opened === 5")
        for fields in (
            [["topic", BOOK], ["data", "public"]],
            [["topic", BOOK], ["data", "private"], ["private", "on"]],
            [["topic", "b"], ["topic", "c"], ["data", "b and c"]],
        ):
            status, event_id = page.evaluate(f"publish('{writer}', {json.dumps(fields)})")
            assert status == 200
            assert event_id.startswith("urn:uuid:")
        page.wait_for_function("() => window.got.multi.length === 1")
        page.wait_for_function("() => window.got.cookie.length === 2")
        page.wait_for_function("() => window.got.query.length === 2")
        got = page.evaluate("window.got")
        assert got["public"] == ["public"]  # no token: public updates only
        assert got["cookie"] == ["public", "private"]
        assert got["query"] == ["public", "private"]
        assert got["multi"] == ["b and c"]
        assert got["template"] == ["public"]  # the URI template matched; no token, no private
        denied = page.evaluate("publish('not a token', [['topic', 'a'], ['data', 'x']])")
        assert denied[0] == 401
    finally:
        page.close()
        hub.stop()
    assert wait_until(lambda: hub.proc.poll() is not None, 5)
