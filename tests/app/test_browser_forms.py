"""The Queue form in a real browser (issue 30): a number_input showed -5 with a red mark while the
server kept the last valid value, and the enabled button queued that. Typed text now reaches the
server as shown: bad text disables the button, and a click queues nothing."""
import json

import pytest

from store import jobs
from store import runs as store_runs
from tests.browser import dashboard, wait_until_idle

pytestmark = pytest.mark.browser


def _type(page, label: str, text: str, then: str = "Tab") -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(text)
    if then:
        field.press(then)
        wait_until_idle(page)


def test_queue_form_never_queues_values_it_does_not_show(tmp_path, browser):
    db = tmp_path / "s.duckdb"
    store_runs.init_store(db)
    with dashboard(db) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"{url}/queue")
        wait_until_idle(page)
        button = page.get_by_role("button", name="Queue this job")
        assert button.is_enabled()

        _type(page, "n_base", "-5")
        page.get_by_text("n_base = -5 must be between 1 and", exact=False).first.wait_for(timeout=30_000)
        assert page.get_by_label("n_base", exact=True).input_value() == "-5"
        assert button.is_disabled()
        button.click(force=True)  # a disabled button: the click goes nowhere
        page.wait_for_timeout(1500)
        wait_until_idle(page)
        assert jobs.list_jobs(db).empty

        _type(page, "n_base", "60")
        _type(page, "Seeds", "100000")
        page.get_by_text("seeds = 100,000 must be between 1 and 10", exact=False).first.wait_for(timeout=30_000)
        assert button.is_disabled() and jobs.list_jobs(db).empty

        # Straight from typing to the still enabled button: the field's text goes with the click.
        _type(page, "Seeds", "2")
        assert button.is_enabled()
        _type(page, "n_base", "-5", then=None)
        button.click()
        page.get_by_text("n_base = -5 must be between 1 and", exact=False).first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        wait_until_idle(page)
        assert jobs.list_jobs(db).empty

        _type(page, "n_base", "60")
        button.click()
        page.get_by_text("Queued job", exact=False).first.wait_for(timeout=30_000)
        assert [(s["n_base"], s["seeds"]) for s in map(json.loads, jobs.list_jobs(db).spec)] == [(60, 2)]
        assert page.locator('[data-testid="stException"]').count() == 0


def test_budget_reads_1e6_as_a_million_in_the_browser(paper_db, browser):
    """A number_input took '1e6' typed in N for 1, and answered for 1 image without a word."""
    with dashboard(paper_db) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"{url}/budget")
        wait_until_idle(page)
        eq1 = page.locator('[data-testid="stMetricValue"]').first

        def answer_for(text: str) -> str:
            _type(page, "N: real images added", text, then="Enter")
            page.wait_for_timeout(500)
            wait_until_idle(page)
            return eq1.inner_text() if eq1.count() else None

        million = answer_for("1000000")
        assert answer_for("1") != million
        assert answer_for("1e6") == million
        assert page.get_by_label("N: real images added", exact=True).input_value() == "1e6"
        assert answer_for("1,000,000") == million
        assert answer_for("1e6x") is None
        page.get_by_text("N = '1e6x' is not a number of images", exact=False).first.wait_for(timeout=30_000)
        assert page.locator('[data-testid="stMetricValue"]').count() == 0
