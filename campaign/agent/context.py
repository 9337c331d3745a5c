"""What every part of the agent works with, for one run: its record, plan, store, folder, journal
and event log. Built once by the scheduler and handed to attempts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from campaign.agent.outputs import StageOutputs
from campaign.run.dirs import RunDir
from campaign.run.journal import Journal
from campaign.run.record import RunRecord
from campaign.spec.model import CampaignSpec
from campaign.store import Store


@dataclass(frozen=True)
class AgentContext:
    record: RunRecord
    spec: CampaignSpec
    store: Store
    run_dir: RunDir
    journal: Journal
    log: Any  # the runner's structlog logger (campaign.ui.events)
    outputs: StageOutputs
