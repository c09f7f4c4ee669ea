"""`[[topics]]` tables of `serve`'s TOML file: per-topic policies, checked
at start, each mistake one line naming the file, the table and the key."""

from __future__ import annotations

import difflib
import re

from ssehub.hub import TopicPolicy

from ._options import UsageError

__all__ = ("KEYS", "topic_policies")

KEYS = ("match", "match_type", "history", "history_age", "newest", "max_subscribers")
"""The keys of a `[[topics]]` table (`match-type` is `match_type`, as for options)."""
_COUNTS = ("history", "newest", "max_subscribers")


def topic_policies(raw: object, path: str) -> tuple[TopicPolicy, ...]:
    """The `topics` value of the TOML file `path` as policies, in order (the
    first that matches a topic is its); `UsageError` on any mistake."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise UsageError(f"{path}: topics: expected [[topics]] tables (an array of tables)")
    return tuple(_policy(table, f"{path}: [[topics]] #{i}") for i, table in enumerate(raw, 1))


def _policy(table: dict[str, object], where: str) -> TopicPolicy:
    values: dict[str, object] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        if key not in KEYS:
            near = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]}?)" if near else f" (one of {', '.join(KEYS)})"
            raise UsageError(f"{where}: unknown key {raw_key!r}{hint}")
        values[key] = value
    if "match" not in values:
        raise UsageError(f'{where}: match is missing (the selector: match = "https://…/{{id}}")')
    for key, value in values.items():
        expected = _expected(key, value)
        if expected is not None:
            raise UsageError(f"{where}: {key} must be {expected}, not {value!r}")
    try:
        return TopicPolicy(**values)  # type: ignore[arg-type]  # checked above
    except ValueError as error:
        message = re.sub(r"^TopicPolicy\.", "", str(error))
        raise UsageError(f"{where}: {message}") from None


def _expected(key: str, value: object) -> str | None:
    """What `key` needs, when `value` is not of that type."""
    if key in ("match", "match_type"):
        return None if isinstance(value, str) else "a string"
    if key in _COUNTS:
        return None if type(value) is int else "an integer"
    if key == "history_age":
        return None if type(value) in (int, float) else "a number of seconds"
    return None
