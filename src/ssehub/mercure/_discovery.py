"""Discovery: the `Link` header an app sends so that clients find the hub
(both dialects), and the hub's OAuth 2.0 protected resource metadata
(RFC 9728; Mercure 1.0 draft, "Protected Resource Metadata")."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ._tokens import AUTHORIZATION_DETAIL, COOKIE_V1

__all__ = ("METADATA_PATH", "discovery_link", "metadata_url", "protected_resource_metadata")

# RFC 9728: the well-known prefix, then the resource's path
METADATA_PATH = "/.well-known/oauth-protected-resource/.well-known/mercure"


def discovery_link(
    hub_url: str,
    *,
    self_url: str | None = None,
    last_event_id: str | None = None,
    content_type: str | None = None,
    event_type: str | None = None,
) -> str:
    """The value of a `Link` header that lets Mercure clients (0.x and 1.0)
    discover the hub from any of your app's responses::

        response.headers["Link"] = discovery_link("https://hub.example/.well-known/mercure",
                                                  self_url="https://app.example/books/1")

    gives `<https://hub.example/.well-known/mercure>; rel="mercure",
    <https://app.example/books/1>; rel="self"`. The optional target
    attributes of the hub link: `last_event_id` (`last-event-id`, the id of
    the last event when the resource was generated: a client resumes from
    it, with `last_event_id=` in 1.0, `lastEventID=` in 0.x),
    `content_type` (`content-type` of the updates) and `event_type`
    (`type`, their SSE event type; 1.0).
    """
    links = [(hub_url, "mercure")] + ([(self_url, "self")] if self_url else [])
    for url, _ in links:
        if any(c in url for c in '<>"\r\n ') or not url:
            raise ValueError(f"not a URL for a Link header: {url!r}")
    attributes = ""
    for name, value in (
        ("last-event-id", last_event_id),
        ("content-type", content_type),
        ("type", event_type),
    ):
        if value is None:
            continue
        if not value or any(c in value for c in '"\\\r\n') or not value.isprintable():
            raise ValueError(f"not a value for the Link attribute {name}: {value!r}")
        attributes += f'; {name}="{value}"'
    first = f'<{hub_url}>; rel="mercure"{attributes}'
    return ", ".join([first, *(f'<{url}>; rel="{rel}"' for url, rel in links[1:])])


def metadata_url(hub_url: str) -> str:
    """Where the protected resource metadata of the hub at `hub_url` is
    (RFC 9728 section 3.1: the well-known prefix goes before the path)."""
    parts = urlsplit(hub_url)
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{parts.path}"


def protected_resource_metadata(
    resource: str, *, issuers: tuple[str, ...] = (), subscriptions: bool = False
) -> dict[str, Any]:
    """The RFC 9728 document for a hub whose resource identifier is
    `resource`: the `aud` its tokens need, the authorization detail type it
    understands, how a token may be presented."""
    document: dict[str, Any] = {
        "resource": resource,
        "authorization_details_types_supported": [AUTHORIZATION_DETAIL],
        "bearer_methods_supported": ["header"],
        "mercure_cookie": COOKIE_V1,
        "mercure_matcher_types_supported": ["exact", "urlpattern"],
    }
    del issuers  # self-issued tokens: no authorization server to advertise
    if subscriptions:
        document["mercure_subscriptions"] = True
    return document
