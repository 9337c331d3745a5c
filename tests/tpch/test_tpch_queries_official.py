"""The query files, run at SF 1 on both engines, reproduce the TPC-H specification's answers.

This is the test that checks stages/tpch/queries against the specification: data from
tpchgen-cli at SF 1, answers from the specification's answer set (shipped as stages/tpch/answers/sf1,
pinned by digest in test_tpch_reference.py), compared with its per-column precision rules (answers.py).
"""

from __future__ import annotations

import pytest
from tpch_helpers import OFFICIAL_COLUMN_KINDS, QUERIES, QUERIES_DIR, load_stage_module

ENGINE_NAMES = ("duckdb", "datafusion")


@pytest.fixture(scope="module")
def engines_module():
    return load_stage_module("engines")


@pytest.fixture(scope="module", params=ENGINE_NAMES)
def sf1_engine(request, engines_module, sf1_data):
    return engines_module.open_engine(request.param, sf1_data)


@pytest.fixture(scope="module")
def official_kinds(answers_module):
    return answers_module.load_column_kinds(OFFICIAL_COLUMN_KINDS)


@pytest.mark.parametrize("query", QUERIES)
def test_query_reproduces_the_official_sf1_answer(
    query, sf1_engine, answers_module, engines_module, official_answers, official_kinds
):
    sql = engines_module.query_text((QUERIES_DIR / f"{query}.sql").read_text(encoding="utf-8"), "1")
    answer = answers_module.normalise(sf1_engine.run(sql))
    expected = answers_module.load_reference(official_answers, query, official_kinds[query])
    difference = answers_module.compare(answer, expected, official_kinds[query])
    assert difference is None, f"{query} on {sf1_engine.name} at SF 1: {difference}"
