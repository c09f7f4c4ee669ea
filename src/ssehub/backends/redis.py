"""The Redis backend: history in Redis Streams, shared by every hub process
that points at the same Redis.

Layout, under a key prefix (default `ssehub:`):
- `{prefix}log`: every record once, in publish order (the newest event);
- `{prefix}topic:{topic}`: the records of one topic, bounded by count
  (`MAXLEN`) — each entry carries the whole record, under the same stream
  id as in the log, so merging topics is ordering by id;
- `{prefix}id:{event id}`: its stream id and `Record.digest()`, expiring
  after `max_age`, for resuming (`Last-Event-ID` is one lookup, then an
  `XRANGE` per topic) and for telling a retried publish from a conflict.
The log is trimmed to about `LOG_BOUND` events, topic streams to
their topic's `max_events`, both (approximately, `MINID ~`) to their age
(the log to the longest age any topic has); id keys expire:
Redis memory stays bounded. Reads apply both bounds exactly. An append is one
Lua script, so it is atomic: the duplicate-id check (a retry of the same
event is acknowledged, another event under a used id refused), the log
entry, the topic entries.

Where Redis is: `redis://host:port/db` (one server), or
`redis+sentinel://host1:26379,host2:26379,host3:26379/SERVICE/db` (the
primary Sentinel names, followed across failovers), or
`redis+cluster://host:port,...` (Redis Cluster: every key of a hub group
under one hash-tagged prefix, `{ssehub}:` by default, so in one slot and
scripts and transactions work); `?wait=N` makes every
append wait for N replicas (`WAIT`) before it is acknowledged. The grammar
is in `_redis_url.py`; docs/scale-out.md says what each mode guarantees.

Install with `pip install 'ssehub[redis]'` (redis-py's asyncio client).
This is the storage half of scale-out: any process can resume any client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ssehub.protocol import Event, encode_event

from ._base import (
    DuplicateEventIdError,
    History,
    HistoryLimits,
    PresenceSync,
    PresenceView,
    Record,
    TopicLimits,
    check_newest,
    check_page,
)
from ._redis_presence import RedisPresence
from ._redis_url import RedisURL, parse_redis_url, redact

__all__ = ("RedisBackend", "RedisStatistics", "ReplicaWaitError")

_APPEND = """
-- KEYS[1] log, KEYS[2] the id's index key, KEYS[3..] topic streams
-- ARGV[1] the id key's ttl (s), ARGV[2] log bound, ARGV[3] oldest log id
-- to keep (age), ARGV[4] the record's digest, then for each topic stream
-- its max_events and oldest stream id to keep, then the fields
local held = redis.call('GET', KEYS[2])
if held then
  local digest = string.match(held, ' (%x+)$')
  if digest ~= ARGV[4] then
    return redis.error_reply('DUPLICATE')
  end
  -- the same event again: store nothing; rewrite the key as it is, so a
  -- following WAIT covers the original append too
  redis.call('SET', KEYS[2], held, 'KEEPTTL')
  return 0
end
local first = 5 + 2 * (#KEYS - 2)
local pos = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, first))
redis.call('SET', KEYS[2], pos .. ' ' .. ARGV[4], 'EX', ARGV[1])
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[3])
for k = 3, #KEYS do
  local at = 5 + 2 * (k - 3)
  redis.call('XADD', KEYS[k], 'MAXLEN', ARGV[at], pos, unpack(ARGV, first))
  redis.call('XTRIM', KEYS[k], 'MINID', '~', ARGV[at + 1])
end
return 1
"""
LOG_BOUND = 100_000
"""Events the shared log keeps (approximately) for the feed, `*` replays and
resume checks; per-topic history is bounded by `HistoryLimits` as always."""


def _record(fields: dict[str, str]) -> Record:
    retry = fields.get("retry")
    ev = Event(fields["data"], fields["event"], fields["id"], int(retry) if retry else None)
    return Record(
        tuple(json.loads(fields["topics"])),
        ev,
        float(fields["time"]),
        encode_event(ev),
        fields.get("private") == "1",
    )


log = logging.getLogger("ssehub.backends.redis")


def _position(stream_id: str) -> int:
    """A stream id (`ms-seq`) as one increasing integer."""
    ms, _, seq = stream_id.partition("-")
    return (int(ms) << 20) | int(seq or 0)


def _oldest(now: float, age: float) -> str:
    """The oldest stream id (`ms-0`) an age bound keeps."""
    return f"{max(0, int((now - age) * 1000))}-0"


def _stream_id(position: int) -> str:
    return f"{position >> 20}-{position & 0xFFFFF}"


class ReplicaWaitError(ConnectionError):
    """Fewer replicas than `wait` confirmed an append in time: the publish is
    not acknowledged. The event is on the primary all the same, so it may
    still reach subscribers and history (or be lost in a failover)."""

    def __init__(self, confirmed: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"{confirmed} of {wanted} Redis replicas confirmed the append within"
            f" {timeout_ms} ms: not acknowledged"
        )
        self.confirmed = confirmed
        self.wanted = wanted


@dataclass(frozen=True, slots=True)
class RedisStatistics:
    """`RedisBackend.statistics()`: where the primary is and what went wrong."""

    primary: str | None
    """`host:port` of the primary in use (Sentinel: the last one it named)."""
    failovers: int
    """Times Sentinel named a different primary than before."""
    wait_timeouts: int
    """Appends refused because fewer than `wait` replicas confirmed them."""


class RedisBackend:
    """History in Redis Streams, over at most `max_connections` connections
    (requests beyond wait for one). `url` is a store URL — `redis://host:port/db`
    or `redis+sentinel://hosts/SERVICE/db`, with `prefix=`, `wait=` and
    `wait_timeout_ms=` parameters; a keyword argument given here wins over
    the URL's parameter. `wait=N`: each append is acknowledged only once N
    replicas have it (else `ReplicaWaitError`)."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        limits: HistoryLimits | None = None,
        *,
        prefix: str | None = None,
        max_connections: int = 64,
        clock: Callable[[], float] = time.time,
        wait: int | None = None,
        wait_timeout: float | None = None,
    ) -> None:
        parsed = parse_redis_url(url)
        if wait_timeout is not None and not wait_timeout > 0:
            raise ValueError(f"RedisBackend wait_timeout must be > 0 seconds, not {wait_timeout!r}")
        self._target: RedisURL = RedisURL(
            url=parsed.url,
            sentinels=parsed.sentinels,
            cluster=parsed.cluster,
            service=parsed.service,
            db=parsed.db,
            username=parsed.username,
            password=parsed.password,
            sentinel_password=parsed.sentinel_password,
            prefix=parsed.prefix if prefix is None else prefix,
            wait=parsed.wait if wait is None else wait,
            wait_timeout_ms=parsed.wait_timeout_ms
            if wait_timeout is None
            else max(1, round(wait_timeout * 1000)),
        )  # validated again with the keyword arguments
        if type(max_connections) is not int or max_connections < 1:
            raise ValueError(f"max_connections must be an int >= 1, not {max_connections!r}")
        self.url = url
        self.prefix = self._target.prefix
        self.wait = self._target.wait
        self.wait_timeout = self._target.wait_timeout_ms / 1000
        self.max_connections = max_connections
        self._limits = limits or HistoryLimits()
        self._clock = clock
        self._redis: Any = None
        self._append: Any = None
        self._presence: RedisPresence | None = None
        self._sentinel: Any = None
        self._wait_timeouts = 0

    @property
    def limits(self) -> HistoryLimits:
        return self._limits

    def limit_topics(self, topics: TopicLimits | None) -> None:
        self._limits = dataclasses.replace(self._limits, topics=topics)

    async def start(self) -> None:
        try:
            from redis import asyncio as aioredis
        except ImportError:
            raise ImportError(
                "the Redis store needs redis-py: pip install 'ssehub[redis]'"
            ) from None
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import RedisClusterException, ResponseError

        target = self._target
        if target.sentinels:
            self._sentinel, self._redis = _sentinel_client(target, self.max_connections)
        elif target.cluster:
            self._redis = _cluster_client(target, self.max_connections)
        else:
            # A burst of subscriptions waits for a connection instead of failing
            pool = aioredis.BlockingConnectionPool.from_url(
                target.url, max_connections=self.max_connections, timeout=10, decode_responses=True
            )
            self._redis = aioredis.Redis(connection_pool=pool)
        try:
            await self._redis.ping()  # fail at start, with Redis's own reason
            if self.wait:
                try:
                    info = await self._redis.info("replication")
                except ResponseError:  # INFO not allowed to this user: no warning then
                    info = {}
                replicas = info.get("connected_slaves", self.wait)
                if replicas < self.wait:
                    log.warning(
                        "the Redis primary has %d replicas connected, wait=%d needs %d:"
                        " publishes fail until they are there",
                        replicas, self.wait, self.wait,
                    )  # fmt: skip
        except BaseException as error:
            await self.aclose()
            unreachable = (RedisConnectionError, RedisClusterException)  # no node answered
            if isinstance(error, unreachable):  # a line naming where, not a traceback
                raise ConnectionError(
                    f"the Redis store {redact(self.url)} is unreachable: {_reason(error)}"
                ) from error
            raise
        self._append = self._redis.register_script(_APPEND)
        self._presence = RedisPresence(self._redis, self.prefix)

    async def aclose(self) -> None:
        if self._redis is not None:
            if self._target.cluster:
                await self._redis.aclose()
            else:
                await self._redis.aclose(close_connection_pool=True)  # the pool is ours
            self._redis = None
        if self._sentinel is not None:
            await self._sentinel.aclose()
            self._sentinel = None

    def statistics(self) -> RedisStatistics:
        if self._target.cluster:
            node = None if self._redis is None else self._redis.get_node_from_key(self._key("log"))
            return RedisStatistics(
                primary=None if node is None else f"{node.host}:{node.port}",
                failovers=0,
                wait_timeouts=self._wait_timeouts,
            )
        pool = self._redis.connection_pool if self._redis is not None else None
        primary = getattr(pool, "primary", None)
        if primary is None and pool is not None and not self._target.sentinels:
            kwargs = pool.connection_kwargs
            primary = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        return RedisStatistics(
            primary=primary,
            failovers=getattr(pool, "failovers", 0),
            wait_timeouts=self._wait_timeouts,
        )

    async def append(self, record: Record) -> bool:
        from redis.exceptions import ResponseError

        ev = record.event
        fields: list[str] = [
            "id", record.id, "time", repr(record.time), "topics", json.dumps(record.topics),
            "event", ev.event, "data", ev.data, "private", "1" if record.private else "0",
        ]  # fmt: skip
        if ev.retry is not None:
            fields += ["retry", str(ev.retry)]
        keys = [self._key("log"), self._id_key(record.id), *(self._topic(t) for t in record.topics)]
        limits = self._limits
        ttl = max(1, int(limits.age_of(record.topics)) + 1)
        args: list[object] = [ttl, LOG_BOUND, _oldest(record.time, limits.longest_age)]
        args.append(record.digest())
        for topic in record.topics:
            max_events, max_age = limits.of(topic)
            args += [max_events, _oldest(record.time, max_age)]
        args += fields
        try:
            if not self.wait:
                return bool(await self._append(keys=keys, args=args))
            # WAIT counts the replicas that have this connection's writes: it
            # goes right after the script, on the same connection (a pipeline)
            timeout_ms = self._target.wait_timeout_ms
            pipe = self._redis.pipeline(transaction=False)
            await self._append(keys=keys, args=args, client=pipe)
            pipe.wait(self.wait, timeout_ms)
            stored, confirmed = await pipe.execute()
        except ResponseError as error:
            if "DUPLICATE" in str(error):
                raise DuplicateEventIdError(record.id) from None
            raise
        if confirmed < self.wait:
            self._wait_timeouts += 1
            raise ReplicaWaitError(confirmed, self.wait, timeout_ms)
        return bool(stored)

    async def history(
        self,
        topics: Collection[str] | None,
        after: str | None,
        *,
        limit: int | None = None,
        after_position: int | None = None,
    ) -> History:
        check_page(after, limit, after_position)
        redis = self._redis
        limits = self._limits
        now = self._clock()
        start, found = "-", True
        if after_position is not None:
            start = "(" + _stream_id(after_position)
        elif after is not None:
            held = await redis.get(self._id_key(after))
            position = None if held is None else held.partition(" ")[0]  # "pos digest"
            found = position is not None and await self._still_held(position, now)
            if found and position is not None:
                start = "(" + position
        pipe = redis.pipeline(transaction=True)  # one snapshot: reads and the newest position
        pipe.xrevrange(self._key("log"), "+", "-", count=1)
        if topics is None:
            pipe.xrange(self._key("log"), start, "+", count=limit)
        else:
            for topic in topics:
                pipe.xrange(self._topic(topic), start, "+", count=limit)
        newest, *reads = await pipe.execute()
        # each entry with whether it is young enough for the read it came from
        entries: list[tuple[str, dict[str, str], bool]]
        if topics is None:
            entries = [(i, f, self._alive(f, now)) for i, f in reads[0]]
        else:
            entries = [
                (i, f, float(f["time"]) >= now - limits.of(topic)[1])
                for topic, found_entries in zip(topics, reads, strict=True)
                for i, f in found_entries
            ]
            entries.sort(key=lambda entry: _position(entry[0]))
        records: list[Record] = []
        last = None
        taken = 0
        cursor = None
        for stream_id, fields, alive in entries:
            if stream_id == last:  # an event on several of the topics, once
                if alive and (not records or records[-1].id != fields["id"]):
                    records.append(_record(fields))  # aged for the other, not this one
                continue
            if limit is not None and taken == limit:
                break
            last = stream_id
            taken += 1
            if alive:
                records.append(_record(fields))
        if limit is not None and taken == limit and last is not None:
            # the first `limit` of each read, merged, are the first `limit` of all
            cursor = _position(last)
        return History(records, found, _position(newest[0][0]) if newest else 0, cursor)

    async def newest(self, topics: Collection[str] | None, n: int) -> History:
        """`XREVRANGE ... COUNT n` on each topic stream (or on the log)."""
        check_newest(n)
        limits = self._limits
        now = self._clock()
        names = None if topics is None else list(dict.fromkeys(topics))
        pipe = self._redis.pipeline(transaction=True)  # one snapshot, as in history()
        pipe.xrevrange(self._key("log"), "+", "-", count=1)
        if names is None:
            pipe.xrevrange(self._key("log"), "+", "-", count=n)
        else:
            for topic in names:
                pipe.xrevrange(self._topic(topic), "+", "-", count=n)
        newest, *reads = await pipe.execute()
        entries: dict[str, dict[str, str]] = {}  # each once, if young enough for a read
        if names is None:
            entries = {i: f for i, f in reads[0] if self._alive(f, now)}
        else:
            for topic, found_entries in zip(names, reads, strict=True):
                cutoff = now - limits.of(topic)[1]
                entries.update((i, f) for i, f in found_entries if float(f["time"]) >= cutoff)
        records = [
            _record(fields)
            for _, fields in sorted(entries.items(), key=lambda entry: _position(entry[0]))
        ]
        return History(records, True, _position(newest[0][0]) if newest else 0)

    async def newest_position(self) -> int:
        """The position of the newest record (0 when there is none)."""
        newest = await self._redis.xrevrange(self._key("log"), "+", "-", count=1)
        return _position(newest[0][0]) if newest else 0

    async def follow(self, after: int) -> AsyncIterator[tuple[int, Record]]:
        """Every record appended after `after`, by any process, as it comes.
        While Redis is away it retries with backoff, then catches up from
        where it was: nothing stored is skipped."""
        last = _stream_id(after)
        delay = 0.1
        while True:
            try:
                reply = await self._redis.xread({self._key("log"): last}, count=500, block=2000)
            except Exception as error:  # Redis down or restarting: keep trying
                log.warning("following Redis failed (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            for _stream, entries in reply or ():
                for stream_id, fields in entries:
                    last = stream_id
                    yield _position(stream_id), _record(fields)

    async def last_id(self) -> str | None:
        newest = await self._redis.xrevrange(self._key("log"), "+", "-", count=1)
        if not newest:
            return None
        _, fields = newest[0]
        if float(fields["time"]) < self._clock() - self._limits.longest_age:
            return None
        return str(fields["id"])

    def _alive(self, fields: dict[str, str], now: float) -> bool:
        """Young enough for one of its topics."""
        limits = self._limits
        if limits.topics is None:
            return float(fields["time"]) >= now - limits.max_age
        age = limits.age_of(json.loads(fields["topics"]))
        return float(fields["time"]) >= now - age

    async def _still_held(self, position: str, now: float) -> bool:
        """Whether the record at `position` is in history yet: young enough
        and kept by at least one of its topics."""
        entry = await self._redis.xrange(self._key("log"), position, position)
        if not entry:
            return False
        fields = entry[0][1]
        if not self._alive(fields, now):
            return False
        pipe = self._redis.pipeline(transaction=False)
        for topic in json.loads(fields["topics"]):
            pipe.xrange(self._topic(topic), position, position)
        return any(await pipe.execute())

    # -- presence (the `PresenceBackend` capability; see _redis_presence.py) ------

    async def presence_sync(
        self,
        hub: str,
        ttl: float,
        *,
        groups: Mapping[str, int],
        named: Mapping[str, int],
        documents: Mapping[str, str | None],
        full: bool = False,
    ) -> PresenceSync:
        assert self._presence is not None, "RedisBackend.start() first"
        return await self._presence.sync(hub, ttl, groups, named, documents, full)

    async def presence_view(self, hub: str, known: int) -> PresenceView | None:
        assert self._presence is not None, "RedisBackend.start() first"
        return await self._presence.view(hub, known)

    async def presence_documents(self, hub: str) -> list[str]:
        assert self._presence is not None, "RedisBackend.start() first"
        return await self._presence.documents(hub)

    async def presence_leave(self, hub: str) -> tuple[str, ...]:
        assert self._presence is not None, "RedisBackend.start() first"
        return await self._presence.leave(hub)

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _id_key(self, event_id: str) -> str:
        return f"{self.prefix}id:{event_id}"  # expires with max_age: bounded

    def _topic(self, topic: str) -> str:
        return f"{self.prefix}topic:{topic}"


def _reason(error: Exception) -> str:
    from redis.asyncio.sentinel import MasterNotFoundError

    if isinstance(error, MasterNotFoundError):
        return "no Sentinel named a primary (Sentinels down, or no such service)"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _cluster_client(target: RedisURL, max_connections: int) -> Any:
    """A Redis Cluster client: it learns the slots from any of the nodes and
    follows `MOVED` / `ASK` redirections (a failover, a resharding)."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.cluster],
        username=target.username,
        password=target.password,
        decode_responses=True,
        max_connections=max_connections,
        socket_connect_timeout=5.0,
    )


def _sentinel_client(target: RedisURL, max_connections: int) -> tuple[Any, Any]:
    """A Sentinel manager and a client of the primary it names, over a
    blocking pool that notes when the primary moves (a failover)."""
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

    class FollowingPool(SentinelConnectionPool, BlockingConnectionPool):
        primary: str | None = None
        failovers = 0

        async def get_master_address(self) -> Any:
            address = await super().get_master_address()  # type: ignore[no-untyped-call]
            named = f"{address[0]}:{address[1]}"
            if self.primary is not None and named != self.primary:
                self.failovers += 1
                log.warning("Redis Sentinel names a new primary: %s (was %s)", named, self.primary)
            self.primary = named
            return address

    sentinel_kwargs: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    if target.sentinel_password is not None:
        sentinel_kwargs["password"] = target.sentinel_password
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs=sentinel_kwargs,
        db=target.db,
        username=target.username,
        password=target.password,
        decode_responses=True,
        socket_connect_timeout=5.0,
    )
    client = sentinel.master_for(
        target.service,
        redis_class=Redis,
        connection_pool_class=FollowingPool,
        max_connections=max_connections,
        timeout=10,
    )
    return sentinel, client
