"""Many distinct templates (issue 11, item 2): a publish to an unrelated
topic must not pay for every subscription's template.

    python benchmarks/matching.py [--publishes 20]   # or: python -m benchmarks.matching

An embedded `Hub` gets 5,000 subscriptions with one distinct, harmless URI
template each (half with a literal prefix of their own, half sharing
`https://example.com/` before their first expression) and 60 subscriptions
of 64 templates each (some starting with an expression), then publishes to
an unrelated topic and to a related one. Printed, in milliseconds: the
median and worst time for `publish()` to be acknowledged (target: median
<= 20 ms, worst <= 250 ms for the unrelated topic), and the same for
`PatternIndex.matching` alone over the same selectors, with the number of
templates it confirmed per topic.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on sys.path (for `benchmarks.*`),
# instead of this folder, whose modules must not shadow the standard library.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import statistics
import time

from ssehub.hub import Hub, PatternIndex, SelectorSet

UNRELATED = "https://unrelated.example/news/1"
RELATED = "https://example.com/tenant7/app7/items/3"


def selector_sets() -> list[list[str]]:
    sets = []
    for i in range(5_000):
        if i % 2:
            sets.append([f"https://example.com/{{tenant}}/app{i}/items/{{id}}"])
        else:
            sets.append([f"https://example.com/app{i}/items/{{id}}"])
    for i in range(60):
        templates = [f"https://example.com/t{i}/{j}/{{x}}" for j in range(60)]
        templates += [f"{{+base}}/feed{i}-{j}.json" for j in range(4)]
        sets.append(templates)
    return sets


def summary(samples: list[float]) -> str:
    return f"median {statistics.median(samples):7.3f} ms, worst {max(samples):7.3f} ms"


async def hub_publishes(sets: list[list[str]], publishes: int) -> None:
    async with Hub() as hub:
        subs = [hub.subscribe(selectors) for selectors in sets]
        started = time.perf_counter()
        for sub in subs:
            await sub.open()
        print(f"{len(subs)} subscriptions opened in {time.perf_counter() - started:.2f} s")
        for topic in (UNRELATED, RELATED):
            samples = []
            for i in range(publishes):
                started = time.perf_counter()
                await hub.publish(topic, f"event {i}")
                samples.append((time.perf_counter() - started) * 1e3)
            print(f"Hub.publish {topic:42} {summary(samples)}")
        for sub in subs:
            sub.close()


def index_matching(sets: list[list[str]], rounds: int) -> None:
    index: PatternIndex[int] = PatternIndex()
    for key, selectors in enumerate(sets):
        index.add(key, SelectorSet(selectors))
    for topic in (UNRELATED, RELATED):
        samples = []
        before = index.confirmations
        for _ in range(rounds):
            started = time.perf_counter()
            index.matching((topic,))
            samples.append((time.perf_counter() - started) * 1e3)
        confirmed = (index.confirmations - before) // rounds
        print(f"PatternIndex {topic:42} {summary(samples)}, {confirmed} templates confirmed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=20)
    args = parser.parse_args()
    sets = selector_sets()
    print(f"{len(sets)} subscriptions, {sum(map(len, sets))} templates")
    index_matching(sets, args.publishes)
    asyncio.run(hub_publishes(sets, args.publishes))


if __name__ == "__main__":
    main()
