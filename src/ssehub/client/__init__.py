"""Read any SSE stream robustly: `EventSource` (sync) and `AsyncEventSource`
(asyncio), twins over one sans-IO reconnect policy, on httpx.

Needs httpx: `pip install 'ssehub[client]'`.
"""

try:
    import httpx  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "ssehub.client needs httpx: install it with  pip install 'ssehub[client]'"
    ) from error

from ._async import AsyncEventSource
from ._errors import SSEClientError, SSEConnectionError, SSEResponseError
from ._policy import GAP_EVENT, LIVE_EVENT, Gap, Live, Reconnecting, RetryPolicy
from ._sync import EventSource

__all__ = (
    "GAP_EVENT",
    "LIVE_EVENT",
    "AsyncEventSource",
    "EventSource",
    "Gap",
    "Live",
    "Reconnecting",
    "RetryPolicy",
    "SSEClientError",
    "SSEConnectionError",
    "SSEResponseError",
)
