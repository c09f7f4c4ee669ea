"""The `Idempotency-Key` request header (IETF draft "The Idempotency-Key
HTTP Header Field"): a publisher names its publish, so a retry after a lost
answer is recognised. The key becomes the event's id; the hub answers a
retry of the same event with that id, and refuses another event under it."""

from __future__ import annotations

from ._request import Request
from ._response import HTTPError

__all__ = ("publish_id",)

HEADER = b"idempotency-key"


def _key(raw: str) -> str:
    """The key: the draft's Structured Field string (`"..."`, with `\\"`
    and `\\\\` escapes), or, leniently, the bare value as sent."""
    if len(raw) < 2 or not raw.startswith('"'):
        return raw
    out: list[str] = []
    chars = iter(raw[1:])
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            if escaped not in ('"', "\\"):
                raise HTTPError(400, "Idempotency-Key: a bad escape in the quoted string")
            out.append(escaped)
        elif char == '"':
            if next(chars, None) is not None:
                raise HTTPError(400, "Idempotency-Key: text after the quoted string")
            return "".join(out)
        else:
            out.append(char)
    raise HTTPError(400, "Idempotency-Key: the quoted string is not closed")


def publish_id(request: Request, form_id: str | None, longest: int) -> str | None:
    """The event id of a publish: the `id` field, or else the
    `Idempotency-Key` header. An id longer than `longest` characters (the
    longest `Last-Event-ID` taken), both given and different, a key sent twice,
    an empty key, one with CR, LF or NUL or longer than `longest`
    characters: a 400 naming the problem."""
    if form_id is not None and len(form_id) > longest:  # could never be resumed from
        raise HTTPError(400, f"'id' is longer than {longest} characters")
    raw = request.header(HEADER)
    if raw is None:
        return form_id
    if HEADER in request.repeated:
        raise HTTPError(400, "Idempotency-Key sent more than once")
    key = _key(raw.strip(" \t"))
    if not key:
        raise HTTPError(400, "Idempotency-Key is empty")
    if any(c in key for c in "\r\n\0"):
        raise HTTPError(400, "Idempotency-Key must not contain CR, LF or NUL")
    if len(key) > longest:
        raise HTTPError(400, f"Idempotency-Key is longer than {longest} characters")
    if form_id is not None and form_id != key:
        raise HTTPError(
            400, "the 'id' field and the Idempotency-Key header differ: give one, or the same"
        )
    return key
