"""Checks made before a run, reported by `plan` and enforced by `run`.

The smoke gate: every repository file the campaign references must be committed unmodified,
because the run (locally and on EC2) uses a clean checkout of the commit, not this working tree.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from campaign.planning.graph import StageRun
from campaign.planning.verdict import Verdict
from campaign.spec.model import PLACEHOLDER_WORK_DIR, CampaignSpec
from campaign.system.git import RepoState, read_state

# A command token with one of these endings, under a folder the repository has, names a repository file.
SCRIPT_SUFFIXES = {
    ".sh",
    ".bash",
    ".py",
    ".sql",
    ".rb",
    ".pl",
    ".r",
    ".jl",
    ".js",
    ".ts",
    ".yaml",
    ".yml",
    ".json",
    ".toml",
    ".cfg",
    ".ini",
    ".txt",
    ".csv",
    ".tsv",
    ".env",
    ".conf",
}


@dataclass
class References:
    """Repository paths the campaign needs -> the stages that need them."""

    users: dict[str, set[str]] = field(default_factory=dict)
    missing: dict[str, set[str]] = field(default_factory=dict)
    declared: set[str] = field(default_factory=set)  # named by the campaign file itself or a stage's uses

    def add(self, path: str, user: str, *, exists: bool, declared: bool = True) -> None:
        (self.users if exists else self.missing).setdefault(path, set()).add(user)
        if declared:
            self.declared.add(path)


def referenced_paths(spec: CampaignSpec, runs: list[StageRun], root: Path) -> References:
    refs = References()
    refs.add(_relative(spec.path.resolve(), root), "the campaign file", exists=True)
    top_level = {p.name for p in root.iterdir()} if root.is_dir() else set()
    for run in runs:
        for use in run.stage.uses + (run.stage.cache.files if run.stage.cache else ()):
            _add_use(refs, root, use, run.stage.name)
        command = run.placeholder_command(spec)
        for token in _path_like_tokens(command):
            exists = (root / token).exists()
            if exists or (PurePosixPath(token).parts[0] in top_level and _looks_like_file(token)):
                refs.add(token, run.stage.name, exists=exists, declared=False)
    return refs


def smoke_gate(spec: CampaignSpec, runs: list[StageRun], root: Path, *, allow_dirty: bool) -> Verdict:
    refs = referenced_paths(spec, runs, root)
    state = read_state(root, sorted(refs.users))
    _drop_built_paths(refs, state)
    files = {path: _files_under(root, path) for path in refs.users}
    problems = _problems(refs, state, files, root)
    if state.head is None:
        problems.insert(0, "the repository has no commit yet: git add -A && git commit -m 'first commit'")
    if not problems:
        count = len({file for under in files.values() for file in under})
        return Verdict("smoke gate", True, f"{count} referenced repository files are committed and unmodified")
    if refs.missing:
        summary = "referenced files are missing or not committed"
    else:
        summary = f"{len(problems)} referenced path(s) are not committed, so the clean checkout would lack them"
    fix = _fix_line(state, files)
    details = (
        tuple(problems)
        + ((fix,) if fix else ())
        + ("a local rehearsal of the working tree as it is: --allow-dirty (never for the AWS target)",)
    )
    return Verdict("smoke gate", False, summary, details, overridden=allow_dirty and not refs.missing)


def _drop_built_paths(refs: References, state: RepoState) -> None:
    """A path found in a command that git ignores is something a stage builds (target/release/bench),
    not a repository file: the checkout builds its own. Only declared paths must be committed."""
    for path in list(refs.users):
        if path not in refs.declared and state.problem_with(path) == "ignored by .gitignore":
            del refs.users[path]


def _problems(refs: References, state: RepoState, files: dict[str, list[str]], root: Path) -> list[str]:
    problems = [
        f"{path} (used by {_names(users)}): referenced but does not exist in {root}"
        for path, users in sorted(refs.missing.items())
    ]
    users_by_file: dict[str, set[str]] = {}  # each file once, with every stage that references it
    for path, under in files.items():
        for file in under:
            users_by_file.setdefault(file, set()).update(refs.users[path])
    for file, users in sorted(users_by_file.items()):
        problem = state.problem_with(file)
        if problem:
            problems.append(f"{file} (used by {_names(users)}): {problem}")
    return problems


def _fix_line(state: RepoState, files: dict[str, list[str]]) -> str:
    """One command that commits what is missing, naming referenced folders rather than every file."""
    to_add = [path for path in sorted(files) if any(state.problem_with(f) for f in files[path])]
    if not to_add:
        return ""
    to_add = [p for p in to_add if not any(p.startswith(other.rstrip("/") + "/") for other in to_add)]
    ignored = any(state.problem_with(f) == "ignored by .gitignore" for p in to_add for f in files[p])
    force = " -f" if ignored else ""
    return (
        f"fix: git add{force} {' '.join(shlex.quote(p) for p in to_add)} && git commit -m 'Commit campaign stage files'"
    )


def _files_under(root: Path, path: str) -> list[str]:
    full = root / path
    if full.is_dir():
        return sorted(_relative(p, root) for p in full.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [path]


def _add_use(refs: References, root: Path, use: str, stage: str) -> None:
    if any(ch in use for ch in "*?["):
        matches = sorted(root.glob(use))
        if not matches:
            refs.add(use, stage, exists=False)
        for match in matches:
            refs.add(_relative(match, root), stage, exists=True)
        return
    clean = str(PurePosixPath(use))
    refs.add(clean, stage, exists=(root / clean).exists())


def _path_like_tokens(command: str) -> list[str]:
    try:
        tokens = shlex.split(command, comments=True)
    except ValueError:
        tokens = command.split()
    candidates = []
    for token in tokens:
        value = token.split("=", 1)[1] if token.startswith("-") and "=" in token else token
        if value.startswith(PLACEHOLDER_WORK_DIR + "/"):
            value = value[len(PLACEHOLDER_WORK_DIR) + 1 :]
        if value and not value.startswith(("/", "-", "~", "$")) and ("/" in value or _looks_like_file(value)):
            candidates.append(str(PurePosixPath(value)))
    return candidates


def _looks_like_file(token: str) -> bool:
    return PurePosixPath(token).suffix.lower() in SCRIPT_SUFFIXES


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _names(users: set[str]) -> str:
    return ", ".join(sorted(users))
