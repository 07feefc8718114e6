"""What needs a browser or a second process: static export through kaleido and Chromium, the report's
bytes across processes (hash seeds differ), and the package staying free of the training stack."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.report.export import browser_path, write_images

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def needs_browser():
    if browser_path() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")


def engine(*args, env=None):
    return subprocess.run([sys.executable, "-m", "engine.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env={**os.environ, **(env or {})})


def test_figures_writes_every_listed_figure_as_png(paper_db, tmp_path):
    needs_browser()
    out = tmp_path / "figs"
    proc = engine("figures", "--out", out, "--n-boot", 0, "--db", paper_db)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "figures.json").read_text())
    assert [m["name"] for m in manifest][:8] == ["fig02a", "fig02b", "fig02c", "fig05", "fig06", "fig07", "fig08",
                                                 "fig10"]
    assert all(m["skipped"] is None for m in manifest)
    for m in manifest:
        data = (out / m["file"]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, m["file"]
    assert sorted(p.name for p in out.iterdir()) == sorted([m["file"] for m in manifest] + ["figures.json"])


def test_svg_and_pdf_come_through_the_same_route(tmp_path):
    needs_browser()
    import plotly.graph_objects as go
    figs = [go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="a curve")) for _ in range(2)]
    write_images(figs[:1], [tmp_path / "a.svg"], "svg")
    write_images(figs[1:], [tmp_path / "a.pdf"], "pdf")
    assert (tmp_path / "a.svg").read_text().lstrip().startswith("<svg")
    assert (tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"


def test_report_bytes_are_the_same_across_processes_but_the_timestamp_line(paper_db, tmp_path):
    files = []
    for seed in ("1", "2"):
        out = tmp_path / f"r{seed}.html"
        proc = engine("report", "--html", out, "--dataset", "ImageNet-100", "--classifier", "ResNet-50",
                      "--n-boot", 50, "--db", paper_db, env={"PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr[-3000:]
        files.append(out.read_text().splitlines())
    assert len(files[0]) == len(files[1])
    differ = [i for i, (a, b) in enumerate(zip(*files)) if a != b]
    stamp = [i for i, line in enumerate(files[0]) if 'class="generated"' in line]
    assert len(stamp) == 1 and set(differ) <= set(stamp)


def test_the_report_package_imports_no_training_stack():
    code = ("import sys, engine.report.html, engine.report.paper_figures, engine.report.export, engine.cli.report; "
            "print(sorted(m for m in ('torch', 'timm', 'diffusers', 'transformers', 'sklearn', 'streamlit') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
