"""Result files following the record contract, with timings drawn from a seeded lognormal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

QUERIES = tuple(f"q{n:02d}" for n in range(1, 23))
ENGINES = ("duckdb", "datafusion")


def records(
    seed: int,
    *,
    iterations: int = 40,
    slow: dict[tuple[str, str], float] | None = None,
    cv: float = 0.05,
    **extra: object,
) -> list[dict]:
    """Every query × engine: a cold run then `iterations` warm ones, median 10 ms × (1 + query number / 10)."""
    rng = np.random.default_rng(seed)
    sigma = float(np.sqrt(np.log1p(cv**2)))
    found = []
    for query in QUERIES:
        for engine in ENGINES:
            factor = (slow or {}).get((query, engine), 1.0)
            median = 10.0 * (1 + int(query[1:]) / 10) * factor
            for iteration in range(iterations + 1):
                elapsed = median * float(np.exp(sigma * rng.standard_normal())) * (3 if iteration == 0 else 1)
                found.append(
                    {
                        "engine": engine,
                        "engine_version": "1.0",
                        "query": query,
                        "sf": "1",
                        "iteration": iteration,
                        "warmup": iteration == 0,
                        "cold": iteration == 0,
                        "elapsed_ms": round(elapsed, 3),
                        "ok": True,
                        "error": None,
                        "valid": True,
                        "mismatch": None,
                        "answer_digest": f"digest-{query}",
                        **extra,
                    }
                )
    return found


def write(path: Path, items: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path
