"""`campaign resume RUN --target aws`: a replacement instance for a run whose instance died (spot reclaim, a crash,
a terminated machine). The replacement boots the same userdata as the first one, except that its agent takes over
the dead agent's lease (`--take-over`); the agent restores the run's journal from the store and keeps every
verified stage run, so finished stages are not run again. Provisioned, watched, collected and torn down as a new
run is (the run's own Terraform workspace is reused: what is left of the first instance is replaced).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from campaign.errors import InputError, PreflightRefused
from campaign.planning.plan import DONE
from campaign.run.dirs import RunDir, state_dir_for
from campaign.run.record import RunRecord
from campaign.run.record import read_record as read_run_record
from campaign.store import open_store
from campaign.system.checkout import prepare_checkout
from campaign.system.git import find_root
from campaign.targets.aws import checks, ec2
from campaign.targets.aws import target as aws_flow  # through the module: one place assembles the userdata
from campaign.targets.aws.auth import Auth
from campaign.targets.aws.session import RunSession
from campaign.targets.aws.settings import AwsSettings, load_settings
from campaign.targets.aws.watch import WatchResult

Out = Callable[[str], None]


def resume_on_aws(
    run_id: str, *, store_overrides: dict[str, str], state_dir: Path | None, out: Out
) -> tuple[WatchResult, AwsSettings]:
    """Provision a replacement whose agent resumes RUN; watch it to the end; the result and the settings used."""
    root = find_root(Path.cwd())
    settings = load_settings(root, **store_overrides)
    auth = Auth(settings)
    credentials, identity = checks.credentials_verdict(auth)
    if identity is None:
        raise PreflightRefused(f"resuming run {run_id} on AWS: {credentials.summary}")
    settings = settings if settings.bucket else settings.with_bucket(aws_flow.default_bucket(identity, settings.region))
    store = open_store(settings.store_url())
    record = read_run_record(store, run_id)
    _refuse_unless_resumable(record, settings)
    folder = state_dir_for(root, state_dir)
    run_dir = RunDir.of(folder, run_id)
    if not run_dir.checkout.exists():
        prepare_checkout(root, record.commit, run_dir.checkout, dirty=False)
    from campaign.agent.execute import resume_preview

    plan = resume_preview(record, store, run_dir)
    kept = sum(1 for p in plan.runs if p.action == DONE)
    out(f"run: {run_id}")
    out(f"resuming run {run_id} on a replacement instance: {kept} stage runs kept, {len(plan.runs) - kept} to run")
    repo_url = checks.remote_url(root, settings.repo_url)
    session = RunSession(
        record=record,
        plan=plan,
        settings=settings,
        auth=auth,
        state_dir=folder,
        user_data=aws_flow.instance_userdata(settings, record, repo_url, plan, take_over=True),
        create_bucket=False,
        out=out,
    )
    return session.run(), settings


def _refuse_unless_resumable(record: RunRecord, settings: AwsSettings) -> None:
    if record.target != "aws":
        raise InputError(
            f"run {record.run_id} ran on the {record.target} target: `campaign resume {record.run_id}` "
            f"(with --cluster NAME for a cluster run) continues it there."
        )
    alive = ec2.leftover_instances(ec2.ec2_client(settings.region), record.run_id)
    if alive:
        raise PreflightRefused(
            f"run {record.run_id} still has an instance ({', '.join(alive)}): it may still be running "
            f"(`campaign status {record.run_id} --store {settings.store_url()}`). If it is stuck, `campaign down "
            f"{record.run_id}` removes it; then resume."
        )
