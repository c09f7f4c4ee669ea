"""Prometheus metrics in the text exposition format (version 0.0.4).

A few counters, gauges and one histogram: written here rather than pulling
in a client library with a process-wide registry.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from ssehub.hub import HubStatistics

if TYPE_CHECKING:
    from ssehub.backends.redis import RedisStatistics
    from ssehub.hooks import AuthorizerStatistics, WebhookStatistics
    from ssehub.mercure._subscriptions import RegistryStatistics

    from ._dashboard import FeedStatistics

__all__ = ("Histogram", "render")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Cumulative buckets, a sum and a count (seconds)."""

    __slots__ = ("bounds", "counts", "sum", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.total = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.total += 1

    def lines(self, name: str) -> list[str]:
        out = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{le="+Inf"}} {self.total}')
        out.append(f"{name}_sum {self.sum}")
        out.append(f"{name}_count {self.total}")
        return out


def _label(value: str) -> str:
    """A label value, escaped as the exposition format wants."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(
    stats: HubStatistics,
    connections: int,
    publish_seconds: Histogram,
    *,
    dashboard: FeedStatistics | None = None,
    redis: RedisStatistics | None = None,
    subscriptions: RegistryStatistics | None = None,
    authorize: AuthorizerStatistics | None = None,
    webhooks: WebhookStatistics | None = None,
) -> str:
    lines = [
        "# HELP ssehub_connections Open HTTP connections.",
        "# TYPE ssehub_connections gauge",
        f"ssehub_connections {connections}",
        "# HELP ssehub_subscribers Open subscriptions.",
        "# TYPE ssehub_subscribers gauge",
        f"ssehub_subscribers {stats.subscribers}",
        "# HELP ssehub_topic_subscribers Subscriptions per topic selector.",
        "# TYPE ssehub_topic_subscribers gauge",
    ]
    for topic, n in sorted(stats.subscribers_by_topic.items()):
        lines.append(f'ssehub_topic_subscribers{{topic="{_label(topic)}"}} {n}')
    counters = [
        ("events_published", "Events stored and fanned out.", stats.events_published),
        ("events_delivered", "Event deliveries to subscribers.", stats.events_delivered),
        ("bytes_delivered", "Bytes of events written to subscribers.", stats.bytes_delivered),
        ("replays", "Subscriptions that resumed from history.", stats.replays),
        ("events_replayed", "Events sent from history.", stats.events_replayed),
        ("gaps", "Resumes from an id no longer in history.", stats.gaps),
        ("publish_replayed", "Idempotent retries answered from history.", stats.publishes_replayed),
    ]
    for name, help_text, value in counters:
        lines += [
            f"# HELP ssehub_{name}_total {help_text}",
            f"# TYPE ssehub_{name}_total counter",
            f"ssehub_{name}_total {value}",
        ]
    lines += [
        "# HELP ssehub_disconnects_total Subscribers dropped by the hub.",
        "# TYPE ssehub_disconnects_total counter",
        f'ssehub_disconnects_total{{reason="slow"}} {stats.disconnects_slow}',
        f'ssehub_disconnects_total{{reason="stalled"}} {stats.disconnects_stalled}',
        "# HELP ssehub_subscriptions_refused_total Subscriptions refused, by reason"
        " (max_subscribers: a topic had its policy's limit; 503).",
        "# TYPE ssehub_subscriptions_refused_total counter",
        f'ssehub_subscriptions_refused_total{{reason="max_subscribers"}}'
        f" {stats.subscriptions_refused}",
        "# HELP ssehub_topic_policy_cache_entries Topics whose [[topics]] policy is remembered.",
        "# TYPE ssehub_topic_policy_cache_entries gauge",
        f"ssehub_topic_policy_cache_entries {stats.policy_cache}",
        "# HELP ssehub_publish_seconds Time from a publish request to its answer.",
        "# TYPE ssehub_publish_seconds histogram",
        *publish_seconds.lines("ssehub_publish_seconds"),
    ]
    presence = stats.presence
    if presence is not None:
        age = "NaN" if presence.refresh_age is None else f"{presence.refresh_age:.3f}"
        lines += [
            "# HELP ssehub_presence_writes_total Writes of this hub's presence entry the store"
            " answered.",
            "# TYPE ssehub_presence_writes_total counter",
            f"ssehub_presence_writes_total {presence.writes}",
            "# HELP ssehub_presence_write_failures_total Presence writes that failed (retried).",
            "# TYPE ssehub_presence_write_failures_total counter",
            f"ssehub_presence_write_failures_total {presence.write_failures}",
            "# HELP ssehub_presence_lost_total Times the others had removed this hub's entry"
            " (taken for dead); written again whole.",
            "# TYPE ssehub_presence_lost_total counter",
            f"ssehub_presence_lost_total {presence.lost}",
            "# HELP ssehub_presence_peers Other live hubs on the store, as last read.",
            "# TYPE ssehub_presence_peers gauge",
            f"ssehub_presence_peers {presence.peers}",
            "# HELP ssehub_presence_peer_subscriptions The other hubs' subscriptions, as last"
            " read.",
            "# TYPE ssehub_presence_peer_subscriptions gauge",
            f"ssehub_presence_peer_subscriptions {presence.peer_subscriptions}",
            "# HELP ssehub_presence_refresh_age_seconds Seconds since the store last answered"
            " a write of this hub's entry (NaN before the first).",
            "# TYPE ssehub_presence_refresh_age_seconds gauge",
            f"ssehub_presence_refresh_age_seconds {age}",
        ]
    if dashboard is not None:
        lines += [
            "# HELP ssehub_dashboard_feeds Open dashboard feeds (/_ssehub/stats).",
            "# TYPE ssehub_dashboard_feeds gauge",
            f"ssehub_dashboard_feeds {dashboard.feeds}",
            "# HELP ssehub_dashboard_snapshots_total Snapshots built, shared by every feed.",
            "# TYPE ssehub_dashboard_snapshots_total counter",
            f"ssehub_dashboard_snapshots_total {dashboard.snapshots}",
            "# HELP ssehub_dashboard_dropped_total Feeds closed because they were not read.",
            "# TYPE ssehub_dashboard_dropped_total counter",
            f"ssehub_dashboard_dropped_total {dashboard.dropped}",
        ]
    if subscriptions is not None:
        lines += [
            "# HELP ssehub_subscription_events_pending Subscription state changes to publish.",
            "# TYPE ssehub_subscription_events_pending gauge",
            f"ssehub_subscription_events_pending {subscriptions.pending}",
            "# HELP ssehub_subscription_events_coalesced_total Subscriptions that ended"
            " before they were announced (neither event published).",
            "# TYPE ssehub_subscription_events_coalesced_total counter",
            f"ssehub_subscription_events_coalesced_total {subscriptions.coalesced}",
            "# HELP ssehub_subscription_events_dropped_total Subscription state changes"
            " not published: too many were waiting.",
            "# TYPE ssehub_subscription_events_dropped_total counter",
            f"ssehub_subscription_events_dropped_total {subscriptions.dropped}",
        ]
    if authorize is not None:
        lines += [
            "# HELP ssehub_authorize_requests_total Questions to the app's authorization"
            " endpoint, by outcome (answered, failed: refused with 503).",
            "# TYPE ssehub_authorize_requests_total counter",
            f'ssehub_authorize_requests_total{{outcome="answered"}}'
            f" {authorize.asked - authorize.failed}",
            f'ssehub_authorize_requests_total{{outcome="failed"}} {authorize.failed}',
            "# HELP ssehub_authorize_cache_hits_total Questions answered from the cache"
            " (or by the same question being asked).",
            "# TYPE ssehub_authorize_cache_hits_total counter",
            f"ssehub_authorize_cache_hits_total {authorize.cached}",
            "# HELP ssehub_authorize_cache_entries Answers in the cache.",
            "# TYPE ssehub_authorize_cache_entries gauge",
            f"ssehub_authorize_cache_entries {authorize.entries}",
        ]
    if webhooks is not None:
        lines += [
            "# HELP ssehub_webhooks_pending Webhook notices waiting to be sent.",
            "# TYPE ssehub_webhooks_pending gauge",
            f"ssehub_webhooks_pending {webhooks.pending}",
            "# HELP ssehub_webhooks_sent_total Webhook deliveries acknowledged (2xx).",
            "# TYPE ssehub_webhooks_sent_total counter",
            f"ssehub_webhooks_sent_total {webhooks.sent}",
            "# HELP ssehub_webhook_attempts_failed_total Webhook tries that failed (retried"
            " up to the attempts bound).",
            "# TYPE ssehub_webhook_attempts_failed_total counter",
            f"ssehub_webhook_attempts_failed_total {webhooks.failed}",
            "# HELP ssehub_webhooks_abandoned_total Webhook deliveries given up after every try.",
            "# TYPE ssehub_webhooks_abandoned_total counter",
            f"ssehub_webhooks_abandoned_total {webhooks.abandoned}",
            "# HELP ssehub_webhooks_dropped_total Webhook notices dropped: the queue was full.",
            "# TYPE ssehub_webhooks_dropped_total counter",
            f"ssehub_webhooks_dropped_total {webhooks.dropped}",
        ]
    if redis is not None:
        lines += [
            "# HELP ssehub_redis_failovers_total Times Sentinel named a different primary.",
            "# TYPE ssehub_redis_failovers_total counter",
            f"ssehub_redis_failovers_total {redis.failovers}",
            "# HELP ssehub_redis_wait_timeouts_total Appends refused: too few replicas confirmed.",
            "# TYPE ssehub_redis_wait_timeouts_total counter",
            f"ssehub_redis_wait_timeouts_total {redis.wait_timeouts}",
        ]
    return "\n".join(lines) + "\n"
