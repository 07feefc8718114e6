"""Cost and advice on the pages (issue 27): the Budget page's one cost sentence is `engine equiv`'s, its
five advised runs open the Queue form prefilled with the run, and the Queue lists each job's hours."""
import json

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.spec import validate
from store import jobs
from tests.app.test_pages import open_app
from tests.cost_store import timed_digits_store


@pytest.fixture
def timed_db(tmp_path):
    db = tmp_path / "t.duckdb"
    timed_digits_store(db)
    return db


def cli_cost(db, n_base, n, gpu, label):
    res = CliRunner().invoke(app, ["equiv", "--dataset", "digits", "--classifier", "SmallCNN", "--augmentation",
                                   "closed", "--n-base", str(n_base), "--n-real-added", str(n), "--json",
                                   "--gpu-cost", str(gpu), "--label-cost", str(label), "--db", str(db)])
    return json.loads(res.stdout)["cost"]


def cost_text(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Cost:**"))


def test_budget_cost_sentence_is_engine_equivs(timed_db, monkeypatch):
    at = open_app(timed_db, monkeypatch, "budget")
    at.selectbox(key="budget_dataset").set_value("digits").run()
    at.selectbox(key="budget_n_base").set_value(50).run()
    at.text_input(key="budget_n_real_added").set_value("50").run()
    assert cost_text(at) == f"**Cost:** {cli_cost(timed_db, 50, 50, 2.0, 0.1)['text']}"
    at.number_input(key="budget_label_cost").set_value(0.5).run()
    at.number_input(key="budget_gpu_cost").set_value(4.0).run()
    assert not at.exception
    assert cost_text(at) == f"**Cost:** {cli_cost(timed_db, 50, 50, 4.0, 0.5)['text']}"
    assert "labelling 50 images at $0.50: $25" in cost_text(at)


@pytest.mark.slow
def test_budget_advice_opens_the_queue_prefilled(timed_db, monkeypatch):
    at = open_app(timed_db, monkeypatch, "budget")
    at.selectbox(key="budget_dataset").set_value("digits").run()
    at.selectbox(key="budget_n_base").set_value(50).run()
    at.toggle(key="budget_advice_on").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    buttons = [b for b in at.button if b.key and b.key.startswith("budget_advice_queue_")]
    assert 1 <= len(buttons) <= 5
    rows = [m.value for m in at.markdown if m.value[:2] in {f"{k}." for k in range(1, 6)}]
    assert len(rows) == len(buttons) and all("images expected" in r for r in rows)
    first = rows[0]
    buttons[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Prefilled from the Budget page's advice" in i.value for i in at.info)
    n_base = int(first.split("n_base ")[1].split(":")[0].replace(",", ""))
    assert at.text_input(key="queue_dataset").value == "digits"
    assert int(at.text_input(key="queue_n_base").value) == n_base
    spec = validate({"dataset": "digits", "n_base": at.text_input(key="queue_n_base").value,
                     "added": at.text_input(key="queue_added").value, "seeds": at.text_input(key="queue_seeds").value,
                     "augmentation": at.radio(key="queue_augmentation").value})
    assert spec.n_base == n_base and f"{max(spec.added):,}" in first
    at.switch_page("views/queue.py")   # AppTest stays on the page it was told; the browser test follows the link
    at.button(key="queue_submit").click().run()
    assert not at.error, [e.value for e in at.error] + [i.value for i in at.info]
    assert [json.loads(s)["n_base"] for s in jobs.list_jobs(timed_db).spec] == [n_base]


@pytest.mark.slow
@pytest.mark.parametrize("with_job", [False, True])
def test_a_folders_advice_prefills_its_path_or_says_it_is_missing(timed_db, monkeypatch, tmp_path, with_job):
    from store.db import connect
    with connect(timed_db) as con:
        con.execute("UPDATE runs SET dataset = 'folder:cells' WHERE dataset = 'digits'")
    path = f"folder:{tmp_path}/cells"
    if with_job:
        jobs.submit(validate({"dataset": path, "n_base": 10}).to_dict(), timed_db)
    at = open_app(timed_db, monkeypatch, "budget")
    at.selectbox(key="budget_dataset").set_value("folder:cells").run()
    at.selectbox(key="budget_n_base").set_value(50).run()
    at.toggle(key="budget_advice_on").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    [b for b in at.button if b.key and b.key.startswith("budget_advice_queue_")][0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    [note] = [i.value for i in at.info if "Prefilled from the Budget page's advice" in i.value]
    assert at.text_input(key="queue_dataset").value == (path if with_job else "folder:cells")
    assert ("replace it with folder:/path/to/the/folder" in note) is not with_job


def test_queue_lists_each_jobs_estimated_hours(timed_db, monkeypatch):
    jobs.submit(validate({"n_base": 50, "seeds": 1}).to_dict(), timed_db)
    at = open_app(timed_db, monkeypatch, "queue")
    table = next(d.value for d in at.dataframe if "est. hours" in d.value.columns)
    from engine.analysis.cost import CostModel, fmt_hours, spec_estimate
    h = spec_estimate(validate({"n_base": 50, "seeds": 1}), CostModel.from_store(timed_db))["total"]
    assert list(table["est. hours"]) == [f"{fmt_hours(h.hours)} [{fmt_hours(h.lo)}-{fmt_hours(h.hi)}]"]
    assert "fitted to 63 measured times" in at.info[0].value   # the form's own estimate


@pytest.mark.slow
@pytest.mark.browser
def test_budget_advice_button_opens_the_prefilled_queue_in_chromium(timed_db, browser):
    from tests.browser import dashboard, wait_until_idle
    with dashboard(timed_db) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{url}/budget")
        wait_until_idle(page)
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").first.click()
        page.get_by_role("option", name="digits", exact=True).click()
        wait_until_idle(page)
        page.locator('[data-testid="stSelectbox"]').filter(has_text="n_base (real base set)").first.click()
        page.get_by_role("option", name="50", exact=True).click()
        wait_until_idle(page)
        field = page.get_by_label("N: real images added", exact=True)
        field.fill("50")
        field.press("Enter")
        wait_until_idle(page)
        sentence = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="Cost:").first
        sentence.wait_for(timeout=30_000)
        assert "labelling" in sentence.inner_text() and "per label" in sentence.inner_text()
        page.get_by_text("Advise the next runs to buy", exact=False).first.click()
        wait_until_idle(page)
        page.get_by_role("button", name="Queue this").first.wait_for(timeout=120_000)
        page.get_by_role("button", name="Queue this").first.click()
        page.get_by_text("Prefilled from the Budget page's advice", exact=False).first.wait_for(timeout=60_000)
        wait_until_idle(page)
        assert page.url.rstrip("/").endswith("/queue")
        assert page.get_by_label("Dataset", exact=True).input_value() == "digits"
        page.get_by_role("button", name="Queue this job").click()
        page.get_by_text("Queued job", exact=False).first.wait_for(timeout=30_000)
        queued = [json.loads(s) for s in jobs.list_jobs(timed_db).spec]
        assert len(queued) == 1 and queued[0]["dataset"] == "digits"
        page.close()
