"""Attacks on the app's hooks against real processes (`ssehub serve`, and
`HubApp` under uvicorn where it applies): the authorization callback and
webhooks, with the app's endpoint and the webhook receiver as real servers
of the test on free ports of 127.0.0.1 (docs/security.md lists them)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.frontends import FRONTENDS
from tests.support.helpers import free_port
from tests.support.hooks import allow, app, hub, metric, wait_for


def raw_subscribe(port: int, topic: str, header: bytes = b"") -> bytes:
    """A subscribe request's status line and head, over a plain socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            f"GET /.well-known/mercure?topic={topic} HTTP/1.1\r\nHost: x\r\n".encode()
            + header
            + b"\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
        return head


# -- the authorization callback --------------------------------------------------------


@pytest.mark.parametrize("kind", FRONTENDS)
def test_a_forwarded_header_that_is_not_ascii_reaches_the_app_as_sent(kind: str) -> None:
    # a Latin-1 byte in a forwarded cookie made the hub's HTTP client raise:
    # a traceback per request in the log, a 503 (serve) or a 500 (uvicorn)
    with app() as callback:
        env = {"SSEHUB_AUTHORIZE_URL": callback.url, "SSEHUB_AUTHORIZE_FORWARD": "Cookie"}
        with hub(kind, env) as front:
            head = raw_subscribe(front.port, "t", b"Cookie: session=caf\xe9\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), head
            _code, _, err = front.stop()
        ((cookie,),) = [
            [v for k, v in headers if k == b"cookie"] for headers in callback.raw_headers
        ]
        assert cookie == b"session=caf\xe9"  # the bytes the client sent
        assert "Traceback" not in err


def test_identical_cold_questions_at_once_ask_the_app_once() -> None:
    # a burst of the same uncached question (a reconnect storm, or a client
    # hammering one topic) was one request to the app each
    with (
        app(lambda _: (*allow()[:2], 1.0)) as callback,
        hub("serve", {"SSEHUB_AUTHORIZE_URL": callback.url}) as front,
    ):
        with ThreadPoolExecutor(20) as pool:
            heads = list(pool.map(lambda _: raw_subscribe(front.port, "t"), range(20)))
        assert all(h.startswith(b"HTTP/1.1 200 ") for h in heads)
        assert len(callback.requests) == 1
        assert metric(front.url, 'ssehub_authorize_requests_total{outcome="answered"}') == 1
        assert metric(front.url, "ssehub_authorize_cache_hits_total") == 19


# -- webhooks --------------------------------------------------------------------------


class EndlessReceiver:
    """A webhook receiver that answers 200 and then a body without end,
    counting the bytes the hub took before it closed the connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.written: list[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(30)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                chunk = b"x" * 1_048_576
                written = 0
                try:
                    while written < 1024 * len(chunk):  # a GiB at most
                        conn.sendall(chunk)
                        written += len(chunk)
                except OSError:
                    pass
                self.written.append(written)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(30)


def test_a_webhook_receiver_answering_without_end_costs_the_hub_no_memory() -> None:
    # the hub read the receiver's whole answer into memory for as long as
    # the timeout let it (hundreds of MB in a few seconds on a local link)
    receiver = EndlessReceiver()
    try:
        env = {
            "SSEHUB_WEBHOOK_URL": receiver.url,
            "SSEHUB_WEBHOOK_TIMEOUT": "5",
            "SSEHUB_WEBHOOK_ATTEMPTS": "1",
            "SSEHUB_WEBHOOK_QUEUE": "1",
        }
        with hub("serve", env) as front:
            with httpx.stream("GET", front.hub, params={"topic": "t"}, timeout=20) as stream:
                assert stream.status_code == 200
                wait_for(lambda: bool(receiver.written))
            # the status was taken, the body left unread: the connection closed
            assert receiver.written[0] < 64 * 1_048_576, receiver.written
            wait_for(lambda: metric(front.url, "ssehub_webhooks_sent_total") == 1)
    finally:
        receiver.close()


def test_tokens_in_hook_urls_stay_out_of_the_log() -> None:
    # httpx logged each hook request's whole URL at INFO, and an abandoned
    # notice's warning did too: a receiver's ?token= in every log line
    port = free_port()
    down = f"http://user:pa55word@127.0.0.1:{port}/hook?token=s3cr3t"
    with app() as callback:
        env = {
            "SSEHUB_AUTHORIZE_URL": f"{callback.url}?token=s3cr3t",
            "SSEHUB_WEBHOOK_URL": down,
            "SSEHUB_WEBHOOK_ATTEMPTS": "1",
            "SSEHUB_LOG_LEVEL": "info",
        }
        with hub("serve", env) as front:
            assert raw_subscribe(front.port, "t").startswith(b"HTTP/1.1 200 ")
            wait_for(lambda: metric(front.url, "ssehub_webhooks_abandoned_total") >= 1)
            _, out, err = front.stop()
    assert len(callback.requests) == 1
    assert f"to http://127.0.0.1:{port}/hook?… abandoned" in err  # the warning, redacted
    assert "s3cr3t" not in out + err
    assert "pa55word" not in out + err


def test_a_forwarded_header_with_many_bytes_is_one_question() -> None:
    # (holds) the cache key is the whole header, not a prefix of it
    with app() as callback:
        env = {"SSEHUB_AUTHORIZE_URL": callback.url, "SSEHUB_AUTHORIZE_FORWARD": "Cookie"}
        with hub("serve", {**env, "SSEHUB_AUTHORIZE_CACHE_SECONDS": "60"}) as front:
            long = "a" * 8000
            for last in "xy":
                cookie = f"Cookie: s={long}{last}\r\n".encode()
                assert raw_subscribe(front.port, "t", cookie).startswith(b"HTTP/1.1 200 ")
            assert len(callback.requests) == 2


QUIET = {"SSEHUB_LOG_LEVEL": "warning"}


def test_a_flood_of_distinct_cold_questions_does_not_stall_other_requests() -> None:
    # 1,000 distinct uncached questions queued in the HTTP client's pool,
    # whose queue is rescanned per event: 19 s of the hub's CPU, /healthz
    # answered after 13 s, a cached question timed out. They now wait their
    # turn on a semaphore (0.5 s of CPU, /healthz at once). No clock: the
    # app answers after 5 s, and /healthz must come before any of them.
    with (
        app(lambda _: (*allow()[:2], 5.0)) as callback,
        hub(
            "serve",
            {"SSEHUB_AUTHORIZE_URL": callback.url, "SSEHUB_AUTHORIZE_TIMEOUT": "6", **QUIET},
        ) as front,
    ):

        async def status(path: str) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            try:
                return (await asyncio.wait_for(reader.readline(), 30)).strip()
            finally:
                writer.close()

        async def body() -> None:
            flood = [
                asyncio.ensure_future(status(f"/.well-known/mercure?topic=t{n}"))
                for n in range(1000)
            ]
            while not callback.requests:  # the flood reached the app
                await asyncio.sleep(0.01)
            assert await status("/healthz") == b"HTTP/1.1 200 OK"
            # answered while every flooding question still waits for the app
            assert not any(task.done() for task in flood)
            outcomes = await asyncio.gather(*flood)
            assert set(outcomes) <= {b"HTTP/1.1 200 OK", b"HTTP/1.1 503 Service Unavailable"}

        asyncio.run(body())
