"""Paths and tool lookups shared by the prebuild tests (issue 5: prebuilt target tarballs)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "rust-workspace"
VENV_BIN = Path(sys.executable).parent


def tool(name: str, *, install_hint: str) -> str:
    """The tool beside this Python, else on PATH; the test is skipped, with the reason, when neither has it."""
    beside_python = VENV_BIN / name
    found = str(beside_python) if beside_python.is_file() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed ({install_hint})")
    return found
