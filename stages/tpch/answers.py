"""Normalised query answers, their digests, and the comparison rules for TPC-H validation.

Normalisation (what `normalise` does to an Arrow result, cell by cell, keeping row order):
- NULL -> "NULL"; booleans -> "true"/"false";
- strings are right-stripped (CHAR padding in the official answers; leading spaces are data);
- dates and timestamps -> ISO 8601 text ("1995-03-05");
- every number (int, float, decimal) -> rounded half-up to 2 decimals and written without an
  exponent; a whole number drops its ".00" ("1995", "37734107", "0.05", "25.52"). So an engine
  that returns a year as a float, or an average as a decimal instead of a double, still gives
  the same text.
Column names are not part of an answer (engines name unaliased expressions differently), and
row order is: every TPC-H query fixes its output order with ORDER BY, and order is part of the
answer the specification publishes.

answer_digest = sha256 of the normalised rows encoded as compact JSON (a list of lists of text).

Matching (`compare`): two answers match when their digests are equal; otherwise they are compared
cell by cell with the TPC-H rules (specification clause 2.1.3.5) for the column kinds listed in
answers/colprecision.txt (line N = query N), so float noise at a rounding boundary does not fail
a correct answer:
- str, int, cnt, num: the normalised text must be equal;
- sum: within 100 of the expected value;
- avg, rat: the value rounded to 0.01 must be within 1 % of the expected value.
Row counts and column counts must be equal.

References live in answers/sf<SF>/qN.out, in the format of the TPC-H kit's answer files: a header
line, then one row per line with cells separated by "|" and padded with spaces. Cells of kind str
are right-stripped, all other kinds are parsed as numbers; the result is normalised like an engine
answer, so the official files (answers/sf1, byte copies of the kit's dbgen/answers) and the ones
make_reference.py writes (answers/sf0.01) load the same way.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ANSWERS_DIR = Path(__file__).resolve().parent / "answers"
COLPRECISION_FILE = ANSWERS_DIR / "colprecision.txt"
EXACT_KINDS = frozenset({"str", "int", "cnt", "num"})
SUM_TOLERANCE = Decimal(100)
RATIO_TOLERANCE = Decimal("0.01")
CENT = Decimal("0.01")
WIDE = decimal.Context(prec=80)  # room for any decimal128/float value; the default 28 digits is not


@dataclass(frozen=True)
class Answer:
    """A normalised query result: rows of canonical cell text, and their digest."""

    rows: tuple[tuple[str, ...], ...]
    digest: str

    @classmethod
    def from_rows(cls, rows) -> Answer:
        frozen = tuple(tuple(row) for row in rows)
        return cls(rows=frozen, digest=digest_rows(frozen))


def normalise_number(value) -> str:
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        return str(number)
    rounded = number.quantize(CENT, rounding=decimal.ROUND_HALF_UP, context=WIDE)
    if rounded == rounded.to_integral_value():
        return str(int(rounded))
    return f"{rounded:f}"


def normalise_cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.rstrip()
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (int, float, Decimal)):
        return normalise_number(value)
    return str(value).rstrip()


def normalise(table) -> Answer:
    """Normalise a pyarrow.Table (see the module docstring for the rules)."""
    columns = [column.to_pylist() for column in table.columns]
    rows = [tuple(normalise_cell(value) for value in row) for row in zip(*columns, strict=True)]
    return Answer.from_rows(rows)


def digest_rows(rows) -> str:
    encoded = json.dumps([list(row) for row in rows], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def query_number(query: str) -> int:
    """'q07' -> 7."""
    return int(query.lstrip("q"))


def load_column_kinds(path: Path = COLPRECISION_FILE) -> dict[str, tuple[str, ...]]:
    """Column kinds per query, {'q01': ('str', 'str', 'sum', ...), ...}."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {f"q{number:02d}": tuple(line.split()) for number, line in enumerate(lines[:22], 1)}


def parse_reference_cell(cell: str, kind: str) -> str:
    if kind == "str":
        return cell.rstrip()
    try:
        return normalise_number(Decimal(cell.strip()))
    except decimal.InvalidOperation:
        return cell.strip()


def parse_reference_text(text: str, kinds: tuple[str, ...], *, source: str) -> Answer:
    lines = text.splitlines()[1:]  # the first line is the header
    rows = []
    for line_number, line in enumerate(lines, 2):
        cells = line.split("|")
        if len(cells) != len(kinds):
            raise ValueError(
                f"{source}, line {line_number}: {len(cells)} cells but colprecision.txt lists "
                f"{len(kinds)} columns for this query"
            )
        rows.append(tuple(parse_reference_cell(cell, kind) for cell, kind in zip(cells, kinds, strict=True)))
    return Answer.from_rows(rows)


def reference_file(reference_dir: Path, query: str) -> Path:
    return reference_dir / f"q{query_number(query)}.out"


def reference_dir_for(sf: str, answers_dir: Path = ANSWERS_DIR) -> Path | None:
    """The shipped reference directory for a scale factor, or None if there is none."""
    candidate = answers_dir / f"sf{sf}"
    return candidate if candidate.is_dir() else None


def load_reference(reference_dir: Path, query: str, kinds: tuple[str, ...]) -> Answer:
    path = reference_file(reference_dir, query)
    return parse_reference_text(path.read_text(encoding="utf-8"), kinds, source=str(path))


def compare_cell(actual: str, expected: str, kind: str) -> bool:
    if actual == expected:
        return True
    if kind in EXACT_KINDS:
        return False
    try:
        got, want = Decimal(actual), Decimal(expected)
    except decimal.InvalidOperation:
        return False
    if kind == "sum":
        return abs(got - want) <= SUM_TOLERANCE
    return abs(got - want) <= abs(want) * RATIO_TOLERANCE  # avg, rat


def compare(actual: Answer, expected: Answer, kinds: tuple[str, ...]) -> str | None:
    """None when the answers match, else a one-line description of the first difference."""
    if actual.digest == expected.digest:
        return None
    if len(actual.rows) != len(expected.rows):
        return f"expected {len(expected.rows)} rows, got {len(actual.rows)}"
    for row_number, (got_row, want_row) in enumerate(zip(actual.rows, expected.rows, strict=True), 1):
        if len(got_row) != len(want_row) or len(got_row) != len(kinds):
            return (
                f"row {row_number}: expected {len(want_row)} columns "
                f"({len(kinds)} in colprecision.txt), got {len(got_row)}"
            )
        for column, (got, want, kind) in enumerate(zip(got_row, want_row, kinds, strict=True), 1):
            if not compare_cell(got, want, kind):
                return f"row {row_number}, column {column} ({kind}): expected {want!r}, got {got!r}"
    return None


def write_reference(path: Path, header: list[str], answer: Answer) -> None:
    """Write an answer in the answer-file format (header line, '|'-separated cells)."""
    lines = ["|".join(header)]
    for row in answer.rows:
        if any("|" in cell or "\n" in cell for cell in row):
            raise ValueError(f"{path}: a cell contains '|' or a newline; cannot write {row!r}")
        lines.append("|".join(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
