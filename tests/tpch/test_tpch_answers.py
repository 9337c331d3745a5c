"""Normalisation and the TPC-H match rules (answers.py), on hand-made answers."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pyarrow as pa
import pytest


def one_column(values, type_=None):
    return pa.table({"c": pa.array(values, type=type_)})


def test_a_number_normalises_the_same_whatever_its_type(answers_module):
    forms = [
        one_column([1995]),
        one_column([1995.0]),
        one_column([Decimal("1995.00")], pa.decimal128(15, 2)),
    ]
    assert len({answers_module.normalise(t).digest for t in forms}) == 1
    assert answers_module.normalise(forms[0]).rows == (("1995",),)


@pytest.mark.parametrize(
    "value, text",
    [(0.125, "0.13"), (Decimal("42698382.8550"), "42698382.86"), (25.5, "25.50"), (-0.001, "0"), (3, "3")],
)
def test_numbers_round_half_up_to_two_decimals(answers_module, value, text):
    assert answers_module.normalise_cell(value) == text


def test_strings_lose_trailing_but_keep_leading_spaces_and_dates_are_iso(answers_module):
    table = pa.table({"s": [" need to boost  "], "d": [datetime.date(1995, 3, 5)]})
    assert answers_module.normalise(table).rows == ((" need to boost", "1995-03-05"),)


def test_row_order_is_part_of_the_answer(answers_module):
    ascending, descending = one_column([1, 2]), one_column([2, 1])
    assert answers_module.normalise(ascending).digest != answers_module.normalise(descending).digest


def answer(answers_module, *rows):
    return answers_module.Answer.from_rows(rows)


@pytest.mark.parametrize(
    "kind, expected, close, far",
    [
        ("sum", "1000.00", "1100", "1100.01"),
        ("avg", "25.52", "25.77", "25.78"),
        ("rat", "16.38", "16.54", "16.55"),
        ("int", "7", "7", "8"),
        ("str", "MAIL", "MAIL", "SHIP"),
    ],
)
def test_compare_applies_the_tolerance_of_each_column_kind(answers_module, kind, expected, close, far):
    want = answer(answers_module, (expected,))
    assert answers_module.compare(answer(answers_module, (close,)), want, (kind,)) is None
    difference = answers_module.compare(answer(answers_module, (far,)), want, (kind,))
    assert difference is not None and "row 1, column 1" in difference


def test_compare_reports_a_different_row_count(answers_module):
    one_row, two_rows = answer(answers_module, ("1",)), answer(answers_module, ("1",), ("2",))
    assert answers_module.compare(one_row, two_rows, ("int",)) == "expected 2 rows, got 1"


def test_a_written_reference_loads_back_to_the_same_answer(answers_module, tmp_path):
    table = pa.table(
        {
            "a": [" lead", "x"],
            "b": [12.5, 3.0],
            "c": [datetime.date(1995, 1, 1), datetime.date(1996, 1, 1)],
        }
    )
    original = answers_module.normalise(table)
    path = tmp_path / "q1.out"
    answers_module.write_reference(path, ["a", "b", "c"], original)
    assert answers_module.load_reference(tmp_path, "q01", ("str", "avg", "str")) == original
