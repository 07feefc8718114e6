"""Issue 10 on the dashboard: the Paper check page, the masked contour map, sources said."""
import pytest
from tests.app.test_pages import figure, open_app, text_of, values

pytestmark = pytest.mark.slow  # each test runs dashboard pages under Streamlit's AppTest


def test_paper_check_page_shows_seven_equations_and_switches_table9(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "paper_check")
    table = at.dataframe[0].value
    assert list(table["Eq."]) == [2, 3, 4, 5, 6, 8, 9]
    eq3_total = table.loc[table["Eq."] == 3, "c1 [interval]"].item()
    alt = at.dataframe[1].value
    assert len(alt) == 4 and {"20,000 (total)", "15,000 (printed)"} <= set(alt["Table 9 row read as"])
    at.radio(key="paper_tab9").set_value("printed").run()
    assert not at.exception
    assert at.dataframe[0].value.loc[lambda t: t["Eq."] == 3, "c1 [interval]"].item() != eq3_total


def test_contours_mask_the_surface_above_100_percent(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "contours")
    at.selectbox(key="contours_dataset").set_value("BloodMNIST").run()
    at.selectbox(key="contours_n_base").set_value(1200).run()
    z = values(figure(at)["data"][0]["z"])
    flat = [v for row in z for v in row]
    assert any(v is None or v != v for v in flat)          # masked cells
    assert max(v for v in flat if v is not None and v == v) <= 100
    assert "exceeds 100 % top-1" in text_of(at) and "Fitted on paper runs" in text_of(at)


def test_budget_page_says_which_source(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "budget")
    assert at.radio(key="budget_source").value == "paper"
    assert "Fitted on paper runs" in text_of(at)


def test_budget_page_gives_a_bound_when_gains_are_within_noise(tmp_path, monkeypatch):
    from tests.cli.test_analysis_commands import _noise_store
    at = open_app(_noise_store(tmp_path), monkeypatch, "budget")
    at.selectbox(key="budget_n_base").set_value(500).run()
    at.text_input(key="budget_n_real_added").set_value("500").run()
    assert not at.exception
    assert any("more than 2,000 synthetic images" in i.value for i in at.info)
    assert "Fitted on engine runs" in text_of(at)
