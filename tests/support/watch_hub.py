"""A hub process that prints what `on_watch` tells it, for presence tests:
`python -m tests.support.watch_hub STORE_URL PRESENCE_INTERVAL`. It prints
`port N` once it listens, then `watch TOPIC 1|0` per call, flushed."""

from __future__ import annotations

import sys
import threading

from ssehub import BackgroundHub
from ssehub.backends import backend_from_url
from ssehub.hub import HubConfig


def main(store: str, interval: float) -> None:
    def told(topic: str, watching: bool) -> None:
        print(f"watch {topic} {int(watching)}", flush=True)

    config = HubConfig(presence_interval=interval)
    hub = BackgroundHub(0, config=config, backend=backend_from_url(store), on_watch=told)
    with hub:
        print(f"port {hub.port}", flush=True)
        threading.Event().wait()  # until killed


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
