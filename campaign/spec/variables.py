"""`--var NAME=VALUE`: the command line overrides a campaign's declared `vars` (never adds new ones)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import yaml

from campaign.errors import InputError
from campaign.spec.model import CampaignSpec


def parse_var_options(texts: Iterable[str]) -> dict[str, Any]:
    """{'iterations': 5, 'queries': 'q01,q03'} from ['iterations=5', 'queries=q01,q03'] (values typed as YAML)."""
    found: dict[str, Any] = {}
    for text in texts:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise InputError(f"--var {text!r}: write NAME=VALUE, e.g. --var iterations=5")
        try:
            typed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            typed = value
        found[name.strip()] = typed if isinstance(typed, str | int | float | bool) else value
    return found


def with_vars(spec: CampaignSpec, overrides: Mapping[str, Any]) -> CampaignSpec:
    """spec with overrides applied; InputError listing the declared vars when one is unknown."""
    unknown = sorted(set(overrides) - set(spec.vars))
    if unknown:
        declared = ", ".join(f"{name} (default {value!r})" for name, value in spec.vars.items()) or "none"
        raise InputError(
            f"--var {', '.join(unknown)}: not declared in {spec.path.name}'s vars. "
            f"Declared: {declared}. Add it to `vars:` in the campaign file to make it settable."
        )
    if not overrides:
        return spec
    changed = tuple(name for name, value in overrides.items() if spec.vars[name] != value)
    return replace(spec, vars={**spec.vars, **overrides}, overridden=tuple(sorted({*spec.overridden, *changed})))
