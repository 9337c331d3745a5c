"""Targets: where a run executes. `local` (this machine) now; `aws` joins later behind the same seam."""
