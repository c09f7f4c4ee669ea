"""The hub over HTTP, with real sockets against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from ssehub.hub import GAP_EVENT, HubConfig
from ssehub.protocol import Event
from ssehub.testing import FakeClock
from tests.support.helpers import publish, request, self_signed_certificate, subscribe
from tests.support.servers import run, serving, until


def test_stream_headers_and_first_bytes() -> None:
    async def body() -> None:
        async with serving() as (hub, _, port):
            stream = await subscribe(port, "clock")
            assert stream.status == 200
            h = stream.headers
            assert h["content-type"] == "text/event-stream"
            assert "no-cache" in h["cache-control"]
            assert h["x-accel-buffering"] == "no"
            assert "last-event-id" not in h  # only when the request asked to resume
            assert h.get("connection") != "keep-alive"
            assert "transfer-encoding" not in h
            first = await asyncio.wait_for(stream.reader.readexactly(3), 5)
            assert first == b":\n\n"  # sent at once, before any event
            event_id = await hub.publish("clock", "12:00:00")
            assert await stream.next_events(1) == [Event("12:00:00", id=event_id)]
            stream.close()

    run(body)


def test_fan_out_to_many_streams_in_order() -> None:
    async def body() -> None:
        async with serving() as (hub, _, port):
            streams = [await subscribe(port, "t") for _ in range(50)]
            await until(lambda: hub.statistics().subscribers == 50)
            sent = [await hub.publish("t", f"line\r\nU+2028:\u2028 #{i}") for i in range(20)]
            for stream in streams:
                events = await stream.next_events(20)
                assert [e.id for e in events] == sent
                assert events[7].data == "line\nU+2028:\u2028 #7"
                stream.close()
            assert hub.statistics().events_delivered == 50 * 20

    run(body)


def test_resume_with_header_and_query_parameter() -> None:
    async def body() -> None:
        async with serving() as (hub, _, port):
            ids = [await hub.publish("t", str(i)) for i in range(5)]
            by_header = await subscribe(port, "t", last_event_id=ids[2])
            assert [e.data for e in await by_header.next_events(2)] == ["3", "4"]
            by_query = await subscribe(port, "t", query_last_event_id=ids[3])
            assert [e.data for e in await by_query.next_events(1)] == ["4"]
            assert by_query.headers["last-event-id"] == ids[3]  # the event before the first sent
            assert "ssehub-gap" not in by_query.headers
            new = await hub.publish("t", "5")
            assert (await by_header.next_events(1))[0].id == new
            assert (await by_query.next_events(1))[0].id == new
            by_header.close()
            by_query.close()

    run(body)


def test_unknown_last_event_id_gets_gap_header_and_event() -> None:
    async def body() -> None:
        async with serving() as (hub, _, port):
            await hub.publish("t", "kept")
            stream = await subscribe(port, "t", last_event_id="urn:uuid:never-seen")
            assert stream.headers["ssehub-gap"] == "1"
            gap, kept = await stream.next_events(2)
            assert gap.event == GAP_EVENT
            assert kept.data == "kept"
            stream.close()

    run(body)


def test_subscriber_leaving_is_cleaned_up_at_once() -> None:
    async def body() -> None:
        async with serving() as (hub, srv, port):
            streams = [await subscribe(port, "a", "b") for _ in range(10)]
            await until(lambda: hub.statistics().subscribers == 10)
            for stream in streams:
                stream.close()
            await until(lambda: hub.statistics().subscribers == 0)
            await until(lambda: not srv.connections)
            assert hub.statistics().groups == 0
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert [t.get_name() for t in tasks] == ["ssehub-heartbeat"]

    run(body)


def test_idle_streams_have_no_task() -> None:
    async def body() -> None:
        async with serving() as (hub, _, port):
            streams = [await subscribe(port, "t") for _ in range(20)]
            await until(lambda: hub.statistics().subscribers == 20)
            await asyncio.sleep(0.05)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert [t.get_name() for t in tasks] == ["ssehub-heartbeat"]
            for stream in streams:
                stream.close()

    run(body)


def test_heartbeat_comments_on_the_injected_clock() -> None:
    async def body() -> None:
        clock = FakeClock()
        async with serving(clock=clock) as (hub, _, port):
            stream = await subscribe(port, "t")
            assert await stream.reader.readexactly(3) == b":\n\n"
            await until(lambda: hub.statistics().subscribers == 1)
            await clock.advance(15)
            assert await asyncio.wait_for(stream.reader.readexactly(3), 5) == b":\n\n"
            stream.close()

    run(body)


def test_slow_client_is_disconnected_and_memory_stays_bounded() -> None:
    async def body() -> None:
        config = HubConfig(max_buffer_events=50, max_buffer_bytes=200_000)
        async with serving(hub_config=config) as (hub, _, port):
            slow = await subscribe(port, "t", rcvbuf=4096)  # and never reads
            fast = await subscribe(port, "t")
            await until(lambda: hub.statistics().subscribers == 2)
            payload = "x" * 8192
            ids: list[str] = []
            # Publish until the kernel's buffers, the transport's and then the
            # hub's bounded backlog are full (bounded loop).
            while hub.statistics().disconnects_slow == 0 and len(ids) < 5000:
                ids.append(await hub.publish("t", payload))
                assert len(await fast.next_events(1)) == 1  # the fast one keeps up
            assert hub.statistics().disconnects_slow == 1
            assert hub.statistics().subscribers == 1
            # the slow client reads what it got, then EOF: it may resume
            data = b""
            with contextlib.suppress(ConnectionError):
                data = await slow.read_until_eof()
            got = [e.id for e in slow.parser.feed(b"")] + [e.id for e in slow.events]
            assert len(got) < len(ids)
            assert len(data) < len(ids) * 8192
            resumed = await subscribe(port, "t", last_event_id=got[-1] if got else "earliest")
            rest = await resumed.next_events(len(ids) - len(got))
            assert [e.id for e in rest] == ids[len(got) :]
            fast.close()
            resumed.close()
            slow.close()

    run(body)


def test_stalled_client_is_dropped_after_two_heartbeats() -> None:
    async def body() -> None:
        clock = FakeClock()
        config = HubConfig(max_buffer_events=10_000, max_buffer_bytes=100_000_000)
        async with serving(clock=clock, hub_config=config) as (hub, _, port):
            stalled = await subscribe(port, "t", rcvbuf=4096)
            await until(lambda: hub.statistics().subscribers == 1)
            [sub] = hub._fanout.subscriptions()
            for _ in range(5000):  # fill the socket buffers until the transport pauses
                if getattr(sub, "paused", False):
                    break
                await hub.publish("t", "y" * 8192)
                await asyncio.sleep(0)
            assert getattr(sub, "paused", False)
            await clock.advance(15)
            assert hub.statistics().subscribers == 1
            await clock.advance(15)
            await clock.advance(15)
            await until(lambda: hub.statistics().disconnects_stalled == 1)
            assert sub.reason == "stalled"
            stalled.close()

    run(body)


def test_drain_ends_streams_and_delivers_what_was_published() -> None:
    async def body() -> None:
        async with serving() as (hub, srv, port):
            streams = [await subscribe(port, "t") for _ in range(5)]
            await until(lambda: hub.statistics().subscribers == 5)
            last = await hub.publish("t", "final")
            await srv.drain(2.0)
            for stream in streams:
                await stream.read_until_eof()
                assert [e.id for e in stream.events] == [last]
                retry = stream.parser.retry  # a hint to come back soon, spread out
                assert retry is not None
                assert 1000 <= retry <= 2000
                stream.close()
            assert hub.statistics().subscribers == 0
            with pytest.raises(ConnectionRefusedError):  # asyncio and uvloop word it apart
                await subscribe(port, "t")

    run(body)


def test_anonymous_publish_over_http_keep_alive() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True) as (_, _, port):
            stream = await subscribe(port, "a", "b")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            bodies = [
                b"topic=a&data=first&type=note&retry=500",
                b"topic=b&topic=a&data=two%0Alines&id=custom-1",
            ]
            ids = []
            for b in bodies:
                writer.write(
                    b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    + f"Content-Length: {len(b)}\r\n\r\n".encode()
                    + b
                )
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                ids.append((await reader.readexactly(length)).decode())
            writer.close()
            first, second = await stream.next_events(2)
            assert first == Event("first", event="note", id=ids[0], retry=500)
            assert second == Event("two\nlines", id="custom-1")
            assert ids[1] == "custom-1"
            stream.close()

    run(body)


@pytest.mark.parametrize(
    ("path", "headers", "status", "reason"),
    [
        ("/.well-known/mercure", {}, 400, "missing 'topic' query parameter"),
        ("/.well-known/mercure?topic=", {}, 400, "empty 'topic' query parameter"),
        (
            "/.well-known/mercure?topic=t",
            {"Last-Event-ID": "x" * 1025},
            400,
            "Last-Event-ID is longer than 1024 characters",
        ),
        ("/nope", {}, 404, "not found: /nope"),
        (
            "/.well-known/mercure?topic=https://example.com/books/%7Bid",
            {},
            400,
            "invalid URI template 'https://example.com/books/{id'",
        ),
        ("/healthz", {}, 200, "ok"),
        ("/.well-known/mercure?topic=t", {"X-Big": "y" * 20_000}, 431, "request head is larger"),
    ],
)
def test_get_refusals_have_one_line_reasons(
    path: str, headers: dict[str, str], status: int, reason: str
) -> None:
    async def body() -> None:
        async with serving() as (hub, _, port):
            kept = await hub.publish("t", "kept")
            response = await request(port, "GET", path, headers=headers)
            assert response.status == status
            assert response.text.startswith(reason)
            assert response.text.count("\n") == 1
            history = await hub.backend.history(["t"], None)
            assert [r.id for r in history.records] == [kept]  # nothing lost

    run(body)


@pytest.mark.parametrize(
    ("fields", "status", "reason"),
    [
        ({"data": "x"}, 400, "missing 'topic' field"),
        ({"topic": "t", "id": "a\nb"}, 400, "Event id must not contain CR, LF or NUL"),
        ({"topic": "t", "type": "a\rb"}, 400, "Event event must not contain CR or LF"),
        ({"topic": "t", "retry": "-1"}, 400, "'retry' must be a non-negative integer"),
        ({"topic": "t", "id": "earliest"}, 400, "event id 'earliest' is reserved"),
        ({"topic": "t", "id": "dup"}, 409, "event id already used: 'dup'"),
    ],
)
def test_publish_refusals(fields: dict[str, str], status: int, reason: str) -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True) as (hub, _, port):
            await hub.publish("t", "kept", id="dup")
            response = await publish(port, **fields)
            assert (response.status, response.text.strip()) == (status, response.text.strip())
            assert response.status == status
            assert response.text.startswith(reason)
            history = await hub.backend.history(None, None)
            assert [r.id for r in history.records] == ["dup"]

    run(body)


def test_publish_refusals_of_the_request_itself() -> None:
    async def body() -> None:
        async with serving(max_body_bytes=1000) as (_, _, port):
            disabled = await publish(port, topic="t", data="x")
            assert disabled.status == 403
            assert "disabled" in disabled.text
            assert "--jwt-key" in disabled.text  # it names the flags that allow it
            assert "--anonymous-publish" in disabled.text
        async with serving(anonymous_publish=True, max_body_bytes=1000) as (_, _, port):
            big = await publish(port, topic="t", data="x" * 2000)
            assert (big.status, big.text) == (413, "request body is larger than 1000 bytes\n")
            wrong = await request(port, "POST", "/.well-known/mercure", body=b'{"topic": "t"}')
            assert wrong.status == 415
            put = await request(port, "PUT", "/.well-known/mercure")
            assert put.status == 405
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            garbage = await asyncio.wait_for(reader.read(), 5)
            assert garbage.startswith(b"HTTP/1.1 400 Bad Request")
            assert garbage.endswith(b"malformed HTTP request\n")
            writer.close()

    run(body)


def test_static_files_and_cors(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "app.js").write_text("let x = 1;")
    (tmp_path.parent / "secret.txt").write_text("no")

    async def body() -> None:
        async with serving(static_dir=tmp_path, cors_origins=("https://app.example",)) as (
            _,
            _,
            port,
        ):
            index = await request(port, "GET", "/")
            assert (index.status, index.text) == (200, "<h1>hi</h1>")
            assert index.headers["content-type"] == "text/html; charset=utf-8"
            js = await request(port, "GET", "/app.js")
            assert js.headers["content-type"].startswith(
                ("text/javascript", "application/javascript")
            )
            escape = await request(port, "GET", "/../secret.txt")
            assert escape.status == 404
            escape2 = await request(port, "GET", "/%2e%2e/secret.txt")
            assert escape2.status == 404
            ok = await request(
                port,
                "OPTIONS",
                "/.well-known/mercure",
                headers={"Origin": "https://app.example"},
            )
            assert ok.status == 204
            assert ok.headers["access-control-allow-origin"] == "https://app.example"
            denied = await request(
                port, "OPTIONS", "/.well-known/mercure", headers={"Origin": "https://evil.example"}
            )
            assert denied.status == 403

    run(body)


def test_readyz_and_prometheus_metrics() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True) as (hub, _, port):
            ready = await request(port, "GET", "/readyz")
            assert (ready.status, ready.text) == (200, "ready\n")
            streams = [await subscribe(port, "a"), await subscribe(port, "a", "b")]
            await until(lambda: hub.statistics().subscribers == 2)
            for i in range(3):
                assert (await publish(port, topic="a", data=str(i))).status == 200
            for stream in streams:
                await stream.next_events(3)
            metrics = await request(port, "GET", "/metrics")
            assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
            values = {}
            for line in metrics.text.splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    values[name] = float(value)
            assert values["ssehub_subscribers"] == 2
            assert values['ssehub_topic_subscribers{topic="a"}'] == 2
            assert values['ssehub_topic_subscribers{topic="b"}'] == 1
            assert values["ssehub_events_published_total"] == 3
            assert values["ssehub_events_delivered_total"] == 6
            assert values["ssehub_publish_seconds_count"] == 3
            assert values['ssehub_publish_seconds_bucket{le="+Inf"}'] == 3
            assert values['ssehub_disconnects_total{reason="slow"}'] == 0
            assert values["ssehub_connections"] >= 3
            for stream in streams:
                stream.close()
            await hub.drain(0)
            not_ready = await request(port, "GET", "/readyz")
            assert (not_ready.status, not_ready.text) == (503, "not ready: draining\n")

    run(body)


def test_limits_on_topics_connections_and_idle_clients() -> None:
    async def body() -> None:
        async with serving(max_topics=3, max_connections=3, idle_timeout=0.3) as (hub, srv, port):
            many = "&".join(f"topic=t{i}" for i in range(4))
            refused = await request(port, "GET", f"/.well-known/mercure?{many}")
            assert (refused.status, refused.text) == (
                400,
                "more than 3 topics in one subscription\n",
            )
            streams = [await subscribe(port, "a") for _ in range(3)]
            full = await request(port, "GET", "/healthz")
            assert (full.status, full.text) == (503, "the hub is at its connection limit (3)\n")
            streams.pop().close()
            await until(lambda: len(srv.connections) == 2)
            # a client that says nothing is closed after idle_timeout; streams stay
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            await asyncio.sleep(0.4)
            assert hub.statistics().subscribers == 2
            for stream in streams:
                stream.close()

    run(body)


def test_https(tmp_path: Path) -> None:
    import ssl

    cert, key = self_signed_certificate(tmp_path)

    async def body() -> None:
        async with serving(certfile=cert, keyfile=key) as (hub, _, port):
            context = ssl.create_default_context(cafile=str(cert))
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
            writer.write(b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK")
            await until(lambda: hub.statistics().subscribers == 1)
            await hub.publish("t", "over tls")
            data = b""
            while b"over tls" not in data:
                data += await asyncio.wait_for(reader.read(4096), 5)
            writer.close()

    run(body)


async def _raw_get(port: int, path: str, host: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def test_default_dashboard_answers_loopback_host_names_only() -> None:
    """On by default on loopback must not mean "for any site that reaches
    127.0.0.1 by DNS rebinding": such a page sends its own name as Host."""

    async def body() -> None:
        async with serving() as (hub, _, port):
            await hub.publish("secret-topic", "x", private=True)
            for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
                ok = await _raw_get(port, "/_ssehub/", host)
                assert ok.startswith(b"HTTP/1.1 200"), host
            for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
                for path in ("/_ssehub/", "/_ssehub/stats"):
                    refused = await _raw_get(port, path, host)
                    assert refused.startswith(b"HTTP/1.1 403"), (host, path)
                    assert refused.endswith(b"the dashboard answers loopback Host names only\n")
                    assert b"secret-topic" not in refused
            public = await _raw_get(port, "/_ssehub/ssehub.js", "evil.example")
            assert public.startswith(b"HTTP/1.1 200")  # the page helper is for every origin
        async with serving(dashboard_token="t0ken") as (_, _, port):
            with_token = await _raw_get(port, "/_ssehub/?token=t0ken", "hub.example")
            assert with_token.startswith(b"HTTP/1.1 200")  # the token works whatever the Host

    run(body)


def test_max_stream_seconds_ends_every_stream_with_a_retry() -> None:
    async def body() -> None:
        async with serving(max_stream_seconds=0.5) as (_, _, port):
            stream = await subscribe(port, "t")
            assert stream.status == 200
            try:
                rest = await stream.read_until_eof(5)
            finally:
                stream.close()
            assert rest.endswith(b"retry: 1000\n\n")

    run(body)
