"""Small things a new user saw: progress, plan --resume, --help, the host verdict off-machine, resume's commit."""

from __future__ import annotations

import re
from pathlib import Path

from campaign.preflight.planner import make_plan
from campaign.ui.progress import TerminalProgress

from .conftest import TOY_CAMPAIGN, git, run_cli
from .test_run_local import repo_with, started


def test_the_progress_never_counts_past_the_total():
    with TerminalProgress() as progress:
        for index, name in enumerate(["a", "b"], start=1):
            progress.stage_started(index, 2, name, None)
            progress.stage_ended()
        task = progress.display.tasks[0]
    assert (task.completed, task.total) == (2, 2)


def test_plan_resume_has_no_empty_preflight_heading(toy_repo: Path):
    run_id = started(run_cli(toy_repo, "run"))
    result = run_cli(toy_repo, "plan", "--resume", run_id)
    assert result.returncode == 0, result.stderr
    assert "preflight:" not in result.stdout


def test_top_level_help_lists_each_command_with_a_whole_sentence(toy_repo: Path):
    result = run_cli(toy_repo, "--help", env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"})
    listed = result.stdout.split("Commands:\n", 1)[1].splitlines()
    assert len(listed) >= 11
    for line in listed:
        assert line.endswith(".") and not line.endswith("..."), line


def test_on_the_aws_target_the_host_verdict_is_not_this_machine(tmp_path: Path):
    campaign = TOY_CAMPAIGN.replace("    kind: data\n", "    kind: data\n    requires: {cpu_flags: [no_such_flag]}\n")
    repo = repo_with(tmp_path, campaign)
    plan, _ = make_plan(repo / "campaign.yaml", "sf1", allow_dirty=False, target="aws")
    host = next(v for v in plan.verdicts if v.check == "host")
    assert "the stages run on the instance, not on this machine" in host.summary and "no_such_flag" in host.summary
    assert all(p.action != "skip" for p in plan.runs)
    local, _ = make_plan(repo / "campaign.yaml", "sf1", allow_dirty=False)
    assert any(p.action == "skip" for p in local.runs)


def test_resuming_after_committing_a_fix_says_the_run_continues_its_own_commit(tmp_path: Path):
    repo = repo_with(tmp_path, TOY_CAMPAIGN, gen_sh="#!/usr/bin/env bash\nexit 1\n")
    failed = run_cli(repo, "run")
    assert failed.returncode == 4
    run_id = started(failed)
    run_commit = git(repo, "rev-parse", "HEAD").strip()
    (repo / "scripts/gen.sh").write_text('#!/usr/bin/env bash\nmkdir -p "$2"\necho ok > "$2/table.txt"\n')
    git(repo, "commit", "-qam", "fix gen")
    result = run_cli(repo, "resume", run_id)
    assert re.search(
        rf"continues its own commit {run_commit[:12]}; HEAD is now \w{{12}}, and commits made since "
        r"the run started \(a fix, say\) are NOT in it. To run HEAD instead, start a new run: "
        r"`campaign run sf0.01`",
        result.stderr,
    ), result.stderr
