"""Render the instance's userdata from userdata/*.j2 (jinja2's immutable sandbox, StrictUndefined).

Terraform receives the rendered script as a string; it never runs templatefile() over shell code.
Every value that lands in the shell is quoted by the `shq` filter; shell's own ${VAR} pass through.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "userdata"
ENTRY_TEMPLATE = "userdata.sh.j2"
USERDATA_LIMIT = 16 * 1024  # EC2's limit on raw userdata


@dataclass(frozen=True)
class UserdataParams:
    """What the script needs. On an instance: the defaults. In the local rehearsal (tests/aws): system
    setup off, no install (campaign_command is used as it is), and a stand-in shutdown command."""

    run_id: str
    campaign: str
    commit: str
    repo_url: str
    store_url: str  # s3://bucket/prefix
    region: str
    watchdog_minutes: int
    bench_user: str = "bench"
    work_root: str = "/opt/campaign"
    python: str = "python3.11"
    install_spec: str = ".[tpch]"  # '' means: campaign is installed already, run campaign_command
    campaign_command: tuple[str, ...] = ()
    system_setup: bool = True
    machine_control: bool = True  # the watchdog and the final power-off
    shutdown_command: str = "shutdown"
    profile_script: str = "/etc/profile.d/campaign.sh"  # OPENSSL_NO_VENDOR for login shells
    run_json_wait_s: int = 900
    repo_token_parameter: str = ""  # an SSM SecureString with the token of a private repository, or ''
    rust_toolchain: bool = False  # the plan builds on the instance: install rust and cargo (dnf)
    take_over: bool = False  # `campaign resume RUN --target aws`: the replacement takes the dead agent's lease


def render_userdata(params: UserdataParams, *, template_dir: Path = TEMPLATE_DIR) -> str:
    if not params.install_spec and not params.campaign_command:
        raise ValueError("userdata without install_spec needs campaign_command")
    return render_template(ENTRY_TEMPLATE, asdict(params), template_dir=template_dir)


def render_template(template: str, values: dict[str, Any], *, template_dir: Path = TEMPLATE_DIR) -> str:
    """One of userdata/*.j2 rendered with values (shell values quoted by `shq`), within EC2's size limit."""
    environment = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["shq"] = lambda value: shlex.quote(str(value))
    script = environment.get_template(template).render(**values)
    if len(script.encode("utf-8")) > USERDATA_LIMIT:
        raise ValueError(f"the rendered userdata is {len(script)} bytes; EC2 accepts at most {USERDATA_LIMIT}")
    return script
