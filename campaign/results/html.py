"""The HTML report: one self-contained file (plotly's JavaScript inlined once, no CDN), so it opens
offline, from a mail attachment or from S3. Per run: every iteration per query and engine, the cold
runs, totals and geometric means, the spread per query with noisy ones marked, validity and the host;
per comparison: the ratio per item with its interval and verdict, and the summary.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from campaign.results import charts
from campaign.results.compare import Comparison
from campaign.results.records import read_results_file
from campaign.results.tables import NOISY_CV, RunTable, run_table
from campaign.system.host import fingerprint

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.noisy{background:#fff3cd}.bad{background:#f8d7da;font-weight:bold}.slower{color:#d62728;font-weight:bold}
.faster{color:#2ca02c;font-weight:bold}section{margin-bottom:3em}"""


@dataclass
class ReportRun:
    """One run (or results file) in a report: its name, records and host fingerprint."""

    name: str
    records: list[dict[str, Any]]
    host: dict[str, Any] = field(default_factory=dict)


class Page:
    """Collects sections; the first chart carries plotly's JavaScript, inlined."""

    def __init__(self, title: str) -> None:
        self.title, self.parts, self.charts = title, [f"<h1>{html.escape(title)}</h1>"], 0

    def chart(self, fig: go.Figure, name: str) -> None:
        self.charts += 1
        self.parts.append(
            fig.to_html(
                full_html=False,
                include_plotlyjs=self.charts == 1,
                div_id=f"chart-{name}",
                config={"displaylogo": False, "responsive": True},
            )
        )

    def add(self, text: str) -> None:
        self.parts.append(text)

    def render(self) -> str:
        return (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(self.title)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(self.parts)}</body></html>\n"
        )


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if math.isfinite(value) else "—"


def _table(headers: list[str], rows: list[tuple[list[str], dict[str, str]]], css: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for cells, attrs in rows:
        extra = "".join(f" {k}='{html.escape(v)}'" for k, v in attrs.items())
        body.append(f"<tr{extra}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table class='{css}'><tr>{head}</tr>{''.join(body)}</table>"


def _query_rows(table: RunTable) -> list[tuple[list[str], dict[str, str]]]:
    rows = []
    for query in table.queries:
        cells, noisy, bad = [html.escape(query)], False, False
        for series in table.series:
            cell = table.cell(series, query)
            is_noisy = math.isfinite(cell.cv) and cell.cv > NOISY_CV
            noisy, bad = noisy or is_noisy, bad or cell.validity not in ("valid", "ok")
            cv = _fmt(100 * cell.cv) + (" % noisy" if is_noisy else " %")
            cells += [
                _fmt(cell.median),
                cv,
                _fmt(cell.cold) + (f" ({cell.cold_kind})" if cell.cold_kind else ""),
                html.escape(cell.validity),
            ]
        rows.append((cells, {"data-query": query, "class": "bad" if bad else ("noisy" if noisy else "")}))
    return rows


def _run_section(page: Page, run: ReportRun, index: int) -> None:
    table = run_table(run.records)
    page.add(f"<section><h2>{html.escape(run.name)}</h2>")
    page.chart(charts.iterations_figure(run.records, "Every warm iteration per query"), f"iterations-{index}")
    medians = {(s, q): table.cell(s, q).median for s in table.series for q in table.queries}
    page.chart(charts.cold_figure(run.records, medians, "Cold run and warm median"), f"cold-{index}")
    totals, gmeans = table.totals(), table.gmeans()
    page.chart(charts.totals_figure(totals, gmeans, "Totals and geometric means"), f"totals-{index}")
    page.add(
        _table(
            ["engine", "total of medians ms", "geometric mean ms"],
            [([html.escape(s), _fmt(totals[s]), _fmt(gmeans[s], 2)], {"data-series": s}) for s in table.series],
            "totals",
        )
    )
    headers = ["query"] + [f"{s} {h}" for s in table.series for h in ("median ms", "CV", "cold ms", "validity")]
    page.add(
        f"<h3>Per query</h3><p>CV above {NOISY_CV:.0%} is marked noisy.</p>"
        + _table(headers, _query_rows(table), "queries")
    )
    host: list[tuple[list[str], dict[str, str]]] = [
        ([html.escape(str(k)), html.escape(", ".join(map(str, v)) if isinstance(v, list) else str(v))], {})
        for k, v in run.host.items()
    ]
    page.add("<h3>Host</h3>" + _table(["field", "value"], host, "host") + "</section>")


def _comparison_section(page: Page, comparison: Comparison, index: int) -> None:
    summary = comparison.summary
    counts = ", ".join(f"{n} {v}" for v, n in comparison.counts.items())
    page.add(
        f"<section><h2>{html.escape(comparison.contender)} vs {html.escape(comparison.base)}</h2>"
        f"<p class='summary'>geometric mean of the ratios {_fmt(summary.gmean, 3)} "
        f"(95 % interval {_fmt(summary.low, 3)}–{_fmt(summary.high, 3)}); {html.escape(counts)}</p>"
    )
    for warning in comparison.warnings:
        page.add(f"<p class='bad'>warning: {html.escape(warning)}</p>")
    page.chart(charts.ratio_figure(comparison, "Ratio per item with its 95 % interval"), f"ratio-{index}")
    rows = [
        (
            [
                html.escape(r.label),
                _fmt(r.base_median),
                _fmt(r.contender_median),
                _fmt(r.ratio, 3),
                f"{_fmt(r.low, 3)}–{_fmt(r.high, 3)}",
                _fmt(r.p_adjusted, 4),
                f"<span class='{r.verdict.split()[0]}'>{html.escape(r.verdict)}</span>",
            ],
            {"data-item": r.label},
        )
        for r in comparison.rows
    ]
    page.add(
        _table(
            ["item", "base median ms", "contender median ms", "ratio", "95 % interval", "adjusted p", "verdict"],
            rows,
            "comparison",
        )
        + "</section>"
    )


def build_html(title: str, runs: list[ReportRun], comparisons: list[Comparison], *, intro: str = "") -> str:
    page = Page(title)
    if intro:
        page.add(intro)  # e.g. a sweep's tables across instance types
    for index, comparison in enumerate(comparisons):
        _comparison_section(page, comparison, index)
    for index, run in enumerate(runs):
        _run_section(page, run, index)
    return page.render()


def write_html_report(results: list[Path], out: Path, *, title: str) -> Path:
    """report.html for results files on this machine (what a bench stage calls at its end)."""
    runs = [ReportRun(path.name, read_results_file(path), fingerprint()) for path in results]
    return write_html(out, build_html(title, runs, []))


def write_html(out: Path, text: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(out)
    return out
