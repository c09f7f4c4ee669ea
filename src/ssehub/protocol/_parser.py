"""`EventStreamParser`: the WHATWG event-stream parser, incremental and sans-IO.

Feed it bytes as they arrive; it returns the events each chunk completes.
It works on bytes and decodes one line at a time: CR and LF never occur
inside a UTF-8 sequence, so splitting first and decoding second gives the
same text as decoding the whole stream, in time linear in its size.
"""

from __future__ import annotations

import re

from ._errors import RemoteProtocolError
from ._event import Event

__all__ = ("EventStreamParser",)

_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n?|\n")


class EventStreamParser:
    """Turns a `text/event-stream` byte stream into `Event`s.

    `feed(chunk)` returns the events completed by `chunk`; `close()` marks
    EOF, returns the event a final lone CR completes (if any) and discards
    an incomplete event, as the spec says. After the
    stream, `last_event_id` is what a client sends as `Last-Event-ID` when it
    reconnects, and `retry` is the reconnection time the server asked for
    (milliseconds, or None).

    `max_line_bytes` bounds memory: a line longer than that (a peer that never
    sends a newline) raises `RemoteProtocolError` instead of growing without
    end. `None` means no bound. `last_event_id` continues a stream after a
    reconnection: the last event ID persists across connections, as in a
    browser's `EventSource`.
    """

    __slots__ = (
        "_bom_done",
        "_buf",
        "_closed",
        "_data",
        "_event_retry",
        "_id_buffer",
        "_last_id",
        "_scan_from",
        "_type",
        "max_line_bytes",
        "retry",
    )

    def __init__(self, *, max_line_bytes: int | None = None, last_event_id: str = "") -> None:
        if max_line_bytes is not None and max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive or None, not {max_line_bytes}")
        if "\0" in last_event_id or "\r" in last_event_id or "\n" in last_event_id:
            raise ValueError(f"last_event_id must not contain CR, LF or NUL: {last_event_id!r}")
        self.max_line_bytes = max_line_bytes
        self.retry: int | None = None
        self._buf = bytearray()
        self._scan_from = 0
        self._bom_done = False
        self._closed = False
        self._data: list[str] = []
        self._type = ""
        self._id_buffer = last_event_id
        self._last_id = last_event_id
        self._event_retry: int | None = None

    @property
    def last_event_id(self) -> str:
        """The last event ID string ("" when none was set or it was reset)."""
        return self._last_id

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Event]:
        """Take the next bytes of the stream; return the events they complete."""
        if self._closed:
            raise RuntimeError("EventStreamParser.feed() called after close()")
        buf = self._buf
        buf += chunk
        if not self._bom_done:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                return []  # could still be a BOM split across chunks
            if buf.startswith(_BOM):
                del buf[: len(_BOM)]
            self._bom_done = True
        events: list[Event] = []
        pos = 0
        end = len(buf)
        search = _LINE_END.search
        scan = self._scan_from
        while True:
            match = search(buf, scan)
            if match is None:
                self._scan_from = end - pos
                break
            stop = match.end()
            if stop == end and buf[stop - 1] == 0x0D:
                # A CR ending the chunk may be the first half of a CRLF.
                self._scan_from = match.start() - pos
                break
            event = self._line(buf, pos, match.start())
            if event is not None:
                events.append(event)
            pos = scan = stop
        if pos:
            del buf[:pos]
        limit = self.max_line_bytes
        if limit is not None and len(buf) > limit:
            raise RemoteProtocolError(
                f"event stream line longer than max_line_bytes={limit} with no line end"
            )
        return events

    def close(self) -> list[Event]:
        """Mark EOF; return the event it completes, if any.

        A pending line ending in a lone CR is complete (CR is a line end;
        we only waited for a possible LF), so a stream ending in CR CR still
        dispatches its last event. An incomplete event is discarded.
        """
        events: list[Event] = []
        if not self._closed and self._buf.endswith(b"\r"):
            event = self._line(self._buf, 0, len(self._buf) - 1)
            if event is not None:
                events.append(event)
        self._buf.clear()
        self._data = []
        self._type = ""
        self._event_retry = None
        self._closed = True
        return events

    def _line(self, buf: bytearray, start: int, stop: int) -> Event | None:
        if start == stop:
            return self._dispatch()
        line = bytes(buf[start:stop])
        colon = line.find(b":")
        if colon == 0:
            return None  # comment
        if colon < 0:
            name, raw = line, b""
        else:
            name = line[:colon]
            raw = line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
        if name == b"data":
            self._data.append(raw.decode("utf-8", "replace"))
        elif name == b"event":
            self._type = raw.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in raw:
                self._id_buffer = raw.decode("utf-8", "replace")
        elif name == b"retry" and raw.isdigit():  # bytes.isdigit(): ASCII digits only
            self.retry = self._event_retry = int(raw)
        return None

    def _dispatch(self) -> Event | None:
        data, event_type, retry = self._data, self._type, self._event_retry
        self._last_id = self._id_buffer  # set even when nothing is dispatched
        self._type = ""
        self._event_retry = None
        if not data:
            return None
        self._data = []
        return Event(
            data="\n".join(data),
            event=event_type or "message",
            id=self._last_id or None,
            retry=retry,
        )
