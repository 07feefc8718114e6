"""The dashboard's forms (issue 30): what the Queue page queues and what the Budget page computes
is exactly what their fields show, or nothing, with the reason on screen."""
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.analysis.cost import estimate_job_hours
from engine.spec import summary, validate
from store import artifacts, jobs
from store import runs as store_runs

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


def page(db, monkeypatch, name) -> AppTest:
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.switch_page(f"views/{name}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "s.duckdb"
    store_runs.init_store(db)
    return db


def queued(db) -> list[dict]:
    return [json.loads(s) for s in jobs.list_jobs(db).spec]


def engine_runs(db, dataset="digits", classifier="SmallCNN", seconds_per_image=0.2, added=(0, 50, 150)):
    """Measured engine runs: each took seconds_per_image per training image (n_base 50 + added)."""
    store_runs.insert_runs([dict(run_id=f"{dataset}-{a}", run_key=f"{dataset}-{a}", source="engine", dataset=dataset,
                                 classifier=classifier, augmentation="real", n_base=50, n_real_added=a,
                                 n_syn_added=0, seed=0, top1=50.0, n_total=800, device="cpu",
                                 wall_time_s=seconds_per_image * (50 + a)) for a in added], db)


# ------------------------------------------------------------------------------------ Queue

def test_queue_refuses_text_it_cannot_queue_and_queues_what_it_shows(store, monkeypatch):
    at = page(store, monkeypatch, "queue")
    at.text_input(key="queue_n_base").set_value("-5").run()
    assert [e.value for e in at.error] == ["Cannot queue this: n_base = -5 must be between 1 and 10,000,000"]
    assert at.button(key="queue_submit").disabled
    at.text_input(key="queue_n_base").set_value("60").run()
    at.text_input(key="queue_seeds").set_value("100000").run()
    assert [e.value for e in at.error] == ["Cannot queue this: seeds = 100,000 must be between 1 and 10"]
    assert at.button(key="queue_submit").disabled
    at.text_input(key="queue_seeds").set_value("2").run()
    assert not at.button(key="queue_submit").disabled
    # A click that arrives with a field just changed to bad text (the browser sends both in one rerun)
    # is judged on that text: nothing is queued, not the last valid values.
    at.text_input(key="queue_n_base").set_value("-5")
    at.button(key="queue_submit").click()
    at.run()
    assert queued(store) == [] and at.button(key="queue_submit").disabled
    at.text_input(key="queue_n_base").set_value("fifty").run()
    assert "n_base = 'fifty' is not a whole number" in at.error[0].value
    at.text_input(key="queue_n_base").set_value(" 60 ").run()
    at.button(key="queue_submit").click().run()
    assert [(s["n_base"], s["seeds"]) for s in queued(store)] == [(60, 2)]


def test_queue_shows_the_job_its_trainings_and_its_estimated_time(store, monkeypatch):
    at = page(store, monkeypatch, "queue")
    shown = at.info[0].value
    assert summary(validate({})) in shown and "12 classifier trainings (4 points × 3 seeds)" in shown
    # No measured run yet: the bench figures stand in, and say so.
    assert "Estimated time: 33 s (no interval) on cpu (SmallCNN (8x8): bench figures of docs/speed.md" in shown
    engine_runs(store)  # 0.2 s a training image: 10, 20 and 40 s for runs of 12,800 images processed each
    at.text_input(key="queue_seeds").set_value("1").run()
    shown = at.info[0].value
    assert summary(validate({"seeds": 1})) in shown and "4 classifier trainings" in shown
    assert "fitted to 3 measured times on cpu, seconds per image (slope held at 1)" in shown


def test_estimate_rests_on_the_measured_runs_and_says_so(store):
    # engine.analysis.cost's fit in detail is tests/analysis/test_cost.py's; here: what the Queue reads.
    bench = estimate_job_hours(validate({}), store)
    assert bench["source"] == "bench" and bench["lo"] is None and bench["n_runs"] == 0
    engine_runs(store, seconds_per_image=0.2)
    mine = estimate_job_hours(validate({"seeds": 1}), store)
    # Images processed: 200 iterations x min(64, n_train), so 10,000 for the 50-image run, else 12,800; its
    # 4 planned runs at the geometric mean of the 3 measured rates (two distinct amounts: slope held at 1).
    rate = (10 / 10_000 * 20 / 12_800 * 40 / 12_800) ** (1 / 3)
    assert mine["hours"] == pytest.approx(rate * (10_000 + 3 * 12_800) / 3600) and mine["n_runs"] == 3
    assert mine["source"] == "store" and mine["devices"] == ["cpu"] and mine["lo"] < mine["hours"] < mine["hi"]
    assert estimate_job_hours(validate({"classifier": "resnet110"}), store)["source"] == "bench"
    # A closed-set job adds a generator training and its sampling: bench figures until one was measured.
    closed = validate({"augmentation": "closed", "seeds": 1})
    assert "training EDM-tiny, sampling EDM-tiny: bench figures" in estimate_job_hours(closed, store)["text"]
    artifacts.upsert_generator(dict(generator_id="g", dataset="digits", n_base=50, indices_hash="h", preset="tiny",
                                    seed=0, train_images=60_000, checkpoint="x", train_time_s=720.0,
                                    config={"kind": "edm", "name": "EDM-tiny"}), store)
    then = estimate_job_hours(closed, store)
    assert then["generator_hours"] == pytest.approx(0.2)
    assert "training EDM-tiny: fitted to 1 measured time" in then["text"]
    assert estimate_job_hours(validate({"augmentation": "closed", "generator": "dit"}), store)["hours"] is None


def test_a_second_identical_click_asks_before_queueing_a_copy(store, monkeypatch):
    at = page(store, monkeypatch, "queue")
    at.button(key="queue_submit").click().run()
    assert len(queued(store)) == 1
    at.button(key="queue_submit").click().run()
    assert len(queued(store)) == 1
    assert [w.value for w in at.warning if "Queue a second copy" in w.value]
    at.button(key="queue_again").click().run()
    assert len(queued(store)) == 2 and not [w for w in at.warning if "Queue a second copy" in w.value]
    # Another job is not a copy: queued at once.
    at.text_input(key="queue_seeds").set_value("2").run()
    at.button(key="queue_submit").click().run()
    assert [s["seeds"] for s in queued(store)] == [3, 3, 2]
    # The same job long after the last click is meant: queued at once too.
    last = at.session_state["queue_last"]
    at.session_state["queue_last"] = {**last, "at": last["at"] - 60}
    at.button(key="queue_submit").click().run()
    assert [s["seeds"] for s in queued(store)] == [3, 3, 2, 2]


def test_cancel_picker_offers_the_job_just_queued(store, monkeypatch):
    older = jobs.submit(validate({"n_base": 20}).to_dict(), store)
    at = page(store, monkeypatch, "queue")
    at.button(key="queue_submit").click().run()
    mine = jobs.list_jobs(store).job_id.iloc[-1]
    assert at.selectbox(key="queue_cancel_pick").options == [older, mine]
    assert at.selectbox(key="queue_cancel_pick").value == mine
    at.button(key="queue_cancel").click().run()
    assert jobs.get(mine, store)["status"] == "cancelled" and jobs.get(older, store)["status"] == "queued"


def test_confirmations_stay_until_the_next_action(store, monkeypatch):
    at = page(store, monkeypatch, "queue")
    at.button(key="queue_submit").click().run()
    job_id = jobs.list_jobs(store).job_id.iloc[-1]
    said = [s.value for s in at.success]
    assert len(said) == 1 and said[0].startswith(f"Queued job {job_id}")
    for _ in range(3):  # reruns, the job table's 2-second refresh among them, keep the confirmation
        at.run()
        assert [s.value for s in at.success] == said
    assert said == [f"Queued job {job_id}: {summary(validate({}))}."]  # and it says which job
    at.selectbox(key="queue_cancel_pick").set_value(job_id)
    at.button(key="queue_cancel").click().run()
    for _ in range(3):  # the next action replaces it
        assert [s.value for s in at.success] == [f"Cancelled job {job_id}."]
        at.run()
    assert not [s for s in at.selectbox if s.key == "queue_cancel_pick"]  # no job left to cancel


# ----------------------------------------------------------------------------------- Budget

def verdict(at) -> str | None:
    boxes = [*at.success, *at.warning, *at.info]
    return next((b.value for b in boxes if b.value.startswith("**Verdict")), None)


def answer(at) -> dict:
    metrics = {m.label: m.value for m in at.metric}
    return {**metrics, "verdict": verdict(at)} if metrics else {}


@pytest.mark.slow
def test_budget_amount_reads_what_people_type_or_says_why_not(paper_db, monkeypatch):
    at = page(paper_db, monkeypatch, "budget")
    at.selectbox(key="budget_dataset").set_value("CIFAR-10").run()
    n = at.text_input(key="budget_n_real_added")
    n.set_value("1000000").run()
    million = answer(at)
    # Eq. 1 gives no number past 100 x n_base; the verdict still names the amount it read.
    assert "1,000,000 more real images" in million["verdict"]
    for text in ("1e6", "1,000,000", " 1.0e6 "):
        n.set_value(text).run()
        assert not at.error and answer(at) == million, text
    n.set_value("250000").run()
    quarter = answer(at)
    n.set_value("2.5e5").run()
    assert answer(at) == quarter != million
    n.set_value("1").run()
    assert answer(at) != million
    for text, says in [("1e6x", "N = '1e6x' is not a number of images: write it like 5000, 5,000, 1e6 or 2.5e5"),
                       ("1,00", "N = '1,00' is not a number of images"),
                       ("", "N = '' is not a number of images"),
                       ("1.5", "N = '1.5' is 1.5: a number of images is a whole number"),
                       ("-5", "N = '-5' must be between 0 and 1e+12")]:
        n.set_value(text).run()
        assert not at.exception and len(at.error) == 1 and at.error[0].value.startswith(f"No answer: {says}"), text
        assert answer(at) == {}, text  # no answer from some other value


def amount_field(at, label):
    """The field labelled `label`, whichever kind of input it is (the test also runs on old pages)."""
    return next(w for w in [*at.text_input, *at.number_input] if w.label == label)


@pytest.mark.slow
def test_budget_n_and_k_are_separate_questions_with_separate_fields(paper_db, monkeypatch):
    at = page(paper_db, monkeypatch, "budget")
    at.selectbox(key="budget_dataset").set_value("CIFAR-10").run()
    n = amount_field(at, "N: real images added")
    n.set_value(7000 if n.type == "number_input" else "7000").run()
    at.radio(key="budget_question").set_value("real for synthetic").run()
    k = amount_field(at, "K: synthetic images added")
    assert float(k.value) == 5000 and k.key != n.key  # its own default, not N's 7000
    k.set_value("123").run()
    assert "Eq. 1: real images" in answer(at)
    at.radio(key="budget_question").set_value("synthetic for real").run()
    assert amount_field(at, "N: real images added").value != "123"
    assert not [t for t in at.text_input if t.key == k.key]


@pytest.mark.slow
def test_budget_n_base_offers_the_settings_own_bases(paper_db, monkeypatch):
    at = page(paper_db, monkeypatch, "budget")
    at.selectbox(key="budget_dataset").set_value("BloodMNIST").run()
    at.session_state["budget_n_base"] = 12000  # a BloodMNIST base, none of CIFAR-10's
    at.run()
    at.selectbox(key="budget_dataset").set_value("CIFAR-10").run()
    assert at.selectbox(key="budget_augmentation").value == "closed"
    assert at.session_state["budget_n_base"] == 5000  # the new setting's default, not 12,000 carried over
    base = at.selectbox(key="budget_n_base")
    assert base.options == ["500", "5,000", "25,000", "50,000", "another base…"]
    assert base.value == 5000 and base.proto.set_value  # shown by the browser too, not only the server's
    assert not [w for w in at.warning if "not measured" in w.value]
    at.selectbox(key="budget_dataset").set_value("BloodMNIST").run()
    base = at.selectbox(key="budget_n_base")
    assert base.options == ["1,200", "6,000", "12,000", "another base…"] and base.value == 6000
    base.set_value("another").run()
    at.text_input(key="budget_n_base_other").set_value("3,000").run()
    assert "n_base 3,000 is not measured in this setting (its bases: 1,200, 6,000, 12,000)." in \
        [w.value for w in at.warning]
    assert answer(at)["Eq. 1: synthetic images"] != "—"
    at.text_input(key="budget_n_base_other").set_value("0").run()
    assert [e.value for e in at.error] == ["No answer: n_base = '0' must be between 1 and 1e+12"] and answer(at) == {}


def test_queue_page_checks_the_data_path_unless_only_the_workers_see_it(store, monkeypatch, tmp_path):
    at = page(store, monkeypatch, "queue")
    at.text_input(key="queue_dataset").set_value("cifar10").run()
    at.text_input(key="queue_n_base").set_value("500").run()
    at.text_input(key="queue_data_root").set_value("/nonexistent").run()
    assert any("data path /nonexistent does not exist on this machine" in e.value for e in at.error)
    assert at.button(key="queue_submit").disabled
    at.checkbox(key="queue_remote_data").check().run()
    assert not at.error and not at.button(key="queue_submit").disabled
    at.checkbox(key="queue_remote_data").uncheck().run()
    at.text_input(key="queue_data_root").set_value(str(tmp_path)).run()
    assert any("holds no cifar-10-batches-bin" in e.value for e in at.error)
