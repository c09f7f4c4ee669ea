"""The hub: topics, history replay, fan-out, heartbeats, bounded buffers and
clean shutdown, on asyncio."""

from ._clock import Clock, SystemClock, Timer
from ._config import HubConfig
from ._hub import (
    GAP_EVENT,
    LIVE_EVENT,
    SUBSCRIBER_LIMIT_RETRY,
    Hub,
    HubClosedError,
    WatchCallback,
)
from ._ids import IdGenerator
from ._policies import MatchType, SubscriberLimitError, TopicPolicies, TopicPolicy
from ._selectors import (
    MAX_TEMPLATE_EXPRESSIONS,
    MAX_TEMPLATE_LENGTH,
    MAX_URLPATTERN_LENGTH,
    MAX_URLPATTERN_PARTS,
    Matcher,
    PatternIndex,
    SelectorSet,
    selector_matcher,
    selectors_match,
    validate_selector,
)
from ._stats import HubStatistics, PresenceStatistics
from ._subscription import (
    CloseReason,
    EventSubscription,
    Resume,
    SlowSubscriberError,
    StreamSubscription,
    Subscription,
)

__all__ = (
    "GAP_EVENT",
    "LIVE_EVENT",
    "MAX_TEMPLATE_EXPRESSIONS",
    "MAX_TEMPLATE_LENGTH",
    "MAX_URLPATTERN_LENGTH",
    "MAX_URLPATTERN_PARTS",
    "SUBSCRIBER_LIMIT_RETRY",
    "Clock",
    "CloseReason",
    "EventSubscription",
    "Hub",
    "HubClosedError",
    "HubConfig",
    "HubStatistics",
    "IdGenerator",
    "MatchType",
    "Matcher",
    "PatternIndex",
    "PresenceStatistics",
    "Resume",
    "SelectorSet",
    "SlowSubscriberError",
    "StreamSubscription",
    "SubscriberLimitError",
    "Subscription",
    "SystemClock",
    "Timer",
    "TopicPolicies",
    "TopicPolicy",
    "WatchCallback",
    "selector_matcher",
    "selectors_match",
    "validate_selector",
)
