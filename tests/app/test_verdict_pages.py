"""The verdict on the pages (issue 26): the Budget page leads with the same graded verdict `engine equiv`
gives and marks the question on its chart; the Paper check page shows the wrong-side points and the
sensitivity panel with the joint (c1, c2) region; the Scaling page tests the two claims."""
import json

import pytest
from typer.testing import CliRunner

from engine.cli import app
from tests.app.test_pages import figure, open_app, text_of

pytestmark = pytest.mark.slow  # each test runs dashboard pages under Streamlit's AppTest


def cli_verdict(db, dataset, classifier, n_base, n):
    res = CliRunner().invoke(app, ["equiv", "--dataset", dataset, "--classifier", classifier, "--augmentation",
                                   "closed", "--n-base", str(n_base), "--n-real-added", str(n), "--json",
                                   "--db", str(db)])
    return json.loads(res.stdout)["verdict"]


def test_budget_leads_with_the_verdict_engine_equiv_gives(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "budget")
    at.selectbox(key="budget_dataset").set_value("BloodMNIST").run()
    at.selectbox(key="budget_n_base").set_value(6000).run()
    at.text_input(key="budget_n_real_added").set_value("6000").run()
    assert not at.exception
    v = cli_verdict(paper_db, "BloodMNIST", "ResNet-110", 6000, 6000)
    lead = [s.value for s in at.success] + [w.value for w in at.warning] + [e.value for e in at.error]
    assert any(f"Verdict, grade {v['grade']}" in x and v["text"] in x for x in lead), lead
    # the question as a star on the chart, at the verdict's value
    stars = [t for t in figure(at)["data"] if t.get("marker", {}).get("symbol") == "star"]
    assert len(stars) == 1 and abs(stars[0]["y"][0] - v["value"] / 6000) < 1e-9
    assert "paper_check?dataset=BloodMNIST" in text_of(at)


def test_paper_check_shows_wrong_side_points_and_sensitivity(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "paper_check")
    text = text_of(at)
    assert "put 21 of 59 measured real points on the wrong side" in text
    assert "covers 35 % in simulation" in text
    names = [t.get("name") for t in figure(at)["data"]]
    assert "published" in names and any(n and n.startswith("joint 95") for n in names)
    frames = [d.value for d in at.dataframe]
    assert any("answer moves" in f.columns for f in frames)
    # The table's counts are engine.analysis.paper's, and the examples beyond noise are on screen.
    from engine.analysis.paper import paper_check
    rows = {r["equation"]: r for r in paper_check()}
    table = next(f for f in frames if "real points on the wrong side" in f.columns)
    for eq, shown in zip(table["Eq."], table["real points on the wrong side"]):
        r = rows[eq]
        assert shown == f"{r['wrong_side']} of {r['real_points']} ({r['wrong_side_beyond_noise']} beyond noise)"
    beyond = [w for r in rows.values() for w in r["worst_wrong_side"] if w.endswith("(beyond noise)")]
    assert len(beyond) == 4 and all(w in text for w in beyond)


def test_scaling_tests_the_two_claims(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "scaling")
    claims = next(d.value for d in at.dataframe if "claim" in d.value.columns)
    assert {"c2 > 1", "closed-set c1 < open-set c1"} <= set(claims.claim)


def test_scaling_shows_the_papers_tables_6_20_and_21(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "scaling")
    tab6 = next(d.value for d in at.dataframe if "top-1 (Tab. 6)" in d.value.columns)
    assert dict(zip(tab6.traditional, tab6["top-1 (Tab. 6)"]))["flip"] == 89.04   # App. D: flip only
    assert 90.53 in tab6["top-1 (Tab. 6)"].tolist()                                # EDM, no traditional
    assert any("top-1 (Tab. 20)" in d.value.columns for d in at.dataframe)
    assert any("top-1 (Tab. 21)" in d.value.columns for d in at.dataframe)
