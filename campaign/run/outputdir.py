"""A stage run's output dir: its folders before the stage starts, and what may be read from it after."""

from __future__ import annotations

from pathlib import Path

from campaign.system.links import is_inside, links_outside


def make_output_folders(root: Path, outputs: list[str]) -> None:
    """root and the folder of every declared output exist: `echo x > "$CAMPAIGN_OUTPUT_DIR/a/b.txt"` just works."""
    root.mkdir(parents=True, exist_ok=True)
    for output in outputs:
        (root / output).parent.mkdir(parents=True, exist_ok=True)


def outside_problem(root: Path, outputs: list[str]) -> str | None:
    """Why the outputs may not be stored (they lead outside root through symlinks), or None."""
    escaping = links_outside(root, [root / output for output in outputs])
    if not escaping:
        return None
    return (
        f"its outputs lead outside the output dir {root} through symlinks: {'; '.join(escaping)}. campaign "
        "never stores bytes from outside it (nothing of these was stored): write the files themselves "
        "(cp, not ln -s)"
    )


def output_files(root: Path, outputs: list[str]) -> list[Path]:
    """The files of the declared outputs (folders walked) that exist and lie inside root, links resolved."""
    found = []
    for output in outputs:
        path = root / output
        found += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [file for file in found if file.is_file() and is_inside(file, root)]
