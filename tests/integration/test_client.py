"""The client twins against real servers: a scripted stdlib server that
misbehaves, ssehub's own hub, and sse-starlette under uvicorn. Every
scenario runs for both `EventSource` and `AsyncEventSource`."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ssehub import BackgroundHub
from ssehub.client import (
    GAP_EVENT,
    LIVE_EVENT,
    AsyncEventSource,
    EventSource,
    Gap,
    Live,
    Reconnecting,
    RetryPolicy,
    SSEConnectionError,
    SSEResponseError,
)
from ssehub.client._policy import Reconnect, last_event_id_header
from ssehub.protocol import Event, RemoteProtocolError
from tests.support.helpers import free_port
from tests.support.sources import KINDS, collect
from tests.support.sse_test_server import ODD_IDS, SSETestServer


@pytest.fixture
def server() -> Iterator[SSETestServer]:
    with SSETestServer() as srv:
        yield srv


@pytest.mark.parametrize("kind", KINDS)
def test_reads_a_stream_then_reconnects_with_last_event_id(
    kind: str, server: SSETestServer
) -> None:
    events, error = collect(kind, f"{server.url}/counter?total=5")
    assert [(e.id, e.data) for e in events] == [(str(i), f"event {i}") for i in range(1, 6)]
    assert isinstance(error, SSEResponseError)
    assert error.status_code == 204  # the server said stop
    assert server.last_event_ids("/counter") == [None, "5"]
    headers = server.requests[0][2]
    assert headers["Accept"] == "text/event-stream"
    assert headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("kind", KINDS)
def test_dropped_mid_event_discards_the_half_and_resumes(kind: str, server: SSETestServer) -> None:
    events, error = collect(kind, f"{server.url}/drop?total=3")
    assert [e.data for e in events] == ["event 1", "event 2", "event 3"]
    assert server.last_event_ids("/drop") == [None, "1", "2", "3"]
    assert isinstance(error, SSEResponseError)


@pytest.mark.parametrize("kind", KINDS)
def test_crlf_split_across_writes(kind: str, server: SSETestServer) -> None:
    events, error = collect(kind, f"{server.url}/crlf")
    assert events == [Event("one\ntwo", id="a", retry=20)]
    assert isinstance(error, SSEResponseError)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [500, 404, 204, 301])
def test_non_200_is_fatal_with_status_headers_and_body(
    kind: str, status: int, server: SSETestServer
) -> None:
    events, error = collect(kind, f"{server.url}/status/{status}")
    assert events == []
    assert isinstance(error, SSEResponseError)
    assert error.status_code == status
    assert error.headers["content-type"] == "text/plain"
    if status != 204:
        assert error.body == b"something went wrong here\n"
        assert "something went wrong" in str(error)
    assert server.visits["/status/" + str(status)] == 1  # no reconnect


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_content_type_is_fatal(kind: str, server: SSETestServer) -> None:
    events, error = collect(kind, f"{server.url}/wrongtype")
    assert events == []
    assert isinstance(error, SSEResponseError)
    assert "'text/html'" in str(error)
    assert error.body == b"<html>not a stream</html>"
    assert server.visits["/wrongtype"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_silent_stream_is_reconnected_after_idle_timeout(kind: str, server: SSETestServer) -> None:
    events, error = collect(kind, f"{server.url}/stall", idle_timeout=0.3)
    assert [e.data for e in events] == ["before silence 1", "before silence 2"]
    assert server.last_event_ids("/stall") == [None, "s1", "s2"]
    assert isinstance(error, SSEResponseError)


@pytest.mark.parametrize("kind", KINDS)
def test_garbage_bytes_never_crash(kind: str, server: SSETestServer) -> None:
    events, error = collect(kind, f"{server.url}/garbage")
    assert events[-1].data == "after garbage"
    assert isinstance(error, SSEResponseError)


@pytest.mark.parametrize("kind", KINDS)
def test_endless_line_is_bounded_by_max_line_bytes(kind: str, server: SSETestServer) -> None:
    events, error = collect(kind, f"{server.url}/longline", max_line_bytes=1024 * 1024)
    assert events == []
    assert isinstance(error, RemoteProtocolError)
    assert "max_line_bytes=1048576" in str(error)


@pytest.mark.parametrize("kind", KINDS)
def test_any_method_body_headers_and_cookies(kind: str, server: SSETestServer) -> None:
    events, _ = collect(
        kind,
        f"{server.url}/echo",
        method="POST",
        json={"prompt": "hi"},
        headers={"X-Test": "yes"},
        cookies={"session": "abc"},
    )
    seen = json.loads(events[0].data)
    assert seen == {
        "method": "POST",
        "body": '{"prompt":"hi"}',
        "cookie": "session=abc",
        "x-test": "yes",
        "accept": "text/event-stream",
    }


@pytest.mark.parametrize("kind", KINDS)
def test_gives_up_after_max_retries(kind: str) -> None:
    port = free_port()  # nothing listens there
    events, error = collect(kind, f"http://127.0.0.1:{port}/", retry=0.01, max_retries=2)
    assert events == []
    assert isinstance(error, SSEConnectionError)
    assert error.attempts == 3
    assert "ConnectError" in str(error)


@pytest.mark.parametrize("kind", KINDS)
def test_against_ssehub_resume_and_break_closes(kind: str) -> None:
    with BackgroundHub(port=0) as hub:
        ids = [hub.publish("t", f"n{i}") for i in range(3)]
        url = f"{hub.url}/.well-known/mercure?topic=t"
        events, error = collect(kind, url, limit=3, last_event_id="earliest")
        assert error is None
        assert [e.id for e in events] == ids
        deadline = time.monotonic() + 5
        while hub.statistics().subscribers and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hub.statistics().subscribers == 0  # leaving the loop closed it
        more = hub.publish("t", "n3")
        events, _ = collect(kind, url, limit=1, last_event_id=ids[-1])
        assert [e.id for e in events] == [more]


def _uvicorn_app() -> Any:
    from sse_starlette.sse import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def numbers(request: Request) -> Any:
        last = int(request.headers.get("last-event-id", "0"))
        if last >= 4:
            return Response(status_code=204)

        async def gen() -> Any:
            for i in range(last + 1, min(last + 2, 4) + 1):
                yield {"id": str(i), "event": "number", "data": f"line one\nline {i}", "retry": 20}

        return EventSourceResponse(gen())

    return Starlette(routes=[Route("/numbers", numbers)])


@pytest.fixture
def starlette_url() -> Iterator[str]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(_uvicorn_app(), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.mark.parametrize("kind", KINDS)
def test_against_sse_starlette(kind: str, starlette_url: str) -> None:
    events, error = collect(kind, f"{starlette_url}/numbers")
    assert [(e.event, e.id, e.data) for e in events] == [
        ("number", str(i), f"line one\nline {i}") for i in range(1, 5)
    ]
    assert isinstance(error, SSEResponseError)
    assert error.status_code == 204


# -- odd ids, huge retry, redirects, hooks, gaps (issue 11 items 17-20, issue 14 item 6) --

# what Chromium sends: UTF-8 bytes, HTTP whitespace trimmed (None: no header)
ODD_ID_HEADERS: dict[str, bytes | None] = {
    "unicode": "é\u2013✓ 東京".encode(),
    "spaces": b"padded id",
    "tabs": b"x y",
    "blank": b"",
    "formfeed": None,  # no HTTP/1.1 header can hold a form feed
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(ODD_IDS))
def test_a_legal_odd_id_is_sent_back_as_chromium_sends_it(
    kind: str, name: str, server: SSETestServer, caplog: pytest.LogCaptureFixture
) -> None:
    events, error = collect(kind, f"{server.url}/id/{name}")
    assert [(e.id, e.data) for e in events] == [(ODD_IDS[name], "one")]
    assert isinstance(error, SSEResponseError)  # reconnected
    assert error.status_code == 204
    first, again = server.seen_at(f"/id/{name}")
    assert first.last_event_id is None
    assert again.last_event_id == ODD_ID_HEADERS[name]
    expected = ODD_ID_HEADERS[name]
    assert again.raw_last_event_id == (None if expected is None else b" " + expected)
    if ODD_ID_HEADERS[name] is None:
        assert "cannot be sent in an HTTP header" in caplog.text


def test_last_event_id_header_encoding() -> None:
    assert last_event_id_header("é") == b"\xc3\xa9"
    assert last_event_id_header(" \t a b \t ") == b"a b"
    assert last_event_id_header("a\x0bb") is None
    r = Reconnect(RetryPolicy(), last_event_id=" ✓ ")
    assert r.headers()["Last-Event-ID"] == "✓".encode()


@pytest.mark.parametrize("kind", KINDS)
def test_a_retry_of_4000_digits_is_ignored_and_the_event_kept(
    kind: str, server: SSETestServer
) -> None:
    # ~4,000 digits: int() takes it, but no sleep can (OverflowError); past
    # 4,300 digits int() itself refused it. Ignored, as Chromium does.
    seen: list[Reconnecting] = []
    events, error = collect(kind, f"{server.url}/retry?digits=4000", on_reconnect=seen.append)
    assert [(e.id, e.data, e.retry) for e in events] == [("r", "x", None)]
    assert isinstance(error, SSEResponseError)
    assert error.status_code == 204
    assert [r.delay for r in seen] == [0.02]  # the client's own reconnection time
    assert server.visits["/retry"] == 2


@pytest.mark.parametrize("kind", KINDS)
def test_the_largest_retry_is_held_and_the_wait_survives_it(
    kind: str, server: SSETestServer
) -> None:
    url = f"{server.url}/retry?value={2**64 - 1}"
    seen: list[Reconnecting] = []
    events: list[Event] = []
    waiting = threading.Event()

    def on_reconnect(r: Reconnecting) -> None:
        seen.append(r)
        waiting.set()

    if kind == "sync":
        with EventSource(url, on_reconnect=on_reconnect) as source:

            def close_when_waiting() -> None:
                waiting.wait(5)
                source.close()  # from another thread, as a program would

            closer = threading.Thread(target=close_when_waiting)
            closer.start()
            events.extend(source)  # waits 584 million years, until closed
            closer.join()
    else:

        async def main() -> None:
            async with AsyncEventSource(url, on_reconnect=on_reconnect) as source:

                async def read() -> None:
                    async for event in source:
                        events.append(event)

                async with asyncio.TaskGroup() as tasks:
                    reader = tasks.create_task(read())
                    while not waiting.is_set():
                        await asyncio.sleep(0.01)
                    await source.aclose()
                    async with asyncio.timeout(5):
                        await reader

        asyncio.run(main())
    assert [e.retry for e in events] == [2**64 - 1]
    assert [(r.attempt, r.error, r.delay) for r in seen] == [(0, None, (2**64 - 1) / 1000)]
    assert server.visits["/retry"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_after_a_redirected_stream_ends_it_reconnects_to_the_target(
    kind: str, server: SSETestServer
) -> None:
    target = "/counter?total=3"
    events, error = collect(
        kind,
        f"{server.url}/moved/307?to={target}",
        headers={"Authorization": "Bearer t", "X-Test": "kept"},
    )
    assert [e.data for e in events] == ["event 1", "event 2", "event 3"]
    assert isinstance(error, SSEResponseError)
    assert error.status_code == 204
    assert server.visits["/moved/307"] == 1  # not the original URL again
    counter = server.seen_at("/counter")
    assert [s.last_event_id for s in counter] == [None, b"3"]
    for s in counter:  # same origin: the request's headers are kept
        assert (s.headers["Authorization"], s.headers["X-Test"]) == ("Bearer t", "kept")


@pytest.mark.parametrize("kind", KINDS)
def test_a_redirect_to_another_origin_keeps_its_rules_on_reconnection(
    kind: str, server: SSETestServer
) -> None:
    with SSETestServer() as other:
        events, error = collect(
            kind,
            f"{server.url}/moved/303?to={other.url}/echo",
            method="POST",
            json={"prompt": "hi"},
            headers={"Authorization": "Bearer secret"},
        )
        assert json.loads(events[0].data)["method"] == "GET"  # a 303 makes a GET
        assert isinstance(error, SSEResponseError)
        assert error.status_code == 204
        assert server.visits["/moved/303"] == 1
        echo = other.seen_at("/echo")
        assert [s.method for s in echo] == ["GET", "GET"]
        assert all("Authorization" not in s.headers for s in echo)  # never to another origin
        assert server.seen_at("/moved/303")[0].headers["Authorization"] == "Bearer secret"


@pytest.mark.parametrize("kind", KINDS)
def test_on_reconnect_reports_each_failed_attempt_and_the_next_wait(kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    seen: list[Reconnecting] = []
    _, error = collect(kind, url, retry=0.01, max_retries=2, on_reconnect=seen.append)
    assert isinstance(error, SSEConnectionError)
    assert [r.attempt for r in seen] == [1, 2]  # then the third failure gives up
    assert all(r.url == url and "ConnectError" in type(r.error).__name__ for r in seen)
    assert seen[0].delay == 0.01
    assert 0.01 <= seen[1].delay <= 0.02  # doubled, less jitter
    assert str(seen[0]).startswith("attempt 1 failed (ConnectError: ")
    assert str(seen[0]).endswith(f"; next attempt in 0.01 s at {url}")


def test_reconnecting_is_one_log_line() -> None:
    timed_out = Reconnecting(2, TimeoutError(), 1.5, "http://h/s")
    assert str(timed_out) == "attempt 2 failed (TimeoutError); next attempt in 1.5 s at http://h/s"
    far = Reconnecting(0, None, (2**64 - 1) / 1000, "http://h/s")
    assert str(far) == "the stream ended; next attempt in 1.84e+16 s at http://h/s"


@pytest.mark.parametrize("kind", KINDS)
def test_on_reconnect_reports_a_stream_that_ended(kind: str, server: SSETestServer) -> None:
    seen: list[Reconnecting] = []
    url = f"{server.url}/counter?total=2"
    collect(kind, url, on_reconnect=seen.append)
    assert [(r.attempt, r.error, r.delay, r.url) for r in seen] == [(0, None, 0.02, url)]
    assert str(seen[0]) == f"the stream ended; next attempt in 0.02 s at {url}"


@pytest.mark.parametrize("kind", KINDS)
def test_a_gap_notice_is_a_gap_not_an_event(kind: str) -> None:
    with BackgroundHub(port=0) as hub:
        kept = hub.publish("t", "kept")
        url = f"{hub.url}/.well-known/mercure?topic=t"
        seen: list[Event | Gap] = []
        events, error = collect(
            kind, url, limit=1, last_event_id="urn:uuid:never-seen", on_gap=seen.append
        )
        assert error is None
        seen.extend(events)
        assert seen == [Gap("urn:uuid:never-seen", url), Event("kept", id=kept)]
        assert "no longer holds the events after 'urn:uuid:never-seen'" in str(seen[0])


@pytest.mark.parametrize("kind", KINDS)
def test_without_on_gap_the_gap_is_logged_not_yielded(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    with BackgroundHub(port=0) as hub:
        hub.publish("t", "kept")
        url = f"{hub.url}/.well-known/mercure?topic=t"
        with caplog.at_level("WARNING", logger="ssehub.client"):
            events, _ = collect(kind, url, limit=1, last_event_id="urn:uuid:gone")
        assert [e.data for e in events] == ["kept"]
        assert [r.getMessage() for r in caplog.records] == [str(Gap("urn:uuid:gone", url))]


@pytest.mark.parametrize("kind", KINDS)
def test_the_live_marker_sets_live_until_the_next_reconnect(
    kind: str, server: SSETestServer
) -> None:
    url = f"{server.url}/live"
    seen: list[tuple[str, bool] | Live] = []

    def on_live(live: Live) -> None:
        seen.append(live)

    if kind == "sync":
        with EventSource(url, retry=0.02, on_live=on_live) as source:
            assert not source.live
            try:
                for event in source:
                    seen.append((event.data, source.live))
            except SSEResponseError:
                pass
    else:

        async def main() -> None:
            async with AsyncEventSource(url, retry=0.02, on_live=on_live) as source:
                assert not source.live
                try:
                    async for event in source:
                        seen.append((event.data, source.live))
                except SSEResponseError:
                    pass

        asyncio.run(main())
    assert seen == [
        ("old", False),
        Live(1, url),
        ("new", True),
        ("not the marker", False),  # reset on reconnecting; not a marker: an event
        ("again", False),
    ]
    assert str(seen[1]) == f"live: {url} replayed 1 events; live events follow"


@pytest.mark.parametrize("kind", KINDS)
def test_a_resume_from_a_real_hub_goes_live_after_the_replay(kind: str) -> None:
    with BackgroundHub(port=0) as hub:
        first = hub.publish("t", "old")
        hub.publish("t", "current")
        url = f"{hub.url}/.well-known/mercure?topic=t"
        seen: list[tuple[str, bool] | Live] = []

        def step(data: str, live: bool) -> bool:
            seen.append((data, live))
            if data == "current":
                hub.publish("t", "live")
            return data == "live"

        if kind == "sync":
            with EventSource(url, last_event_id=first, on_live=seen.append) as source:
                for event in source:
                    if step(event.data, source.live):
                        break
        else:

            async def main() -> None:
                async with AsyncEventSource(
                    url, last_event_id=first, on_live=seen.append
                ) as source:
                    async for event in source:
                        if step(event.data, source.live):
                            break

            asyncio.run(main())
        assert seen == [("current", False), Live(1, url), ("live", True)]


def test_newest_is_a_query_parameter_kept_for_good() -> None:
    source = EventSource("http://h/s?topic=t", newest=1)
    assert source.current_url == "http://h/s?topic=t&newest=1"
    assert EventSource("http://h/s").current_url == "http://h/s"
    with pytest.raises(ValueError, match="newest must be an int >= 0"):
        EventSource("http://h/s", newest=-1)


def test_the_live_event_type_is_the_hubs() -> None:
    from ssehub.hub import LIVE_EVENT as HUB_LIVE_EVENT

    assert LIVE_EVENT == HUB_LIVE_EVENT


def test_the_gap_event_type_is_the_hubs() -> None:
    from ssehub.hub import GAP_EVENT as HUB_GAP_EVENT

    assert GAP_EVENT == HUB_GAP_EVENT


# -- the sans-IO policy --------------------------------------------------------------


def test_policy_waits_retry_then_backs_off_with_cap_and_jitter() -> None:
    r = Reconnect(
        RetryPolicy(retry=1.0, max_delay=5.0, max_retries=None, jitter=0.5), random=lambda: 1.0
    )
    assert r.delay(None) == 1.0  # a stream that ended: the reconnection time
    failure = OSError("refused")
    assert r.delay(failure) == 1.0  # first failure in a row
    assert r.delay(failure) == 2.0 * 0.5  # doubled, jitter takes up to half
    assert r.delay(failure) == 4.0 * 0.5
    assert r.delay(failure) == 5.0 * 0.5  # capped
    r.opened()
    assert r.failures == 0
    assert r.delay(None) == 1.0


@pytest.mark.parametrize("source", [EventSource, AsyncEventSource])
def test_an_impossible_last_event_id_is_refused_at_once(source: type[EventSource]) -> None:
    with pytest.raises(ValueError, match=r"last_event_id must not contain CR, LF or NUL: 'a\\nb'"):
        source("http://127.0.0.1:9/", last_event_id="a\nb")


def test_policy_retries_forever_without_overflow() -> None:
    r = Reconnect(RetryPolicy(retry=0.5, max_delay=60.0, max_retries=None), random=lambda: 0.0)
    failure = OSError("refused")
    delays = [r.delay(failure) for _ in range(2000)]  # 2.0 ** 1024 overflowed at 1,026
    assert delays[-1] == 60.0
    assert r.failures == 2000


def test_policy_uses_the_server_retry_and_gives_up() -> None:
    r = Reconnect(RetryPolicy(retry=3.0, max_retries=1, jitter=0.0))
    parser = r.opened()
    parser.feed(b"retry: 250\nid: 9\ndata: x\n\n")
    r.progressed(parser)
    assert (r.retry_ms, r.last_event_id) == (250, "9")
    assert r.headers()["Last-Event-ID"] == b"9"
    assert r.delay(OSError()) == 0.25
    with pytest.raises(SSEConnectionError, match="gave up after 2 failed attempts"):
        r.delay(OSError("again"))


def test_policy_refusals() -> None:
    r = Reconnect(RetryPolicy())
    ok = {"content-type": "text/event-stream; charset=utf-8"}
    assert r.refusal(200, ok) is None
    assert "204" in (r.refusal(204, ok) or "")
    assert r.refusal(201, ok) == "the server did not answer 200"
    assert "'application/json'" in (r.refusal(200, {"content-type": "application/json"}) or "")
    assert "'missing'" in (r.refusal(200, {}) or "")


def test_policy_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)
    with pytest.raises(ValueError, match="idle_timeout"):
        RetryPolicy(idle_timeout=0)


def test_your_own_clients_are_used_and_left_open(server: SSETestServer) -> None:
    import httpx

    with httpx.Client(headers={"X-Test": "from-client"}) as client:
        with EventSource(f"{server.url}/echo", client=client, retry=0.02) as source:
            first = next(iter(source))
        assert json.loads(first.data)["x-test"] == "from-client"
        assert not client.is_closed

    async def main() -> None:
        async with httpx.AsyncClient(headers={"X-Test": "async-client"}) as client:
            async with AsyncEventSource(f"{server.url}/counter?total=2", client=client) as source:
                async for event in source:
                    assert event.data == "event 1"
                    break
            assert not client.is_closed

    asyncio.run(main())


def test_a_retry_policy_object_configures_a_source_instead_of_its_arguments() -> None:
    from ssehub.client import AsyncEventSource, EventSource, RetryPolicy

    policy = RetryPolicy(retry=0.5, max_delay=2.0, max_retries=None, jitter=0.0)
    for twin in (EventSource, AsyncEventSource):
        assert twin("http://127.0.0.1:9/", policy=policy).policy is policy
        with pytest.raises(TypeError, match="either policy"):
            twin("http://127.0.0.1:9/", policy=policy, retry=1.0)
    # the arguments' defaults are the policy's own
    assert EventSource("http://127.0.0.1:9/").policy == RetryPolicy()
