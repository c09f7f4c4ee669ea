"""Attacks on per-topic policies (`[[topics]]`) against a real `ssehub serve
--config FILE` process over real sockets (docs/security.md)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.processes import serving_config

BUSY = "https://example.com/busy"


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    settings = (
        'store = "memory:"\nanonymous = true\nlog-level = "warning"\n'
        f'[[topics]]\nmatch = "{BUSY}"\nmax_subscribers = 1\n'
    )
    with serving_config(tmp_path, settings) as port:
        yield port


def _status(port: int, query: str, streams: list[socket.socket]) -> bytes:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    streams.append(sock)
    sock.sendall(f"GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        head += sock.recv(4096)
    return head.split(b"\r\n")[0]


@pytest.mark.parametrize(
    "extra",
    ["*", quote("https://example.com/{x}", safe=""), quote("https://example.com/other", safe="")],
    ids=["wildcard", "template", "another-topic"],
)
def test_a_full_topic_stays_full_when_a_subscription_adds_other_selectors(
    port: int, extra: str
) -> None:
    # naming the topic exactly and adding `*` or a template took the
    # subscription past the topic's max_subscribers (only subscriptions
    # without patterns were checked)
    busy = quote(BUSY, safe="")
    streams: list[socket.socket] = []
    try:
        assert _status(port, f"topic={busy}", streams) == b"HTTP/1.1 200 OK"
        assert _status(port, f"topic={busy}", streams).startswith(b"HTTP/1.1 503 ")
        refused = _status(port, f"topic={busy}&topic={extra}", streams)
        assert refused.startswith(b"HTTP/1.1 503 "), refused
        # a 1.0 exact matcher beside a URL pattern too
        both = f"match={busy}&match_urlpattern={quote('https://example.com/*', safe='')}"
        assert _status(port, both, streams).startswith(b"HTTP/1.1 503 ")
        # (documented) patterns alone name no topic: counted, not refused
        assert _status(port, "topic=*", streams) == b"HTTP/1.1 200 OK"
    finally:
        for sock in streams:
            sock.close()
