"""Symlinks in a stage's outputs: campaign never carries bytes from outside the output dir.

A stage can leave a link (`ln -s /etc/passwd out.txt`) where an output belongs. Reading it would
store the target's bytes; writing it (a resume truncating or appending the incremental file) would
change the target. These helpers find such links without following any.
"""

from __future__ import annotations

import os
from pathlib import Path


def is_inside(path: Path, root: Path) -> bool:
    """Whether path, every link on the way resolved, is root or inside it."""
    real, real_root = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return real == real_root or real_root in real.parents


def links_outside(root: Path, outputs: list[Path]) -> list[str]:
    """'path -> where it leads' for each output, or entry inside an output folder, that leads outside root."""
    return [
        f"{path.relative_to(root).as_posix()} -> {_target(path)}"
        for output in outputs
        for path in _entries(output)
        if not is_inside(path, root)
    ]


def _entries(output: Path) -> list[Path]:
    """The output itself and, for a real folder, everything inside it (links listed, never followed)."""
    if not (output.exists() or output.is_symlink()):
        return []
    if output.is_symlink() or not output.is_dir():
        return [output]
    inside = [Path(folder) / name for folder, dirs, files in os.walk(output) for name in dirs + files]
    return [output, *inside]


def _target(path: Path) -> str:
    return os.readlink(path) if path.is_symlink() else os.path.realpath(path)


def drop_link(path: Path) -> str | None:
    """Remove path when it is a symlink (the link, never its target); returns where it pointed, else None."""
    if not path.is_symlink():
        return None
    target = os.readlink(path)
    path.unlink()
    return target
