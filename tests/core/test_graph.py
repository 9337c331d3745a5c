"""Selection parsing and expansion into ordered stage runs."""

from pathlib import Path

import pytest

from campaign.errors import InputError
from campaign.planning.graph import expand
from campaign.spec.load import load_campaign
from campaign.spec.selection import parse_selection

from .conftest import REPO_ROOT, TOY_CAMPAIGN


@pytest.fixture
def toy(tmp_path: Path):
    path = tmp_path / "campaign.yaml"
    path.write_text(TOY_CAMPAIGN)
    return load_campaign(path)


@pytest.fixture
def tpch():
    return load_campaign(REPO_ROOT / "campaign.yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        ("sf0", "selection item 'sf0': the scale factor '0' must be greater than 0"),
        ("sfx", "selection item 'sfx': the scale factor 'x' is not a number"),
        ("sf-1", "selection item 'sf-1': the scale factor '-1' must be greater than 0"),
        (
            "sf2",
            "selection 'sf2': sf2 is not a scale factor of campaign 'tpch'. Allowed: sf0.01, sf0.1, sf1, sf10, sf100",
        ),
        ("sf1,sf1.0", "selection 'sf1,sf1.0': sf1 is selected twice"),
        ("1", "selection item '1' must start with 'sf'"),
        ("sf1,,sf10", "selection 'sf1,,sf10' has an empty item"),
        ("", "has an empty item"),
    ],
)
def test_bad_selection_is_refused_with_the_reason(tpch, text, message):
    with pytest.raises(InputError) as refused:
        parse_selection(text, tpch)
    assert message in str(refused.value)
    assert refused.value.exit_code == 2


def test_selection_keeps_order_and_canonical_form(tpch):
    assert parse_selection("sf10, SF0.010,sf1", tpch) == ("10", "0.01", "1")


def test_per_sf_stages_expand_and_need_their_own_sf(tpch):
    runs = expand(tpch, ("1", "10"))
    by_id = {run.id: run for run in runs}
    assert set(by_id) == {"tpch-generate[sf1]", "tpch-bench[sf1]", "tpch-generate[sf10]", "tpch-bench[sf10]"}
    assert by_id["tpch-bench[sf10]"].needs == ("tpch-generate[sf10]",)
    assert by_id["tpch-bench[sf1]"].needs == ("tpch-generate[sf1]",)


@pytest.mark.parametrize("selection", [("0.01",), ("1", "10"), ("100", "0.1", "1"), ("0.01", "0.1", "1", "10", "100")])
def test_data_generation_is_ordered_before_its_bench_for_every_sf(tpch, selection):
    order = [run.id for run in expand(tpch, selection)]
    for sf in selection:
        assert order.index(f"tpch-generate[sf{sf}]") < order.index(f"tpch-bench[sf{sf}]")
    # One SF is finished before the next starts, so the first results arrive early.
    assert order[:2] == [f"tpch-generate[sf{selection[0]}]", f"tpch-bench[sf{selection[0]}]"]


def test_outputs_of_different_sfs_never_collide(tpch):
    runs = expand(tpch, tpch.scale_factors)
    outputs = [out for run in runs for out in run.outputs(tpch)]
    assert len(outputs) == len(set(outputs)) == 4 * len(tpch.scale_factors)  # data, jsonl, md, html
    assert "results/sf10/tpch.jsonl" in outputs and "results/sf1/tpch.jsonl" in outputs


def test_a_global_stage_needs_every_selected_sf_and_runs_last(toy):
    runs = expand(toy, ("1", "10"))
    assert runs[-1].id == "report"
    assert runs[-1].needs == ("bench[sf1]", "bench[sf10]")


def test_commands_are_rendered_with_the_sf_and_vars(toy):
    report = expand(toy, ("1",))[-1]
    bench = expand(toy, ("1",))[1]
    assert (
        bench.command(toy, run_id="R", output_dir="/o", work_dir="/w")
        == "python scripts/bench.py /o/data/sf1 /o/results/sf1/toy.jsonl"
    )
    assert "hello $CAMPAIGN_RUN_ID" in report.command(toy, run_id="R", output_dir="/o", work_dir="/w")
