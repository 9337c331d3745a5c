"""The campaign file's `matrix:`: what a sweep varies. Today one key, the instance types:

matrix:
  instance_types: [c7i.xlarge, c7g.xlarge]   # `campaign run --target aws` runs one after another
"""

from __future__ import annotations

import re

from campaign.spec.validate import Problems
from campaign.spec.yamlmarks import LocatedDict

MATRIX_KEYS = {"instance_types"}
INSTANCE_TYPE = re.compile(r"^[a-z0-9][a-z0-9-]*\.[a-z0-9-]+$")


def parse_matrix(document: LocatedDict, problems: Problems) -> tuple[str, ...]:
    """The matrix's instance types (() without a matrix); problems with file:line otherwise."""
    if "matrix" not in document:
        return ()
    matrix, line = document.get("matrix"), document.line_of("matrix")
    if not isinstance(matrix, LocatedDict):
        problems.add(line, "matrix must be a mapping, e.g. matrix: {instance_types: [c7i.xlarge, c7g.xlarge]}.")
        return ()
    for key in matrix:
        if key not in MATRIX_KEYS:
            problems.add(matrix.line_of(key), f"matrix: unknown key '{key}'. Allowed keys: instance_types.")
    types = matrix.get("instance_types")
    line = matrix.line_of("instance_types")
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        problems.add(line, "matrix: instance_types must be a non-empty list such as [c7i.xlarge, c7g.xlarge].")
        return ()
    bad = [t for t in types if not INSTANCE_TYPE.match(t)]
    doubled = sorted({t for t in types if types.count(t) > 1})
    if bad:
        problems.add(line, f"matrix: {', '.join(bad)} is not an EC2 instance type (e.g. c7i.xlarge).")
    if doubled:
        problems.add(line, f"matrix: {', '.join(doubled)} listed twice; a sweep runs each instance type once.")
    return tuple(types)
