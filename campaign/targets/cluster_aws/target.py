"""`campaign run … --cluster NAME` (and `campaign resume RUN --cluster NAME`) on a kept AWS cluster: nothing is
provisioned and nothing torn down.

Preflight as on a local cluster (the run's commit must be the one the cluster runs, else `campaign cluster
deploy`), then: every node running (EC2) and healthy (the health checks, through SSM), and the store is the
cluster's own prefix of the AWS store, `s3://<bucket>/<prefix>/clusters/<name>` (the bucket as the AWS target
computes it): the nodes' instance role (terraform/cluster/iam.tf) may read and write only there. The run record
is written to that store; the agent starts on the coordinator through SSM (campaign.targets.cluster_aws.agent)
and is watched through the store as an AWS run's instance is (campaign.targets.aws.watch); its outputs are
verified and fetched. `on: all` stages are refused: fanning a stage out from the coordinator over SSM is not built.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaign.errors import InputError, Interrupted, PreflightRefused, StageFailed
from campaign.planning.plan import Plan
from campaign.prebuilt.artifact import plan_build_source
from campaign.preflight.planner import make_plan
from campaign.run.cache import plan_cache
from campaign.run.dirs import state_dir_for
from campaign.run.record import RunRecord
from campaign.run.record import read_record as read_run_record
from campaign.store import open_store
from campaign.system.git import find_root
from campaign.targets.aws import checks
from campaign.targets.aws.session import collect_outputs, incremental_keys
from campaign.targets.aws.settings import AwsSettings
from campaign.targets.aws.watch import LOST, JournalWatcher, WatchResult, make_display
from campaign.targets.base import Out, Outcome, Prepared, RunRequest
from campaign.targets.cluster.state import ClusterRecord, read_record, write_record
from campaign.targets.cluster_aws import agent, provision
from campaign.targets.cluster_aws.lifecycle import refuse_if_stopped, running_nodes
from campaign.targets.cluster_aws.services import check_health

TARGET = "cluster-aws"


@dataclass(frozen=True)
class ClusterRun:
    """What preflight found: the cluster, where its runs are stored, and the clients of its region."""

    cluster: ClusterRecord
    state_dir: Path
    settings: AwsSettings
    store_url: str
    clients: provision.Clients


def cluster_store(cluster: ClusterRecord) -> tuple[AwsSettings, str]:
    """The cluster's settings (credentials in effect) and its runs' store: its own prefix of the AWS store."""
    settings, auth = provision.settings_for(cluster)
    auth.activate()
    if not settings.bucket:  # as the AWS target (and terraform/cluster's role) computes it
        settings = settings.with_bucket(f"campaign-{auth.identity().account}-{settings.region}")
    return settings, f"{settings.store_url()}/clusters/{cluster.name}"


def open_cluster(state_dir: Path, name: str, store: str | None, commit: str | None, what: str) -> ClusterRun:
    """The cluster, refused unless it runs commit, the store is its own, and every node runs and is healthy."""
    cluster = read_record(state_dir, name)
    if cluster.commit != commit:
        raise PreflightRefused(
            f"cluster {name} runs commit {cluster.commit[:12]}, {what} is of {(commit or '')[:12]}: "
            f"`campaign cluster deploy --name {name}` puts HEAD on every node first."
        )
    settings, store_url = cluster_store(cluster)
    if store and store.rstrip("/") != store_url:
        raise PreflightRefused(
            f"--store {store}: a run on AWS cluster {name} is stored in {store_url}, the only prefix its nodes' "
            "role may write; leave --store out."
        )
    bucket = checks.bucket_verdict(store_url, settings.region)
    if not (bucket.exists and bucket.verdict.ok):
        raise PreflightRefused(f"cluster {name}: the results bucket: {bucket.verdict.summary}")
    found = provision.clients(cluster)
    _refuse_unless_healthy(state_dir, cluster, found)
    return ClusterRun(cluster, state_dir, settings, store_url, found)


def _refuse_unless_healthy(state_dir: Path, cluster: ClusterRecord, found: provision.Clients) -> None:
    refuse_if_stopped(cluster)
    states, running = running_nodes(found, cluster)
    down = [
        f"{n.label} {n.instance_id} is {states.get(n.index, 'gone')}" for n in cluster.nodes if n.index not in running
    ]
    if down:
        raise PreflightRefused(
            f"cluster {cluster.name}: not every node is running ({'; '.join(down)}): "
            f"`campaign cluster start --name {cluster.name}` first."
        )
    before = [i.healthy_since for i in cluster.instances]
    verdicts = check_health(found.ssm, cluster, running)
    if before != [i.healthy_since for i in cluster.instances]:
        write_record(state_dir, cluster)
    unhealthy = [f"{key}: {v.detail}" for key, v in verdicts.items() if not v.healthy]
    if unhealthy:
        raise PreflightRefused(
            f"cluster {cluster.name}: not healthy ({'; '.join(unhealthy)}); `campaign cluster status --name "
            f"{cluster.name}` says why, `campaign cluster deploy --name {cluster.name}` restarts the services."
        )


def refuse_fanout(plan: Plan, cluster: ClusterRecord) -> None:
    fanned = sorted({p.run.stage.name for p in plan.runs if p.run.stage.on == "all"})
    if fanned:
        raise PreflightRefused(
            f"cluster {cluster.name} is on AWS: `on: all` stages ({', '.join(fanned)}) are not run on AWS clusters "
            "yet (fanning a stage out over SSM is not built). Run them on a local cluster, or run the command "
            f"on every node with `campaign cluster exec --name {cluster.name} -- COMMAND`."
        )


class AwsClusterTarget:
    name = TARGET

    def __init__(self) -> None:
        self._results: dict[str, WatchResult] = {}

    def preflight(self, request: RunRequest, *, for_plan: bool = False) -> Prepared:
        if request.allow_dirty:
            raise PreflightRefused("--allow-dirty is refused on an AWS cluster: its nodes run a commit.")
        plan, root = make_plan(
            request.campaign_file, request.selection, allow_dirty=False, target="aws", overrides=request.vars
        )
        name = str(request.options.get("cluster") or "")
        state_dir = state_dir_for(root, request.state_dir)
        refuse_fanout(plan, read_record(state_dir, name))
        found = open_cluster(state_dir, name, request.store, plan.commit, "this run")
        plan = plan_cache(plan_build_source(plan, found.store_url), found.store_url, root)
        return Prepared(plan, root, found.store_url, found)

    def describe(self, prepared: Prepared) -> list[str]:
        found: ClusterRun = prepared.context
        cluster = found.cluster
        coordinator = cluster.coordinator
        return [
            f"cluster {cluster.name} on AWS ({cluster.region}): {len(cluster.nodes)} nodes, healthy; the agent runs "
            f"on node 1 ({coordinator.instance_id}, {coordinator.address}) through SSM",
            f"  store {found.store_url}; nothing is provisioned, nothing torn down (the cluster is kept)",
        ]

    def describe_json(self, prepared: Prepared) -> dict[str, Any]:
        found: ClusterRun = prepared.context
        return {"cluster": {"name": found.cluster.name, "target": "aws", "store": found.store_url}}

    def new_record(self, prepared: Prepared, request: RunRequest) -> RunRecord:
        return RunRecord.new(
            prepared.plan,
            prepared.root,
            store=prepared.store_url,
            target=self.name,
            keep_going=request.keep_going,
            sync_interval_s=request.sync_interval_s,
        )

    def provision(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        """run.json in the cluster's store, which the coordinator's agent reads."""
        store = open_store(prepared.store_url)
        store.probe()
        store.put_bytes(record.to_bytes(), record.keys.record)

    def execute(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        _start(prepared.context, record.run_id, out, take_over=False)

    def watch(self, prepared: Prepared, record: RunRecord, out: Out) -> Outcome:
        incremental = incremental_keys(prepared.plan, record)
        result = self._results[record.run_id] = _watch(prepared.context, incremental, record, out)
        return Outcome(result.state, result.reason)

    def collect(self, prepared: Prepared, record: RunRecord, outcome: Outcome, out: Out) -> None:
        _collect(prepared.context, record.run_id, self._results[record.run_id], out)

    def teardown(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        """Nothing to remove: the cluster is kept (`campaign cluster down` removes it)."""

    def finish(self, prepared: Prepared, record: RunRecord, outcome: Outcome) -> None:
        raise_for(prepared.context, record.run_id, outcome)

    def resume(self, run_id: str, request: RunRequest, out: Out) -> str:
        """`campaign resume RUN --cluster NAME`: the agent started again on the coordinator; it keeps every
        verified stage run (with --take-over, it takes the lease of an agent that stopped heartbeating)."""
        root = find_root(Path.cwd())
        state_dir = state_dir_for(root, request.state_dir)
        name = str(request.options.get("cluster") or "")
        _, store_url = cluster_store(read_record(state_dir, name))
        record = read_run_record(open_store(store_url), run_id)
        if record.target != self.name:
            raise InputError(f"run {run_id} ran on the {record.target} target, not on an AWS cluster; resume it there.")
        found = open_cluster(state_dir, name, request.store, record.commit, f"run {run_id}")
        if agent.agent_alive(found.clients.ssm, found.cluster, run_id):
            raise PreflightRefused(
                f"run {run_id}: its agent still runs on node 1 of cluster {name} "
                f"(`campaign status {run_id} --store {store_url}`)."
            )
        out(f"run: {run_id}")
        known = JournalWatcher(open_store(store_url), run_id).entries_now()  # the final entry so far is not news
        _start(found, run_id, out, take_over=request.take_over)
        result = _watch(found, {}, record, out, known_entries=known)
        _collect(found, run_id, result, out)
        raise_for(found, run_id, Outcome(result.state, result.reason))
        return run_id

    def resume_unfinished(self, request: RunRequest, out: Out) -> str | None:
        raise InputError("--resume is not available on an AWS cluster: `campaign resume RUN --cluster NAME`.")

    def resume_plan(self, run_id: str, request: RunRequest) -> Plan:
        raise InputError("plan --resume is not available on an AWS cluster.")


def _start(found: ClusterRun, run_id: str, out: Out, *, take_over: bool) -> None:
    script = agent.start_script(
        found.cluster, run_id, found.store_url, install_spec=found.settings.install_spec, take_over=take_over
    )
    agent.start_agent(found.clients.ssm, found.cluster, script, run_id)
    coordinator = found.cluster.coordinator
    out(f"agent started on node 1 ({coordinator.instance_id}) of cluster {found.cluster.name}; watching the store")


def _watch(
    found: ClusterRun, incremental: dict[str, str], record: RunRecord, out: Out, known_entries: int = 0
) -> WatchResult:
    cluster = found.cluster
    coordinator = [cluster.coordinator.instance_id or ""]

    def alive() -> bool:
        from campaign.targets.aws.ec2 import any_alive

        return any_alive(found.clients.ec2, coordinator) and agent.agent_alive(
            found.clients.ssm, cluster, record.run_id
        )

    watcher = JournalWatcher(
        open_store(found.store_url),
        record.run_id,
        incremental=incremental,
        instances_alive=alive,
        lost=f"the agent on node 1 of cluster {cluster.name} is gone (or its node stopped)",
        known_entries=known_entries,
    )
    with make_display(out) as display:
        result = watcher.watch(
            deadline_s=max(cluster.expires_at - time.time(), 0.0) + found.settings.deadline_margin_s,
            interval_s=found.settings.poll_interval_s,
            display=display,
        )
    out(f"run {record.run_id}: {result.state}" + (f" ({result.reason})" if result.reason else ""))
    return result


def _collect(found: ClusterRun, run_id: str, result: WatchResult, out: Out) -> None:
    store = open_store(found.store_url)
    dest = found.state_dir / "runs" / run_id / "outputs"
    count = collect_outputs(store, run_id, dest, verify=result.state != LOST)
    out(f"results: {store.where(f'runs/{run_id}/outputs')} ({count} files; local copy {dest})")


def raise_for(found: ClusterRun, run_id: str, outcome: Outcome) -> None:
    """The error that decides the exit code of a run that did not succeed on the cluster."""
    if outcome.state == "succeeded":
        return
    name, where = found.cluster.name, f"--store {found.store_url}"
    _, log = agent.agent_files(run_id)
    if outcome.state == "interrupted":
        raise Interrupted(
            f"run {run_id} was interrupted on cluster {name}: {outcome.reason}. `campaign status {run_id} {where}`."
        )
    raise StageFailed(
        f"run {run_id} did not succeed on cluster {name} ({outcome.state}): {outcome.reason}.\n"
        f"`campaign status {run_id} {where}` shows every stage run; the agent's own output is on node 1: "
        f"`campaign cluster exec --name {name} --on 1 -- tail -50 ../{log}`; "
        f"`campaign resume {run_id} --cluster {name}` continues it."
    )
