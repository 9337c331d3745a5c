"""One AWS run from apply to destroy. The undo (destroy) is armed before `terraform apply` starts, so
whatever Terraform may have created is destroyed in `finally`: after success, failure, Ctrl-C or
SIGTERM (turned into KeyboardInterrupt by the caller) — unless --keep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from campaign.errors import CampaignError, StoreError
from campaign.planning.plan import Plan
from campaign.run.inspection import verify_run
from campaign.run.keys import RunKeys
from campaign.run.record import RunRecord
from campaign.store import Store, open_store
from campaign.targets.aws import ec2, infra
from campaign.targets.aws.auth import Auth
from campaign.targets.aws.settings import AwsSettings
from campaign.targets.aws.tf import TerraformRunner
from campaign.targets.aws.watch import LOST, JournalWatcher, WatchResult, make_display


@dataclass
class RunSession:
    record: RunRecord
    plan: Plan
    settings: AwsSettings
    auth: Auth
    state_dir: Path
    user_data: str
    create_bucket: bool
    out: Callable[[str], None] = print
    module_dir: Path = infra.MODULE_DIR  # tests put a stand-in module here
    armed: bool = False  # True once `terraform apply` may have created something
    workdir: Path = field(init=False)
    runner: TerraformRunner = field(init=False)
    store: Store = field(init=False)
    resources: infra.RunInfra = field(init=False)

    def run(self) -> WatchResult:
        """provision, watch, collect; teardown always (once anything may have been created)."""
        try:
            self.provision()
            result = self.watch()
            self.collect(result)
            return result
        finally:
            self.teardown()

    def provision(self) -> None:
        """run.json, then terraform init, plan and apply in the run's own workspace."""
        run_id = self.record.run_id
        self.workdir = infra.workspace_dir(self.state_dir, run_id)
        variables = infra.module_variables(
            self.settings,
            run_id=run_id,
            campaign=self.record.campaign,
            commit=self.record.commit or "",
            user_data=self.user_data,
            create_bucket=self.create_bucket,
        )
        backend = infra.prepare_workspace(
            self.workdir, variables, module_dir=self.module_dir, state_backend=self.settings.state_backend
        )
        self.runner = TerraformRunner(self.workdir)
        self.store = open_store(self.record.store)
        if not self.create_bucket:  # run.json before the instance exists; else right after apply
            self.store.put_bytes(self.record.to_bytes(), self.record.keys.record)
        self.auth.activate()
        self.runner.init(backend_config=backend)
        self.out(f"terraform plan: {self.runner.plan()} (workspace {self.workdir})")
        self.armed = True  # from here on, Terraform may have created something
        self.runner.apply()
        self.resources = infra.RunInfra.from_outputs(self.runner.output())
        if self.create_bucket:
            self.store.put_bytes(self.record.to_bytes(), self.record.keys.record)
        self.out(
            f"instances: {', '.join(self.resources.instance_ids)} in {self.resources.region}; "
            f"watching {self.record.store}/{self.record.keys.journal}"
        )

    def watch(self) -> WatchResult:
        store, resources = self.store, self.resources
        client = ec2.ec2_client(resources.region)
        alive = (lambda: ec2.any_alive(client, list(resources.instance_ids))) if resources.instance_ids else None
        watcher = JournalWatcher(
            store, self.record.run_id, incremental=incremental_keys(self.plan, self.record), instances_alive=alive
        )
        with make_display(self.out) as display:
            result = watcher.watch(
                deadline_s=self.settings.deadline_s,
                interval_s=self.settings.poll_interval_s,
                display=display,
                on_poll_error=lambda err: self.auth.activate(),
            )
        self.out(f"run {self.record.run_id}: {result.state}" + (f" ({result.reason})" if result.reason else ""))
        return result

    def collect(self, result: WatchResult) -> None:
        store = self.store
        dest = self.state_dir / "runs" / self.record.run_id / "outputs"
        count = collect_outputs(store, self.record.run_id, dest, verify=result.state != LOST)
        self.out(f"results: {store.where(RunKeys(self.record.run_id).outputs)} ({count} files; local copy {dest})")

    def teardown(self) -> None:
        if not self.armed:
            return
        runner, workdir, run_id = self.runner, self.workdir, self.record.run_id
        if self.settings.keep:
            self.out(f"--keep: the run's instance and role stay (and bill). Remove them: campaign down {run_id}")
            return
        self.out(f"destroying the infrastructure of run {run_id} (terraform destroy in {workdir}) …")
        try:
            destroy(runner, self.auth)
        except (CampaignError, KeyboardInterrupt) as err:
            self.out(
                f"TEARDOWN INCOMPLETE for run {run_id}: {err or 'interrupted'}\n"
                f"  resources may still exist and bill. Run: campaign down {run_id}"
            )
            raise
        self.out(f"destroyed: nothing of run {run_id} is left running")


def destroy(runner: TerraformRunner, auth: Auth) -> None:
    """Keep a bucket this run created (it holds the results), destroy everything else."""
    auth.activate()
    runner.state_rm(infra.bucket_addresses(runner.state_list()))
    runner.destroy()


def incremental_keys(plan: Plan, record: RunRecord) -> dict[str, str]:
    """Stage run -> the store key of its incremental results, which the watcher follows."""
    keys = {}
    for planned in plan.runs:
        relative = planned.run.incremental(plan.spec)
        if relative is not None:
            keys[planned.run.id] = record.keys.output(relative)
    return keys


def collect_outputs(store: Store, run_id: str, dest: Path, *, verify: bool) -> int:
    """Download the run's outputs to dest; with verify, check the store against the manifest first."""
    if verify:
        verify_run(store, run_id, deep=False)
    prefix = RunKeys(run_id).outputs + "/"
    keys = store.list_keys(prefix)
    for key in keys:
        target = dest / key.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            store.download(key, target)
        except StoreError as err:
            raise StoreError(f"could not fetch {store.where(key)} to {target}: {err}") from err
    return len(keys)
