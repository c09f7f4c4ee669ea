"""The app's hooks against real processes: the authorization callback
(`--authorize-url`, `SSEHUB_AUTHORIZE_URL`) of `ssehub serve` and of
`HubApp` under uvicorn, and the webhooks of `ssehub serve`. The app's
endpoint and the webhook receiver are small real HTTP servers run by the
test, on free ports of 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from tests.support.frontends import FRONTENDS
from tests.support.helpers import free_port
from tests.support.hooks import allow, app, hub, metric, wait_for
from tests.support.processes import run_cli


def subscribe(url: str, *topics: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """Open a subscription and close it at once: the status, and the body of a refusal."""
    params = {"topic": list(topics)}
    with httpx.stream("GET", url, params=params, headers=headers, timeout=20) as response:
        if response.status_code == 200:
            return 200, ""
        return response.status_code, response.read().decode()


# -- the authorization callback --------------------------------------------------------


def by_topic(question: dict[str, Any]) -> tuple[int, bytes, float]:
    topics = question["topics"]
    if question["action"] == "publish":
        return allow(publish=["news/{id}"])
    if topics == ["secret"]:
        return allow(private=["secret"])
    if "no" in topics:
        reason = "no\r\nway: " + "x" * 1000  # a line break and a long tail, both cut
        return 200, json.dumps({"allow": False, "reason": reason}).encode(), 0.0
    return allow(subscribe=["ok", "secret", "news/{id}"])


@pytest.mark.parametrize("kind", FRONTENDS)
def test_the_app_allows_denies_with_its_reason_and_narrows(kind: str) -> None:
    with app(by_topic) as callback, hub(kind, {"SSEHUB_AUTHORIZE_URL": callback.url}) as front:
        assert subscribe(front.hub, "ok") == (200, "")
        assert callback.bodies()[-1] == {"action": "subscribe", "topics": ["ok"]}

        status, body = subscribe(front.hub, "no")
        assert status == 403
        assert body.startswith("not authorized: no way: xxx")
        assert body.count("\n") == 1
        assert len(body) < 260

        # allowed, but "other" is not in the app's "subscribe" list
        status, body = subscribe(front.hub, "ok", "other")
        assert (status, body) == (403, "the app does not allow subscribing to 'other'\n")

        # publishing is the app's to allow (no JWT key): within its "publish" list only
        ok = httpx.post(front.hub, data={"topic": "news/1", "data": "x"}, timeout=10)
        assert ok.status_code == 200, ok.text
        assert callback.bodies()[-1] == {
            "action": "publish",
            "topics": ["news/1"],
            "private": False,
        }
        refused = httpx.post(front.hub, data={"topic": "sport/1", "data": "x"}, timeout=10)
        assert refused.status_code == 403
        assert refused.text == "the app does not allow publishing to 'sport/1'\n"


@pytest.mark.parametrize("kind", FRONTENDS)
def test_the_private_updates_the_app_allows_reach_the_subscriber(kind: str) -> None:
    env = {"SSEHUB_AUTHORIZE_CACHE_SECONDS": "0"}  # the app changes its mind below
    with (
        app(by_topic) as callback,
        hub(kind, {"SSEHUB_AUTHORIZE_URL": callback.url, **env}) as front,
    ):
        params = {"topic": "secret"}
        with httpx.stream("GET", front.hub, params=params, timeout=20) as stream:
            assert stream.status_code == 200
            answer = httpx.post(
                front.hub, data={"topic": "secret", "data": "psst", "private": "on"}, timeout=10
            )
            # publish "secret" is outside the app's publish list: refused...
            assert answer.status_code == 403
            answer = httpx.post(
                front.hub,
                data={"topic": ["news/1", "secret"], "data": "psst", "private": "on"},
                timeout=10,
            )
            assert answer.status_code == 403  # ...whatever topic comes first
        # with a publish list that covers it, the private update reaches the subscriber
        callback.answer = lambda q: (
            allow(publish=["secret"]) if q["action"] == "publish" else by_topic(q)
        )
        with httpx.stream("GET", front.hub, params=params, timeout=20) as stream:
            assert stream.status_code == 200
            answer = httpx.post(
                front.hub, data={"topic": "secret", "data": "psst", "private": "on"}, timeout=10
            )
            assert answer.status_code == 200, answer.text
            lines = stream.iter_lines()
            assert "data: psst" in [next(lines) for _ in range(8)]


@pytest.mark.parametrize("kind", FRONTENDS)
def test_no_answer_in_time_or_a_bad_one_fails_closed_with_503(kind: str) -> None:
    answers: dict[str, tuple[int, bytes, float]] = {
        "slow": (*allow()[:2], 3.0),
        "broken": (200, b"<html>oops</html>", 0.0),
        "error": (500, b'{"allow": true}', 0.0),
        "huge": (200, b'{"allow": true, "reason": "' + b"x" * 100_000 + b'"}', 0.0),
    }
    env = {"SSEHUB_AUTHORIZE_URL": "", "SSEHUB_AUTHORIZE_TIMEOUT": "0.5"}
    with app(lambda q: answers[q["topics"][0]]) as callback:
        env["SSEHUB_AUTHORIZE_URL"] = callback.url
        with hub(kind, env) as front:
            status, body = subscribe(front.hub, "slow")
            assert (status, body) == (
                503,
                "authorization unavailable: the authorization endpoint did not answer"
                " within 0.5 s\n",
            )
            assert subscribe(front.hub, "broken") == (
                503,
                "authorization unavailable: the authorization endpoint's answer is not JSON\n",
            )
            assert subscribe(front.hub, "error") == (
                503,
                "authorization unavailable: the authorization endpoint answered 500\n",
            )
            status, body = subscribe(front.hub, "huge")
            assert status == 503
            assert "larger than 65536 bytes" in body
            # failures are not cached: the app is asked again
            asked = len(callback.requests)
            assert subscribe(front.hub, "broken")[0] == 503
            assert len(callback.requests) == asked + 1


def test_answers_are_cached_per_credentials_and_question_for_their_ttl() -> None:
    def answer(question: dict[str, Any]) -> tuple[int, bytes, float]:
        return allow(ttl=0) if question["topics"] == ["fresh"] else allow()

    env = {"SSEHUB_AUTHORIZE_FORWARD": "Cookie", "SSEHUB_AUTHORIZE_CACHE_SECONDS": "60"}
    with (
        app(answer) as callback,
        hub("serve", {"SSEHUB_AUTHORIZE_URL": callback.url, **env}) as front,
    ):
        alice = {"Cookie": "session=alice"}
        assert subscribe(front.hub, "t", headers=alice)[0] == 200
        assert subscribe(front.hub, "t", headers=alice)[0] == 200
        assert len(callback.requests) == 1  # the second one was a cache hit
        assert subscribe(front.hub, "t", headers={"Cookie": "session=bob"})[0] == 200
        assert subscribe(front.hub, "u", headers=alice)[0] == 200
        assert len(callback.requests) == 3  # other credentials, another question: asked
        # the answer's ttl wins over the configured time: 0 is "do not keep it"
        assert subscribe(front.hub, "fresh", headers=alice)[0] == 200
        assert subscribe(front.hub, "fresh", headers=alice)[0] == 200
        assert len(callback.requests) == 5
        assert metric(front.url, "ssehub_authorize_cache_hits_total") == 1
        assert metric(front.url, 'ssehub_authorize_requests_total{outcome="answered"}') == 5


@pytest.mark.parametrize("kind", FRONTENDS)
def test_only_the_named_headers_are_forwarded(kind: str) -> None:
    env = {"SSEHUB_AUTHORIZE_FORWARD": "Cookie,X-Tenant"}
    with (
        app(lambda q: allow()) as callback,
        hub(kind, {"SSEHUB_AUTHORIZE_URL": callback.url, **env}) as front,
    ):
        sent = {
            "Cookie": "session=s3cr3t",
            "X-Tenant": "acme",
            "X-Other": "private",
            "Referer": "https://example.com/",
        }
        assert subscribe(front.hub, "t", headers=sent)[0] == 200
        ((_, headers, _),) = callback.requests
        assert headers["cookie"] == "session=s3cr3t"
        assert headers["x-tenant"] == "acme"
        assert "x-other" not in headers
        assert "referer" not in headers
        assert headers["content-type"] == "application/json"


# -- webhooks --------------------------------------------------------------------------

SECRET = "webhook-secret"


def verify(headers: dict[str, str], body: bytes, secret: str, tolerance: float = 300) -> bool:
    """What docs/run-a-hub.md tells a receiver to do."""
    fields = dict(part.split("=", 1) for part in headers["ssehub-signature"].split(","))
    timestamp = int(fields["t"])
    if abs(time.time() - timestamp) > tolerance:
        return False  # an old request, replayed
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


def test_webhooks_are_signed_notices_of_subscriptions_and_watched_topics() -> None:
    with app(lambda n: (204, b"", 0.0)) as receiver:
        env = {"SSEHUB_WEBHOOK_URL": receiver.url, "SSEHUB_WEBHOOK_SECRET": SECRET}
        with hub("serve", {"SSEHUB_ANONYMOUS_PUBLISH": "1", **env}) as front:
            assert subscribe(front.hub, "room/1")[0] == 200
            wait_for(lambda: len(receiver.requests) == 4)
            kinds = [n["type"] for n in receiver.bodies()]
            assert sorted(kinds) == sorted(
                ["subscription.opened", "topic.watched", "subscription.closed", "topic.unwatched"]
            )
            assert kinds.index("subscription.opened") < kinds.index("subscription.closed")
            assert kinds.index("topic.watched") < kinds.index("topic.unwatched")
            notices = {n["type"]: n for n in receiver.bodies()}
            opened = notices["subscription.opened"]
            assert opened["topics"] == ["room/1"]
            assert opened["subscriber"] == notices["subscription.closed"]["subscriber"]
            assert notices["topic.watched"]["topic"] == "room/1"
            for _, headers, body in receiver.requests:
                assert verify(headers, body, SECRET)
                assert not verify(headers, body + b" ", SECRET)  # tampered
                assert headers["ssehub-event"] == json.loads(body)["type"]
            assert metric(front.url, "ssehub_webhooks_sent_total") == 4


def test_a_receiver_down_then_up_gets_the_notice_retried() -> None:
    port = free_port()
    env = {
        "SSEHUB_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
        "SSEHUB_WEBHOOK_BACKOFF": "0.2",
        "SSEHUB_WEBHOOK_ATTEMPTS": "30",
        "SSEHUB_WEBHOOK_TIMEOUT": "2",
    }
    with (
        hub("serve", env) as front,
        httpx.stream("GET", front.hub, params={"topic": "t"}, timeout=20) as stream,
    ):
        assert stream.status_code == 200
        wait_for(lambda: metric(front.url, "ssehub_webhook_attempts_failed_total") >= 2)
        assert metric(front.url, "ssehub_webhooks_sent_total") == 0
        with app(lambda n: (200, b"ok", 0.0), port) as receiver:
            wait_for(lambda: len(receiver.requests) >= 2)
            kinds = [n["type"] for n in receiver.bodies()]
            assert set(kinds[:2]) == {"subscription.opened", "topic.watched"}
            ids = [h["ssehub-delivery"] for _, h, _ in receiver.requests]
            assert len(set(ids)) == len(ids)  # each delivered once
            wait_for(lambda: metric(front.url, "ssehub_webhooks_sent_total") >= 2)
            assert metric(front.url, "ssehub_webhooks_dropped_total") == 0


def test_a_full_queue_drops_notices_and_counts_them() -> None:
    with app(lambda n: (200, b"", 1.0)) as receiver:  # a slow receiver
        env = {"SSEHUB_WEBHOOK_URL": receiver.url, "SSEHUB_WEBHOOK_QUEUE": "2"}
        with hub("serve", env) as front, contextlib.ExitStack() as streams:
            for n in range(6):  # 12 notices: opened and watched each
                stream = streams.enter_context(
                    httpx.stream("GET", front.hub, params={"topic": f"t{n}"}, timeout=20)
                )
                assert stream.status_code == 200
            wait_for(lambda: metric(front.url, "ssehub_webhooks_dropped_total") >= 4)
            assert metric(front.url, "ssehub_webhooks_pending") <= 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--authorize-url", "ftp://app"),
            "--authorize-url must be an http:// or https:// URL, not 'ftp://app'",
        ),
        (
            ("--authorize-url", "http://app/", "--authorize-forward", "Cookie,Host"),
            "--authorize-forward cannot name host",
        ),
        (("--authorize-forward", "Cookie"), "--authorize-forward needs --authorize-url"),
        (("--webhook-secret", "s"), "--webhook-secret needs --webhook-url"),
        (
            ("--webhook-url", "http://app/", "--webhook-attempts", "0"),
            "--webhook-attempts must be an int >= 1, not 0",
        ),
    ],
)
def test_hook_option_mistakes_are_one_line_naming_the_flag(
    args: tuple[str, ...], message: str
) -> None:
    done = run_cli("serve", "--port", "0", "--store", "memory:", *args)
    assert done.returncode == 2
    assert done.stderr == f"ssehub serve: {message}\n"


def test_retries_back_off_doubling_with_jitter_and_stop_after_the_attempts() -> None:
    from ssehub.hooks import WebhookConfig, Webhooks

    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async def body() -> None:
        config = WebhookConfig(
            (f"http://127.0.0.1:{free_port()}/down",), attempts=5, backoff=1.0, max_backoff=3.0
        )
        hooks = Webhooks(config, sleep=sleep, jitter=lambda: 0.25)  # a factor of 0.75
        assert hooks.send_nowait("topic.watched", {"topic": "t"})
        for _ in range(500):
            if hooks.statistics().abandoned:
                break
            await asyncio.sleep(0.01)
        stats = hooks.statistics()
        await hooks.aclose()
        assert (stats.sent, stats.failed, stats.abandoned, stats.pending) == (0, 5, 1, 0)

    asyncio.run(body())
    assert delays == [0.75, 1.5, 2.25, 2.25]  # 1, 2, then capped at 3; times 0.75
