"""Selectors validated once per distinct list (`Hub._selections`, bounded),
and a stream that asks no replay going live at once, with what was
published while it registered."""

from __future__ import annotations

import asyncio

import pytest

from ssehub.backends import MemoryBackend
from ssehub.hub import Hub, Matcher
from ssehub.hub._hub import _SELECTIONS
from ssehub.protocol import Event, EventStreamParser


def test_subscriptions_with_equal_selectors_share_one_validated_selection() -> None:
    hub = Hub()
    first = hub.subscribe(("a", "https://x.example/{id}"), matchers=(Matcher.exact("m"),))
    second = hub.subscribe(("a", "https://x.example/{id}"), matchers=(Matcher.exact("m"),))
    assert first.topics == ("a", "https://x.example/{id}", "m")
    assert second.topics is first.topics  # validated and filed once
    assert second.key is first.key
    # tagging changes how `*` is filed: never the untagged selection
    untagged = hub.subscribe(("*", "a"))
    tagged = hub.subscribe(("*", "a"), tagged=True)
    assert untagged.key == frozenset({"*"})
    assert tagged.key == frozenset({"*", "a"})
    assert tagged.tagged
    assert not untagged.tagged
    # a list (not kept) gives the same as a tuple
    assert hub.subscribe(["a", "https://x.example/{id}"]).key == frozenset(
        {"a", "https://x.example/{id}"}
    )


def test_kept_selections_are_bounded_and_refusals_are_never_kept() -> None:
    hub = Hub()
    for n in range(4 * _SELECTIONS):
        hub.subscribe((f"t{n}",))
    assert len(hub._selections) == _SELECTIONS
    for _ in range(2):  # refused each time, not remembered as valid
        with pytest.raises(ValueError, match="invalid URI template"):
            hub.subscribe(("a", "{bad"))
        with pytest.raises(ValueError, match="a topic must be a non-empty str"):
            hub.subscribe(("a", ["unhashable"]))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="CR, LF or NUL"):
            hub.subscribe(("a\nb",), tagged=True)
    assert hub.subscribe(("a\nb",)).topics == ("a\nb",)  # untagged, the same is fine
    assert len(hub._selections) == _SELECTIONS


class GatedLastId(MemoryBackend):
    """A store whose `last_id` answers only once `gate` is set (as a
    durable one suspends there), telling when it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.gate = asyncio.Event()

    async def last_id(self) -> str | None:
        self.asked.set()
        await self.gate.wait()
        return await super().last_id()


def test_a_stream_with_no_replay_gets_what_was_published_while_it_registered() -> None:
    async def main() -> None:
        backend = GatedLastId()
        async with Hub(backend=backend) as hub:
            accepted: asyncio.Future[asyncio.StreamWriter] = asyncio.Future()
            server = await asyncio.start_server(lambda r, w: accepted.set_result(w), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, client = await asyncio.open_connection("127.0.0.1", port)
            writer = await accepted
            transport = writer.transport
            assert isinstance(transport, asyncio.WriteTransport)
            sub = hub.subscribe_stream(transport, "t")
            opening = asyncio.ensure_future(sub.open(lambda resume: b"HEAD\n"))
            await backend.asked.wait()  # registered: live events are held for it
            during = await hub.publish("t", "during")
            backend.gate.set()
            await opening
            after = await hub.publish("t", "after")
            parser = EventStreamParser()
            data = b""
            events: list[Event] = []
            while len(events) < 2:
                chunk = await asyncio.wait_for(reader.read(65536), 5)
                assert chunk
                data += chunk
                events += parser.feed(chunk)
            assert data.startswith(b"HEAD\n")
            assert [e.id for e in events] == [during, after]  # each once, in order
            assert sub.resume is not None
            assert sub.resume.replayed == 0
            sub.close()
            client.close()
            writer.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
