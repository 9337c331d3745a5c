"""The reference answers shipped in stages/tpch/answers are the ones the bench can trust."""

from __future__ import annotations

import hashlib
import re
import subprocess

from tpch_helpers import OFFICIAL_ANSWERS, OFFICIAL_COLUMN_KINDS, QUERIES, REPO_ROOT, SHIPPED_ANSWERS

# sha256 of `sha256sum q*.out` (sorted by name) over the TPC-H kit's SF 1 answer set, and of its colprecision.txt:
# the shipped copies must stay byte for byte the specification's.
OFFICIAL_SF1_SET_SHA256 = "5cd1e567fbb5a8d4db7a9d3feb4c6a734bd5e56d3c438a19ee0cc6676dd95122"
OFFICIAL_COLPRECISION_SHA256 = "f36efbcc1837d5426724980943e623dc834d5ff8cee53950baa31c12128e3220"
# A path to a folder beside the repository: the tests must run in a clone with nothing beside it.
OUTSIDE_THE_REPOSITORY = re.compile(r"\.\./" + "shared|parents?(\\[\\d\\])?\\s*/\\s*[\"']" + "shared")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_shipped_sf1_reference_is_the_official_answer_set():
    answers = sorted(OFFICIAL_ANSWERS.glob("q*.out"))
    assert sorted(p.name for p in OFFICIAL_ANSWERS.iterdir()) == sorted(f"q{int(q[1:])}.out" for q in QUERIES)
    listing = "".join(f"{sha256(p.read_bytes())}  {p.name}\n" for p in answers)
    assert sha256(listing.encode()) == OFFICIAL_SF1_SET_SHA256


def test_shipped_column_kinds_are_the_official_ones():
    assert sha256(OFFICIAL_COLUMN_KINDS.read_bytes()) == OFFICIAL_COLPRECISION_SHA256


def test_nothing_in_the_project_reads_beside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files", "--", "*.py", "*.sh", "*.toml", "*.yaml", "*.yml", "Makefile"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    readers = [name for name in tracked if OUTSIDE_THE_REPOSITORY.search((REPO_ROOT / name).read_text("utf-8"))]
    assert readers == []


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
