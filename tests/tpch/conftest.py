"""Fixtures for the TPC-H stage tests: the answers module and generated data.

Data is generated once per session with the stage's own generate.sh (so those fixtures exercise it
too): SF 0.01 for the bench tests (about 2 s) and SF 1 for the official-answer tests (about 6 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tpch_helpers import OFFICIAL_ANSWERS, generate_or_fail, load_stage_module


@pytest.fixture(scope="session")
def answers_module():
    return load_stage_module("answers")


@pytest.fixture(scope="session")
def sf001_data(tmp_path_factory) -> Path:
    return generate_or_fail("0.01", tmp_path_factory.mktemp("tpch") / "data" / "sf0.01")


@pytest.fixture(scope="session")
def sf1_data(tmp_path_factory) -> Path:
    return generate_or_fail("1", tmp_path_factory.mktemp("tpch") / "data" / "sf1")


@pytest.fixture(scope="session")
def official_answers() -> Path:
    return OFFICIAL_ANSWERS
