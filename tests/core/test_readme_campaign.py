"""The README's minimal custom campaign runs exactly as printed: its files, then its shell commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import REPO_ROOT, make_repo

SECTION = "## Your own campaign"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def readme_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block in the README's custom-campaign section, in order."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return BLOCK.findall(section)


def write_printed_files(repo: Path) -> list[str]:
    """Each yaml/python block names its file on its first line (`# my/bench_sums.py`); the shell block is returned."""
    commands = []
    for language, text in readme_blocks():
        if language == "sh":
            commands.append(text)
            continue
        name = text.splitlines()[0].removeprefix("# ").strip()
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    return commands


def records(path: Path) -> dict[str, int]:
    return {r["item"]: r["value"] for r in map(json.loads, path.read_text().splitlines())}


def test_the_readme_campaign_runs_as_printed(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", {})
    commands = write_printed_files(repo)
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.*") if ".git" not in p.parts) == [
        ".gitignore",
        "my-campaign.yaml",
        "my/bench_sums.py",
        "my/make_numbers.py",
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(commands)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    outputs = repo / ".campaign/store/runs" / run_id / "outputs/results"
    assert records(outputs / "sf1/sums.jsonl") == {"sum": 499500, "squares": 332833500, "max": 999}
    assert records(outputs / "sf10/sums.jsonl")["sum"] == sum(range(10000))


def test_the_readme_bench_follows_the_resume_contract(tmp_path: Path):
    write_printed_files(tmp_path)
    (tmp_path / "numbers.txt").write_text("1\n2\n3\n")
    results = tmp_path / "sums.jsonl"
    results.write_text(json.dumps({"item": "sum", "sf": "1", "value": 6, "seconds": 0.1}) + "\n")
    env = {**os.environ, "CAMPAIGN_INCREMENTAL": str(results), "CAMPAIGN_RESUME": "1", "CAMPAIGN_SF": "1"}
    subprocess.run([sys.executable, "my/bench_sums.py", "numbers.txt"], cwd=tmp_path, env=env, check=True)
    assert [json.loads(line)["item"] for line in results.read_text().splitlines()] == ["sum", "squares", "max"]
