"""A matching engine that cannot backtrack: the set of positions a pattern
may have reached in a topic, carried through the pattern one piece at a
time as a bitmask (bit `p` set: the pieces so far can match the topic's
first `p` bytes).

A pattern is a sequence of pieces (a literal, a run of characters of one
class, a group that is optional or repeated). Each piece turns the set of
positions before it into the set after it with a handful of big-integer
operations over the whole topic (a run of a class is one addition: the
carry sweeps through the run), so matching costs O(pieces * topic length
/ 64) machine words and a bounded number of Python steps per piece,
whatever the pattern and the topic. A repeated group is the one piece that
loops: at most once per position it adds, so at most the topic's length.

Topics are matched as UTF-8 bytes: a literal's bytes can only match at the
start of a character, and every class here is ASCII, so byte positions
give the same answers as character positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

__all__ = ("Any", "Group", "Literal", "Piece", "Plus", "Run", "Scan", "char_table", "matches")


def char_table(accepted: bytes | str, *, invert: bool = False) -> bytes:
    """A `bytes.translate` table mapping accepted bytes to `1` and every
    other byte to `0` (the other way round with `invert`)."""
    chars = accepted.encode() if isinstance(accepted, str) else accepted
    yes, no = (0x30, 0x31) if invert else (0x31, 0x30)
    return bytes(yes if b in chars else no for b in range(256))


@cache
def _byte_table(byte: int) -> bytes:
    return char_table(bytes([byte]))


_PERCENT = char_table("%")
_HEX = char_table("0123456789ABCDEFabcdef")


class Scan:
    """One topic being matched, with the masks of its byte classes computed
    once and shared by every pattern that looks at it. `steps` counts the
    pieces applied (the engine's cost, for tests and statistics)."""

    __slots__ = ("_masks", "_triples", "data", "size", "steps")

    def __init__(self, topic: str) -> None:
        self.data = topic.encode("utf-8", "surrogatepass")
        self.size = len(self.data)
        self.steps = 0
        self._masks: dict[bytes, int] = {}
        self._triples = -1

    def mask(self, table: bytes) -> int:
        """Bit `p` set where the byte at `p` maps to `1` in `table`."""
        found = self._masks.get(table)
        if found is None:
            found = int(self.data.translate(table)[::-1] or b"0", 2)
            self._masks[table] = found
        return found

    def triples(self) -> int:
        """Bit `p` set where a percent-encoded triple (`%XX`) starts."""
        if self._triples < 0 and b"%" not in self.data:
            self._triples = 0
        elif self._triples < 0:
            hexes = self.mask(_HEX)
            self._triples = self.mask(_PERCENT) & (hexes >> 1) & (hexes >> 2)
        return self._triples

    def occurrences(self, literal: bytes) -> int:
        """Bit `p` set where `literal` starts."""
        found = -1
        for i, byte in enumerate(literal):
            found &= self.mask(_byte_table(byte)) >> i
        return found if literal else (1 << (self.size + 1)) - 1


def _fill(reached: int, run: int) -> int:
    """`reached` plus every position reachable from it through bytes in
    `run` (the carry of the addition sweeps through each run of ones)."""
    return (((reached & run) + run) ^ run) | reached


class Literal:
    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text

    def apply(self, reached: int, scan: Scan) -> int:
        size = len(self.text)
        if reached & (reached - 1) == 0:  # one position: a plain comparison
            at = reached.bit_length() - 1
            return reached << size if scan.data.startswith(self.text, at) else 0
        # the first few occurrences in reach by search, past that by masks
        data, text = scan.data, self.text
        stop = reached.bit_length() - 1 + size
        at = data.find(text, (reached & -reached).bit_length() - 1, stop)
        found = 0
        for _ in range(8):
            if at < 0:
                return found << size
            found |= (reached >> at & 1) << at
            at = data.find(text, at + 1, stop)
        return (reached & scan.occurrences(text)) << size

    def __repr__(self) -> str:
        return f"Literal({self.text!r})"


class Run:
    """Zero or more characters of a class, optionally after a required
    leading byte (RFC 6570 operators: `{/x}` is empty or `/` then a run),
    with `%XX` triples counting as characters when `percent` is set."""

    __slots__ = ("lead", "percent", "table")

    def __init__(self, table: bytes, *, lead: int | None = None, percent: bool = False) -> None:
        self.table = table
        self.lead = None if lead is None else _byte_table(lead)
        self.percent = percent

    def apply(self, reached: int, scan: Scan) -> int:
        start = reached if self.lead is None else (reached & scan.mask(self.lead)) << 1
        chars = scan.mask(self.table)
        if not self.percent:
            found = _fill(start, chars)
        else:
            triples = scan.triples()
            found = _fill(start, chars | triples)
            if triples:
                # a run through a `%` consumes the whole triple: it cannot
                # end inside one, unless it started inside it
                inside1 = triples << 1
                inside = inside1 | (triples << 2)
                found = (found & ~inside) | (start & inside) | ((start & inside1) << 1)
        return found if self.lead is None else found | reached

    def __repr__(self) -> str:
        return f"Run(lead={self.lead is not None}, percent={self.percent})"


class Plus:
    """One or more characters of a class (a URL Pattern segment)."""

    __slots__ = ("table",)

    def __init__(self, table: bytes) -> None:
        self.table = table

    def apply(self, reached: int, scan: Scan) -> int:
        chars = scan.mask(self.table)
        return _fill((reached & chars) << 1, chars)


class Any:
    """Any characters, none included (a URL Pattern `*`)."""

    __slots__ = ()

    def apply(self, reached: int, scan: Scan) -> int:
        if not reached:
            return 0
        return ((1 << (scan.size + 1)) - 1) & ~((reached & -reached) - 1)


class Group:
    """Pieces matched optionally (`repeat=False`) or any number of times,
    at least `minimum` (0 or 1)."""

    __slots__ = ("minimum", "pieces", "repeat")

    def __init__(self, pieces: Sequence[Piece], *, minimum: int, repeat: bool) -> None:
        self.pieces = tuple(pieces)
        self.minimum = minimum
        self.repeat = repeat

    def apply(self, reached: int, scan: Scan) -> int:
        found = frontier = _apply(self.pieces, reached, scan)
        while self.repeat and frontier:  # each turn adds a position, or stops
            frontier = _apply(self.pieces, frontier, scan) & ~found
            found |= frontier
        return found | reached if self.minimum == 0 else found


Piece = Literal | Run | Plus | Any | Group


def _apply(pieces: Sequence[Piece], reached: int, scan: Scan) -> int:
    for piece in pieces:
        if not reached:
            return 0
        scan.steps += 1
        reached = piece.apply(reached, scan)
    return reached


def matches(pieces: Sequence[Piece], scan: Scan, *, start: int = 0) -> bool:
    """Whether `pieces` match the whole topic of `scan` from byte `start`."""
    return bool(_apply(pieces, 1 << start, scan) >> scan.size & 1)
