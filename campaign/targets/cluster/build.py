"""The build on every node of a local cluster: the commit's prebuilt from the store when there is a usable one
(`campaign prebuild`), else one build in the coordinator's checkout; then its build_output is copied (hard links,
so 3 nodes cost one build's disk) into every other node's checkout. A campaign without a build stage has nothing
to deliver."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from campaign.errors import StageFailed
from campaign.prebuilt.artifact import fetch, lookup
from campaign.run.dirs import default_store
from campaign.spec.model import CampaignSpec, template_context
from campaign.spec.templating import render
from campaign.store import open_store
from campaign.targets.cluster.local import node_env
from campaign.targets.cluster.state import ClusterRecord


def deliver_build(record: ClusterRecord, spec: CampaignSpec, store_url: str | None = None) -> str:
    """The build output on every node; one line saying how (prebuilt or built here) and how long it took."""
    stage = spec.build_stage
    if stage is None:
        return "no build stage: nothing to deliver"
    started = time.monotonic()
    coordinator = record.coordinator
    store = open_store(store_url or default_store(Path(record.repo)))
    found = lookup(store, spec, record.commit)
    if found.usable:
        with tempfile.TemporaryDirectory(prefix="campaign-cluster-") as scratch:
            for relative in stage.build_output:
                shutil.rmtree(coordinator.checkout / relative, ignore_errors=True)
            fetch(store, record.commit, found, coordinator.checkout, Path(scratch), stage.build_output)
        how = f"prebuilt {found.reason}"
    else:
        _build_on_coordinator(record, spec)
        how = f"built in node 1's checkout ({found.reason})"
    for node in record.nodes[1:]:
        for relative in stage.build_output:
            _copy_linked(coordinator.checkout / relative, node.checkout / relative)
    return f"build: {how}, on {len(record.nodes)} nodes in {time.monotonic() - started:.1f} s"


def _build_on_coordinator(record: ClusterRecord, spec: CampaignSpec) -> None:
    stage = spec.build_stage
    assert stage is not None
    node = record.coordinator
    context = template_context(
        spec,
        stage=stage.name,
        sf=None,
        run_id=f"cluster-{record.name}",
        output_dir=str(Path(node.dir) / "build-output"),
        work_dir=str(node.checkout),
    )
    log = Path(node.dir) / "logs" / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", render(stage.run, context)],
            cwd=node.checkout,
            env=node_env(record, node),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        raise StageFailed(
            f"the build stage '{stage.name}' failed on node 1 (exit {result.returncode}); its log is "
            f"{log}. Nothing was deployed to the services."
        )


def _copy_linked(source: Path, dest: Path) -> None:
    """dest becomes a copy of source made of hard links (a plain copy across file systems)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        result = subprocess.run(["cp", "-al", str(source), str(dest)], capture_output=True, text=True)
        if result.returncode != 0:
            shutil.copytree(source, dest, symlinks=True)
    elif source.exists():
        shutil.copy2(source, dest)
