"""Every store key of a run, in one place: `RunKeys(run_id).journal`, `.log(name)`, `.output(path)`.

runs/<run-id>/run.json            the run record
runs/<run-id>/journal.jsonl       every state transition
runs/<run-id>/manifest.json       every artifact with size and sha256
runs/<run-id>/lease.json          who holds the run
runs/<run-id>/comparison.json     `campaign ab`: the comparison of its sides (and comparison.html)
runs/<run-id>/logs/<name>         stage logs, the runner's events, the instance's bootstrap log
runs/<run-id>/outputs/<path>      declared outputs, relative to the output dir
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from campaign.errors import InputError

RUNS_PREFIX = "runs/"
# What new_run_id makes (20261122T181500Z-1a2b3c4-k3f9), loosely: one path component, never '.' or '..'.
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RUNNER_LOG = "runner.jsonl"
BOOTSTRAP_LOG = "bootstrap.log"


def check_run_id(run_id: str) -> str:
    """run_id itself when it can name a run (one folder name); InputError otherwise, before any key is built."""
    if not RUN_ID.match(run_id or "") or ".." in run_id:
        raise InputError(
            f"{run_id!r} is not a run id. A run id looks like 20261122T181500Z-1a2b3c4-k3f9 (letters, "
            "digits, '-', '_', '.'; no '/'): the first line `campaign run` printed, or one "
            "`campaign runs` lists."
        )
    return run_id


@dataclass(frozen=True)
class RunKeys:
    run_id: str

    def __post_init__(self) -> None:
        check_run_id(self.run_id)

    @property
    def root(self) -> str:
        return f"{RUNS_PREFIX}{self.run_id}"

    @property
    def record(self) -> str:
        return f"{self.root}/run.json"

    @property
    def journal(self) -> str:
        return f"{self.root}/journal.jsonl"

    @property
    def manifest(self) -> str:
        return f"{self.root}/manifest.json"

    @property
    def lease(self) -> str:
        return f"{self.root}/lease.json"

    @property
    def comparison(self) -> str:
        return f"{self.root}/comparison.json"

    @property
    def comparison_html(self) -> str:
        return f"{self.root}/comparison.html"

    @property
    def outputs(self) -> str:
        """The folder of the outputs (no trailing slash); list it with `outputs + '/'`."""
        return f"{self.root}/outputs"

    @property
    def runner_log(self) -> str:
        return self.log(RUNNER_LOG)

    @property
    def bootstrap_log(self) -> str:
        return self.log(BOOTSTRAP_LOG)

    def log(self, name: str) -> str:
        return f"{self.root}/logs/{name}"

    def output(self, relative: str) -> str:
        return f"{self.outputs}/{relative}"

    def under(self, relative: str) -> str:
        """A key recorded relative to the run (e.g. a journal entry's `logs/x.log`)."""
        return f"{self.root}/{relative}"
