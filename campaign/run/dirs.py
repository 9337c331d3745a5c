"""Where a run lives on this machine: the state folder, the default store, and one run's folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STATE_DIR_NAME = ".campaign"


def state_dir_for(repo_root: Path, explicit: Path | None = None) -> Path:
    """Where runs keep their local folders: --state-dir, $CAMPAIGN_HOME, or <repo>/.campaign."""
    return explicit or Path(os.environ.get("CAMPAIGN_HOME") or repo_root / STATE_DIR_NAME)


def default_store(repo_root: Path) -> str:
    return os.environ.get("CAMPAIGN_STORE") or str(state_dir_for(repo_root) / "store")


@dataclass(frozen=True)
class RunDir:
    """The local folder of one run: outputs, logs, the journal, and (locally) the clean checkout.

    On an instance the checkout is wherever userdata cloned the repository.
    """

    root: Path
    checkout_dir: Path | None = None

    @classmethod
    def of(cls, state_dir: Path, run_id: str, checkout_dir: Path | None = None) -> RunDir:
        return cls(state_dir / "runs" / run_id, checkout_dir)

    @property
    def checkout(self) -> Path:
        return self.checkout_dir or self.root / "checkout"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"

    def side(self, name: str) -> Path:
        """`campaign ab`: the clean checkout of one side's commit."""
        return self.root / "sides" / name

    @property
    def superseded(self) -> Path:
        return self.root / "superseded"
