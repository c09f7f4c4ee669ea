"""The two ways an event stream can be wrong."""

from __future__ import annotations

__all__ = ("LocalProtocolError", "ProtocolError", "RemoteProtocolError")


class ProtocolError(Exception):
    """Base class of every error the protocol layer raises."""


class LocalProtocolError(ProtocolError, ValueError):
    """You asked for something the event stream format cannot express.

    Raised when an `Event` is built with a field that would corrupt the
    stream (a newline in `id` is a frame-injection attack, not a typo).
    The message names the field.
    """


class RemoteProtocolError(ProtocolError):
    """The peer sent a stream we refuse to parse (for example a line longer
    than the parser's limit)."""
