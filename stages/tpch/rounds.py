"""How the TPC-H bench orders its executions, and the cold first execution of each item.

Without sides (a plain run): query-major by default: q01 on each engine (the cold run, iteration 0,
then iterations 1..N), then q02, and so on; with --order rounds (TPC-H var `order`), rounds as below,
so drift over the run lands on every query's iterations alike instead of on whichever query ran then.

With sides (`campaign ab`: CAMPAIGN_SIDES="base=/checkout/a,contender=/checkout/b", or --side NAME=DIR):
randomized interleaved rounds. Round 0 runs every item (query × engine × side) once, cold; rounds 1..N
run every item once more each, every round in its own random order drawn from the seed (--order-seed,
default CAMPAIGN_ORDER_SEED), so drift on the machine lands on both sides alike. A resume draws the
same orders and skips what is recorded.

The cold run: the page cache is dropped before it (sync, then 1 into /proc/sys/vm/drop_caches) where
that is allowed (root) and not switched off (CAMPAIGN_DROP_CACHES=0); the record then says
`cold: true`, otherwise `cold: "lukewarm"`. Later executions say `cold: false`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def parse_sides(texts: list[str], env_text: str | None) -> tuple[tuple[str, Path], ...]:
    """(name, checkout) pairs from --side NAME=DIR options, else from CAMPAIGN_SIDES; ValueError when malformed."""
    items = texts or [t for t in (env_text or "").split(",") if t.strip()]
    sides = []
    for text in items:
        name, equals, path = text.partition("=")
        if not equals or not name.strip() or not path.strip():
            raise ValueError(f"a side is NAME=CHECKOUT (e.g. base=/runs/x/sides/base), got {text!r}")
        sides.append((name.strip(), Path(path.strip())))
    if len({name for name, _ in sides}) != len(sides):
        raise ValueError(f"side names must differ: {', '.join(name for name, _ in sides)}")
    return tuple(sides)


def schedule(
    queries: tuple[str, ...],
    engines: tuple[str, ...],
    sides: tuple[str, ...],
    iterations: int,
    seed: int,
    *,
    rounds: bool = False,
) -> Iterator[tuple[int, str, str, str]]:
    """Every execution as (iteration, side, engine, query), in the order it runs (generated lazily: a bench
    may be given a huge iteration count and stopped by a signal)."""
    if not sides and not rounds:
        for query in queries:
            for engine in engines:
                for iteration in range(iterations + 1):
                    yield iteration, "", engine, query
        return
    items = [(side, engine, query) for query in queries for engine in engines for side in sides or ("",)]
    for round_number in range(iterations + 1):
        shuffled = list(items)
        random.Random(f"{seed}:{round_number}").shuffle(shuffled)
        for side, engine, query in shuffled:
            yield round_number, side, engine, query


def make_cold() -> bool | str:
    """Drop the page cache when allowed: True when it was dropped, "lukewarm" otherwise."""
    if os.environ.get("CAMPAIGN_DROP_CACHES", "1") == "0" or not os.access(DROP_CACHES, os.W_OK):
        return "lukewarm"
    try:
        os.sync()
        DROP_CACHES.write_text("1\n")
    except OSError:
        return "lukewarm"
    return True
