"""Setting a frozen, slotted dataclass's fields fast: the descriptor of
each slot, whose `__set__` a hand-written `__init__` calls instead of the
`object.__setattr__` per field that the dataclass's own `__init__` calls
(the class is frozen). Less than half the cost; for the values made on
every publish (`Event` here, Mercure's `Publish` and `Response`), each
guarded by a test that its signature is its fields'."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ("slot_setters",)


def slot_setters(cls: type, *names: str) -> tuple[Callable[[Any, Any], None], ...]:
    """The `__set__` of the slot descriptors of `names` on `cls` (the class
    the dataclass decorator returned)."""
    return tuple(cls.__dict__[name].__set__ for name in names)
