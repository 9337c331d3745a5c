"""The consolidated build: one cargo build of every feature any stage needs, and what must not compile again.

Stages declare `features`; the build stage's `{{ cargo_build }}` builds their union once for the whole
workspace, and compiles the test binaries too when some stage runs them. Later stages run the built
binaries: a stage that compiles again (`cargo run`, `cargo build` …) is refused in the campaign file,
because on a paid machine every such stage was another full compile (and with a prebuilt build,
cargo may not even be installed there).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

# `cargo +nightly build`, `cargo build`, … : the subcommands that compile.
_CARGO = r"\bcargo(?:\s+\+\S+)?\s+"
COMPILING = re.compile(_CARGO + r"(build|run|bench|install|rustc|b|r)\b")
RUST_TEST_RUNNER = re.compile(_CARGO + r"(test|nextest|t)\b")
# Unit-test runners CI runs on every pull request (matched per shell command, so `echo` lines count too:
# it is a refusal you can override with ci_overlap, not a guess that silently lets one through).
UNIT_TEST_RUNNERS = (
    ("cargo test", RUST_TEST_RUNNER),
    ("pytest", re.compile(r"(?:^|[\s/])(?:pytest|py\.test)\b|\bpython[\d.]*\s+-m\s+pytest\b")),
    ("go test", re.compile(r"\bgo\s+test\b")),
    ("ctest", re.compile(r"(?:^|[\s/])ctest\b")),
    ("npm test", re.compile(r"\b(?:npm|yarn|pnpm)\s+(?:run\s+)?test\b")),
    ("tox", re.compile(r"(?:^|[\s/])(?:tox|nox)\b")),
    ("mvn test", re.compile(r"\b(?:mvn|gradle|gradlew)\s+(?:\S+\s+)*?test\b")),
    ("dotnet test", re.compile(r"\bdotnet\s+test\b")),
    ("unittest", re.compile(r"\bpython[\d.]*\s+-m\s+unittest\b")),
)
_COMMAND_SEPARATORS = re.compile(r"&&|\|\||[;|\n]")


def feature_union(stages: Iterable) -> tuple[str, ...]:
    """Every cargo feature any stage declares, sorted (so the build, and its prebuilt key, are stable)."""
    return tuple(sorted({feature for stage in stages for feature in stage.features}))


def runs_test_binaries(stages: Iterable) -> bool:
    """Some stage other than the build runs cargo's test binaries (so the build compiles them once)."""
    return any(stage.kind != "build" and test_runner(stage.run, only_rust=True) for stage in stages)


def cargo_build_command(features: tuple[str, ...], *, test_binaries: bool) -> str:
    """The one build: release, whole workspace, the locked dependencies, the union of the features."""
    flags = ["--release", "--workspace", "--locked"]
    if features:
        flags += ["--features", shlex.quote(",".join(features))]
    command = "cargo build " + " ".join(flags)
    if test_binaries:
        command += " && cargo test --no-run " + " ".join(flags)
    return command


def compiles(command: str) -> str | None:
    """The compiling cargo invocation in command (e.g. 'cargo run'), or None."""
    match = COMPILING.search(command)
    return " ".join(match.group(0).split()) if match else None


def test_runner(command: str, *, only_rust: bool = False) -> str | None:
    """The unit-test runner command runs (e.g. 'pytest'), or None. `cargo test --no-run` only compiles."""
    runners = (("cargo test", RUST_TEST_RUNNER),) if only_rust else UNIT_TEST_RUNNERS
    for part in _COMMAND_SEPARATORS.split(command):
        if "--no-run" in part.split():
            continue
        for name, pattern in runners:
            if pattern.search(part):
                return name
    return None
