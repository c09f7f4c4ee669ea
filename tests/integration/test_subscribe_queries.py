"""Subscribers that send the same query string share its parsed form and,
when they add nothing to it, one decision (`Mercure._queries`): over real
sockets, what one subscriber's headers (token, cookie, `Origin`,
`Last-Event-ID`) gave it never reaches the next one with the same query."""

from __future__ import annotations

import jwt

from ssehub.mercure import JWTAuth
from tests.support.helpers import form, publish, request, subscribe
from tests.support.servers import run, serving

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
HS = JWTAuth(publisher_key=SECRET, subscriber_key=SECRET)


def token(**claims: list[str]) -> str:
    return jwt.encode({"mercure": claims}, SECRET, algorithm="HS256")


async def post(port: int, **fields: str) -> str:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": f"Bearer {token(publish=['*'])}",
    }
    answer = await request(
        port, "POST", "/.well-known/mercure", headers=headers, body=form(**fields)
    )
    assert answer.status == 200, answer.text
    return answer.text


def test_private_rights_of_one_subscriber_never_reach_the_next_with_the_same_query() -> None:
    async def body() -> None:
        async with serving(auth=HS, anonymous=True) as (_, server, port):
            rights = token(subscribe=["orders"])
            first = await subscribe(port, "orders", headers={"Authorization": f"Bearer {rights}"})
            anonymous = await subscribe(port, "orders")  # the same query string, no token
            by_cookie = await subscribe(
                port, "orders", headers={"Cookie": f"mercureAuthorization={rights}"}
            )
            anonymous_again = await subscribe(port, "orders")
            assert len(server.mercure._queries) == 1  # all four shared one parsed query
            secret = await post(port, topic="orders", data="secret", private="on")
            public = await post(port, topic="orders", data="public")
            for stream in (first, by_cookie):
                assert [e.id for e in await stream.next_events(2)] == [secret, public]
            for stream in (anonymous, anonymous_again):
                assert [e.id for e in await stream.next_events(1)] == [public]
            for stream in (first, anonymous, by_cookie, anonymous_again):
                stream.close()

    run(body)


def test_cors_and_resume_headers_belong_to_the_request_that_sent_them() -> None:
    async def body() -> None:
        cors = ("https://app.example",)
        async with serving(cors_origins=cors, anonymous_publish=True) as (_, _, port):
            event_id = (await publish(port, topic="t", data="x")).text
            browser = await subscribe(
                port, "t", headers={"Origin": "https://app.example"}, last_event_id=event_id
            )
            assert browser.headers["access-control-allow-origin"] == "https://app.example"
            assert browser.headers["last-event-id"] == event_id
            plain = await subscribe(port, "t")  # the same query, neither header
            assert "access-control-allow-origin" not in plain.headers
            assert "last-event-id" not in plain.headers
            page = await subscribe(port, "t", headers={"Origin": "https://app.example"})
            assert page.headers["access-control-allow-origin"] == "https://app.example"
            assert "last-event-id" not in page.headers
            other = await subscribe(port, "t", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in other.headers
            resumed = await subscribe(port, "t", last_event_id=event_id)
            assert resumed.headers["last-event-id"] == event_id
            assert "access-control-allow-origin" not in resumed.headers
            for stream in (browser, plain, page, other, resumed):
                stream.close()

    run(body)
