"""Compute an expensive value only while someone is watching it.

    python -m examples.watching
    open http://127.0.0.1:8000/?topic=load

A `BackgroundHub` tells the program when the topic `load` gains its first
subscriber and when it loses its last (`on_watch`); the producer computes
and publishes only in between. A page opened later still shows the newest
value at once: it subscribes with `newest=1` (the built-in page does).
"""

from __future__ import annotations

import os
import threading

from ssehub import BackgroundHub

TOPIC = "load"


class Producer:
    """Publishes the load average every `interval` seconds, while watched."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.watched = threading.Event()
        self.computed = 0

    def on_watch(self, topic: str, watching: bool) -> None:
        # called on the hub's thread: only signal, never compute here
        if topic == TOPIC:
            if watching:
                self.watched.set()
            else:
                self.watched.clear()

    def expensive(self) -> str:
        self.computed += 1
        return f"{os.getloadavg()[0]:.2f}"

    def run(self, hub: BackgroundHub, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.watched.wait(0.1):  # nobody watching: nothing to compute
                hub.publish(TOPIC, self.expensive())
                stop.wait(self.interval)


def main(
    port: int = 8000, *, producer: Producer | None = None, stop: threading.Event | None = None
) -> None:
    producer = producer or Producer()
    stop = stop or threading.Event()
    with BackgroundHub(port, page=True, on_watch=producer.on_watch) as hub:
        print(f"open {hub.url}/?topic={TOPIC}", flush=True)
        try:
            producer.run(hub, stop)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
