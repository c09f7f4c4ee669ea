"""Presence on Redis: who is subscribed on each hub process of one store.

Layout, under the store's key prefix:
- `{prefix}presence`: a sorted set, hub id -> the deadline (Redis server
  time, ms) by which the hub must refresh its entry, else it is dead;
- `{prefix}presence:{hub}:named`: topic -> that hub's subscriptions naming
  it exactly (what `on_watch` is about);
- `{prefix}presence:{hub}:groups`: encoded selector set -> that hub's
  subscriptions with it (what `subscribers(topic)` counts, templates too);
- `{prefix}presence:{hub}:subs`: subscription id -> its document (the
  Mercure subscriptions API);
- `{prefix}presence:version`: bumped whenever a group count changes or a
  hub joins, leaves or dies, so a hub re-reads the others only then.

One entry per hub, not per subscription: a refresh is one `ZADD` and a few
`PEXPIRE`s, whatever the number of subscribers; a change writes the fields
that changed. Every write is one Lua script that first removes the dead hubs
(deadline passed; the writing hub itself only when it is late by more than a
TTL: a hub whose loop was blocked past its deadline and that nobody removed
yet just goes on) and tells which topics lost their last subscriber with
them, then applies the change and tells which topics gained their first or
lost their last subscriber on all the live hubs together. Time is the Redis
server's (`TIME`), so the hubs' clocks do not matter. The per-hub keys also
expire (twice the TTL) in case no hub is left to remove them. Scripts build
the per-hub key names from the prefix: under Redis Cluster the prefix must
carry a hash tag (`{ssehub}:`) so that they all live in one slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._base import PresenceSync, PresenceView

__all__ = ("RedisPresence",)

_COMMON = """
local prefix, me = ARGV[1], ARGV[2]
local hubs, version = KEYS[1], KEYS[2]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function key(h, what) return prefix .. 'presence:' .. h .. ':' .. what end
local live = {}
local function total(topic)
  local sum = 0
  for _, h in ipairs(live) do
    sum = sum + (tonumber(redis.call('HGET', key(h, 'named'), topic)) or 0)
  end
  return sum
end
"""

_SYNC = (
    _COMMON
    + """
-- ARGV[3] ttl ms, ARGV[4] full, ARGV[5] n named, ARGV[6] n groups, then the
-- named pairs, the group pairs and the document pairs ('' deletes)
local ttl, full = tonumber(ARGV[3]), ARGV[4] == '1'
local n_named, n_groups = tonumber(ARGV[5]), tonumber(ARGV[6])
local bump = false
local watched, unwatched, told = {}, {}, {}
-- the dead hubs first. This one, if late but not removed by another yet,
-- goes on as it was (no other hub told anything of its topics), unless it is
-- so late that its hashes may have expired: then it is lost, like the others
local dead = {}
for _, h in ipairs(redis.call('ZRANGEBYSCORE', hubs, '-inf', '(' .. now)) do
  if h ~= me or tonumber(redis.call('ZSCORE', hubs, me)) < now - ttl then
    dead[#dead + 1] = h
    redis.call('ZREM', hubs, h)
    bump = true
  end
end
live = redis.call('ZRANGE', hubs, 0, -1)
for _, h in ipairs(dead) do
  for _, topic in ipairs(redis.call('HKEYS', key(h, 'named'))) do
    if not told[topic] and total(topic) == 0 then
      told[topic] = true
      unwatched[#unwatched + 1] = topic
    end
  end
  redis.call('DEL', key(h, 'named'), key(h, 'groups'), key(h, 'subs'))
end
local was_live = redis.call('ZSCORE', hubs, me) ~= false
if not was_live and not full then
  if bump then redis.call('INCR', version) end
  return {1, watched, unwatched, tonumber(redis.call('GET', version) or '0')}
end
redis.call('ZADD', hubs, now + ttl, me)
if not was_live then
  bump = true
  live = redis.call('ZRANGE', hubs, 0, -1)
end
local named, groups, subs = key(me, 'named'), key(me, 'groups'), key(me, 'subs')
local changes = {}
local i = 7
for _ = 1, n_named do
  changes[ARGV[i]] = tonumber(ARGV[i + 1])
  i = i + 2
end
if full then
  for _, topic in ipairs(redis.call('HKEYS', named)) do
    if changes[topic] == nil then changes[topic] = 0 end
  end
  redis.call('DEL', groups, subs)
end
for topic, count in pairs(changes) do
  local old = tonumber(redis.call('HGET', named, topic)) or 0
  local before = total(topic)
  local after = before - old + count
  if count > 0 then
    redis.call('HSET', named, topic, count)
  else
    redis.call('HDEL', named, topic)
  end
  if before == 0 and after > 0 then
    watched[#watched + 1] = topic
  elseif before > 0 and after == 0 and not told[topic] then
    unwatched[#unwatched + 1] = topic
  end
end
for _ = 1, n_groups do
  if tonumber(ARGV[i + 1]) > 0 then
    redis.call('HSET', groups, ARGV[i], ARGV[i + 1])
  else
    redis.call('HDEL', groups, ARGV[i])
  end
  bump = true
  i = i + 2
end
while i <= #ARGV do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', subs, ARGV[i])
  else
    redis.call('HSET', subs, ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
redis.call('PEXPIRE', hubs, 2 * ttl)
redis.call('PEXPIRE', named, 2 * ttl)
redis.call('PEXPIRE', groups, 2 * ttl)
redis.call('PEXPIRE', subs, 2 * ttl)
if bump then redis.call('INCR', version) end
return {0, watched, unwatched, tonumber(redis.call('GET', version) or '0')}
"""
)

_VIEW = (
    _COMMON
    + """
-- ARGV[3] the version the caller has
local v = tonumber(redis.call('GET', version) or '0')
if v == tonumber(ARGV[3]) then return {v} end
-- the version, the number of other live hubs, then their group pairs
local out = {v, 0}
for _, h in ipairs(redis.call('ZRANGEBYSCORE', hubs, now, '+inf')) do
  if h ~= me then
    out[2] = out[2] + 1
    for _, item in ipairs(redis.call('HGETALL', key(h, 'groups'))) do out[#out + 1] = item end
  end
end
return out
"""
)

_DOCUMENTS = (
    _COMMON
    + """
local out = {}
for _, h in ipairs(redis.call('ZRANGEBYSCORE', hubs, now, '+inf')) do
  if h ~= me then
    for _, doc in ipairs(redis.call('HVALS', key(h, 'subs'))) do out[#out + 1] = doc end
  end
end
return out
"""
)

_LEAVE = (
    _COMMON
    + """
redis.call('ZREM', hubs, me)
live = redis.call('ZRANGEBYSCORE', hubs, now, '+inf')
local unwatched = {}
for _, topic in ipairs(redis.call('HKEYS', key(me, 'named'))) do
  if total(topic) == 0 then unwatched[#unwatched + 1] = topic end
end
redis.call('DEL', key(me, 'named'), key(me, 'groups'), key(me, 'subs'))
redis.call('INCR', version)
return unwatched
"""
)


class RedisPresence:
    """The `PresenceBackend` half of `RedisBackend`, over its client."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._keys = [f"{prefix}presence", f"{prefix}presence:version"]
        self._sync = redis.register_script(_SYNC)
        self._view = redis.register_script(_VIEW)
        self._documents = redis.register_script(_DOCUMENTS)
        self._leave = redis.register_script(_LEAVE)

    async def sync(
        self,
        hub: str,
        ttl: float,
        groups: Mapping[str, int],
        named: Mapping[str, int],
        documents: Mapping[str, str | None],
        full: bool,
    ) -> PresenceSync:
        args: list[str | int] = [
            self._prefix, hub, max(1, round(ttl * 1000)), int(full), len(named), len(groups)
        ]  # fmt: skip
        for topic, count in named.items():
            args += [topic, count]
        for group, count in groups.items():
            args += [group, count]
        for subscriber, document in documents.items():
            args += [subscriber, "" if document is None else document]
        lost, watched, unwatched, version = await self._sync(keys=self._keys, args=args)
        return PresenceSync(tuple(watched), tuple(unwatched), bool(lost), int(version))

    async def view(self, hub: str, known: int) -> PresenceView | None:
        reply = await self._view(keys=self._keys, args=[self._prefix, hub, known])
        version = int(reply[0])
        if len(reply) == 1 and version == known:
            return None
        groups: dict[str, int] = {}
        pairs = reply[2:]
        for group, count in zip(pairs[::2], pairs[1::2], strict=True):
            groups[group] = groups.get(group, 0) + int(count)
        return PresenceView(version, groups, int(reply[1]))

    async def documents(self, hub: str) -> list[str]:
        docs = await self._documents(keys=self._keys, args=[self._prefix, hub])
        return [str(doc) for doc in docs]

    async def leave(self, hub: str) -> tuple[str, ...]:
        return tuple(await self._leave(keys=self._keys, args=[self._prefix, hub]))
