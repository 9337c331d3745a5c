"""A stage's capacity needs: `requires: {disk_gb: …, memory_gb: …}`, numbers or templates per scale factor.

    requires:
      disk_gb: "{{ sf * 0.5 }}"        # rendered with sf as a number, and vars
      memory_gb: 4

`disk_gb` is what a stage run leaves in the run's output dir plus its scratch space (outputs stay there
until the run ends, so a selection's needs add up); `memory_gb` is its peak resident memory (stage runs
run one at a time, so the largest counts). Validated at load time for every scale factor of the campaign,
with file:line; `campaign plan` compares them with the machine that runs the stages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from campaign.spec.templating import TemplateProblem, compiled, render

CAPACITY_KEYS = ("disk_gb", "memory_gb")
TEMPLATE_NAMES = frozenset({"sf", "vars"})
EXAMPLE = 'a number of GB or a template such as "{{ sf * 1.5 }}"'


class CapacityProblem(ValueError):
    """An amount that is not a non-negative number of GB; the message says which and why."""


def parse_amount(value: object) -> float | str | None:
    """A number, or a template using only sf and vars; CapacityProblem otherwise (None when absent)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CapacityProblem(f"must be {EXAMPLE}, not {value!r}")
    if isinstance(value, int | float):
        return _checked(float(value), repr(value))
    text = value.strip()
    if "{" not in text:
        return _checked(_number(text, f"must be {EXAMPLE}, not {value!r}"), repr(value))
    parsed = compiled(text)
    if parsed.syntax_error:
        raise CapacityProblem(f"{value!r}: {parsed.syntax_error}")
    unknown = sorted(parsed.names - TEMPLATE_NAMES)
    if unknown:
        raise CapacityProblem(f"{value!r} uses {', '.join(unknown)}; a capacity template may use only sf and vars")
    return text


def amount_at(amount: float | str | None, sf: str | None, variables: Mapping[str, Any]) -> float | None:
    """The amount in GB at scale factor sf (a template sees sf as a number); CapacityProblem if it is none."""
    if amount is None or isinstance(amount, float):
        return amount
    context: dict[str, Any] = {"vars": variables}
    if sf is not None:
        context["sf"] = float(sf)
    elif "sf" in compiled(amount).names:
        raise CapacityProblem(f"{amount!r} uses sf, but the stage runs once: add per: scale_factor or give a number")
    try:
        text = render(amount, context)
    except TemplateProblem as err:
        raise CapacityProblem(f"{amount!r}: {err}") from None
    except (TypeError, ValueError, ArithmeticError) as err:
        raise CapacityProblem(f"{amount!r} does not compute at sf {sf}: {err}") from None
    shown = f"{amount!r} rendered to {text.strip()!r} at sf {sf}"
    return _checked(_number(text, f"{shown}, not a number of GB"), shown)


def check_amounts(
    amounts: Mapping[str, float | str | None], sfs: Iterable[str | None], variables: Mapping[str, Any]
) -> list[str]:
    """Problems of a stage's amounts at each of its scale factors (None: a stage without per: scale_factor)."""
    problems = []
    for key, amount in amounts.items():
        for sf in sfs:
            try:
                amount_at(amount, sf, variables)
            except CapacityProblem as err:
                problems.append(f"requires.{key}: {err}")
                break
    return problems


def _number(text: str, problem: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CapacityProblem(problem) from None


def _checked(number: float, shown: str) -> float:
    if not math.isfinite(number) or number < 0:
        raise CapacityProblem(f"{shown} is not a non-negative number of GB")
    return number
