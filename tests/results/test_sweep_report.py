"""`campaign compare --sweep`: results across the instance types of a sweep, from fabricated result records
stored under fabricated sweep members in a local store (no Terraform: the sweep's runs are taken as done)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from campaign.cli.main import main
from campaign.run.record import RunRecord
from campaign.run.sweep import Member, SweepBook, SweepRecord
from campaign.store import open_store
from tests.results import fabricate

SWEEP_ID = "sweep-20261201T120000Z-abcdef0-0001"


def store_run(store, run_id: str, items: list[dict]) -> None:
    record = RunRecord(run_id, "tpch", "campaign.yaml", "digest", "abcdef0", False, "sf1", "aws", "s", "2026-12-01")
    store.put_bytes(record.to_bytes(), record.keys.record)
    data = "".join(json.dumps(item) + "\n" for item in items).encode()
    store.put_bytes(data, record.keys.output("results/sf1/tpch.jsonl"))


@pytest.fixture
def swept(tmp_path: Path, monkeypatch):
    """A sweep of three types: c7i (baseline, 30 min at $0.20/h), c7g (every item 2× slower, 1 h at
    $0.10/h, 2 nodes) and m7i (failed, no results)."""
    monkeypatch.chdir(tmp_path)
    store_dir = tmp_path / "store"
    store = open_store(str(store_dir))
    store_run(store, "20261201T120000Z-abcdef0-aaaa", fabricate.records(1, iterations=8))
    slow = {(q, e): 2.0 for q in fabricate.QUERIES for e in fabricate.ENGINES}
    store_run(store, "20261201T123000Z-abcdef0-bbbb", fabricate.records(2, iterations=8, slow=slow))
    members = [
        Member("c7i.xlarge", 1, "succeeded", "20261201T120000Z-abcdef0-aaaa", "2026-12-01T12:00:00+00:00",
               "2026-12-01T12:30:00+00:00", 0.2),
        Member("c7g.xlarge", 2, "succeeded", "20261201T123000Z-abcdef0-bbbb", "2026-12-01T12:30:00+00:00",
               "2026-12-01T13:30:00+00:00", 0.1),
        Member("m7i.large", 1, "failed", "20261201T133000Z-abcdef0-cccc", "2026-12-01T13:30:00+00:00",
               "2026-12-01T13:31:00+00:00", None, reason="terraform plan failed"),
    ]  # fmt: skip
    record = SweepRecord(SWEEP_ID, "campaign.yaml", "sf1", "aws", str(store_dir), "abcdef0", "2026-12-01", members)
    SweepBook(record, store, tmp_path / ".campaign").save()
    return store_dir


def compare(*args: str, capsys) -> tuple[int, str, str]:
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_time_ratio_and_price_performance_per_type(swept, capsys):
    code, out, err = compare("--sweep", SWEEP_ID[:20], "--store", str(swept), "--json", capsys=capsys)
    assert code == 0, err
    document = json.loads(out)
    assert document["baseline"] == "c7i.xlarge"
    assert len(document["items"]) == 22 * 2  # every query × engine
    for item in document["items"]:
        medians = item["medians_ms"]
        assert medians["c7g.xlarge"] / medians["c7i.xlarge"] == pytest.approx(2.0, rel=0.08)
        assert medians["m7i.large"] is None
    types = {t["instance_type"]: t for t in document["types"]}
    assert types["c7i.xlarge"]["campaign_cost_usd"] == pytest.approx(0.5 * 0.2)
    assert types["c7g.xlarge"]["campaign_cost_usd"] == pytest.approx(1.0 * 0.1 * 2)  # hours × price × nodes
    assert types["c7g.xlarge"]["geomean_ratio"] == pytest.approx(2.0, rel=0.03)
    base_pass, other_pass = types["c7i.xlarge"]["pass_cost_usd"], types["c7g.xlarge"]["pass_cost_usd"]
    assert other_pass / base_pass == pytest.approx(2.0 * 0.5 * 2, rel=0.05)  # 2× the time, half the price, 2 nodes
    assert types["m7i.large"]["pass_cost_usd"] is None and "terraform plan failed" in types["m7i.large"]["note"]


def test_text_table_and_another_baseline(swept, capsys):
    code, out, err = compare("--sweep", SWEEP_ID, "--store", str(swept), "--baseline", "c7g.xlarge", capsys=capsys)
    assert code == 0, err
    assert f"sweep {SWEEP_ID}: median warm time per item and type, ratio to c7g.xlarge" in out
    assert "c7g.xlarge (baseline)" in out and "$0.1000" in out and "$0.2000" in out
    q01 = next(line for line in out.splitlines() if line.startswith("q01 duckdb sf1"))
    ratios = [float(cell.split("(")[1].rstrip(")")) for cell in q01.split("  ") if "(" in cell]
    assert ratios[0] == pytest.approx(0.5, rel=0.08) and ratios[1] == 1.0
    assert "no results (failed: terraform plan failed)" in out


def test_a_baseline_without_results_is_refused_naming_the_types(swept, capsys):
    code, _, err = compare("--sweep", SWEEP_ID, "--store", str(swept), "--baseline", "m7i.large", capsys=capsys)
    assert code == 2
    assert f"--baseline m7i.large: not a type of sweep {SWEEP_ID} with results" in err
    assert "c7i.xlarge, c7g.xlarge" in err


def test_html_report_holds_the_sweep_tables_and_the_comparison(swept, tmp_path, capsys):
    page = tmp_path / "sweep.html"
    code, _, err = compare("--sweep", SWEEP_ID, "--store", str(swept), "--html", str(page), capsys=capsys)
    assert code == 0, err
    text = page.read_text()
    assert f"Sweep {SWEEP_ID}" in text and "c7g.xlarge (baseline)" not in text
    assert "c7i.xlarge (baseline)" in text and "campaign cost" in text and "plotly" in text
    assert "c7i.xlarge" in text and "c7g.xlarge" in text and "slower" in text  # the existing comparison section


def test_compare_without_sides_or_sweep_says_what_it_needs(swept, capsys):
    code, _, err = compare(capsys=capsys)
    assert code == 2 and "--sweep SWEEP" in err and "BASE and at least one CONTENDER" in err
