"""The operator's hooks into the app, for both front ends: the
authorization callback (`Authorizer`, asked what a `Mercure` decision's
`Question` says; `decide`, and `settle` for a decision already made) and
webhooks (`Webhooks`: subscription and watch notices, signed, retried, off
the hot path); `Hooks` holds a front end's pair. The only layer above
`mercure` that does outbound HTTP (httpx: `pip install 'ssehub[hooks]'`)."""

from ._authorizer import Authorizer, AuthorizerStatistics, decide, settle
from ._hooks import Hooks
from ._webhooks import SIGNATURE_HEADER, WebhookConfig, Webhooks, WebhookStatistics, sign

__all__ = (
    "SIGNATURE_HEADER",
    "Authorizer",
    "AuthorizerStatistics",
    "Hooks",
    "WebhookConfig",
    "WebhookStatistics",
    "Webhooks",
    "decide",
    "settle",
    "sign",
)
