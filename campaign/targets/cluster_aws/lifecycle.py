"""An AWS cluster's lifecycle: `campaign cluster up --target aws` (and --resume), deploy, stop, start, down,
extend. The cluster's record (campaign.targets.cluster.state, target "aws") names its region, its Terraform
workspace and each node's instance; every step writes it as soon as something changed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from campaign.errors import InputError, PreflightRefused, StageFailed
from campaign.spec.load import load_campaign
from campaign.spec.model import CampaignSpec
from campaign.system.git import find_root, head_commit
from campaign.targets.aws import checks
from campaign.targets.aws.settings import load_settings
from campaign.targets.cluster.aws_nodes import find_nodes, start_nodes, stop_nodes
from campaign.targets.cluster.lifecycle import UpRequest
from campaign.targets.cluster.services import render_instances, report_deploy, where_lines
from campaign.targets.cluster.state import ClusterRecord, cluster_dir, read_record, record_path, write_record
from campaign.targets.cluster_aws import provision
from campaign.targets.cluster_aws import services as remote_services
from campaign.targets.cluster_aws.provision import Clients

Out = Callable[[str], None]


def up(request: UpRequest, out: Out) -> ClusterRecord:
    """Provision (terraform/cluster), check the commit out on every node, start the services, wait for health."""
    root = find_root(Path.cwd())
    record = _existing_or_new(request, root)
    spec = _committed_spec(root, record)
    assert spec.cluster is not None
    count = request.nodes or (len(record.nodes) if record.nodes else spec.cluster.nodes)
    found = provision.clients(record)
    if _launched(found, record, count):
        out(f"the {count} nodes launched before are all there: no terraform apply")
    else:
        provision.place_nodes(record, provision.apply(request.state_dir, record, spec, count, out))
        write_record(request.state_dir, record)
    out(f"nodes: {', '.join(f'{n.index} {n.instance_id} {n.address}' for n in record.nodes)} in {record.region}")
    remote_services.arm_watchdog(found.ssm, record, provision.watchdog_minutes(record))
    remote_services.checkout(found.ssm, record, record.nodes)
    running = {i.key: i for i in record.instances if i.pid is not None}
    record.instances = [running.get(i.key, i) for i in render_instances(spec, record)]
    _start_and_check(request.state_dir, record, found, out)
    return record


def _launched(found: Clients, record: ClusterRecord, count: int) -> bool:
    """terraform apply finished before (the record has its nodes) and EC2 still has each of them, by its tags."""
    live = {n.instance_id for n in find_nodes(found.ec2, record.name)}
    return len(record.nodes) == count and bool(live) and live == set(record.instance_ids)


def _existing_or_new(request: UpRequest, root: Path) -> ClusterRecord:
    if record_path(request.state_dir, request.name).exists():
        if not request.resume:
            raise InputError(
                f"cluster {request.name!r} already exists; `campaign cluster up --resume --name "
                f"{request.name}` finishes it, `campaign cluster down --name {request.name}` removes it."
            )
        record = read_record(request.state_dir, request.name)
        if record.target != "aws":
            raise InputError(f"cluster {request.name} is a {record.target} cluster: resume it with --target local.")
        return record
    commit = head_commit(root)
    if commit is None:
        raise PreflightRefused(f"{root} has no commit yet; commit the campaign first.")
    settings = load_settings(root)
    repo_url = checks.remote_url(root, settings.repo_url)
    pushed = checks.pushed_verdict(root, commit, repo_url)
    if not pushed.ok:
        raise PreflightRefused(f"cluster {request.name}: the nodes clone the commit: {pushed.summary}")
    now = time.time()
    record = ClusterRecord(
        name=request.name,
        target="aws",
        repo=str(root),
        campaign_file=_relative(request.campaign_file, root),
        commit=commit,
        created_at=now,
        expires_at=now,
        state="provisioning",
        nodes=[],
        region=settings.region,
        workspace=str(provision.workspace(request.state_dir, request.name).resolve()),
        repo_url=repo_url,
        instance_type=request.instance_type,
    )
    provision.refuse_untracked(provision.clients(record), request.name)
    spec = _committed_spec(root, record)
    record.expires_at = now + 3600 * (spec.cluster.max_hours if spec.cluster else 8.0)
    write_record(request.state_dir, record)  # before terraform apply: a crash leaves a cluster to resume
    return record


def _relative(path: Path, root: Path) -> str:
    absolute = (path if path.is_absolute() else Path.cwd() / path).resolve()
    try:
        return str(absolute.relative_to(root.resolve()))
    except ValueError:
        raise InputError(
            f"{path} is outside the repository {root}; a cluster runs a committed campaign file."
        ) from None


def _committed_spec(root: Path, record: ClusterRecord) -> CampaignSpec:
    """The campaign file as the nodes will have it: refused when it differs from the commit."""
    changed = subprocess.run(
        ["git", "diff", "--quiet", record.commit, "--", record.campaign_file], cwd=root, capture_output=True
    )
    if changed.returncode != 0:
        raise PreflightRefused(
            f"{record.campaign_file} differs from commit {record.commit[:12]}, which the nodes run: commit it "
            "(and push), then `campaign cluster deploy`."
        )
    spec = load_campaign(root / record.campaign_file)
    if spec.cluster is None:
        raise InputError(f"{record.campaign_file}:1: has no cluster: section; add cluster: {{nodes: N}} and services.")
    return spec


def _start_and_check(state_dir: Path, record: ClusterRecord, found: Clients, out: Out) -> None:
    try:
        remote_services.start_services(found.ssm, record)
    finally:
        write_record(state_dir, record)
    verdicts = remote_services.wait_healthy(found.ssm, record)
    healthy = all(v.healthy for v in verdicts.values())
    record.state = "up" if healthy else record.state
    write_record(state_dir, record)
    out(
        f"cluster {record.name}: {len(record.nodes)} nodes on AWS ({record.region}), commit {record.commit[:12]}, "
        f"{'healthy' if healthy else 'NOT healthy'}"
    )
    for line in where_lines(record, verdicts):
        out(line)
    if not healthy:
        raise StageFailed(
            f"cluster {record.name}: a service is not healthy (above); its log is /srv/campaign/logs/<service>.log "
            f"on the node (`campaign cluster exec --name {record.name} --on N -- tail -50 ../logs/SERVICE.log`)."
        )


def deploy(state_dir: Path, name: str, out: Out) -> tuple[int, int]:
    """HEAD's commit to every node, services restarted and health-checked; (succeeded, failed) nodes."""
    record = read_record(state_dir, name)
    refuse_if_stopped(record)
    root = Path(record.repo)
    started = time.monotonic()
    record.commit = head_commit(root) or record.commit
    spec = _committed_spec(root, record)
    pushed = checks.pushed_verdict(root, record.commit, record.repo_url or "")
    if not pushed.ok:
        raise PreflightRefused(f"cluster {name}: the nodes fetch the commit: {pushed.summary}")
    found = provision.clients(record)
    remote_services.checkout(found.ssm, record, record.nodes)
    remote_services.stop_services(found.ssm, record)
    record.deployed_at = time.time()
    record.instances = render_instances(spec, record)
    remote_services.start_services(found.ssm, record)
    verdicts = remote_services.wait_healthy(found.ssm, record)
    write_record(state_dir, record)
    return report_deploy(record, verdicts, started, out)


def stop(state_dir: Path, name: str, out: Out) -> None:
    """EC2 stop of every node: the volumes stay, the services end with the machines."""
    record = read_record(state_dir, name)
    found = provision.clients(record)
    states = stop_nodes(found.ec2, find_nodes(found.ec2, name))
    for instance in record.instances:
        instance.pid, instance.healthy_since = None, None
    record.state = "stopped"
    write_record(state_dir, record)
    left = [f"{i} ({s})" for i, s in states.items() if s != "stopped"]
    if left:
        raise StageFailed(
            f"cluster {name}: not stopped after waiting: {', '.join(left)}; `campaign cluster stop` again"
        )
    out(f"cluster {name}: {len(states)} nodes stopped (volumes kept); `campaign cluster start` starts them again")


def start(state_dir: Path, name: str, out: Out) -> None:
    """EC2 start, the watchdog set again, the services started and health-checked."""
    record = read_record(state_dir, name)
    found = provision.clients(record)
    states = start_nodes(found.ec2, find_nodes(found.ec2, name))
    left = [f"{i} ({s})" for i, s in states.items() if s != "running"]
    if left:
        raise StageFailed(
            f"cluster {name}: not running after waiting: {', '.join(left)}; `campaign cluster start` again"
        )
    remote_services.arm_watchdog(found.ssm, record, provision.watchdog_minutes(record))
    _start_and_check(state_dir, record, found, out)


def down(state_dir: Path, name: str, out: Out) -> None:
    """terraform destroy; no instance tagged with the cluster may be left; then the cluster's folder goes."""
    record = read_record(state_dir, name)
    found = provision.clients(record)
    out(f"destroying cluster {name} (terraform destroy in {record.workspace}) …")
    provision.destroy(record, found)
    shutil.rmtree(cluster_dir(state_dir, name))
    out(f"cluster {name}: down; no instance tagged campaign:cluster={name} is left")


def extend(state_dir: Path, name: str, hours: float, out: Out) -> None:
    """The watchdog pushed back on every node (`shutdown -h` again) and in the record."""
    record = read_record(state_dir, name)
    record.expires_at = max(record.expires_at, time.time()) + hours * 3600
    if record.state != "stopped":
        remote_services.arm_watchdog(provision.clients(record).ssm, record, provision.watchdog_minutes(record))
    write_record(state_dir, record)
    deadline = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.expires_at))
    out(f"cluster {name}: the watchdog now stops its nodes at {deadline}")


def running_nodes(found: Clients, record: ClusterRecord) -> tuple[dict[int, str], set[int]]:
    """Each node's EC2 state (by index) and the indexes of the running ones."""
    states = {n.index: n.state for n in find_nodes(found.ec2, record.name)}
    return states, {index for index, state in states.items() if state == "running"}


def refuse_if_stopped(record: ClusterRecord) -> None:
    """SSM reaches only running nodes (and would be retried for minutes): say so at once."""
    if record.state == "stopped":
        raise PreflightRefused(
            f"cluster {record.name} is stopped (EC2): `campaign cluster start --name {record.name}` first."
        )
