"""Regenerate a shipped reference answer set (answers/sf<SF>/qN.out) from both engines' answers.

    python stages/tpch/make_reference.py --sf 0.01 --data-dir DIR [--out stages/tpch/answers/sf0.01]

How answers/sf0.01 was derived (repeat these steps after changing a query file):
1. The query files were validated against the TPC-H specification's SF 1 answer set: the test
   tests/tpch/test_tpch_queries_official.py runs every query at SF 1 on DuckDB and DataFusion and
   compares with answers/sf1 (a byte copy of the kit's set, pinned by digest in test_tpch_reference.py).
2. SF 0.01 data was generated with `bash stages/tpch/generate.sh 0.01 DIR` (tpchgen-cli, which
   produces the same data as the kit's dbgen).
3. This script ran each query on both engines and wrote the normalised answer (answers.py), but
   only because the two engines' digests were identical for every query; it refuses otherwise.
The SF 0.01 set comes from the engines rather than the kit because the kit publishes answers for
SF 1 only. The files use the kit's answer-file format, so answers.py loads both sets the same way.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import answers
import engines

STAGE_DIR = Path(__file__).resolve().parent
QUERIES = tuple(f"q{number:02d}" for number in range(1, 23))


def agreed_answer(opened: list, query: str, sql: str):
    """(column names, Answer) when every engine gives the same digest; SystemExit otherwise."""
    results = [(engine.name, engine.run(sql)) for engine in opened]
    normalised = [(name, answers.normalise(table)) for name, table in results]
    digests = {answer.digest for _, answer in normalised}
    if len(digests) != 1:
        summary = ", ".join(f"{name} {answer.digest[:12]}" for name, answer in normalised)
        raise SystemExit(f"{query}: the engines disagree ({summary}); no reference written")
    return results[0][1].column_names, normalised[0][1]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def write_reference_set(out_dir: Path, answers_by_query: dict) -> None:
    """Write all files into a sibling temporary directory, then swap it into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp creates it private; it is a source directory
    for query, (header, answer) in answers_by_query.items():
        answers.write_reference(answers.reference_file(staging, query), header, answer)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sf", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--out", type=Path, help="default: stages/tpch/answers/sf<SF>")
    args = parser.parse_args(argv)
    out_dir = args.out or STAGE_DIR / "answers" / f"sf{args.sf}"
    engines.check_data_dir(args.data_dir)
    opened = [engines.open_engine(name, args.data_dir) for name in engines.ENGINE_NAMES]
    collected = {}
    for query in QUERIES:
        sql = engines.query_text((STAGE_DIR / "queries" / f"{query}.sql").read_text(encoding="utf-8"), args.sf)
        collected[query] = agreed_answer(opened, query, sql)
        print(f"{query}: {plural(len(collected[query][1].rows), 'row')}, engines agree")
    write_reference_set(out_dir, collected)
    print(f"reference written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
