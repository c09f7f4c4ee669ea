"""`EventStreamParser`: the WHATWG event-stream parser, incremental and sans-IO.

Feed it bytes as they arrive; it returns the events each chunk completes.
Bytes are decoded incrementally (UTF-8, one leading BOM dropped, invalid
sequences to U+FFFD, a sequence split across chunks decoded whole), then
split into lines with `str.split`, so the work is linear in the stream's
size however it is cut.
"""

from __future__ import annotations

import codecs

from ._errors import RemoteProtocolError
from ._event import Event, _parsed_event

__all__ = ("MAX_RETRY", "EventStreamParser")

MAX_RETRY = 2**64 - 1
"""The largest `retry:` the parser takes (milliseconds): Chromium holds the
reconnection time in a uint64 and ignores a value that does not fit, and so
do we (Python's `int()` would refuse a string past 4,300 digits)."""
_MAX_RETRY_DIGITS = len(str(MAX_RETRY))

# "utf-8-sig" drops one BOM at the very start of the stream, and only there.
_Decoder = codecs.getincrementaldecoder("utf-8-sig")


class EventStreamParser:
    """Turns a `text/event-stream` byte stream into `Event`s.

    `feed(chunk)` returns the events completed by `chunk`; `close()` marks
    EOF and discards an incomplete event, as the spec says (it returns a
    list for symmetry; it is always empty). After the stream,
    `last_event_id` is what a client sends as `Last-Event-ID` when it
    reconnects, and `retry` is the reconnection time the server asked for
    (milliseconds, or None). A `retry:` above `MAX_RETRY` (2**64 - 1 ms) is
    ignored, as Chromium ignores one that does not fit its uint64.

    `feed()` raises nothing but `RemoteProtocolError` (and that only with
    `max_line_bytes`), whatever the bytes.

    `max_line_bytes` bounds memory: a line longer than that (a peer that never
    sends a newline) raises `RemoteProtocolError` instead of growing without
    end. `None` means no bound. `last_event_id` continues a stream after a
    reconnection: the last event ID persists across connections, as in a
    browser's `EventSource`.
    """

    __slots__ = (
        "_after_cr",
        "_closed",
        "_data",
        "_decoder",
        "_event_retry",
        "_id_buffer",
        "_last_id",
        "_partial",
        "_partial_bytes",
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
        self._decoder = _Decoder(errors="replace")
        self._partial: list[str] = []  # pieces of a line not ended yet
        self._partial_bytes = 0
        self._after_cr = False  # the last chunk ended in CR: skip a LF that follows
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
        chunk = bytes(chunk)
        text = self._decoder.decode(chunk)
        if self.max_line_bytes is not None:
            self._check_line_length(chunk)
        if not text:
            return []
        if self._after_cr:
            self._after_cr = False
            if text[0] == "\n":  # the second half of a CRLF cut between chunks
                text = text[1:]
        if "\r" in text:
            if text[-1] == "\r":
                self._after_cr = True  # a line end now; a LF next is part of it
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        rest = lines.pop()  # after the last line end: not a line yet
        events: list[Event] = []
        if lines:
            if self._partial:
                self._partial.append(lines[0])
                lines[0] = "".join(self._partial)
                self._partial = []
            self._lines(lines, events)
        if rest:
            self._partial.append(rest)
        return events

    def close(self) -> list[Event]:
        """Mark EOF: an incomplete event (or line) is discarded."""
        self._decoder.decode(b"", True)
        self._partial = []
        self._data = []
        self._type = ""
        self._event_retry = None
        self._closed = True
        return []

    def _check_line_length(self, chunk: bytes) -> None:
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if end < 0:
            self._partial_bytes += len(chunk)
        else:
            self._partial_bytes = len(chunk) - end - 1
        limit = self.max_line_bytes
        if limit is not None and self._partial_bytes > limit:
            raise RemoteProtocolError(
                f"event stream line longer than max_line_bytes={limit} with no line end"
            )

    def _lines(self, lines: list[str], events: list[Event]) -> None:
        data = self._data
        for line in lines:
            if not line:  # a blank line: dispatch
                self._last_id = self._id_buffer  # even when nothing is dispatched
                if data:
                    events.append(
                        _parsed_event(
                            "\n".join(data),
                            self._type or "message",
                            self._last_id or None,
                            self._event_retry,
                        )
                    )
                    data = self._data = []
                self._type = ""
                self._event_retry = None
                continue
            if line.startswith("data:"):  # the common case first
                data.append(line[6:] if line.startswith(" ", 5) else line[5:])
                continue
            colon = line.find(":")
            if colon == 0:
                continue  # a comment
            if colon < 0:
                name, value = line, ""
            else:
                name = line[:colon]
                value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._type = value
            elif name == "id":
                if "\0" not in value:
                    self._id_buffer = value
            elif name == "retry" and value.isascii() and value.isdigit():
                digits = value.lstrip("0")  # leading zeros never overflow
                if len(digits) <= _MAX_RETRY_DIGITS:
                    retry = int(digits or "0")
                    if retry <= MAX_RETRY:
                        self.retry = self._event_retry = retry
