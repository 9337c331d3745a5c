"""The HTML report's charts, made with plotly (graph objects); each returns a figure, html.py places them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go

from campaign.results.compare import FASTER_V, SLOWER_V, Comparison
from campaign.results.records import is_cold, is_warm_timing, item_of
from campaign.results.tables import series_of

VERDICT_COLOURS = {SLOWER_V: "#d62728", FASTER_V: "#2ca02c"}
OTHER_COLOUR = "#7f7f7f"


def _layout(fig: go.Figure, title: str, y_title: str, *, log_y: bool = False) -> go.Figure:
    fig.update_layout(
        title=title,
        template="plotly_white",
        height=460,
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
        legend={"orientation": "h", "y": -0.15},
    )
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear")
    fig.update_xaxes(categoryorder="category ascending")
    return fig


def iterations_figure(records: Iterable[dict[str, Any]], title: str) -> go.Figure:
    """Every warm execution per query, one box (with every point) per engine."""
    by_series: dict[str, tuple[list[str], list[float]]] = {}
    for record in records:
        if is_warm_timing(record):
            queries, times = by_series.setdefault(series_of(record), ([], []))
            queries.append(item_of(record))
            times.append(float(record["elapsed_ms"]))
    fig = go.Figure(
        [
            go.Box(x=queries, y=times, name=name, boxpoints="all", jitter=0.4, pointpos=0)
            for name, (queries, times) in by_series.items()
        ]
    )
    fig.update_layout(boxmode="group")
    return _layout(fig, title, "ms (log)", log_y=True)


def cold_figure(records: Iterable[dict[str, Any]], warm_medians: dict[tuple[str, str], float], title: str) -> go.Figure:
    """The cold run per query and engine, beside the warm median."""
    cold: dict[str, tuple[list[str], list[float]]] = {}
    for record in records:
        if record.get("ok") and is_cold(record):
            queries, times = cold.setdefault(series_of(record), ([], []))
            queries.append(item_of(record))
            times.append(float(record["elapsed_ms"]))
    fig = go.Figure()
    for name, (queries, times) in cold.items():
        fig.add_trace(go.Bar(x=queries, y=times, name=f"{name} cold"))
        warm = [warm_medians.get((name, query), math.nan) for query in queries]
        fig.add_trace(
            go.Scatter(
                x=queries,
                y=warm,
                name=f"{name} warm median",
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 18, "line": {"width": 3}},
            )
        )
    fig.update_layout(barmode="group")
    return _layout(fig, title, "ms (log)", log_y=True)


def totals_figure(totals: dict[str, float], gmeans: dict[str, float], title: str) -> go.Figure:
    """Per engine: the sum of the warm medians, and their geometric mean on a second axis."""
    names = list(totals)
    fig = go.Figure(
        [
            go.Bar(x=names, y=[totals[n] for n in names], name="total of medians (ms)"),
            go.Scatter(
                x=names,
                y=[gmeans.get(n, math.nan) for n in names],
                name="geometric mean (ms)",
                mode="markers",
                marker={"size": 14, "symbol": "diamond"},
                yaxis="y2",
            ),
        ]
    )
    fig.update_layout(yaxis2={"overlaying": "y", "side": "right"})
    _layout(fig, title, "total ms")
    return fig.update_layout(yaxis2={"title": {"text": "geometric mean ms"}})


def ratio_figure(comparison: Comparison, title: str) -> go.Figure:
    """contender / base per item with its 95 % interval, coloured by verdict, the noise band shaded."""
    rows = [row for row in comparison.rows if math.isfinite(row.ratio)]
    colours = [VERDICT_COLOURS.get(row.verdict, OTHER_COLOUR) for row in rows]
    upper = [row.high - row.ratio if math.isfinite(row.high) else 0 for row in rows]
    lower = [row.ratio - row.low if math.isfinite(row.low) else 0 for row in rows]
    fig = go.Figure(
        go.Scatter(
            x=[row.label for row in rows],
            y=[row.ratio for row in rows],
            mode="markers",
            marker={"color": colours, "size": 10},
            name="ratio",
            error_y={"type": "data", "symmetric": False, "array": upper, "arrayminus": lower},
            text=[row.verdict for row in rows],
            hovertemplate="%{x}: %{y:.3f} (%{text})<extra></extra>",
        )
    )
    band = comparison.threshold
    fig.add_hrect(y0=1 / (1 + band), y1=1 + band, fillcolor="#dddddd", opacity=0.5, line_width=0)
    fig.add_hline(y=1.0, line_dash="dot")
    return _layout(fig, title, f"{comparison.contender} / {comparison.base}", log_y=True)
