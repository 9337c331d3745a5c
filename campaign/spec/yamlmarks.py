"""YAML loading that remembers line numbers, so errors can say `campaign.yaml:12`.

Mappings load as `LocatedDict`: a dict that also knows its own line and each key's line.
Duplicate keys are refused (PyYAML silently keeps the last one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from campaign.errors import InputError

# libyaml's C loader when the build has it: much faster on large files.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_DOCUMENT_BYTES = 1024 * 1024  # a 500-stage campaign is ~100 KiB
MAX_EXPANDED_NODES = 200_000  # values after alias expansion; a 500-stage campaign has ~10 000


class LocatedDict(dict):
    """A mapping from the file, with `line` (its own) and `key_lines` (each key's)."""

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(_BaseLoader):  # type: ignore[valid-type,misc]  # chosen at import time
    def get_single_data(self) -> Any:
        """Compose the node graph, refuse alias bombs by its expanded size, then build the document."""
        node = self.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node, self.path)
        return self.construct_document(node)


def _check_expanded_size(root: yaml.Node, path: str) -> None:
    """Count the nodes the document has once every alias is expanded (each shared node counted as often
    as it is used), without expanding anything: a billion-laughs file is refused in microseconds."""
    sizes: dict[int, int] = {}
    for node in _post_order(root, path):
        sizes[id(node)] = min(1 + sum(sizes[id(child)] for child in _children(node)), MAX_EXPANDED_NODES + 1)
    if sizes[id(root)] > MAX_EXPANDED_NODES:
        raise InputError(
            f"{path}: expands to more than {MAX_EXPANDED_NODES} values once its YAML aliases (*name) "
            "are expanded; campaign refuses it rather than run out of memory. Use fewer or "
            "smaller aliases."
        )


def _post_order(root: yaml.Node, path: str) -> list[yaml.Node]:
    """Every distinct node, children before parents; a node that contains itself (via an alias) is refused."""
    order, state, stack = [], {}, [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            state[id(node)] = "done"
            order.append(node)
            continue
        if state.get(id(node)) == "done":
            continue
        if state.get(id(node)) == "open":
            raise InputError(
                f"{path}:{node.start_mark.line + 1}: a YAML alias refers to a value that contains "
                "it (a recursive structure). Write the value out instead."
            )
        state[id(node)] = "open"
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if state.get(id(child)) != "done")
    return order


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


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
    raw = _read_campaign_bytes(path)
    loader = _LineLoader(_utf8_text(path, raw))
    loader.path = str(path)
    try:
        return loader.get_single_data(), raw
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        hint = _template_quoting_hint(raw, mark)
        raise InputError(f"{where}: not valid YAML: {err.problem or err}. Fix the syntax there.{hint}") from None
    except RecursionError:
        raise InputError(
            f"{path}: nested too deeply to be a campaign file (lists or mappings inside each "
            "other thousands of levels down). Flatten it."
        ) from None
    finally:
        loader.dispose()


def _read_campaign_bytes(path: Path) -> bytes:
    """The file's bytes, at most MAX_DOCUMENT_BYTES; a missing file, a folder or an unreadable one is bad input."""
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise InputError(
            f"campaign file {path} does not exist. Pass the right one with -f FILE "
            "or run from the repository that has campaign.yaml."
        ) from None
    except IsADirectoryError:
        raise InputError(
            f"campaign file {path} is a folder. -f takes the campaign file itself, e.g. -f {path / 'campaign.yaml'}."
        ) from None
    except OSError as err:
        raise InputError(f"campaign file {path} cannot be read: {err.strerror}.") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputError(
            f"campaign file {path} is larger than {MAX_DOCUMENT_BYTES // 1024} KiB; a campaign file "
            "declares stages, it does not hold data. Put data in files the stages read."
        )
    return raw


def _utf8_text(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}). "
            "Save the campaign file as UTF-8."
        ) from None


def _template_quoting_hint(raw: bytes, mark: yaml.Mark | None) -> str:
    """YAML reads an unquoted {{ sf }} as a mapping; say so when the broken line has one."""
    if mark is None:
        return ""
    lines = raw.decode("utf-8", "replace").splitlines()
    nearby = lines[max(0, mark.line - 1) : mark.line + 1]
    if any("{{" in line for line in nearby):
        return ' Values containing {{ }} must be quoted, e.g. produces: ["results/sf{{ sf }}/out.json"].'
    return ""
