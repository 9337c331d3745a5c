"""CI overlap: paid machine time is for what CI cannot do, so stages that repeat CI's unit tests are refused there.

A stage overlaps CI when it is of kind `test` or its command runs a unit-test runner (`cargo test`,
`pytest`, `go test`, …). On the AWS target such a stage is refused unless it says why CI cannot run
it (`ci_overlap: "needs AVX-512"`); on the local target it is allowed. `campaign plan` shows each verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from campaign.planning.graph import StageRun
from campaign.planning.verdict import Verdict
from campaign.spec.cargo import test_runner
from campaign.spec.model import CampaignSpec

PAID_TARGETS = {"aws"}


@dataclass(frozen=True)
class Overlap:
    stage: str
    line: int
    what: str  # "is of kind test", "runs cargo test"
    why: str | None  # the stage's ci_overlap, when it declares one

    def describe(self, file: str, refused: bool) -> str:
        where = f"{self.stage} ({file}:{self.line}) {self.what}"
        if self.why:
            return f"allowed  {where}; ci_overlap: {self.why}"
        if not refused:
            return f"allowed  {where} (locally; the AWS target refuses it without ci_overlap)"
        return (
            f"REFUSED  {where}: CI already runs unit tests on every pull request. Drop it from paid runs, "
            f'or declare ci_overlap: "<why CI cannot run this>" on the stage (e.g. it needs AVX-512).'
        )


def find_overlaps(spec: CampaignSpec, runs: list[StageRun]) -> list[Overlap]:
    """One entry per selected stage that overlaps CI, in campaign order."""
    found: dict[str, Overlap] = {}
    for run in runs:
        if run.stage.name in found:
            continue
        what = "is of kind test" if run.stage.kind == "test" else ""
        if not what:
            command = run.placeholder_command(spec)
            runner = test_runner(command)
            what = f"runs {runner}" if runner else ""
        if what:
            found[run.stage.name] = Overlap(run.stage.name, run.stage.line, what, run.stage.ci_overlap)
    return list(found.values())


def overlap_verdict(spec: CampaignSpec, runs: list[StageRun], target: str) -> Verdict:
    overlaps = find_overlaps(spec, runs)
    if not overlaps:
        return Verdict("ci overlap", True, "no stage repeats CI's unit tests")
    paid = target in PAID_TARGETS
    refused = [o for o in overlaps if paid and not o.why]
    details = tuple(o.describe(spec.path.name, paid) for o in overlaps)
    if refused:
        names = ", ".join(o.stage for o in refused)
        return Verdict(
            "ci overlap",
            False,
            f"{len(refused)} stage(s) would re-run CI's unit tests on paid machines: {names}",
            details,
        )
    where = f"on {target}" if paid else "locally"
    return Verdict("ci overlap", True, f"{len(overlaps)} stage(s) repeat CI's unit tests, allowed {where}", details)
