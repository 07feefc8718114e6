"""The report of the shipped store opened in headless Chromium with the network cut: every chart drawn,
no request leaves the file, no script error; its top is kept as test-artifacts/report.png (docs/screenshots/report.png is a copy of one)."""
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app

ROOT = Path(__file__).resolve().parents[2]
# A test never writes into the tracked tree: the docs keep a copied screenshot.
SCREENSHOT = ROOT / "test-artifacts" / "report.png"
pytestmark = pytest.mark.browser


def test_report_opens_offline_with_every_chart_drawn(paper_db, tmp_path, browser):
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--html", str(out), "--db", str(paper_db)])
    assert res.exit_code == 0, res.output
    charts = out.read_text().count("Plotly.newPlot(")
    page = browser.new_page(viewport={"width": 1400, "height": 2200})
    try:
        outside, errors = [], []

        def cut(route):  # the network is cut: anything but the file itself is refused and recorded
            if route.request.url.startswith("file://"):
                return route.continue_()
            outside.append(route.request.url)
            return route.abort()
        page.route("**/*", cut)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(out.as_uri())
        page.wait_for_function(
            "n => document.querySelectorAll('.plotly-graph-div .main-svg').length >= n && "
            "Array.from(document.querySelectorAll('.plotly-graph-div')).every(d => d._fullLayout)",
            arg=charts, timeout=120_000)
        drawn = page.evaluate("Array.from(document.querySelectorAll('.plotly-graph-div'))"
                              ".filter(d => d.querySelectorAll('.main-svg .trace').length && d._fullData.length).length")
        links = page.evaluate("Array.from(document.querySelectorAll('[src],[href]'))"
                              ".map(e => e.getAttribute('src') || e.getAttribute('href'))"
                              ".filter(v => /^(https?:)?\\/\\//.test(v))")
        assert charts >= 7 * 3 and drawn == charts, (drawn, charts)
        assert outside == [] and errors == [] and links == []
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
    finally:
        page.close()
