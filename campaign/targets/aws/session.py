"""One AWS run from apply to destroy. The undo (destroy) is armed before `terraform apply` starts, so
whatever Terraform may have created is destroyed in `finally`: after success, failure, Ctrl-C or
SIGTERM (turned into KeyboardInterrupt by the caller) — unless --keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from campaign.errors import CampaignError, StoreError
from campaign.planning.plan import Plan
from campaign.run.record import RunRecord, run_key
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
    out: object = print
    module_dir: Path = infra.MODULE_DIR  # tests put a stand-in module here

    def run(self) -> WatchResult:
        from campaign.store import open_store

        run_id = self.record.run_id
        workdir = infra.workspace_dir(self.state_dir, run_id)
        variables = infra.module_variables(self.settings, run_id=run_id, campaign=self.record.campaign,
                                           commit=self.record.commit or "", user_data=self.user_data,
                                           create_bucket=self.create_bucket)
        backend = infra.prepare_workspace(workdir, variables, module_dir=self.module_dir,
                                          state_backend=self.settings.state_backend)
        runner = TerraformRunner(workdir)
        store = open_store(self.record.store)
        armed = False
        try:
            if not self.create_bucket:  # run.json before the instance exists; else right after apply
                store.put_bytes(self.record.to_bytes(), run_key(run_id, "run.json"))
            self.auth.activate()
            runner.init(backend_config=backend)
            self.out(f"terraform plan: {runner.plan()} (workspace {workdir})")
            armed = True  # from here on, Terraform may have created something
            runner.apply()
            resources = infra.RunInfra.from_outputs(runner.output())
            if self.create_bucket:
                store.put_bytes(self.record.to_bytes(), run_key(run_id, "run.json"))
            self.out(f"instances: {', '.join(resources.instance_ids)} in {resources.region}; "
                     f"watching {self.record.store}/runs/{run_id}/journal.jsonl")
            result = self.watch(store, resources)
            self.collect(store, result)
            return result
        finally:
            if armed:
                self.teardown(runner, workdir)

    def watch(self, store, resources: infra.RunInfra) -> WatchResult:
        client = ec2.ec2_client(resources.region)
        alive = (lambda: ec2.any_alive(client, list(resources.instance_ids))) if resources.instance_ids else None
        watcher = JournalWatcher(store, self.record.run_id, incremental=incremental_keys(self.plan, self.record),
                                 instances_alive=alive)
        with make_display(self.out) as display:
            result = watcher.watch(deadline_s=self.settings.deadline_s, interval_s=self.settings.poll_interval_s,
                                   display=display, on_poll_error=lambda err: self.auth.activate())
        self.out(f"run {self.record.run_id}: {result.state}" + (f" ({result.reason})" if result.reason else ""))
        return result

    def collect(self, store, result: WatchResult) -> None:
        dest = self.state_dir / "runs" / self.record.run_id / "outputs"
        count = collect_outputs(store, self.record.run_id, dest, verify=result.state != LOST)
        self.out(f"results: {store.where(run_key(self.record.run_id, 'outputs'))} ({count} files; local copy {dest})")

    def teardown(self, runner: TerraformRunner, workdir: Path) -> None:
        run_id = self.record.run_id
        if self.settings.keep:
            self.out(f"--keep: the run's instance and role stay (and bill). Remove them: campaign down {run_id}")
            return
        self.out(f"destroying the infrastructure of run {run_id} (terraform destroy in {workdir}) …")
        try:
            destroy(runner, self.auth)
        except (CampaignError, KeyboardInterrupt) as err:
            self.out(f"TEARDOWN INCOMPLETE for run {run_id}: {err or 'interrupted'}\n"
                     f"  resources may still exist and bill. Run: campaign down {run_id}")
            raise
        self.out(f"destroyed: nothing of run {run_id} is left running")


def destroy(runner: TerraformRunner, auth: Auth) -> None:
    """Keep a bucket this run created (it holds the results), destroy everything else."""
    auth.activate()
    runner.state_rm(infra.bucket_addresses(runner.state_list()))
    runner.destroy()


def incremental_keys(plan: Plan, record: RunRecord) -> dict[str, str]:
    from campaign.spec.templating import render

    keys = {}
    for planned in plan.runs:
        run = planned.run
        if run.stage.incremental:
            context = run.context(plan.spec, run_id=record.run_id, output_dir="", work_dir="")
            keys[run.id] = run_key(record.run_id, "outputs", render(run.stage.incremental, context))
    return keys


def collect_outputs(store, run_id: str, dest: Path, *, verify: bool) -> int:
    """Download the run's outputs to dest; with verify, check the store against the manifest first."""
    from campaign.run.inspection import verify_run

    if verify:
        verify_run(store, run_id, deep=False)
    prefix = run_key(run_id, "outputs") + "/"
    keys = store.list_keys(prefix)
    for key in keys:
        target = dest / key.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            store.download(key, target)
        except StoreError as err:
            raise StoreError(f"could not fetch {store.where(key)} to {target}: {err}") from err
    return len(keys)
