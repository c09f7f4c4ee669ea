"""The standalone server's request reader against hostile clients (issue 11:
chunked bodies, slowloris, half-closed requests, forged log lines, and the
other per-connection bounds), over real sockets against a real HubServer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from tests.support.helpers import request, subscribe
from tests.support.servers import serving


def run_on(loop: str, body: Callable[[], Awaitable[None]]) -> None:
    factory = uvloop.new_event_loop if loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(body())  # type: ignore[arg-type]


# -- 16. no forged log lines ------------------------------------------------------------


def test_client_text_in_log_lines_is_escaped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ssehub.server")

    async def body() -> None:
        async with serving() as (_, _, port):
            forged = "%0D%0A2026-12-01%20INFO%20ssehub.server%20forged"
            await request(port, "GET", f"/nope{forged}")  # 404: "refused ... path"
            stream = await subscribe(port, "a\r\nb\\", query_last_event_id="x\ny\u2028z")
            assert stream.status == 200
            stream.close()
            await asyncio.sleep(0.2)

    run_on("asyncio", body)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3  # refused, stream open, stream closed
    for line in lines:
        assert not any(c in line for c in "\r\n\u2028"), line
    refused, opened, closed = lines
    assert refused.endswith(
        "GET /nope\\r\\n2026-12-01 INFO ssehub.server forged status=404 "
        "reason=not found: /nope\\r\\n2026-12-01 INFO ssehub.server forged"
    )
    assert "topics=a\\r\\nb\\\\ last_event_id=x\\ny\\u2028z " in opened
    assert "topics=a\\r\\nb\\\\ reason=closed" in closed
