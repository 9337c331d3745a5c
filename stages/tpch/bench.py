"""Run the 22 TPC-H queries on DuckDB and DataFusion, record every run, validate every answer.

    python stages/tpch/bench.py --sf SF --data-dir DIR --results RESULTS.jsonl --report REPORT.md
        --iterations N --run-id ID [--engines all|duckdb,datafusion] [--queries all|q01,q02,...]
        [--queries-dir stages/tpch/queries] [--order query-major|rounds] [--side NAME=CHECKOUT ...]
        [--order-seed N]

The first execution of each query × engine is its cold run (iteration 0, `warmup: true`, `cold: true`
when the page cache was dropped before it, else "lukewarm"; see rounds.py), then iterations 1..N.
The order (rounds.py): query-major by default (q01 on each engine, all its iterations, then q02, …);
--order rounds, and always with sides (`campaign ab`: --side, default CAMPAIGN_SIDES), runs round 0
(every item cold) and then N rounds of every item in a random order drawn from --order-seed. With
sides, each side's queries come from its own checkout and every record carries `side` and `round`.
Every run appends one JSON record to RESULTS as soon as it completes (flushed and fsync'd). A query
that raises is recorded with ok=false and its error; the remaining iterations of that query on that
engine (and side) are skipped and the run goes on. Q11's FRACTION is 0.0001 / SF (engines.query_text).

Each answer is normalised and compared as described in answers.py. Where a reference ships for
the scale factor (answers/sf0.01, answers/sf1), every answer is compared with it: valid=true or
false. Where none ships, every answer is compared with the first answer recorded for the query
(the first engine's warm-up), so the engines must agree with each other and with themselves:
valid=null when they do, false when they do not. A record with valid=false says why in `mismatch`.

At the end the Markdown report is generated from RESULTS (see report.py), and report.html beside it
(campaign.results.html: plotly, self-contained).

Exit codes: 0 every query ran and no answer was wrong; 1 some query failed or gave a wrong answer
(RESULTS and the report are complete); 2 bad input (missing data, query or reference files, an
existing RESULTS file, bad arguments), detected before anything is written; 3 a record could not be
written (disk full, file-size limit; the records before it stay intact); 130 / 143 interrupted by
SIGINT / SIGTERM (the records written so far stay; no report is written).

RESULTS follows campaign's JSON-Lines contract (campaign.jsonl): one fsync'd line per record, a
torn last line cut before a resume (CAMPAIGN_RESUME=1) continues the file.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import answers
import engines
import report
import rounds

from campaign.jsonl import append_record, cut_torn_tail, read_records
from campaign.results.html import write_html_report

STAGE_DIR = Path(__file__).resolve().parent
DEFAULT_QUERIES_DIR = STAGE_DIR / "queries"
ALL_QUERIES = tuple(f"q{number:02d}" for number in range(1, 23))


class BadInput(Exception):
    """Something the stage needs is missing or wrong; nothing has been written yet."""


@dataclass(frozen=True)
class BenchSettings:
    sf: str
    data_dir: Path
    results: Path
    report: Path
    iterations: int
    run_id: str
    engines: tuple[str, ...]
    queries: tuple[str, ...]
    queries_dir: Path
    resume: bool = False
    sides: tuple[tuple[str, Path], ...] = ()  # `campaign ab`: (name, checkout) per side
    order_seed: int = 0
    rounds: bool = False  # --order rounds


def parse_args(argv: list[str]) -> BenchSettings:
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n")[0])
    parser.add_argument("--sf", required=True, help="scale factor, e.g. 0.01, 1, 10")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path, help="JSON Lines file to create")
    parser.add_argument("--report", required=True, type=Path, help="Markdown report to write")
    parser.add_argument("--iterations", required=True, type=int, help="measured runs per query")
    parser.add_argument("--run-id", required=True)
    parser.add_argument(
        "--engines",
        default="all",
        help="comma-separated, or all (default: the engines on this "
        "machine, duckdb and datafusion; spark runs only when named, on a cluster)",
    )
    parser.add_argument("--queries", default="all", help="comma-separated (q01,q03), or all (default)")
    parser.add_argument(
        "--queries-dir",
        type=Path,
        default=None,
        help="default: stages/tpch/queries (of each side's checkout, with --side)",
    )
    parser.add_argument(
        "--side",
        action="append",
        default=[],
        metavar="NAME=CHECKOUT",
        help="an A/B side (repeatable; default: CAMPAIGN_SIDES): its queries come from "
        "CHECKOUT/stages/tpch/queries, and the executions run in interleaved rounds",
    )
    parser.add_argument(
        "--order",
        choices=("query-major", "rounds"),
        default="query-major",
        help="a plain run's order: each query's iterations back to back (default), or rounds "
        "of every item in a random order (always rounds with --side)",
    )
    parser.add_argument(
        "--order-seed",
        type=int,
        default=int(os.environ.get("CAMPAIGN_ORDER_SEED") or 0),
        help="the seed of the rounds' random order (default: CAMPAIGN_ORDER_SEED, else 0)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=os.environ.get("CAMPAIGN_RESUME") == "1",
        help="continue an existing results file: skip the items it records (default: "
        "on when the runner sets CAMPAIGN_RESUME=1)",
    )
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error(f"--iterations must be at least 1, got {args.iterations}")
    try:
        sides = rounds.parse_sides(args.side, os.environ.get("CAMPAIGN_SIDES"))
    except ValueError as error:
        parser.error(f"--side: {error}")
    return BenchSettings(
        sf=canonical_sf(args.sf, parser),
        data_dir=args.data_dir,
        results=args.results,
        report=args.report,
        iterations=args.iterations,
        run_id=args.run_id,
        engines=parse_list(args.engines, engines.ALL_ENGINES, "--engines", parser, every=engines.ENGINE_NAMES),
        queries=parse_list(args.queries, ALL_QUERIES, "--queries", parser),
        queries_dir=args.queries_dir or DEFAULT_QUERIES_DIR,
        resume=args.resume,
        sides=sides if args.queries_dir is None else tuple((name, args.queries_dir) for name, _ in sides),
        order_seed=args.order_seed,
        rounds=args.order == "rounds",
    )


def canonical_sf(text: str, parser: argparse.ArgumentParser) -> str:
    """'1.0' -> '1', '0.010' -> '0.01', so the SF names the same reference however it is written."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        parser.error(f"--sf must be a number such as 0.01, 1 or 10, got {text!r}")
    if not value.is_finite() or value <= 0:
        parser.error(f"--sf must be a positive number, got {text!r}")
    return format(value.normalize(), "f")


def parse_list(text: str, allowed: tuple[str, ...], option: str, parser, *, every=None) -> tuple[str, ...]:
    """A comma-separated subset of allowed; "all" means every (default: allowed)."""
    if text.strip() == "all":
        return every or allowed
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    unknown = [item for item in items if item not in allowed]
    if unknown or not items or len(set(items)) != len(items):
        parser.error(f"{option} takes a comma-separated subset of {','.join(allowed)}; got {text!r}")
    return items


def query_dirs(settings: BenchSettings) -> dict[str, Path]:
    """Where each side's query files are ('' names the only side of a plain run)."""
    if not settings.sides:
        return {"": settings.queries_dir}
    return {
        name: path if path == settings.queries_dir else path / "stages" / "tpch" / "queries"
        for name, path in settings.sides
    }


def load_query_texts(settings: BenchSettings) -> dict[tuple[str, str], str]:
    """(side, query) -> the SQL to run at this SF (Q11's fraction substituted)."""
    texts, missing = {}, []
    for side, directory in query_dirs(settings).items():
        for query in settings.queries:
            path = directory / f"{query}.sql"
            if path.is_file():
                texts[(side, query)] = engines.query_text(path.read_text(encoding="utf-8"), settings.sf)
            else:
                missing.append(str(path))
    if missing:
        raise BadInput(f"query files not found: {', '.join(missing)} (check --queries-dir or --side)")
    return texts


def check_results_path_is_new(path: Path, resume: bool) -> None:
    if path.exists() and not resume:
        raise BadInput(
            f"results file {path} already exists; without --resume this stage never appends to earlier "
            "results. Move it away, pass a fresh --results path, or continue it with --resume."
        )


def check_inputs(settings: BenchSettings) -> dict[tuple[str, str], str]:
    """Everything that can be checked before the first write; returns the query texts."""
    try:
        engines.check_data_dir(settings.data_dir)
    except engines.DataNotFound as error:
        raise BadInput(str(error)) from None
    texts = load_query_texts(settings)
    check_results_path_is_new(settings.results, settings.resume)
    return texts


class Validator:
    """Decides `valid` and `mismatch` for each answer, as the module docstring describes."""

    def __init__(self, sf: str, queries: tuple[str, ...]) -> None:
        self.kinds = answers.load_column_kinds()
        self.reference_dir = answers.reference_dir_for(sf)
        self.sf = sf
        self.references = self._load_references(queries)
        self.first_answers: dict[str, tuple[str, answers.Answer]] = {}

    def _load_references(self, queries) -> dict[str, answers.Answer]:
        if self.reference_dir is None:
            return {}
        loaded = {}
        for query in queries:
            path = answers.reference_file(self.reference_dir, query)
            if not path.is_file():
                raise BadInput(f"reference answer {path} is missing from the SF {self.sf} reference set")
            loaded[query] = answers.load_reference(self.reference_dir, query, self.kinds[query])
        return loaded

    def check(self, query: str, label: str, answer: answers.Answer) -> tuple[bool | None, str | None]:
        kinds = self.kinds[query]
        if query in self.references:
            difference = answers.compare(answer, self.references[query], kinds)
            if difference is None:
                return True, None
            path = answers.reference_file(self.reference_dir, query)
            return False, f"differs from the reference {path}: {difference}"
        if query not in self.first_answers:
            self.first_answers[query] = (label, answer)
            return None, None
        first_label, first = self.first_answers[query]
        difference = answers.compare(answer, first, kinds)
        if difference is None:
            return None, None
        return False, f"differs from the answer of {first_label}: {difference}"


def fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ResultsNotWritten(Exception):
    """The results file cannot take another record."""


class ResultsLog:
    """Append-only JSON Lines file, one fsync'd line per record.

    New: created exclusively. Resumed: its complete records are kept (a torn last line, left by a
    crash mid-write, is cut first) and new records are appended after them.
    """

    def __init__(self, path: Path, *, resume: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.records: list[dict] = read_complete_records(path) if resume else []
        # Unbuffered bytes: one write per record, so a failed write leaves nothing pending to flush.
        self._handle = open(path, "ab" if resume else "xb", buffering=0)  # "x": never an old file
        fsync_directory(path.parent)  # so the file itself survives a crash, not only its lines

    def done(self) -> tuple[set[tuple[str, str, str, int]], set[tuple[str, str, str]]]:
        """(side, engine, query, iteration) already recorded, and the (side, engine, query) items that failed
        (a failed execution counts for all the item's iterations)."""
        keys = {(r.get("side", ""), r["engine"], r["query"], r["iteration"]) for r in self.records}
        failed = {(r.get("side", ""), r["engine"], r["query"]) for r in self.records if not r["ok"]}
        return keys, failed

    def append(self, record: dict) -> None:
        try:
            append_record(self._handle, record)
        except OSError as error:  # disk full, file-size limit, I/O error
            raise ResultsNotWritten(
                f"cannot append a record to {self.path}: {error.strerror or error}. The "
                f"{len(self.records)} records before it are intact (a partly written last line is cut "
                "when the stage resumes). Free space or raise the limit, then resume the run."
            ) from error
        self.records.append(record)

    def close(self) -> None:
        self._handle.close()


def read_complete_records(path: Path) -> list[dict]:
    """The records of an existing results file; a torn last line is cut from the file, never parsed."""
    cut = cut_torn_tail(path)
    if cut:
        print(f"tpch-bench: cut a torn last line ({cut} bytes) from {path}", flush=True)
    return read_records(path)


def host_cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


INTERRUPT_REQUESTED = threading.Event()
INTERRUPTING_SIGNAL = [signal.SIGINT]


def note_interrupt_and_raise(signum, frame):
    """SIGINT/SIGTERM handler: remember the interrupt, so an engine that converts it into its own
    exception cannot make it look like a failed query and let the run go on."""
    INTERRUPT_REQUESTED.set()
    INTERRUPTING_SIGNAL[0] = signum
    raise KeyboardInterrupt


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def run_once(engine, sql: str) -> tuple[float, object, str | None]:
    """(elapsed ms, Arrow table or None, error text or None) for one execution plus full fetch."""
    started = time.perf_counter()
    try:
        table = engine.run(sql)
    except Exception as error:  # any engine failure is a result to record, not a crash
        if INTERRUPT_REQUESTED.is_set():  # e.g. DuckDB reports Ctrl-C as "Query interrupted"
            raise KeyboardInterrupt from error
        return (time.perf_counter() - started) * 1000, None, f"{type(error).__name__}: {error}"
    return (time.perf_counter() - started) * 1000, table, None


def make_record(context: dict, engine, query: str, iteration: int, side: str) -> dict:
    record = {
        **context,
        "engine": engine.name,
        "engine_version": engine.version,
        "query": query,
        "iteration": iteration,
        "warmup": iteration == 0,
    }
    if side:
        record.update(side=side, round=iteration)
    return record


def describe(record: dict, iterations: int) -> str:
    label = "cold" if record["warmup"] else f"iter {record['iteration']}/{iterations}"
    engine = f"{record['engine']}@{record['side']}" if record.get("side") else record["engine"]
    head = f"{record['query']} {engine:<10} {label:<9} {record['elapsed_ms']:10.1f} ms"
    if not record["ok"]:
        return f"{head}  ERROR {record['error']}"
    verdict = {True: "valid", False: "INVALID", None: "ok"}[record["valid"]]
    tail = f"  {record['mismatch']}" if record["mismatch"] else ""
    rows = "row " if record["rows"] == 1 else "rows"
    return f"{head} {record['rows']:>7} {rows}  {verdict}{tail}"


def execute_item(engine, query: str, sql: str, iteration: int, side: str, *, settings, context, log, validator) -> bool:
    """One recorded execution (the cold one when iteration is 0); False when it failed."""
    record = make_record(context, engine, query, iteration, side)
    record["cold"] = rounds.make_cold() if iteration == 0 else False
    record["started_at"] = utc_now()
    elapsed_ms, table, error = run_once(engine, sql)
    record.update(elapsed_ms=round(elapsed_ms, 3), ok=error is None, error=error)
    if error is None:
        answer = answers.normalise(table)
        who = f"{engine.name}@{side}" if side else engine.name
        label = f"{who}'s cold run" if iteration == 0 else f"{who}'s iteration {iteration}"
        valid, mismatch = validator.check(query, label, answer)
        record.update(rows=len(answer.rows), answer_digest=answer.digest)
        record.update(valid=valid, mismatch=mismatch)
    else:
        record.update(rows=None, answer_digest=None, valid=None, mismatch=None)
    log.append(record)
    print(describe(record, settings.iterations), flush=True)
    if error is not None:
        print(f"{query} {engine.name} {side}: skipping its remaining iterations after the error", flush=True)
    return error is None


def run_items(settings, texts: dict, opened: list, *, context, log, validator) -> None:
    """Every execution of rounds.schedule not yet recorded. An item continued part-way by a new process
    (a resume) first gets one unrecorded warm-up, so its measured iterations are warm all the same."""
    by_name = {engine.name: engine for engine in opened}
    done, failed = log.done()
    started: set[tuple[str, str, str]] = set()
    side_names = tuple(name for name, _ in settings.sides)
    for iteration, side, name, query in rounds.schedule(
        settings.queries, settings.engines, side_names, settings.iterations, settings.order_seed, rounds=settings.rounds
    ):
        item = (side, name, query)
        if item in failed or (*item, iteration) in done:
            continue
        sql = texts[(side, query)]
        if iteration > 0 and item not in started:
            run_once(by_name[name], sql)
            who = f"{name}@{side}" if side else name
            print(f"{query} {who:<10} resume warm-up (not recorded)", flush=True)
        started.add(item)
        if not execute_item(
            by_name[name], query, sql, iteration, side, settings=settings, context=context, log=log, validator=validator
        ):
            failed.add(item)


def open_engines(settings: BenchSettings) -> list:
    opened = []
    for name in settings.engines:
        try:
            opened.append(engines.open_engine(name, settings.data_dir))
        except ImportError as error:
            raise BadInput(
                f"engine {name} is not installed for {sys.executable} ({error}); "
                "install the project's tpch extra: pip install -e '.[tpch]'"
            ) from None
        except Exception as error:  # e.g. a corrupt Parquet file: the data, not the bench, is bad
            raise BadInput(
                f"{name} could not register the tables in {settings.data_dir}: "
                f"{type(error).__name__}: {error}. Regenerate the data into a fresh directory."
            ) from None
    return opened


def run_bench(settings: BenchSettings, texts: dict, opened: list, validator) -> list[dict]:
    context = {
        "run_id": settings.run_id,
        "sf": settings.sf,
        "host_cpu": host_cpu_model(),
        "host_cores": os.cpu_count(),
    }
    if settings.sides or settings.rounds:
        context["order_seed"] = settings.order_seed
    log = ResultsLog(settings.results, resume=settings.resume)
    if log.records:
        print(f"resuming: {len(log.records)} records already in {settings.results} are kept", flush=True)
    try:
        run_items(settings, texts, opened, context=context, log=log, validator=validator)
    finally:
        log.close()
    return log.records


def exit_code_for(records: list[dict]) -> int:
    return 1 if any(not r["ok"] or r["valid"] is False for r in records) else 0


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        texts = check_inputs(settings)
        validator = Validator(settings.sf, settings.queries)
        opened = open_engines(settings)
    except BadInput as error:
        print(f"tpch-bench: error: {error}", file=sys.stderr)
        return 2
    reference = validator.reference_dir
    print(
        f"TPC-H SF {settings.sf}: {len(settings.queries)} queries x {', '.join(settings.engines)}, "
        f"1 cold run + {settings.iterations} iterations"
        + (
            f", sides {', '.join(n for n, _ in settings.sides)} in rounds (seed {settings.order_seed})"
            if settings.sides
            else ""
        )
        + "; answers checked against "
        + (f"the reference in {reference}" if reference else "each other (no reference for this SF)"),
        flush=True,
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, note_interrupt_and_raise)
    try:
        records = run_bench(settings, texts, opened, validator)
    except ResultsNotWritten as error:
        print(f"tpch-bench: error: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        name = signal.Signals(INTERRUPTING_SIGNAL[0]).name
        print(
            f"tpch-bench: interrupted by {name}; the records so far are in {settings.results} "
            f"(regenerate a report from them with: python stages/tpch/report.py {settings.results} OUT.md)",
            file=sys.stderr,
        )
        return 128 + INTERRUPTING_SIGNAL[0]
    report.write_report(settings.results, settings.report)
    html_path = settings.report.parent / "report.html"
    write_html_report([settings.results], html_path, title=f"TPC-H SF {settings.sf}, run {settings.run_id}")
    code = exit_code_for(records)
    outcome = "FAILED: some query failed or gave a wrong answer" if code else "all answers ok"
    print(f"tpch-bench: {outcome}; results {settings.results}, report {settings.report} and {html_path}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
