"""Helpers for testing code that uses ssehub (never imported by the library):
`FakeClock` for heartbeats and ages without sleeping, and `BackendContract`,
the conformance suite every backend passes — yours too."""

from ._backends import BackendContract
from ._clock import FakeClock

__all__ = ("BackendContract", "FakeClock")
