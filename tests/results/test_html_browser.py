"""The HTML report in a real browser: Debian's Chromium, headless, driven by Playwright (never a browser
Playwright downloads). It must load offline with no console error and show the expected charts and rows.
The screenshot is kept as a test artifact (its path is printed; run pytest with -s to see it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from campaign.results.command import CompareOptions, compare_sides
from campaign.results.html import ReportRun, build_html
from campaign.results.sides import Side
from tests.results.fabricate import ENGINES, QUERIES, records

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    base = records(1, iterations=10, cv=0.1)
    contender = records(2, iterations=10, cv=0.1, slow={("q05", "duckdb"): 1.6})
    host = {"cpu_model": "Test CPU", "cores": 2, "kernel": "6.1", "cpu_flags": ["avx2"]}
    sides = [Side("base-run", base, host), Side("contender-run", contender, host)]
    comparisons = compare_sides(sides, "", CompareOptions())
    page = build_html("browser test", [ReportRun(s.name, s.records, s.host) for s in sides], comparisons)
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(page)
    return path


def test_the_report_opens_in_chromium_with_its_charts_and_rows(report: Path, tmp_path: Path):
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)"
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(report.as_uri())
        page.wait_for_selector("#chart-ratio-0 .main-svg")
        plots = page.locator(".js-plotly-plot").count()
        ids = page.eval_on_selector_all(".js-plotly-plot", "nodes => nodes.map(n => n.id)")
        query_rows = page.locator("table.queries tr[data-query]").count()
        slower = page.locator("table.comparison tr[data-item='q05 duckdb sf1'] .slower").count()
        boxes = page.eval_on_selector("#chart-iterations-0", "node => node.data.length")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=False)
        runs_shot = tmp_path / "report-iterations.png"
        page.locator("#chart-iterations-0").screenshot(path=str(runs_shot))
        browser.close()
    print(f"\nscreenshots: {shot} {runs_shot}")
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests  # nothing from the network
    assert plots == 1 + 2 * 3 and "chart-ratio-0" in ids and "chart-totals-1" in ids
    assert query_rows == 2 * len(QUERIES)
    assert slower == 1
    assert boxes == len(ENGINES)
    assert shot.stat().st_size > 10_000


def test_the_report_marks_noisy_queries_and_shows_the_host(report: Path):
    text = report.read_text()
    assert "% noisy" in text and "Test CPU" in text and "geometric mean of the ratios" in text
