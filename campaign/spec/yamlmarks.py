"""YAML loading that remembers line numbers, so errors can say `campaign.yaml:12`.

Mappings load as `LocatedDict`: a dict that also knows its own line and each key's line.
Duplicate keys are refused (PyYAML silently keeps the last one).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from campaign.errors import InputError

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LocatedDict(dict):
    """A mapping from the file, with `line` (its own) and `key_lines` (each key's)."""

    line: int = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(_BaseLoader):
    pass


def _construct_located_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LocatedDict:
    loader.flatten_mapping(node)
    mapping = LocatedDict()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in mapping:
            raise InputError(
                f"{loader.path}:{line}: key '{key}' appears twice in the same mapping "
                f"(first at line {mapping.key_lines[key]}); YAML would silently keep only the last one. "
                "Remove one of them."
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = line
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_located_mapping)


def load_located_yaml(path: Path) -> tuple[object, bytes]:
    """Parse path; return (document, raw bytes). Syntax errors become InputError with file:line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"campaign file {path} does not exist. Pass the right one with -f FILE "
            "or run from the repository that has campaign.yaml."
        ) from None
    loader = _LineLoader(raw.decode("utf-8"))
    loader.path = str(path)
    try:
        return loader.get_single_data(), raw
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        hint = _template_quoting_hint(raw, mark)
        raise InputError(f"{where}: not valid YAML: {err.problem or err}. Fix the syntax there.{hint}") from None
    finally:
        loader.dispose()


def _template_quoting_hint(raw: bytes, mark) -> str:
    """YAML reads an unquoted {{ sf }} as a mapping; say so when the broken line has one."""
    if mark is None:
        return ""
    lines = raw.decode("utf-8", "replace").splitlines()
    nearby = lines[max(0, mark.line - 1): mark.line + 1]
    if any("{{" in line for line in nearby):
        return ' Values containing {{ }} must be quoted, e.g. produces: ["results/sf{{ sf }}/out.json"].'
    return ""
