"""A run's agent on an AWS cluster's coordinator, through SSM Run Command (AWS-RunShellScript).

`start_script` is what the coordinator runs: it checks that the node's checkout is at the run's commit, installs
campaign from that checkout into a virtualenv of its own (`<node root>/venvs/<commit>`, once per commit; python3.11
from dnf when missing, as on a run's instance; `install_spec = ""` in the [aws] settings means campaign is on the
node's PATH already), then starts `campaign agent RUN --store … --checkout <node root>/checkout` detached
(setsid, nohup: it outlives the SSM command) with the cluster's addresses in its environment, as on a local
cluster. Its pid is `<node root>/run/agent-RUN.pid`, its output `<node root>/logs/agent-RUN.log`.
"""

from __future__ import annotations

import shlex
from typing import Any

from campaign.errors import StageFailed
from campaign.targets.cluster.state import ClusterRecord, identity_env
from campaign.targets.cluster_aws.remote import NODE_ROOT, on_nodes

INSTALL_TIMEOUT_S = 1800.0
PYTHON = "python3.11"


def agent_files(run_id: str) -> tuple[str, str]:
    """The agent's pid file and log, relative to the node's root."""
    return f"run/agent-{run_id}.pid", f"logs/agent-{run_id}.log"


def _install_lines(commit: str, install_spec: str) -> list[str]:
    if not install_spec:
        return ["campaign=campaign  # install_spec is empty: campaign is installed on the node already"]
    venv = f'"$root/venvs/"{shlex.quote(commit)}'
    return [
        f"venv={venv}",
        'if [ ! -x "$venv/bin/campaign" ]; then',
        f"  command -v {PYTHON} >/dev/null || dnf install -y -q {PYTHON} >&2",
        f'  rm -rf "$venv.partial" && {PYTHON} -m venv "$venv.partial"',
        f'  (cd "$checkout" && "$venv.partial/bin/pip" install --quiet {shlex.quote(install_spec)}) >&2',
        '  mv "$venv.partial" "$venv"',
        "fi",
        'campaign="$venv/bin/campaign"',
    ]


def start_script(
    record: ClusterRecord, run_id: str, store_url: str, *, install_spec: str, take_over: bool = False
) -> str:
    """The coordinator's command: the checkout checked, campaign installed, the agent started detached."""
    pid_file, log = agent_files(run_id)
    env = {**identity_env(record, record.coordinator), "AWS_DEFAULT_REGION": record.region or ""}
    agent = ["agent", run_id, "--store", store_url] + (["--take-over"] if take_over else [])
    commit = shlex.quote(record.commit)
    return "\n".join(
        [
            "set -euo pipefail",
            f'root="${{CAMPAIGN_NODE_ROOT:-{NODE_ROOT}}}"',
            'checkout="$root/checkout"',
            'head="$(git -C "$checkout" rev-parse HEAD)"',
            f'if [ "$head" != {commit} ]; then echo "the checkout is at $head, not {record.commit}" >&2; exit 3; fi',
            *_install_lines(record.commit, install_spec),
            'mkdir -p "$root/run" "$root/logs" "$root/state"',
            'cd "$checkout"',
            *(f"export {name}={shlex.quote(value)}" for name, value in env.items()),
            'export CAMPAIGN_NODE_DIR="$root"',
            f'setsid nohup "$campaign" {shlex.join(agent)} --checkout "$checkout" --state-dir "$root/state" '
            f'>>"$root/{log}" 2>&1 </dev/null &',
            f'echo $! >"$root/{pid_file}"',
            'echo "{\\"pid\\": $!}"',
        ]
    )


def alive_script(run_id: str) -> str:
    """Prints alive when the run's agent process lives on the node (a zombie nobody reaped does not count)."""
    pid_file, _ = agent_files(run_id)
    return "\n".join(
        [
            f'root="${{CAMPAIGN_NODE_ROOT:-{NODE_ROOT}}}"',
            f'pid="$(cat "$root/{pid_file}" 2>/dev/null || true)"',
            'state="$( [ -n "$pid" ] && sed "s/.*) //" "/proc/$pid/stat" 2>/dev/null | cut -d" " -f1 || true)"',
            'if [ -n "$state" ] && [ "$state" != Z ]; then echo alive; else echo gone; fi',
        ]
    )


def start_agent(ssm: Any, record: ClusterRecord, script: str, run_id: str) -> None:
    """The start script on the coordinator; StageFailed naming the cluster, node and run when it fails."""
    answer = on_nodes(ssm, [(record.coordinator, script)], INSTALL_TIMEOUT_S)[0]
    if not answer.ok or not isinstance(answer.value, dict) or "pid" not in answer.value:
        _, log = agent_files(run_id)
        raise StageFailed(
            f"cluster {record.name}: the agent of run {run_id} did not start on {answer.detail}. "
            f"`campaign cluster exec --name {record.name} --on 1 -- tail -50 ../{log}` shows its output; "
            f"`campaign cluster deploy --name {record.name}` puts the run's commit on the nodes again."
        )


def agent_alive(ssm: Any, record: ClusterRecord, run_id: str) -> bool:
    """The agent's process lives on the coordinator (asked through SSM; no answer counts as alive)."""
    answer = on_nodes(ssm, [(record.coordinator, alive_script(run_id))], 120)[0]
    return not (answer.ok and answer.invocation.stdout.strip().endswith("gone"))
