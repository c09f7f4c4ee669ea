"""The issue's "Done when" for Mercure 1.0, in real Chromium against both
front ends, configured alike by `SSEHUB_JWT_KEY`, `SSEHUB_JWT_ISSUER`,
`SSEHUB_RESOURCE`, `SSEHUB_ANONYMOUS=1`: a page subscribes with `match` /
`match_urlpattern` and publishes with an HS256 `at+jwt` access token whose
`aud` is the resource, `iss` the issuer, and `authorization_details` grant
publish and subscribe — public, private (the `__Secure-` cookie),
multi-matcher and URL-pattern cases. (The 0.x page is
`test_mercure_browser.py`.)"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.support.asgi import wait_until
from tests.support.frontends import FRONTENDS, Frontend
from tests.support.helpers import free_port

pytestmark = pytest.mark.browser

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
ISSUER = "https://localhost"
RESOURCE = "https://localhost/.well-known/mercure"
BOOK = "https://example.com/books/1"
DETAIL = "https://mercure.rocks/authorization-detail"

PAGE = """<!doctype html><meta charset="utf-8"><title>mercure 1.0</title>
<script>
  const hub = new URL("/.well-known/mercure", location.origin);
  window.got = {};
  window.opened = 0;
  window.listen = (name, params) => {
    const url = new URL(hub);
    for (const [k, v] of params) url.searchParams.append(k, v);
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


def access_token(topics: list[dict[str, str]]) -> str:
    claims = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "urn:uuid:page",
        "exp": int(time.time()) + 120,
        "authorization_details": [
            {"type": DETAIL, "actions": ["publish", "subscribe"], "topics": topics}
        ],
    }
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt"})


@pytest.mark.parametrize("kind", FRONTENDS)
def test_page_speaks_mercure_1_0(browser: Any, tmp_path: Path, kind: str) -> None:
    (tmp_path / "index.html").write_text(PAGE)
    env = {
        "SSEHUB_JWT_KEY": SECRET,
        "SSEHUB_JWT_ISSUER": ISSUER,
        "SSEHUB_RESOURCE": RESOURCE,
        "SSEHUB_ANONYMOUS": "1",
        "SSEHUB_PAGE": str(tmp_path),
    }
    hub = Frontend(kind, env, free_port())
    page = browser.new_page()
    try:
        page.goto(f"{hub.url}/")
        reader = access_token([{"match": BOOK}])
        writer = access_token([{"match": "*"}])
        cookie = f"__Secure-mercure_access_token={reader}; Secure; path=/.well-known/mercure"
        page.evaluate(f"document.cookie = {json.dumps(cookie)}")
        pattern = ["match_urlpattern", "https://example.com/books/:id"]
        page.evaluate(f"listen('cookie', [{json.dumps(pattern)}])")  # the cookie carries it
        page.wait_for_function("() => window.opened === 1")
        gone = "__Secure-mercure_access_token=; Secure; max-age=0; path=/.well-known/mercure"
        page.evaluate(f"document.cookie = {json.dumps(gone)}")
        page.evaluate(f"listen('public', [['match', {json.dumps(BOOK)}]])")
        page.evaluate("listen('multi', [['match', 'a'], ['match', 'b']])")
        page.evaluate(f"listen('pattern', [{json.dumps(pattern)}])")
        page.evaluate("listen('relative', [['match_urlpattern', '/rel/:x']])")
        page.wait_for_function("() => window.opened === 5")
        for fields in (
            [["topic", BOOK], ["data", "public"]],
            [["topic", BOOK], ["data", "private"], ["private", "on"]],
            [["topic", "b"], ["topic", "c"], ["data", "b and c"]],
            [["topic", "https://localhost/rel/1"], ["data", "relative"]],
        ):
            status, event_id = page.evaluate(f"publish('{writer}', {json.dumps(fields)})")
            assert status == 200, event_id
            assert event_id.startswith("urn:uuid:")
        page.wait_for_function("() => window.got.multi.length === 1")
        page.wait_for_function("() => window.got.cookie.length === 2")
        page.wait_for_function("() => window.got.relative.length === 1")
        got = page.evaluate("window.got")
        assert got["public"] == ["public"]  # no token: public updates only
        assert got["cookie"] == ["public", "private"]
        assert got["multi"] == ["b and c"]
        assert got["pattern"] == ["public"]  # the URL pattern matched; no token, no private
        assert got["relative"] == ["relative"]  # resolved against the resource URL
        denied = page.evaluate("publish('not a token', [['topic', 'a'], ['data', 'x']])")
        assert denied[0] == 401
    finally:
        page.close()
        hub.stop()
    assert wait_until(lambda: hub.proc.poll() is not None, 5)


@pytest.mark.parametrize("kind", FRONTENDS)
def test_one_hub_serves_0_x_and_1_0_pages_at_once(browser: Any, tmp_path: Path, kind: str) -> None:
    """The issue's command, one process: a 0.x page (`topic=`, URI
    templates, a `mercure`-claim JWT in the `mercureAuthorization` cookie)
    and a 1.0 page (`match=`, an `at+jwt` publisher) side by side, each
    receiving what the other publishes, private updates included."""
    (tmp_path / "index.html").write_text(PAGE)
    env = {
        "SSEHUB_JWT_KEY": SECRET,
        "SSEHUB_JWT_ISSUER": ISSUER,
        "SSEHUB_RESOURCE": RESOURCE,
        "SSEHUB_ANONYMOUS": "1",
        "SSEHUB_PAGE": str(tmp_path),
    }
    hub = Frontend(kind, env, free_port())
    old, new = browser.new_page(), browser.new_page()
    try:
        old.goto(f"{hub.url}/")
        new.goto(f"{hub.url}/")
        reader = jwt.encode({"mercure": {"subscribe": [BOOK]}}, SECRET, algorithm="HS256")
        cookie = f"mercureAuthorization={reader}; path=/.well-known/mercure"
        old.evaluate(f"document.cookie = {json.dumps(cookie)}")
        template = "https://example.com/books/{id}"
        old.evaluate(f"listen('template', [['topic', {json.dumps(template)}]])")
        old.evaluate("listen('several', [['topic', 'a'], ['topic', 'b']])")
        old.wait_for_function("() => window.opened === 2")
        new.evaluate(f"listen('public', [['match', {json.dumps(BOOK)}]])")
        new.wait_for_function("() => window.opened === 1")
        old_writer = jwt.encode({"mercure": {"publish": ["*"]}}, SECRET, algorithm="HS256")
        new_writer = access_token([{"match": "*"}])
        for page, token, fields in (
            (old, old_writer, [["topic", BOOK], ["data", "0.x public"]]),
            (new, new_writer, [["topic", BOOK], ["data", "1.0 private"], ["private", "on"]]),
            (new, new_writer, [["topic", BOOK], ["data", "1.0 public"]]),
            (old, old_writer, [["topic", "b"], ["data", "0.x to b"]]),
        ):
            status, event_id = page.evaluate(f"publish('{token}', {json.dumps(fields)})")
            assert status == 200, event_id
        old.wait_for_function("() => window.got.template.length === 3")
        old.wait_for_function("() => window.got.several.length === 1")
        new.wait_for_function("() => window.got.public.length === 2")
        assert old.evaluate("window.got.template") == ["0.x public", "1.0 private", "1.0 public"]
        assert old.evaluate("window.got.several") == ["0.x to b"]
        assert new.evaluate("window.got.public") == ["0.x public", "1.0 public"]  # no token
    finally:
        old.close()
        new.close()
        hub.stop()
    assert wait_until(lambda: hub.proc.poll() is not None, 5)
