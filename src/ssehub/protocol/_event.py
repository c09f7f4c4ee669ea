"""`Event` and the encoder: what ssehub writes on the wire.

WHATWG HTML, "Server-sent events", section "Parsing an event stream" is the
reference; every rule here is the encoder-side twin of a parser rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import LocalProtocolError
from ._slots import slot_setters

__all__ = ("Event", "encode_comment", "encode_event")

# The only line ends of the format. Never str.splitlines(): it also splits
# on U+2028, U+0085, FF, VT and more, which the format treats as data.
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True, init=False)
class Event:
    """One server-sent event.

    `data` is the payload (may hold any line ends; each becomes a `data:`
    line). `event` is the type; `"message"` is the default and is not
    written. `id` sets the client's last event ID (`None`: no `id:` line;
    `""`: an empty `id:` line, which resets it). `retry` is the reconnection
    time in milliseconds.
    """

    data: str = ""
    event: str = "message"
    id: str | None = None
    retry: int | None = None

    def __init__(
        self,
        data: str = "",
        event: str = "message",
        id: str | None = None,
        retry: int | None = None,
    ) -> None:
        # What the dataclass would write, with each slot set through its
        # descriptor instead of `object.__setattr__` (the class is frozen):
        # less than half the cost, and an event is made per publish.
        _SET_DATA(self, data)
        _SET_EVENT(self, event)
        _SET_ID(self, id)
        _SET_RETRY(self, retry)
        self.__post_init__()

    def __post_init__(self) -> None:
        if type(self.data) is not str and not isinstance(self.data, str):
            raise LocalProtocolError(f"Event data must be str, not {type(self.data).__name__}")
        if type(self.event) is not str and not isinstance(self.event, str):
            raise LocalProtocolError(f"Event event must be str, not {type(self.event).__name__}")
        if not self.event:
            raise LocalProtocolError("Event event must not be empty (the default is 'message')")
        if "\r" in self.event or "\n" in self.event:
            raise LocalProtocolError(f"Event event must not contain CR or LF: {self.event!r}")
        if self.id is not None:
            if type(self.id) is not str and not isinstance(self.id, str):
                raise LocalProtocolError(f"Event id must be str, not {type(self.id).__name__}")
            if "\r" in self.id or "\n" in self.id or "\0" in self.id:
                raise LocalProtocolError(f"Event id must not contain CR, LF or NUL: {self.id!r}")
        if self.retry is not None and (
            type(self.retry) is not int or self.retry < 0  # bool is not a retry
        ):
            raise LocalProtocolError(
                f"Event retry must be a non-negative int (milliseconds): {self.retry!r}"
            )


_SET_DATA, _SET_EVENT, _SET_ID, _SET_RETRY = slot_setters(Event, "data", "event", "id", "retry")
_new = object.__new__


def _parsed_event(data: str, event: str, id: str | None, retry: int | None) -> Event:
    """An `Event` from the parser, whose fields are valid by construction
    (they come from lines, so hold no CR or LF): skips the validation, which
    is a third of the parser's time on small events."""
    ev: Event = _new(Event)
    _SET_DATA(ev, data)
    _SET_EVENT(ev, event)
    _SET_ID(ev, id)
    _SET_RETRY(ev, retry)
    return ev


def encode_event(event: Event) -> bytes:
    """The UTF-8 bytes of one event, ending with its blank line.

    Fields come in the order `event`, `id`, `retry`, `data`; data is split on
    CRLF, CR and LF only, and empty data still gets one `data:` line so the
    event is dispatched.
    """
    kind, id, retry, data = event.event, event.id, event.retry, event.data
    head = "" if kind == "message" else f"event: {kind}\n"
    if id is not None:
        head += f"id: {id}\n" if id else "id\n"
    if retry is not None:
        head += f"retry: {retry}\n"
    if "\n" in data or "\r" in data:
        lines = "".join([f"data: {line}\n" for line in _LINE_END.split(data)])
        return f"{head}{lines}\n".encode()
    return f"{head}data: {data}\n\n".encode()


def encode_comment(text: str = "") -> bytes:
    """A comment block (ignored by clients): a heartbeat, or a note.

    Each line of `text` becomes its own `:` line, so no text can inject a
    field.
    """
    if not text:
        return b":\n\n"
    return "".join(f": {line}\n" for line in _LINE_END.split(text)).encode() + b"\n"
