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

from dataclasses import dataclass

RUNS_PREFIX = "runs/"
RUNNER_LOG = "runner.jsonl"
BOOTSTRAP_LOG = "bootstrap.log"


@dataclass(frozen=True)
class RunKeys:
    run_id: str

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
