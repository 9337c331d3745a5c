"""The smoke gate: files a campaign references must be committed, or the run is refused (exit 3)."""

import json
from pathlib import Path

from .conftest import BENCH_PY, GEN_SH, TOY_CAMPAIGN, git, make_repo, run_cli

FILES = {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH, "scripts/bench.py": BENCH_PY}


def test_untracked_script_is_refused_with_its_path_and_the_fix(tmp_path: Path):
    repo = make_repo(tmp_path / "r", {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH})
    (repo / "scripts" / "bench.py").write_text(BENCH_PY)  # written, never committed: the classic trap
    result = run_cli(repo, "run", "sf0.01")
    assert result.returncode == 3, result.stderr
    assert "scripts/bench.py (used by bench): untracked" in result.stderr
    assert "fix: git add scripts/bench.py && git commit" in result.stderr
    assert "preflight refused the run; nothing was started" in result.stderr
    assert not (repo / ".campaign" / "runs").exists()
    assert "run:" not in result.stdout


def test_modified_script_is_refused(toy_repo: Path):
    (toy_repo / "scripts" / "gen.sh").write_text(GEN_SH + "echo changed\n")
    result = run_cli(toy_repo, "plan", "sf0.01")
    assert result.returncode == 3
    assert "scripts/gen.sh (used by gen): modified since the last commit" in result.stdout


def test_uncommitted_campaign_file_is_refused(toy_repo: Path):
    (toy_repo / "campaign.yaml").write_text(TOY_CAMPAIGN.replace("hello", "bonjour"))
    result = run_cli(toy_repo, "plan", "--json")
    plan = json.loads(result.stdout)
    gate = plan["preflight"][0]
    assert result.returncode == 3 and plan["refused"] is True
    assert "campaign.yaml (used by the campaign file): modified since the last commit" in gate["details"]


def test_ignored_file_in_a_used_folder_is_refused_with_add_force(tmp_path: Path):
    campaign = TOY_CAMPAIGN.replace("    needs: [gen]\n", "    needs: [gen]\n    uses: [scripts/]\n")
    repo = make_repo(tmp_path / "r", {**FILES, "campaign.yaml": campaign})
    (repo / ".gitignore").write_text(".campaign/\n*.sql\n")
    git(repo, "commit", "-qam", "ignore sql")
    (repo / "scripts" / "q1.sql").write_text("select 1;\n")
    result = run_cli(repo, "plan")
    assert result.returncode == 3
    assert "scripts/q1.sql (used by bench): ignored by .gitignore" in result.stdout
    assert "fix: git add -f scripts" in result.stdout


def test_missing_referenced_script_is_refused_even_with_allow_dirty(tmp_path: Path):
    repo = make_repo(tmp_path / "r", {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH})
    result = run_cli(repo, "run", "--allow-dirty")
    assert result.returncode == 3
    assert "scripts/bench.py (used by bench): referenced but does not exist" in result.stderr


def test_a_repository_without_commits_is_refused(tmp_path: Path):
    repo = make_repo(tmp_path / "r", FILES, commit=False)
    result = run_cli(repo, "plan")
    assert result.returncode == 3
    assert "the repository has no commit yet" in result.stdout


def test_outside_a_git_repository_is_refused(tmp_path: Path):
    (tmp_path / "campaign.yaml").write_text(TOY_CAMPAIGN)
    result = run_cli(tmp_path, "plan")
    assert result.returncode == 3
    assert "is not inside a git repository" in result.stderr


def test_allow_dirty_runs_the_working_tree_and_says_so_loudly(toy_repo: Path):
    (toy_repo / "scripts" / "gen.sh").write_text(GEN_SH + 'echo "dirty edit" > "$2/dirty.txt"\n')
    result = run_cli(toy_repo, "run", "--allow-dirty")
    assert result.returncode == 0, result.stderr
    assert "--allow-dirty: this run uses your working tree AS IT IS" in result.stderr
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    run_dir = toy_repo / ".campaign" / "runs" / run_id
    assert (run_dir / "outputs" / "data" / "sf0.01" / "dirty.txt").exists()
    record = json.loads((toy_repo / ".campaign" / "store" / "runs" / run_id / "run.json").read_text())
    assert record["dirty"] is True


def test_the_run_checkout_never_contains_untracked_files(toy_repo: Path):
    (toy_repo / "notes.txt").write_text("not committed\n")
    (toy_repo / "scripts" / "helper.py").write_text("print('local only')\n")
    result = run_cli(toy_repo, "run", "sf0.01")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    checkout = toy_repo / ".campaign" / "runs" / run_id / "checkout"
    assert (checkout / "scripts" / "gen.sh").exists()
    assert not (checkout / "notes.txt").exists()
    assert not (checkout / "scripts" / "helper.py").exists()
    assert git(checkout, "status", "--porcelain") == ""
    assert git(checkout, "rev-parse", "HEAD") == git(toy_repo, "rev-parse", "HEAD")


def test_an_ignored_build_product_named_in_a_command_is_not_a_repository_file(tmp_path: Path):
    campaign = TOY_CAMPAIGN.replace("run: ls -R", "run: test -x target/release/tool || true; ls -R")
    repo = make_repo(tmp_path / "r", {**FILES, "campaign.yaml": campaign})
    (repo / ".gitignore").write_text(".campaign/\ntarget/\n")
    git(repo, "commit", "-qam", "ignore build output")
    (repo / "target" / "release").mkdir(parents=True)
    (repo / "target" / "release" / "tool").write_text("built here, never committed\n")
    result = run_cli(repo, "plan")
    assert result.returncode == 0, result.stdout
    assert "target/release/tool" not in result.stdout
