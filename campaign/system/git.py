"""What git says about the repository: root, HEAD, and the state of given paths."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from campaign.errors import PreflightRefused


@dataclass(frozen=True)
class RepoState:
    root: Path
    head: str | None  # None before the first commit
    tracked: frozenset[str]  # tracked paths (among those asked about)
    changes: dict[str, str]  # path -> porcelain code: '??' untracked, '!!' ignored, else modified/staged

    def problem_with(self, path: str) -> str | None:
        """Why path would not be in a clean checkout of HEAD as it is here, or None."""
        code = self._code_for(path)
        if code == "??":
            return "untracked"
        if code == "!!":
            return "ignored by .gitignore"
        if code is not None:
            return "modified since the last commit" if "D" not in code else "deleted but still referenced"
        if path not in self.tracked:
            return "not tracked by git"
        return None

    def _code_for(self, path: str) -> str | None:
        if path in self.changes:
            return self.changes[path]
        for candidate, code in self.changes.items():  # ignored/untracked folders are reported as 'dir/'
            if candidate.endswith("/") and path.startswith(candidate):
                return code
        return None


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise PreflightRefused(f"git {' '.join(args)} failed in {root}: {result.stderr.strip()}")
    return result.stdout


def has_commit(root: Path, commit: str) -> bool:
    """The repository at root holds commit (e.g. not a shallow clone of another one)."""
    result = subprocess.run(["git", "-C", str(root), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    return result.returncode == 0


def find_root(start: Path) -> Path:
    result = subprocess.run(["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if result.returncode != 0:
        raise PreflightRefused(
            f"{start} is not inside a git repository. campaign runs the committed state of a repository "
            "(the same commit an EC2 instance would clone): run `git init && git add -A && git commit` first."
        )
    return Path(result.stdout.strip())


def head_commit(root: Path) -> str | None:
    result = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"], capture_output=True, text=True
    )
    return result.stdout.strip() or None


def read_state(root: Path, paths: list[str]) -> RepoState:
    """Tracked-ness and working-tree changes of paths (files or folders), in two git calls."""
    spec = ["--", *paths] if paths else ["--", "."]
    tracked = git(root, "ls-files", "-z", *spec).split("\0")
    status = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching", *spec)
    return RepoState(
        root=root, head=head_commit(root), tracked=frozenset(p for p in tracked if p), changes=_parse_porcelain(status)
    )


def _parse_porcelain(text: str) -> dict[str, str]:
    changes: dict[str, str] = {}
    entries = iter(text.split("\0"))
    for entry in entries:
        if not entry:
            continue
        code, path = entry[:2], entry[3:]
        changes[path] = code
        if code[0] in "RC":  # a rename carries its old path as the next entry
            next(entries, None)
    return changes
