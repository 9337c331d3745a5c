"""The reference answers shipped in stages/tpch/answers are the ones the bench can trust."""

from __future__ import annotations

from tpch_helpers import QUERIES, SHIPPED_ANSWERS


def test_shipped_sf1_reference_is_the_official_answer_set(official_answers):
    shipped = sorted(p.name for p in (SHIPPED_ANSWERS / "sf1").iterdir())
    official = sorted(p.name for p in official_answers.glob("q*.out"))
    assert shipped == official
    for name in official:
        assert (SHIPPED_ANSWERS / "sf1" / name).read_bytes() == (official_answers / name).read_bytes(), name


def test_shipped_column_kinds_are_the_official_ones(official_answers):
    shipped = (SHIPPED_ANSWERS / "colprecision.txt").read_text()
    assert shipped == (official_answers / "colprecision.txt").read_text()


def test_references_ship_for_sf_001_and_sf_1_only(answers_module):
    shipped = sorted(p.name for p in SHIPPED_ANSWERS.iterdir() if p.is_dir())
    assert shipped == ["sf0.01", "sf1"]
    assert answers_module.reference_dir_for("10") is None


def test_every_shipped_reference_loads_with_the_listed_column_kinds(answers_module):
    kinds = answers_module.load_column_kinds()
    assert sorted(kinds) == list(QUERIES)
    for sf in ("0.01", "1"):
        reference_dir = answers_module.reference_dir_for(sf)
        for query in QUERIES:
            answer = answers_module.load_reference(reference_dir, query, kinds[query])
            assert answer.rows, f"{reference_dir}: {query} has no rows"
