"""The Mercure protocol, sans-IO: a request's method, path, query, headers,
cookies and body in; a subscription to open, a publish to make or an error
response out. Auth (JWT), CORS, resume headers, limits and the subscriptions
API live here once, for both front ends (`ssehub.server`, `ssehub.asgi`)."""

from ._auth import Grant, JWTAuth
from ._authorize import AuthorizeConfig, Question, Verdict, parse_answer
from ._config import MercureConfig
from ._decisions import CACHE_CONTROL, Authorize, Listing, Publish, Subscribe
from ._discovery import METADATA_PATH, discovery_link, protected_resource_metadata
from ._issuers import IssuerKey
from ._mercure import MERCURE_PATH, Decision, Mercure
from ._request import Request
from ._response import HTTPError, Response
from ._subscriptions import SUBSCRIPTIONS_PATH

__all__ = (
    "CACHE_CONTROL",
    "MERCURE_PATH",
    "METADATA_PATH",
    "SUBSCRIPTIONS_PATH",
    "Authorize",
    "AuthorizeConfig",
    "Decision",
    "Grant",
    "HTTPError",
    "IssuerKey",
    "JWTAuth",
    "Listing",
    "Mercure",
    "MercureConfig",
    "Publish",
    "Question",
    "Request",
    "Response",
    "Subscribe",
    "Verdict",
    "discovery_link",
    "parse_answer",
    "protected_resource_metadata",
)
