"""Links that reopen a view (app/links.py): a page opened with query parameters shows that choice, and
the page writes its choices back into the URL so that a copied link reopens it."""
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.test_pages import MAIN, text_of

pytestmark = pytest.mark.slow  # each test runs dashboard pages under Streamlit's AppTest


def open_with(db, monkeypatch, page, **params):
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.switch_page(f"views/{page}.py")
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning or all("Session State" not in w.value for w in at.warning)
    return at


def param(at, name):
    value = at.query_params[name]
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_a_budget_link_reopens_its_question(paper_db, monkeypatch):
    at = open_with(paper_db, monkeypatch, "budget", dataset="ImageNet-100", classifier="ViT-B/32",
                   augmentation="open", n_base="6500", n_real_added="7000")
    assert at.selectbox(key="budget_dataset").value == "ImageNet-100"
    assert at.selectbox(key="budget_classifier").value == "ViT-B/32"
    assert at.selectbox(key="budget_augmentation").value == "open"
    assert at.selectbox(key="budget_n_base").value == 6500
    assert at.text_input(key="budget_n_real_added").value == "7000"
    assert "7,000" in text_of(at)
    # The URL follows the page: what a user copies after changing the question reopens the new one.
    at.text_input(key="budget_n_real_added").set_value("3000").run()
    assert param(at, "n_real_added") == "3000"
    copied = {k: param(at, k) for k in ("dataset", "classifier", "augmentation", "generator", "n_base",
                                               "n_real_added", "question")}
    again = open_with(paper_db, monkeypatch, "budget", **copied)
    assert again.text_input(key="budget_n_real_added").value == "3000"
    assert again.selectbox(key="budget_classifier").value == "ViT-B/32"


def test_a_stale_or_edited_link_falls_back_to_the_defaults(paper_db, monkeypatch):
    plain = open_with(paper_db, monkeypatch, "budget")
    at = open_with(paper_db, monkeypatch, "budget", dataset="no-such-dataset", n_base="not a number",
                   classifier="ResNet-110")
    assert at.selectbox(key="budget_dataset").value == plain.selectbox(key="budget_dataset").value
    assert at.selectbox(key="budget_n_base").value == plain.selectbox(key="budget_n_base").value
    assert param(at, "dataset") == plain.selectbox(key="budget_dataset").value


def test_runs_contours_and_paper_check_keep_their_choices(paper_db, monkeypatch):
    runs = open_with(paper_db, monkeypatch, "runs", dataset="BloodMNIST")
    assert runs.multiselect(key="runs_dataset").value == ["BloodMNIST"]
    shown = next(d.value for d in runs.dataframe if "dataset" in d.value.columns)
    assert set(shown.dataset) == {"BloodMNIST"}   # the link's filter is applied, not only displayed
    contours = open_with(paper_db, monkeypatch, "contours", dataset="CIFAR-10", n_base="25000")
    assert contours.selectbox(key="contours_n_base").value == 25000
    check = open_with(paper_db, monkeypatch, "paper_check", tab9="printed")
    assert check.radio(key="paper_tab9").value == "printed"
    assert param(check, "tab9") == "printed"
