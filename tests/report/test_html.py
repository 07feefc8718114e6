"""The HTML report: self-contained, reproducible but for one line, and saying what the analysis says."""
import difflib
from datetime import datetime, timezone
from html import escape
from html.parser import HTMLParser

import pytest

from engine.analysis.fit import analyse
from engine.analysis.paper import paper_check
from engine.analysis.select import fit_runs
from engine.analysis.verdict import explain
from engine.report import provenance
from engine.report.html import GENERATED_CLASS, ReportError, build_report, parse_question, select_settings
from store import runs as store_runs
from tests.report.stores import toy_store

T1 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
T2 = datetime(2031, 6, 7, 8, 9, 10, tzinfo=timezone.utc)
CIFAR = ("CIFAR-10", "ResNet-110")


class Refs(HTMLParser):
    """Every src / href of every element, and the script tags' own attributes."""

    def __init__(self):
        super().__init__()
        self.refs, self.scripts = [], []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "script":
            self.scripts.append(dict(attrs))


@pytest.fixture(scope="module")
def cifar(_paper_store):
    settings = select_settings(_paper_store, [CIFAR[0]], [CIFAR[1]])
    html = build_report(_paper_store, settings, [(5000, 5000)], n_boot=30, generated=T1)
    return _paper_store, settings, html


def section(html: str, title_start: str) -> str:
    start = html.index(title_start)
    end = html.find("<h2", start + 1)
    return html[start:end]


def test_report_refers_to_nothing_outside_itself(cifar):
    from plotly.offline import get_plotlyjs
    _, settings, html = cifar
    parser = Refs()
    parser.feed(html)
    assert not [r for r in parser.refs if not r.startswith("#")], parser.refs
    assert all("src" not in s for s in parser.scripts)
    assert html.count(get_plotlyjs()) == 1  # inlined once, not once a chart
    n = html.count("Plotly.newPlot(")
    # Two settings, each with its Eq. 1 chart and one contour chart per fitted base; ids numbered, not random.
    assert n >= 2 * 2 and all(f'id="chart-{i}"' in html for i in range(1, n + 1))
    assert f'id="chart-{n + 1}"' not in html


def test_same_store_and_arguments_differ_in_the_timestamp_line_only(cifar):
    db, settings, html = cifar
    again = build_report(db, settings, [(5000, 5000)], n_boot=30, generated=T2)
    changed = [line for line in difflib.unified_diff(html.splitlines(), again.splitlines(), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(changed) == 2, changed  # one line out, one line in
    assert all(f'class="{GENERATED_CLASS}"' in line for line in changed)
    assert T1.isoformat() in changed[0] and T2.isoformat() in changed[1]
    assert html.count(f'class="{GENERATED_CLASS}"') == 1


def test_verdicts_and_eq1_are_the_analysis_own(cifar):
    db, _, html = cifar
    runs = store_runs.query_runs(db, dataset=CIFAR[0], classifier=CIFAR[1])
    a = analyse(runs, *CIFAR, "closed", "EDM", "crop+flip", n_boot=30)
    v = explain(a, 5000, 5000, "syn_for_real")["verdict"]
    part = section(html, "CIFAR-10 · ResNet-110 · closed (EDM) · crop+flip</h2>")
    assert escape(v["text"]) in part
    assert f'grade-{v["grade"]}">{v["grade"]}</span>' in part
    assert f"c1 = {a.c1:.4g}" in part and f"c2 = {a.c2:.4g}" in part
    assert f"{len(a.tuples)} tuples kept, {len(a.dropped)} dropped" in part


def test_paper_check_and_published_quality_beside_each_setting(cifar):
    _, _, html = cifar
    rows = {r["equation"]: r for r in paper_check(n_boot=200)}
    closed = section(html, "CIFAR-10 · ResNet-110 · closed (EDM) · crop+flip</h2>")
    opened = section(html, "CIFAR-10 · ResNet-110 · open (CIFAKE) · crop+flip</h2>")
    assert "Eq. 3 as printed: c1 = 0.88, c2 = 2.53" in closed
    assert "Eq. 4 as printed: c1 = 1.67, c2 = 2.93" in opened
    assert f"{rows[3]['wrong_side']} of {rows[3]['real_points']} ({rows[3]['wrong_side_beyond_noise']} beyond noise)" \
        in closed
    # Tab. 2's FID and IS of each kind of CIFAR-10 synthetic data, where the paper prints them.
    assert "<td>Tab. 2</td><td>FID</td><td class=\"num\">8.33</td>" in closed
    assert "<td>Tab. 2</td><td>FID</td><td class=\"num\">27.15</td>" in opened
    assert "8.33" not in opened


def test_provenance_names_commit_store_checksum_packages_and_run_keys(cifar):
    db, settings, html = cifar
    runs = store_runs.query_runs(db, dataset=CIFAR[0], classifier=CIFAR[1])
    used = fit_runs(runs, *CIFAR, "closed", "EDM", "crop+flip")
    closed = section(html, "CIFAR-10 · ResNet-110 · closed (EDM) · crop+flip</h2>")
    assert provenance.runs_checksum(used) in closed
    assert all(f"<code>{escape(k)}</code>" in closed for k in used.run_key)
    assert f"{len(used)} runs, sha256" in closed
    prov = html[html.index('id="provenance"'):]
    assert escape(provenance.git_commit()) in prov and str(db.resolve()) in prov
    assert f"plotly {provenance.package_versions()['plotly']}" in prov
    both = [fit_runs(runs, *s[:4], s[4]) for s in settings]
    import pandas as pd
    assert provenance.runs_checksum(pd.concat(both).drop_duplicates("run_id")) in prov


def test_runs_checksum_ignores_order_and_sees_every_value(paper_runs):
    runs = paper_runs[paper_runs.dataset == "BloodMNIST"]
    digest = provenance.runs_checksum(runs)
    assert provenance.runs_checksum(runs.iloc[::-1]) == digest
    changed = runs.copy()
    changed.loc[changed.index[3], "top1"] += 1e-9
    assert provenance.runs_checksum(changed) != digest
    assert provenance.runs_checksum(runs.iloc[1:]) != digest


def test_quality_metrics_of_the_sets_a_fit_used(tmp_path):
    db = toy_store(tmp_path / "toy.duckdb")
    html = build_report(db, None, [(1000, 1000)], n_boot=0, generated=T1)
    part = section(html, "Toy · Net · closed (EDM-toy) · crop+flip</h2>")
    assert "<td>toyset</td><td>fd_digits</td><td class=\"num\">12.35</td><td>[11, 13.5]</td>" in part
    assert "Not one of the seven settings the paper fitted an equation to" in part
    assert "engine runs" in part and "toy:Toy:1000:syn:8000:2" in part


def test_a_set_without_metrics_is_named_as_such(tmp_path):
    db = toy_store(tmp_path / "toy.duckdb", with_quality=False)
    html = build_report(db, None, [(1000, 1000)], n_boot=0, generated=T1)
    assert "1 synthetic set(s) used (toyset); no quality metric stored" in html


@pytest.mark.parametrize("text, expected", [("5000:5000", (5000, 5000)), (" 5,000 : 10_000 ", (5000, 10000)),
                                            ("1:0", (1, 0))])
def test_questions_read_as_n_base_and_n(text, expected):
    assert parse_question(text) == expected


@pytest.mark.parametrize("text", ["5000", "5000:", ":5000", "0:5000", "5000:-1", "5e3:1", "a:b", "1:2:3"])
def test_bad_questions_are_one_line_naming_the_value(text):
    with pytest.raises(ReportError) as err:
        parse_question(text)
    assert repr(text) in str(err.value) and "\n" not in str(err.value)
