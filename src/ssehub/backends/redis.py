"""The Redis backend: history in Redis Streams, shared by every hub process
that points at the same Redis.

Layout, under a key prefix (default `ssehub:`):
- `{prefix}log`: every record once, in publish order (the newest event);
- `{prefix}topic:{topic}`: the records of one topic, bounded by count
  (`MAXLEN`) — each entry carries the whole record, under the same stream
  id as in the log, so merging topics is ordering by id;
- `{prefix}ids`: event id → stream id, for resuming (`Last-Event-ID` is a
  hash lookup, then an `XRANGE` from there per topic).
An append is one Lua script, so it is atomic: the duplicate-id check, the
log entry, the topic entries, the index.

Install with `pip install 'ssehub[redis]'` (redis-py's asyncio client).
This is the storage half of scale-out: any process can resume any client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

from ssehub.protocol import Event, encode_event

from ._base import DuplicateEventIdError, History, HistoryLimits, Record

__all__ = ("RedisBackend",)

_APPEND = """
-- KEYS[1] log, KEYS[2] ids, KEYS[3..] topic streams
-- ARGV[1] id, ARGV[2] max_events, ARGV[3..] field, value pairs
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return redis.error_reply('DUPLICATE')
end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local pos = redis.call('XADD', KEYS[1], '*', unpack(fields))
for k = 3, #KEYS do
  redis.call('XADD', KEYS[k], 'MAXLEN', ARGV[2], pos, unpack(fields))
end
redis.call('HSET', KEYS[2], ARGV[1], pos)
return pos
"""


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


def _stream_id(position: int) -> str:
    return f"{position >> 20}-{position & 0xFFFFF}"


class RedisBackend:
    """History in Redis Streams (`redis://host:port/db`)."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        limits: HistoryLimits | None = None,
        *,
        prefix: str = "ssehub:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._limits = limits or HistoryLimits()
        self._clock = clock
        self._redis: Any = None
        self._append: Any = None

    @property
    def limits(self) -> HistoryLimits:
        return self._limits

    async def start(self) -> None:
        try:
            from redis import asyncio as aioredis
        except ImportError:
            raise ImportError(
                "the Redis store needs redis-py: pip install 'ssehub[redis]'"
            ) from None
        self._redis = aioredis.from_url(self.url, decode_responses=True)
        await self._redis.ping()  # fail at start, with Redis's own reason
        self._append = self._redis.register_script(_APPEND)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def append(self, record: Record) -> None:
        from redis.exceptions import ResponseError

        ev = record.event
        fields: list[str] = [
            "id", record.id, "time", repr(record.time), "topics", json.dumps(record.topics),
            "event", ev.event, "data", ev.data, "private", "1" if record.private else "0",
        ]  # fmt: skip
        if ev.retry is not None:
            fields += ["retry", str(ev.retry)]
        keys = [self._key("log"), self._key("ids"), *(self._topic(t) for t in record.topics)]
        try:
            await self._append(keys=keys, args=[record.id, self._limits.max_events, *fields])
        except ResponseError as error:
            if "DUPLICATE" in str(error):
                raise DuplicateEventIdError(record.id) from None
            raise

    async def history(self, topics: Collection[str] | None, after: str | None) -> History:
        redis = self._redis
        cutoff = self._clock() - self._limits.max_age
        start, found = "-", True
        if after is not None:
            position = await redis.hget(self._key("ids"), after)
            found = position is not None and await self._still_held(position, cutoff)
            if found:
                start = "(" + position
        pipe = redis.pipeline(transaction=True)  # one snapshot: reads and the newest position
        pipe.xrevrange(self._key("log"), "+", "-", count=1)
        if topics is None:
            pipe.xrange(self._key("log"), start, "+")
        else:
            for topic in topics:
                pipe.xrange(self._topic(topic), start, "+")
        newest, *reads = await pipe.execute()
        entries = [e for found_entries in reads for e in found_entries]
        if topics is not None:
            entries.sort(key=lambda entry: _position(entry[0]))
        records: list[Record] = []
        last = None
        for stream_id, fields in entries:
            if stream_id == last or float(fields["time"]) < cutoff:
                continue
            last = stream_id
            records.append(_record(fields))
        return History(records, found, _position(newest[0][0]) if newest else 0)

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
        if float(fields["time"]) < self._clock() - self._limits.max_age:
            return None
        return str(fields["id"])

    async def _still_held(self, position: str, cutoff: float) -> bool:
        """Whether the record at `position` is in history yet: young enough
        and kept by at least one of its topics."""
        entry = await self._redis.xrange(self._key("log"), position, position)
        if not entry:
            return False
        fields = entry[0][1]
        if float(fields["time"]) < cutoff:
            return False
        pipe = self._redis.pipeline(transaction=False)
        for topic in json.loads(fields["topics"]):
            pipe.xrange(self._topic(topic), position, position)
        return any(await pipe.execute())

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _topic(self, topic: str) -> str:
        return f"{self.prefix}topic:{topic}"
