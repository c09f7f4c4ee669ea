"""`Authorizer.aclose()` with a question on its way to a real (slow) app
endpoint on 127.0.0.1: it owns the question's task and ends it."""

from __future__ import annotations

import asyncio

import pytest

from ssehub.hooks import Authorizer
from ssehub.mercure import AuthorizeConfig, Question
from tests.support.hooks import allow, app


def test_aclose_ends_the_questions_on_their_way_before_it_returns() -> None:
    # aclose cancelled them and returned: their tasks still ran, on a
    # client being closed under them
    async def body() -> None:
        with app(lambda _: (*allow()[:2], 3.0)) as callback:
            authorizer = Authorizer(AuthorizeConfig(callback.url, timeout=10))
            asker = asyncio.create_task(authorizer.ask(Question("subscribe", ("t",), ())))
            while not callback.requests:  # the question reached the app
                await asyncio.sleep(0.01)
            asking = list(authorizer._asking.values())
            assert asking
            await authorizer.aclose()
            assert all(task.done() for task in asking)
            with pytest.raises(asyncio.CancelledError):
                await asker

    asyncio.run(body())
