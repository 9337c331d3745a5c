"""The habits that keep the package readable, checked: import layers (import-linter), no import
cycle, modules and functions small, and only the AWS target talking to EC2, SSM or Terraform.

`make test` also runs ruff, mypy and lint-imports before pytest; the test below that breaks a layer
on purpose shows that the contracts can fail.
"""

from __future__ import annotations

import ast
import graphlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "campaign"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts (pyproject.toml), on the `campaign` package under root."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(root), "PATH": ""},
    )


def test_the_import_contracts_hold():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layer_contract(tmp_path: Path):
    """A copy of the package in which spec (low) imports the CLI (top): lint-imports must fail."""
    shutil.copytree(PACKAGE, tmp_path / "campaign", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    model = tmp_path / "campaign" / "spec" / "model.py"
    model.write_text(model.read_text() + "\nimport campaign.cli.main  # an upward import\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "campaign.spec.model -> campaign.cli.main" in result.stdout


def test_no_import_cycle_between_modules():
    graph = grimp.build_graph("campaign")
    modules = {m for m in graph.modules if m.startswith("campaign")}
    imports = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in modules} for m in modules}
    try:
        graphlib.TopologicalSorter(imports).prepare()
    except graphlib.CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")


def python_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_module_and_its_functions_are_small(path: Path):
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{path} has more than {MAX_MODULE_LINES} lines: split it"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_only_the_aws_target_makes_ec2_ssm_or_sts_clients():
    pattern = re.compile(r"""client\(\s*["'](ec2|ssm|sts|iam|service-quotas|pricing)["']""")
    outside = [
        f"{path.relative_to(REPO_ROOT)}: {match.group(0)}"
        for path in python_files()
        if "targets/aws" not in path.as_posix()
        for match in pattern.finditer(path.read_text())
    ]
    assert not outside, "AWS service clients outside campaign/targets/aws: " + "; ".join(outside)
