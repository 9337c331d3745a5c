"""A stage run's declared outputs on this machine: where they are, which exist, their store keys,
and moving an earlier attempt's aside (never overwritten)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from campaign.planning.graph import StageRun
from campaign.run.dirs import RunDir
from campaign.run.keys import RunKeys
from campaign.run.outputdir import output_files
from campaign.run.resume import local_fingerprint
from campaign.spec.model import CampaignSpec


class StageOutputs:
    def __init__(self, spec: CampaignSpec, run_dir: RunDir, keys: RunKeys):
        self.spec, self.dir, self.keys = spec, run_dir, keys

    def incremental_path(self, run: StageRun) -> Path | None:
        relative = run.incremental(self.spec)
        return None if relative is None else self.dir.outputs / relative

    def key(self, path: Path) -> str:
        return self.keys.output(path.relative_to(self.dir.outputs).as_posix())

    def files(self, run: StageRun) -> list[Path]:
        """Every file of the declared outputs that exists inside the output dir (a folder: the files in it)."""
        return output_files(self.dir.outputs, list(run.outputs(self.spec)))  # missing or outside: see the attempt

    def missing(self, run: StageRun) -> list[str]:
        return [out for out in run.outputs(self.spec) if not _produced(self.dir.outputs / out)]

    def missing_build_output(self, run: StageRun) -> list[str]:
        return [path for path in run.stage.build_output if not (self.dir.checkout / path).exists()]

    def local_fingerprints(self, run: StageRun) -> list[dict[str, Any]]:
        """Fingerprints of outputs kept only here (upload: false), so a resume can check them."""
        return [local_fingerprint(file, self.dir.outputs) for file in self.files(run)]

    def set_aside_stale(self, run: StageRun, attempt: int, log: Any) -> None:
        """Outputs left by an earlier attempt or session move to superseded/, never overwritten.

        The incremental file stays: the stage continues it.
        """
        incremental = self.incremental_path(run)
        for output in run.outputs(self.spec):
            path = self.dir.outputs / output
            if path == incremental or not (path.exists() or path.is_symlink()):
                continue
            aside = self.dir.superseded / f"{run.id}.before-attempt{attempt}" / output
            aside.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, aside)
            log.warning("moved an earlier output aside", stage_run=run.id, output=output, to=str(aside))


def _produced(path: Path) -> bool:
    if path.is_dir():
        return any(p.is_file() for p in path.rglob("*"))
    return path.is_file()
