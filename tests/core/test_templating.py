"""Templates run in jinja2's sandbox (a campaign file cannot call into Python) and compile once each."""

from __future__ import annotations

from pathlib import Path

import pytest

import campaign.spec.templating as templating
from campaign.errors import InputError
from campaign.planning.graph import expand
from campaign.spec.load import load_campaign
from campaign.spec.selection import parse_selection
from campaign.spec.templating import TemplateProblem, names_in, render
from campaign.targets.aws.userdata import UserdataParams, render_userdata

from .conftest import make_repo, run_cli

ESCAPE = "{{ cycler.__init__.__globals__.os.system('touch %s') }}"


def campaign_running(marker: Path, *, key: str = "run") -> str:
    command = ESCAPE % marker if key == "run" else "true"
    produces = f'["{ESCAPE % marker}"]' if key == "produces" else '["out.txt"]'
    return (
        f"name: t\nscale_factors: [1]\nstages:\n  - name: s\n    kind: data\n"
        f'    run: "{command}"\n    produces: {produces}\n'
    )


@pytest.mark.parametrize("key", ["run", "produces"])
def test_a_template_reaching_python_internals_is_a_campaign_file_error(tmp_path: Path, key: str):
    marker = tmp_path / "pwned"
    path = tmp_path / "campaign.yaml"
    path.write_text(campaign_running(marker, key=key))
    with pytest.raises(InputError) as refused:
        load_campaign(path)
    assert f"{path}:4: stage 's': {key}" in str(refused.value)
    assert "unsafe template" in str(refused.value) and "__init__" in str(refused.value)
    assert not marker.exists()


def test_plan_with_an_unsafe_template_exits_2_and_runs_nothing(tmp_path: Path):
    marker = tmp_path / "pwned"
    repo = make_repo(tmp_path / "repo", {"campaign.yaml": campaign_running(marker)})
    result = run_cli(repo, "plan")
    assert result.returncode == 2, result.stderr
    assert "campaign.yaml:4: stage 's': run" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_templates_cannot_change_the_values_they_are_given():
    context = {"vars": {"a": 1}}
    with pytest.raises(TemplateProblem, match="unsafe template"):
        render("{{ vars.update({'a': 2}) }}", context)
    assert context["vars"] == {"a": 1}


def test_userdata_templates_render_in_the_sandbox(tmp_path: Path):
    marker = tmp_path / "pwned"
    (tmp_path / "userdata.sh.j2").write_text((ESCAPE % marker) + "\n")
    params = UserdataParams(
        run_id="r",
        campaign="c",
        commit="a" * 40,
        repo_url="https://x/r.git",
        store_url="s3://b/p",
        region="eu-west-1",
        watchdog_minutes=1,
    )
    with pytest.raises(Exception, match="unsafe"):
        render_userdata(params, template_dir=tmp_path)
    assert not marker.exists()


def test_each_distinct_template_source_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    stages = "".join(
        f"  - name: s{i}\n    kind: data\n    per: scale_factor\n"
        f"    run: 'echo {{{{ sf }}}} {{{{ features }}}} {i}'\n"
        f"    produces: ['out{i}/sf{{{{ sf }}}}']\n"
        for i in range(20)
    )
    path = tmp_path / "c.yaml"
    path.write_text(f"name: t\nscale_factors: [1, 10]\nstages:\n{stages}")
    templating.compiled.cache_clear()
    parsed: list[str] = []
    original = templating._ENV.parse
    monkeypatch.setattr(
        templating._ENV, "parse", lambda source, *a, **k: parsed.append(source) or original(source, *a, **k)
    )
    spec = load_campaign(path)
    for run in expand(spec, parse_selection("sf1,sf10", spec)):
        run.command(spec, run_id="r", output_dir="/o", work_dir="/w")
        run.outputs(spec)
        names_in(run.stage.run)
    assert sorted(parsed) == sorted(set(parsed)) and len(parsed) == 40


NEEDS_CAMPAIGN = """\
name: t
scale_factors: [1, 10]
stages:
  - name: gen
    kind: data
    per: scale_factor
    run: 'gen {{ sf }} > {{ output_dir }}/data/sf{{ sf }}/t.csv'
    produces: ["data/sf{{ sf }}/"]
  - name: model
    kind: data
    run: 'true'
    incremental: model.jsonl
  - name: bench
    kind: bench
    per: scale_factor
    needs: [gen, model]
    run: 'bench {{ needs["gen"].produces[0] }} {{ needs.model.incremental }} {{ needs.model.produces }}'
    produces: ["results/sf{{ sf }}.md"]
"""


def test_templates_name_what_a_needed_stage_produces_for_the_same_scale_factor(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(NEEDS_CAMPAIGN)
    spec = load_campaign(path)
    commands = {
        run.id: run.command(spec, run_id="r", output_dir="/out", work_dir="/w")
        for run in expand(spec, parse_selection("sf1,sf10", spec))
    }
    assert commands["bench[sf10]"] == "bench /out/data/sf10 /out/model.jsonl []"
    assert commands["bench[sf1]"] == "bench /out/data/sf1 /out/model.jsonl []"


def test_the_default_campaign_names_the_generated_data_instead_of_rebuilding_its_path():
    spec = load_campaign(Path(__file__).resolve().parents[2] / "campaign.yaml")
    assert "needs['tpch-generate'].produces[0]" in spec.stage("tpch-bench").run
    bench = next(run for run in expand(spec, ("10",)) if run.stage.name == "tpch-bench")
    assert "--data-dir /o/data/sf10 " in bench.command(spec, run_id="r", output_dir="/o", work_dir="/w")
