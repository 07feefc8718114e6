"""The Budget and Paper check pages' "Download report": the same file `engine report --html` builds."""
import pytest

from tests.app.test_pages import open_app

pytestmark = pytest.mark.slow  # each test runs dashboard pages under Streamlit's AppTest


def test_budget_builds_the_report_of_its_setting_and_question(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "budget")
    at.text_input(key="budget_n_real_added").set_value("4321").run()
    assert not at.get("download_button")  # built on request only: the page stays fast
    at.button(key="budget_report_build").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("download_button")) == 1
    from engine.report.html import build_report
    setting = tuple(at.selectbox(key=f"budget_{k}").value or None
                    for k in ("dataset", "classifier", "augmentation", "generator"))
    n_base = at.selectbox(key="budget_n_base").value
    expected = build_report(str(paper_db), [setting], [(n_base, 4321)], source=at.radio(key="budget_source").value)
    html = at.session_state["budget_report"][1]
    assert "4,321" in html
    # The same file but its one timestamp line.
    differ = [(a, b) for a, b in zip(html.splitlines(), expected.splitlines()) if a != b]
    assert len(html.splitlines()) == len(expected.splitlines()) and len(differ) <= 1, differ[:2]
    # Another question makes the built report stale: the button says so instead of offering the old file.
    at.text_input(key="budget_n_real_added").set_value("5000").run()
    assert not at.get("download_button")
    assert any("build it again" in c.value for c in at.caption)


def test_paper_check_builds_the_report_of_the_papers_settings(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "paper_check")
    at.button(key="paper_report_build").click().run()
    assert not at.exception, [e.value for e in at.exception]
    html = at.session_state["paper_report"][1]
    assert html.startswith("<!DOCTYPE html>") and "BloodMNIST" in html and "ImageNet-100" in html
    assert "https://" not in html.split("<script", 1)[0]
