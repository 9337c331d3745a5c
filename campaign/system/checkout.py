"""A clean checkout of the exact commit in a fresh folder (git clone --shared, detached at the commit).

A run never uses the user's working tree, so untracked files cannot leak into it; --allow-dirty
overlays the working tree on the clone, for local rehearsal only.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from campaign.errors import PreflightRefused
from campaign.system.git import git


def prepare_checkout(repo_root: Path, commit: str | None, dest: Path, *, dirty: bool) -> None:
    """dest becomes a checkout of commit; with dirty, the working tree's files as they are (rehearsal)."""
    if commit is None:
        raise PreflightRefused(f"{repo_root} has no commit yet; commit the campaign (git add … && git commit) first.")
    if dest.exists():
        raise PreflightRefused(
            f"{dest} already exists; a run never reuses a work folder. Remove it or start a new run."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["git", "clone", "--quiet", "--shared", "--no-checkout", str(repo_root), str(dest)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise PreflightRefused(f"could not clone {repo_root} into {dest}: {result.stderr.strip()}")
    git(dest, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit)
    if dirty:
        _overlay_working_tree(repo_root, dest)


def _overlay_working_tree(repo_root: Path, dest: Path) -> None:
    """Copy tracked-and-modified and untracked (not ignored) files over the checkout."""
    listed = git(repo_root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for relative in filter(None, listed):
        source = repo_root / relative
        target = dest / relative
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif not source.exists():
            target.unlink(missing_ok=True)  # deleted in the working tree
