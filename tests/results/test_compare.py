"""`campaign compare` on fabricated result files: verdicts, direction, outputs, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.results.fabricate import ENGINES, QUERIES, records, write


def compare(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "campaign.cli", "compare", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def verdicts(result: subprocess.CompletedProcess) -> dict[str, str]:
    assert result.returncode in (0, 6), result.stderr
    document = json.loads(result.stdout)
    return {f"{row['item']} {row['engine']}": row["verdict"] for row in document["comparisons"][0]["rows"]}


def test_two_samples_of_the_same_machine_show_no_change(tmp_path: Path):
    base = write(tmp_path / "a.jsonl", records(1))
    contender = write(tmp_path / "b.jsonl", records(2))
    found = verdicts(compare(str(base), str(contender), "--json", cwd=tmp_path))
    assert len(found) == len(QUERIES) * len(ENGINES)
    assert set(found.values()) == {"no change"}


def test_a_slowed_query_is_flagged_slower_and_a_faster_one_faster(tmp_path: Path):
    base = write(tmp_path / "a.jsonl", records(1))
    changed = {("q05", "duckdb"): 1.15, ("q09", "datafusion"): 0.8}
    contender = write(tmp_path / "b.jsonl", records(2, slow=changed))
    found = verdicts(compare(str(base), str(contender), "--json", cwd=tmp_path))
    assert found.pop("q05 duckdb") == "slower"
    assert found.pop("q09 datafusion") == "faster"
    assert set(found.values()) == {"no change"}


def test_a_change_inside_the_noise_band_is_no_change_even_when_significant(tmp_path: Path):
    base = write(tmp_path / "a.jsonl", records(1, cv=0.005))
    contender = write(tmp_path / "b.jsonl", records(2, cv=0.005, slow={("q05", "duckdb"): 1.03}))
    assert verdicts(compare(str(base), str(contender), "--json", cwd=tmp_path))["q05 duckdb"] == "no change"
    flagged = compare(str(base), str(contender), "--json", "--threshold", "0.01", cwd=tmp_path)
    assert verdicts(flagged)["q05 duckdb"] == "slower"


def test_failing_fixed_missing_and_answer_changed(tmp_path: Path):
    base_records, contender_records = records(1), records(2)
    for record in contender_records:
        if record["query"] == "q02" and record["engine"] == "duckdb":
            record.update(ok=False, error="boom", elapsed_ms=1.0)
        if record["query"] == "q04":
            record["answer_digest"] = "another"
    for record in base_records:
        if record["query"] == "q03" and record["engine"] == "datafusion":
            record.update(valid=False, mismatch="wrong")
    contender_records = [r for r in contender_records if r["query"] != "q07"]
    found = verdicts(
        compare(
            str(write(tmp_path / "a.jsonl", base_records)),
            str(write(tmp_path / "b.jsonl", contender_records)),
            "--json",
            cwd=tmp_path,
        )
    )
    assert found["q02 duckdb"] == "newly failing"
    assert found["q03 datafusion"] == "fixed"
    assert found["q04 duckdb"] == found["q04 datafusion"] == "answer changed"
    assert found["q07 duckdb"] == found["q07 datafusion"] == "missing"


def test_fail_on_regression_exits_6_and_names_the_item(tmp_path: Path):
    base = write(tmp_path / "a.jsonl", records(1))
    contender = write(tmp_path / "b.jsonl", records(2, slow={("q11", "duckdb"): 1.3}))
    result = compare(str(base), str(contender), "--fail-on-regression", cwd=tmp_path)
    assert result.returncode == 6, result.stderr
    assert "q11 duckdb sf1 (slower)" in result.stderr
    assert "SLOWER" in result.stdout and "geometric mean of the ratios" in result.stdout
    same = compare(str(base), str(write(tmp_path / "c.jsonl", records(3))), "--fail-on-regression", cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr


def test_markdown_html_and_several_contenders(tmp_path: Path):
    base = write(tmp_path / "a.jsonl", records(1))
    one, two = write(tmp_path / "b.jsonl", records(2)), write(tmp_path / "c.jsonl", records(3))
    result = compare(str(base), str(one), str(two), "--markdown", "--html", str(tmp_path / "c.html"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("| item | base ms |") == 2
    assert "b.jsonl vs a.jsonl" in result.stdout and "c.jsonl vs a.jsonl" in result.stdout
    page = (tmp_path / "c.html").read_text()
    assert "chart-ratio-0" in page and "chart-ratio-1" in page and "<script src" not in page  # all inline


def test_by_engine_compares_the_engines_of_one_file(tmp_path: Path):
    items = records(1, slow={(q, "datafusion"): 2.0 for q in QUERIES})
    result = compare(str(write(tmp_path / "a.jsonl", items)), "--by", "engine", "--json", cwd=tmp_path)
    document = json.loads(result.stdout)["comparisons"][0]
    assert (document["base"], document["contender"]) == ("duckdb", "datafusion")
    assert {row["verdict"] for row in document["rows"]} == {"slower"}
    assert 1.9 < document["summary"]["gmean"] < 2.1
    assert document["summary"]["low"] < document["summary"]["gmean"] < document["summary"]["high"]


def test_differing_hosts_and_engine_versions_are_named(tmp_path: Path):
    base = write(tmp_path / "a.jsonl", records(1))
    contender = write(tmp_path / "b.jsonl", [r | {"engine_version": "2.0"} for r in records(2)])
    result = compare(str(base), str(contender), cwd=tmp_path)
    assert "warning: the sides differ: duckdb version: 1.0 vs 2.0" in result.stdout


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ('{"query": "q01", "ok": "yes"}', "field `ok`"),
        ('{"query": "q01", "ok": true}', "numeric `elapsed_ms`"),
        ('{"ok": true, "elapsed_ms": 1}', "`query` (or `item`)"),
        ("not json", "not a JSON record"),
    ],
)
def test_a_record_breaking_the_contract_is_refused_naming_file_line_and_field(tmp_path: Path, line: str, named: str):
    base = write(tmp_path / "a.jsonl", records(1))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(records(2)[0]) + "\n" + line + "\n")
    result = compare(str(base), str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{bad}, line 2" in result.stderr and named in result.stderr


def test_one_side_alone_is_refused(tmp_path: Path):
    result = compare(str(write(tmp_path / "a.jsonl", records(1))), cwd=tmp_path)
    assert result.returncode == 2 and "needs a BASE and at least one CONTENDER" in result.stderr


def test_report_writes_one_html_file_with_the_runs_and_their_comparison(tmp_path: Path):
    base = write(tmp_path / "a.jsonl", records(1, iterations=5))
    contender = write(tmp_path / "b.jsonl", records(2, iterations=5))
    result = subprocess.run(
        [sys.executable, "-m", "campaign.cli", "report", str(base), str(contender), "-o", str(tmp_path / "r.html")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "r.html").read_text()
    assert page.count("<section>") == 3 and "chart-ratio-0" in page and "chart-iterations-1" in page
    assert page.count("<tr data-query=") == 2 * len(QUERIES)


def test_items_moving_both_ways_between_separate_runs_warn_of_machine_drift(tmp_path: Path):
    changed = {(q, "duckdb"): 1.3 for q in QUERIES[:5]} | {(q, "duckdb"): 0.7 for q in QUERIES[5:10]}
    base = write(tmp_path / "a.jsonl", records(1))
    contender = write(tmp_path / "b.jsonl", records(2, slow=changed))
    result = compare(str(base), str(contender), cwd=tmp_path)
    assert "5 items slower and 5 faster at once" in result.stdout and "campaign ab" in result.stdout
    quiet = compare(
        str(base), str(write(tmp_path / "c.jsonl", records(3, slow=dict(list(changed.items())[:5])))), cwd=tmp_path
    )
    assert "at once" not in quiet.stdout
