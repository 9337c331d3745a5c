"""`campaign run … --cluster NAME`: a campaign on a kept cluster, without provisioning anything.

The agent runs as on the local target (the coordinator is this machine locally), with the cluster's addresses
in the stages' environment (CAMPAIGN_CLUSTER_COORDINATOR, CAMPAIGN_CLUSTER_NODES, CAMPAIGN_CLUSTER) and
`on: all` stages fanned out to every node (CAMPAIGN_CLUSTER_FANOUT, see campaign.targets.cluster.fanout).
A run is refused when the cluster runs another commit than the run's: `campaign cluster deploy` first.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from campaign.errors import InputError, PreflightRefused
from campaign.run.dirs import RunDir, default_store, state_dir_for
from campaign.run.record import RunRecord
from campaign.run.record import read_record as read_run_record
from campaign.store import open_store
from campaign.system.checkout import prepare_checkout
from campaign.system.git import find_root
from campaign.targets.base import Out, Prepared, RunRequest
from campaign.targets.cluster.services import check_health
from campaign.targets.cluster.state import ClusterRecord, read_record
from campaign.targets.local.target import LocalTarget, say_where_results_are


class ClusterTarget(LocalTarget):
    name = "cluster"

    def preflight(self, request: RunRequest, *, for_plan: bool = False) -> Prepared:
        prepared = super().preflight(request, for_plan=for_plan)
        cluster_name = request.options.get("cluster")
        if not cluster_name:
            raise InputError("the cluster target needs a cluster: campaign run … --cluster NAME.")
        state_dir = state_dir_for(prepared.root, request.state_dir)
        cluster = _local_only(read_record(state_dir, cluster_name))
        commit = prepared.plan.commit or ""
        if cluster.commit != commit:
            raise PreflightRefused(
                f"cluster {cluster.name} runs commit {cluster.commit[:12]}, this run is of {commit[:12]}: "
                f"`campaign cluster deploy --name {cluster.name}` puts HEAD on every node first."
            )
        return Prepared(prepared.plan, prepared.root, prepared.store_url, (request.state_dir, state_dir, cluster))

    def describe(self, prepared: Prepared) -> list[str]:
        cluster: ClusterRecord = prepared.context[2]
        return [f"cluster {cluster.name}: {len(cluster.nodes)} nodes, coordinator {cluster.coordinator.address}"]

    def new_record(self, prepared: Prepared, request: RunRequest) -> RunRecord:
        return RunRecord.new(
            prepared.plan,
            prepared.root,
            store=prepared.store_url,
            target=self.name,
            keep_going=request.keep_going,
            sync_interval_s=request.sync_interval_s,
        )

    def execute(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        _enter(prepared.context[1], prepared.context[2])
        super().execute(prepared, record, out)

    def resume(self, run_id: str, request: RunRequest, out: Out) -> str:
        """`campaign resume RUN --cluster NAME`: continue a cluster run on the kept cluster, at the run's commit."""
        from campaign.agent.execute import execute_record

        root = find_root(Path.cwd())
        store = open_store(request.store or default_store(root))
        record = read_run_record(store, run_id)
        if record.target != self.name:
            raise InputError(f"run {run_id} ran on the {record.target} target, not on a cluster; resume it there.")
        state_dir = state_dir_for(root, request.state_dir)
        cluster = _local_only(read_record(state_dir, str(request.options.get("cluster") or "")))
        if cluster.commit != record.commit:
            raise PreflightRefused(
                f"cluster {cluster.name} runs commit {cluster.commit[:12]}, run {run_id} is of "
                f"{(record.commit or '')[:12]}: check that commit out and `campaign cluster "
                f"deploy --name {cluster.name}` first."
            )
        run_dir = RunDir.of(state_dir, run_id)
        if not run_dir.checkout.exists():
            prepare_checkout(root, record.commit, run_dir.checkout, dirty=record.dirty)
        _enter(state_dir, cluster)
        out(f"run: {run_id}")
        execute_record(record, store, run_dir, take_over=request.take_over)
        say_where_results_are(out, store, record, run_dir)
        return run_id

    def _run_dir(self, prepared: Prepared, run_id: str) -> RunDir:
        state_dir: Path = prepared.context[1]
        return RunDir.of(state_dir, run_id)


def _local_only(cluster: ClusterRecord) -> ClusterRecord:
    if cluster.target != "local":
        raise InputError(
            f"cluster {cluster.name} runs on {cluster.target}: this target drives local clusters; `campaign run … "
            f"--cluster {cluster.name}` picks the {cluster.target} cluster's own target (campaign.targets.registry)."
        )
    return cluster


def _enter(state_dir: Path, cluster: ClusterRecord) -> None:
    """A healthy cluster, then its addresses (and the fan-out of `on: all` stages) in the stages' environment."""
    unhealthy = [key for key, verdict in check_health(cluster).items() if not verdict.healthy]
    if unhealthy:
        raise PreflightRefused(
            f"cluster {cluster.name}: not healthy ({', '.join(unhealthy)}); "
            "`campaign cluster status` says why, `campaign cluster deploy` restarts it."
        )
    fanout = [sys.executable, "-m", "campaign.targets.cluster.fanout", str(state_dir.resolve()), cluster.name]
    os.environ.update(
        {
            "CAMPAIGN_CLUSTER": cluster.name,
            "CAMPAIGN_CLUSTER_COORDINATOR": cluster.coordinator.address,
            "CAMPAIGN_CLUSTER_NODES": str(len(cluster.nodes)),
            "CAMPAIGN_CLUSTER_FANOUT": shlex.join(fanout),
        }
    )
