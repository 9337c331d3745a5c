"""A fresh AWS cluster per run: the target a sweep of clusters (`campaign run --target aws --instance-types A,B
--nodes N`) drives, one member after another, through the sweep loop (campaign.targets.sweep) unchanged.

    preflight  the whole sweep: the AWS target's fleet checks (types, quotas and cost of N nodes each); one
               member: the plan, refused unless the campaign declares `cluster:`, stored in the cluster's prefix
    provision  `campaign cluster up --target aws` of N nodes of the member's type, named <sweep>-<type>
               (campaign.targets.cluster_aws.lifecycle), then the AWS cluster target's checks and run.json
    execute …  the AWS cluster target's (the agent on the coordinator through SSM, watched through the store)
    teardown   `campaign cluster down` of that cluster: always, also after a failure or Ctrl-C

Which cluster a run brought up is written in `<state-dir>/sweep-clusters/<run id>` before `up` starts, so
`down RUN` (what a resumed sweep calls for an interrupted member) brings it down from the run id alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from campaign.errors import InputError, PreflightRefused
from campaign.planning.plan import Plan
from campaign.prebuilt.artifact import plan_build_source
from campaign.preflight.planner import make_plan
from campaign.run.cache import plan_cache
from campaign.run.dirs import state_dir_for
from campaign.run.record import RunRecord
from campaign.spec.load import load_campaign
from campaign.system.git import find_root
from campaign.targets.base import Out, Outcome, Prepared, RunRequest
from campaign.targets.cluster.lifecycle import UpRequest
from campaign.targets.cluster.state import ClusterRecord, record_path
from campaign.targets.cluster_aws import lifecycle
from campaign.targets.cluster_aws.target import AwsClusterTarget, ClusterRun, cluster_store, open_cluster, refuse_fanout

TARGET = "cluster-aws-sweep"


def member_cluster_name(sweep_id: str, instance_type: str) -> str:
    """`<sweep-id-short>-<type>`: the sweep id's own random suffix and the type, as a cluster name may be."""
    short = sweep_id.rsplit("-", 1)[-1]
    return re.sub(r"[^a-z0-9-]", "-", f"sw{short}-{instance_type}".lower())[:40].rstrip("-")


def refuse_unclustered(campaign_file: Path, what: str) -> None:
    spec = load_campaign(campaign_file)
    if spec.cluster is None:
        raise InputError(
            f"{what}: {campaign_file} declares no cluster: section, so there is nothing to bring up N nodes of. "
            "Add `cluster: {nodes: N}` (and its services) to the campaign file, or drop --nodes to sweep one "
            "instance per type."
        )


@dataclass
class Member:
    """One member's cluster: its name, where its runs are stored, and (once up) the AWS cluster target's run."""

    name: str
    instance_type: str
    nodes: int
    state_dir: Path
    store_url: str
    campaign_file: Path
    found: ClusterRun | None = None


class ClusterSweepMemberTarget:
    name = TARGET

    def __init__(self) -> None:
        self._inner = AwsClusterTarget()

    def preflight(self, request: RunRequest, *, for_plan: bool = False) -> Prepared:
        nodes = int(request.options.get("nodes") or 0)
        if request.options.get("instance_types"):  # the whole sweep, once, before any member
            refuse_unclustered(request.campaign_file, f"sweep of {nodes}-node clusters")
            from campaign.targets.aws.adapter import AwsTarget

            return AwsTarget().preflight(request, for_plan=for_plan)
        return self._member_preflight(request, nodes)

    def member_cluster(self, request: RunRequest) -> str:
        """The cluster a member's run brings up (the sweep loop records it in the member)."""
        sweep_id = str(request.options.get("sweep_id") or "sweep")
        return member_cluster_name(sweep_id, str(request.options.get("instance_type") or ""))

    def _member_preflight(self, request: RunRequest, nodes: int) -> Prepared:
        instance_type = str(request.options.get("instance_type") or "")
        name = self.member_cluster(request)
        refuse_unclustered(request.campaign_file, f"sweep member {instance_type} (cluster {name})")
        plan, root = make_plan(
            request.campaign_file, request.selection, allow_dirty=False, target="aws", overrides=request.vars
        )
        state_dir = state_dir_for(root, request.state_dir)
        unborn = ClusterRecord(name, "aws", str(root), "", plan.commit or "", 0.0, 0.0, "provisioning", [])
        refuse_fanout(plan, unborn)
        if record_path(state_dir, name).exists():
            raise PreflightRefused(
                f"sweep member {instance_type}: cluster {name} exists already; `campaign cluster down --name {name}` "
                "first (the sweep brings up a fresh cluster per type)."
            )
        _, store_url = cluster_store(unborn)
        plan = plan_cache(plan_build_source(plan, store_url), store_url, root)
        member = Member(name, instance_type, nodes, state_dir, store_url, request.campaign_file)
        return Prepared(plan, root, store_url, member)

    def describe(self, prepared: Prepared) -> list[str]:
        member = prepared.context
        if not isinstance(member, Member):
            from campaign.targets.aws.adapter import AwsTarget

            return AwsTarget().describe(prepared)
        return [
            f"cluster {member.name} on AWS: {member.nodes} × {member.instance_type}, brought up for this run and "
            f"down after it; store {member.store_url}"
        ]

    def describe_json(self, prepared: Prepared) -> dict[str, Any]:
        member = prepared.context
        if not isinstance(member, Member):
            from campaign.targets.aws.adapter import AwsTarget

            return AwsTarget().describe_json(prepared)
        return {"cluster": {"name": member.name, "target": "aws", "nodes": member.nodes, "store": member.store_url}}

    def new_record(self, prepared: Prepared, request: RunRequest) -> RunRecord:
        return self._inner.new_record(prepared, request)

    def provision(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        """`cluster up` of the member's nodes, then the AWS cluster target's checks and its run.json."""
        member: Member = prepared.context
        _note(member.state_dir, record.run_id, member.name)
        out(f"cluster {member.name}: bringing up {member.nodes} × {member.instance_type} for run {record.run_id}")
        up = UpRequest(
            member.name, member.campaign_file, member.state_dir, member.nodes, "aws", instance_type=member.instance_type
        )
        lifecycle.up(up, out)
        member.found = open_cluster(member.state_dir, member.name, None, record.commit, f"run {record.run_id}")
        self._inner.provision(_inner(prepared), record, out)

    def execute(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        self._inner.execute(_inner(prepared), record, out)

    def watch(self, prepared: Prepared, record: RunRecord, out: Out) -> Outcome:
        return self._inner.watch(_inner(prepared), record, out)

    def collect(self, prepared: Prepared, record: RunRecord, outcome: Outcome, out: Out) -> None:
        self._inner.collect(_inner(prepared), record, outcome, out)

    def teardown(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        member: Member = prepared.context
        self.down(record.run_id, member.state_dir, out)

    def finish(self, prepared: Prepared, record: RunRecord, outcome: Outcome) -> None:
        self._inner.finish(_inner(prepared), record, outcome)

    def down(self, run_id: str, state_dir: Path | None, out: Out) -> None:
        """The cluster run_id brought up, brought down (`campaign cluster down`); nothing when there is none."""
        where = state_dir if state_dir is not None and state_dir.is_absolute() else _state_dir(state_dir)
        note = where / "sweep-clusters" / run_id
        if not note.exists():
            return
        name = note.read_text().strip()
        if record_path(where, name).exists():
            lifecycle.down(where, name, out)
        note.unlink()

    def show_userdata(self, request: RunRequest) -> str:
        raise InputError("a sweep of clusters has no userdata of its own: its nodes boot terraform/cluster's.")

    def doctor(self, out: Out) -> int:
        from campaign.targets.aws.adapter import AwsTarget

        return AwsTarget().doctor(out)

    def resume(self, run_id: str, request: RunRequest, out: Out) -> str:
        raise InputError(f"run {run_id} ran on a sweep's own cluster, now down: `campaign resume SWEEP` runs it again.")

    def resume_unfinished(self, request: RunRequest, out: Out) -> str | None:
        raise InputError("--resume is not available for a sweep of clusters: `campaign resume SWEEP`.")

    def resume_plan(self, run_id: str, request: RunRequest) -> Plan:
        raise InputError("plan --resume is not available for a sweep of clusters.")


def _inner(prepared: Prepared) -> Prepared:
    member: Member = prepared.context
    if member.found is None:
        raise InputError(f"cluster {member.name} is not up: provision did not finish.")
    return replace(prepared, context=member.found)


def _note(state_dir: Path, run_id: str, name: str) -> None:
    note = state_dir / "sweep-clusters" / run_id
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text(name + "\n")


def _state_dir(state_dir: Path | None) -> Path:
    return state_dir_for(find_root(Path.cwd()), state_dir)
