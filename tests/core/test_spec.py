"""The campaign file model: each refusal names file:line, the stage and the fix; nothing runs."""

from pathlib import Path

import pytest

from campaign.errors import InputError
from campaign.spec.load import load_campaign

SCENARIOS = Path(__file__).parent / "scenarios" / "invalid"
REPO_ROOT = Path(__file__).resolve().parents[2]


def expectations(path: Path) -> list[str]:
    return [
        line.split("expect:", 1)[1].strip() for line in path.read_text().splitlines() if line.startswith("# expect:")
    ]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_campaign_file_is_refused_with_file_line_and_fix(scenario: Path):
    with pytest.raises(InputError) as refused:
        load_campaign(scenario)
    message = str(refused.value)
    for expected in expectations(scenario):
        if expected.startswith(":"):
            expected = f"{scenario}{expected}"
        assert expected in message, f"\nexpected: {expected}\nin:\n{message}"


def test_every_problem_is_reported_at_once():
    scenario = SCENARIOS / "bad_kind_and_timeout.yaml"
    with pytest.raises(InputError) as refused:
        load_campaign(scenario)
    assert f"campaign file {scenario} has 2 problems; nothing was run:" in str(refused.value)


def test_default_campaign_loads_with_its_stages_and_scale_factors():
    spec = load_campaign(REPO_ROOT / "campaign.yaml")
    assert [s.name for s in spec.stages] == ["tpch-generate", "tpch-bench"]
    assert spec.scale_factors == ("0.01", "0.1", "1", "10", "100")
    assert spec.stage("tpch-bench").needs == ("tpch-generate",)
    assert spec.stage("tpch-bench").incremental == "results/sf{{ sf }}/tpch.jsonl"


def test_durations_and_scale_factor_spellings_are_normalised(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: t\nscale_factors: [1.0, 0.010, 10]\nstages:\n"
        "  - {name: a, kind: data, run: 'true', timeout: 1h30m}\n"
        "  - {name: b, kind: data, run: 'true', timeout: 45}\n"
    )
    spec = load_campaign(path)
    assert spec.scale_factors == ("1", "0.01", "10")
    assert spec.stage("a").timeout_s == 5400.0
    assert spec.stage("b").timeout_s == 45.0
    assert spec.default_selection == "sf1"


def test_missing_campaign_file_says_how_to_pass_one(tmp_path: Path):
    with pytest.raises(InputError, match=r"campaign file .*nope.yaml does not exist. Pass the right one with -f"):
        load_campaign(tmp_path / "nope.yaml")
