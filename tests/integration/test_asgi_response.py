"""EventSourceResponse driven directly through its ASGI interface."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

import pytest

from ssehub.asgi import EventSourceResponse, Streams, encode_item
from ssehub.protocol import Event, LocalProtocolError
from ssehub.testing import FakeClock
from tests.support.asgi import Peer

SCOPE = {"type": "http", "method": "GET", "path": "/", "headers": []}


def test_items_of_every_kind_are_encoded() -> None:
    assert encode_item(Event("x", id="1")) == b"id: 1\ndata: x\n\n"
    assert encode_item("a\nb") == b"data: a\ndata: b\n\n"
    assert encode_item(b"caf\xc3\xa9") == "data: café\n\n".encode()
    assert (
        encode_item({"data": {"k": [1, 2]}, "event": "obj"}) == b'event: obj\ndata: {"k":[1,2]}\n\n'
    )
    assert encode_item({"comment": "hi"}) == b": hi\n\n"
    with pytest.raises(LocalProtocolError, match="Event id"):
        encode_item({"data": "x", "id": "1\ndata: injected"})
    with pytest.raises(ValueError, match="unknown event field"):
        encode_item({"data": "x", "name": "y"})
    with pytest.raises(TypeError, match="cannot send a int"):
        encode_item(5)  # type: ignore[arg-type]


def test_stream_ends_the_body_when_the_producer_ends() -> None:
    async def gen() -> AsyncIterator[str]:
        yield "one"
        yield "two"

    async def main() -> None:
        peer = Peer()
        await EventSourceResponse(gen(), retry=1500, headers={"X-Trace": "t1"})(
            SCOPE, peer.receive, peer.send
        )
        start = peer.sent[0]
        assert start["status"] == 200
        assert (b"x-trace", b"t1") in start["headers"]
        assert not any(name == b"connection" for name, _ in start["headers"])
        assert peer.body == b"retry: 1500\n\ndata: one\n\ndata: two\n\n"
        assert peer.sent[-1]["more_body"] is False

    asyncio.run(main())


def test_disconnect_cancels_the_producer_and_its_finally_runs() -> None:
    finished = asyncio.Event()

    async def gen() -> AsyncIterator[str]:
        try:
            while True:
                yield "tick"
                await asyncio.sleep(3600)
        finally:
            finished.set()

    async def main() -> None:
        peer = Peer()
        task = asyncio.ensure_future(EventSourceResponse(gen())(SCOPE, peer.receive, peer.send))
        await asyncio.sleep(0.01)
        peer.gone.set()
        await asyncio.wait_for(task, 1)
        assert finished.is_set()
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())


def test_a_send_that_never_completes_ends_the_stream() -> None:
    finished = asyncio.Event()

    async def gen() -> AsyncIterator[str]:
        try:
            while True:
                yield "x" * 1000
        finally:
            finished.set()

    async def main() -> None:
        peer = Peer()

        async def stall_after_head(message: Any) -> None:
            if len(peer.sent) >= 2:
                peer.stalled = True
            await peer.send(message)

        response = EventSourceResponse(gen(), send_timeout=0.05)
        await asyncio.wait_for(response(SCOPE, peer.receive, stall_after_head), 2)
        assert finished.is_set()

    asyncio.run(main())


def test_heartbeat_on_the_injected_clock() -> None:
    async def quiet() -> AsyncIterator[str]:
        await asyncio.Event().wait()
        yield "never"

    async def main() -> None:
        clock = FakeClock()
        peer = Peer()
        task = asyncio.ensure_future(
            EventSourceResponse(quiet(), heartbeat=15, clock=clock)(SCOPE, peer.receive, peer.send)
        )
        for _ in range(5):
            await asyncio.sleep(0)
        assert peer.body == b":\n\n"
        await clock.advance(15)
        assert peer.body == b":\n\n:\n\n"
        peer.gone.set()
        await asyncio.wait_for(task, 1)

    asyncio.run(main())


def test_a_bad_item_raises_in_the_app_naming_the_field() -> None:
    async def gen() -> AsyncIterator[Any]:
        yield {"data": "ok"}
        yield {"data": "x", "event": "a\nb"}

    async def main() -> None:
        peer = Peer()
        with pytest.raises(LocalProtocolError, match="Event event"):
            await EventSourceResponse(gen())(SCOPE, peer.receive, peer.send)
        assert b"data: ok" in peer.body
        assert b"a\nb" not in peer.body

    asyncio.run(main())


def test_server_cancelling_the_request_ends_it_with_a_retry_hint_and_no_error() -> None:
    finished = asyncio.Event()

    async def gen() -> AsyncIterator[str]:
        try:
            while True:
                yield "t"
                await asyncio.sleep(0.01)
        finally:
            finished.set()

    async def main() -> None:
        peer = Peer()
        task = asyncio.ensure_future(
            EventSourceResponse(gen(), retry=250)(SCOPE, peer.receive, peer.send)
        )
        await asyncio.sleep(0.05)
        task.cancel()  # what uvicorn does after --timeout-graceful-shutdown
        await task  # returns: a CancelledError would be logged as a traceback
        assert not task.cancelled()
        assert task.cancelling() == 0
        assert finished.is_set()
        assert peer.body.endswith(b"data: t\n\nretry: 250\n\n")
        assert peer.sent[-1]["more_body"] is False
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())


def test_streams_drain_ends_open_and_later_responses() -> None:
    async def gen() -> AsyncIterator[str]:
        while True:
            yield "t"
            await asyncio.sleep(0.01)

    async def main() -> None:
        streams = Streams()
        peers = [Peer() for _ in range(3)]
        tasks = [
            asyncio.ensure_future(
                EventSourceResponse(gen(), streams=streams)(SCOPE, p.receive, p.send)
            )
            for p in peers
        ]
        await asyncio.sleep(0.05)
        assert len(streams) == 3
        assert await streams.drain(1.0) == 0
        await asyncio.gather(*tasks)
        assert len(streams) == 0
        assert all(p.sent[-1] == {"type": "http.response.body", "body": b"retry: 1000\n\n",
                                  "more_body": False} for p in peers)  # fmt: skip
        late = Peer()
        await asyncio.wait_for(
            EventSourceResponse(gen(), streams=streams)(SCOPE, late.receive, late.send), 1
        )

    asyncio.run(main())


def test_settings_are_validated() -> None:
    async def gen() -> AsyncIterator[str]:
        yield "x"

    with pytest.raises(ValueError, match="heartbeat"):
        EventSourceResponse(gen(), heartbeat=0)
    with pytest.raises(ValueError, match="retry"):
        EventSourceResponse(gen(), retry=-1)
    with pytest.raises(ValueError, match="CR or LF"):
        EventSourceResponse(gen(), headers={"X-A": "b\r\nSet-Cookie: x"})
    with pytest.raises(ValueError, match="grace"):
        Streams(grace=-1)
    with pytest.raises(ValueError, match="is not a valid Signals"):
        Streams(signals=[12345])


def test_streams_lifespan_drains_on_a_signal_and_chains_the_servers_handler() -> None:
    """What a server's Ctrl-C does through `Streams.lifespan`, with a real
    signal (SIGUSR1 stands in for SIGINT): the server's handler still runs,
    every response of the app ends with a retry hint, even one not given
    `streams=` (it finds the handle in the lifespan state), and the server's
    handler is back in place afterwards."""
    seen: list[int] = []

    def servers_handler(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    async def gen() -> AsyncIterator[str]:
        while True:
            yield "t"
            await asyncio.sleep(0.01)

    async def main() -> None:
        streams = Streams(signals=[signal.SIGUSR1, signal.SIGUSR2])
        async with streams.lifespan() as state:
            assert signal.getsignal(signal.SIGUSR1) is not servers_handler
            assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL  # left alone
            peer = Peer()
            scope = {**SCOPE, "state": dict(state)}  # the server's copy per request
            task = asyncio.ensure_future(EventSourceResponse(gen())(scope, peer.receive, peer.send))
            await asyncio.sleep(0.05)
            assert len(streams) == 1
            signal.raise_signal(signal.SIGUSR1)
            await asyncio.wait_for(task, 1)
            assert seen == [signal.SIGUSR1]
            assert peer.body.endswith(b"retry: 1000\n\n")
            assert peer.sent[-1]["more_body"] is False
        assert signal.getsignal(signal.SIGUSR1) is servers_handler

    previous = signal.signal(signal.SIGUSR1, servers_handler)
    try:
        asyncio.run(main())
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_streams_lifespan_ends_open_streams_at_its_end() -> None:
    async def gen() -> AsyncIterator[str]:
        while True:
            yield "t"
            await asyncio.sleep(0.01)

    async def main() -> None:
        peer = Peer()
        streams = Streams(grace=1.0, signals=())
        async with streams.lifespan() as state:
            scope = {**SCOPE, "state": dict(state)}
            task = asyncio.ensure_future(EventSourceResponse(gen())(scope, peer.receive, peer.send))
            await asyncio.sleep(0.05)
        assert task.done()  # the lifespan's end waited for it
        assert peer.body.endswith(b"retry: 1000\n\n")

    asyncio.run(main())
