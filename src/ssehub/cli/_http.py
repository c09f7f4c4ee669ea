"""The one HTTP publisher `publish` and `pipe` share (httpx, lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from ssehub.server import MERCURE_PATH

from ._jwt import Bearer
from ._options import UsageError

__all__ = ("PublishError", "Publisher", "hub_url")


def hub_url(hub: str) -> str:
    """The Mercure endpoint of a hub given by its base URL (or the endpoint)."""
    hub = hub.rstrip("/")
    return hub if hub.endswith(MERCURE_PATH) else hub + MERCURE_PATH


class PublishError(Exception):
    """The hub could not be reached, or refused: one line, exit 1."""


class Publisher:
    """`POST`s events to a hub's Mercure endpoint over one connection::

    with Publisher("http://127.0.0.1:8000", Bearer(token)) as publisher:
        event_id = publisher.publish(["t"], "hello")
    """

    def __init__(self, hub: str, bearer: Bearer, *, timeout: float = 10.0) -> None:
        try:
            import httpx
        except ImportError:
            raise UsageError(
                "publishing to a hub needs httpx: pip install 'ssehub[client]'"
            ) from None
        self.url = hub_url(hub)
        self._bearer = bearer
        self._httpx = httpx
        self._client = httpx.Client(timeout=timeout)

    def publish(
        self,
        topics: Sequence[str],
        data: str,
        *,
        id: str | None = None,
        type: str | None = None,
        retry: int | None = None,
        private: bool = False,
    ) -> str:
        """Publish one event; its id, as the hub answered it."""
        form: dict[str, Any] = {"topic": list(topics), "data": data}
        for name, value in (("id", id), ("type", type), ("retry", retry)):
            if value is not None:
                form[name] = str(value)
        if private:
            form["private"] = "on"
        try:
            response = self._client.post(self.url, data=form, headers=self._bearer.headers())
        except self._httpx.HTTPError as error:
            raise PublishError(f"cannot publish to {self.url}: {error}") from None
        if response.status_code != 200:
            text = response.text.strip()
            reason = text.splitlines()[0] if text else ""
            hint = ""
            if response.status_code == 401 and not self._bearer.given:
                hint = " (give --token JWT, or --jwt-key KEY to mint one)"
            raise PublishError(f"the hub refused: {response.status_code} {reason}{hint}")
        return response.text

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
