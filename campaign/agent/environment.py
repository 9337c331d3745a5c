"""The environment a stage's command runs in: campaign's context as CAMPAIGN_* variables."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from campaign.agent.outputs import StageOutputs
from campaign.planning.graph import StageRun
from campaign.run.dirs import RunDir
from campaign.run.record import RunRecord
from campaign.spec.model import CampaignSpec


def stage_environment(
    record: RunRecord,
    spec: CampaignSpec,
    run: StageRun,
    run_dir: RunDir,
    outputs: StageOutputs,
    *,
    resumed_records: int,
) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("CAMPAIGN_FAULT", None)  # crash points are for the agent, never its stages
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "CAMPAIGN_NAME": record.campaign,
            "CAMPAIGN_RUN_ID": record.run_id,
            "CAMPAIGN_STAGE": run.stage.name,
            "CAMPAIGN_STAGE_RUN": run.id,
            "CAMPAIGN_OUTPUT_DIR": str(run_dir.outputs),
            "CAMPAIGN_WORK_DIR": str(run_dir.checkout),
            "CAMPAIGN_COMMIT": record.commit or "",
        }
    )
    if run.sf is not None:
        env["CAMPAIGN_SF"] = run.sf
    incremental = outputs.incremental_path(run)
    if incremental is not None:
        env["CAMPAIGN_INCREMENTAL"] = str(incremental)
    if resumed_records:
        env["CAMPAIGN_RESUME"] = "1"
    env.update({f"CAMPAIGN_VAR_{k.upper()}": str(v) for k, v in spec.vars.items()})
    if record.sides:  # `campaign ab`: the bench runs every side, in interleaved rounds
        env["CAMPAIGN_SIDES"] = ",".join(f"{name}={run_dir.side(name)}" for name in record.sides)
        env["CAMPAIGN_ORDER_SEED"] = str(record.order_seed or 0)
    return env
