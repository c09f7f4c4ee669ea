"""A stream the hub refuses once the request was decided (the hub shutting
down) is answered alike by both front ends: 503, its reason, and the CORS
headers, so a page on an allowed origin can read why."""

from __future__ import annotations

import asyncio

import httpx

from ssehub.asgi import HubApp
from ssehub.hub import Hub
from ssehub.mercure import MercureConfig
from tests.support.servers import run, serving

ORIGIN = "https://app.example"


def test_server_refusal_of_a_closed_hub_carries_cors() -> None:
    async def body() -> None:
        async with serving(anonymous=True, cors_origins=(ORIGIN,)) as (hub, _srv, port):
            await hub.drain(0)  # the hub stops; the server still answers
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\n"
                b"Origin: " + ORIGIN.encode() + b"\r\n\r\n"
            )
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
            writer.close()
            assert head.startswith("HTTP/1.1 503"), head
            assert f"access-control-allow-origin: {ORIGIN}" in head.lower(), head

    run(body)


def test_asgi_refusal_of_a_closed_hub_carries_cors() -> None:
    async def body() -> None:
        hub = Hub()
        await hub.start()
        app = HubApp(hub, config=MercureConfig(anonymous=True, cors_origins=(ORIGIN,)))
        await hub.drain(0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            response = await client.get("/?topic=t", headers={"Origin": ORIGIN})
        await hub.aclose()
        assert response.status_code == 503
        assert "shutting down" in response.text
        assert response.headers["access-control-allow-origin"] == ORIGIN

    asyncio.run(body())
