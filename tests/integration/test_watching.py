"""examples/watching.py: the hub tells the app when someone watches, and
the app computes only then (issue 13 item 7), over real sockets."""

from __future__ import annotations

import asyncio
import threading

from examples.watching import TOPIC, Producer, main

from ssehub import BackgroundHub
from tests.support.helpers import free_port, request, subscribe
from tests.support.servers import run, until


async def listening(port: int) -> None:
    for _ in range(500):
        try:
            if (await request(port, "GET", "/healthz")).status == 200:
                return
        except OSError:
            await asyncio.sleep(0.01)
    raise TimeoutError("the example never listened")


def test_the_example_computes_only_while_someone_watches() -> None:
    port = free_port()
    producer = Producer(interval=0.02)
    stop = threading.Event()
    thread = threading.Thread(
        target=main, args=(port,), kwargs={"producer": producer, "stop": stop}
    )
    thread.start()

    async def body() -> None:
        await listening(port)
        await asyncio.sleep(0.3)
        assert producer.computed == 0  # nobody watching: nothing computed
        stream = await subscribe(port, TOPIC)
        assert [e.data for e in await stream.next_events(3)] != []
        stream.close()
        await until(lambda: not producer.watched.is_set())
        stopped_at = producer.computed
        await asyncio.sleep(0.3)
        assert producer.computed <= stopped_at + 1  # at most the one under way
        # and a page opened now gets the last value at once, with no producer
        late = await subscribe(port, TOPIC, extra_query={"newest": "1"})
        await until(lambda: producer.watched.is_set())
        late.close()

    try:
        run(body)
    finally:
        stop.set()
        thread.join(10)


def test_background_hub_delegates_subscribers_and_on_watch() -> None:
    calls: list[tuple[str, bool]] = []
    threads: list[threading.Thread] = []
    seen = threading.Event()

    def on_watch(topic: str, watching: bool) -> None:
        calls.append((topic, watching))
        threads.append(threading.current_thread())
        seen.set()

    with BackgroundHub(port=0, on_watch=on_watch) as hub:
        assert hub.subscribers("t") == 0

        async def body() -> None:
            stream = await subscribe(hub.port, "t")
            await until(lambda: hub.subscribers("t") == 1)
            await until(seen.is_set)
            stream.close()
            await until(lambda: hub.subscribers("t") == 0)
            await until(lambda: len(calls) == 2)

        run(body)
        assert threads == [hub._thread, hub._thread]  # on the hub's thread
    assert calls == [("t", True), ("t", False)]
