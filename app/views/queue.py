"""Queue: ask the engine's workers for new runs, and watch the jobs."""
import json
import time

import pandas as pd
import streamlit as st

from app.common import default_when_changed, stamp, store_path
from engine.analysis.cost import CostModel, estimate_job_hours, fmt_hours, spec_estimate
from engine.catalog.classifiers import CLASSIFIERS
from engine.catalog.datasets import DATASETS, FORMS
from engine.catalog.generators import GENERATORS
from engine.catalog.vocab import AUGMENTATIONS, DEFAULT_QUALITY, OPEN, REAL, TRADITIONAL
from engine.spec import (DEFAULTS, MAX_SEEDS, SpecError, check_data_here, check_open_set, preview, summary,
                         validate)
from store import jobs
from store import progress as cluster_progress
from store import synthetic as store_synthetic
from store.db import StoreError, connect, migrate

st.title("Queue new runs")
# A job handed over by another page (the Budget page's advice): its fields go into this form's widgets
# before they are drawn, once; the form then stays the user's to edit.
PREFILL_KEYS = {"dataset": "queue_dataset", "n_base": "queue_n_base", "added": "queue_added", "seeds": "queue_seeds",
                "augmentation": "queue_augmentation"}
prefill = st.session_state.pop("queue_prefill", None)
prefill_note = st.session_state.pop("queue_prefill_note", None)
if prefill:
    for field, key in PREFILL_KEYS.items():
        if prefill.get(field) is not None:
            st.session_state[key] = str(prefill[field]) if key != "queue_augmentation" else prefill[field]
    st.session_state["queue_classifier"] = prefill.get("classifier") or "(default for the dataset)"
    st.session_state["queue_traditional"] = prefill.get("traditional") or "(default for the dataset)"
    if prefill.get("augmentation") == OPEN:
        st.session_state["queue_open_set"] = prefill.get("generator")
    elif prefill.get("generator") in GENERATORS:
        st.session_state["queue_generator"] = prefill["generator"]
        if prefill.get("generator_preset"):
            st.session_state[f"queue_preset_{prefill['generator']}"] = prefill["generator_preset"]
# The text fields' first values, set here rather than as the widgets' `value`: a value set through
# session_state (the prefill above, or another page) and a `value` argument together make Streamlit warn.
for key, value in (("queue_dataset", DEFAULTS.dataset), ("queue_n_base", str(DEFAULTS.n_base)),
                   ("queue_added", DEFAULTS.added), ("queue_seeds", str(DEFAULTS.seeds))):
    st.session_state.setdefault(key, value)
if prefill:
    st.info("Prefilled from the Budget page's advice: check the fields, then queue it."
            + (f" Dataset: {prefill_note}." if prefill_note else ""))
st.caption("A job is a study grid (points × seeds) that `engine worker` executes with the same code as "
           "`engine run`; its runs then appear on the other pages. Start a worker with "
           "`engine worker --device cuda:0` (one per GPU) or `engine worker --device cpu`, or send the jobs "
           "to a Ray cluster with `engine cluster --address HOST:PORT`.")

c = st.columns(4)
dataset = c[0].text_input("Dataset", key="queue_dataset", help=", ".join(FORMS))
classifier = c[1].selectbox("Classifier", ["(default for the dataset)", *CLASSIFIERS], key="queue_classifier")
augmentation = c[2].radio("Augmentation", AUGMENTATIONS, key="queue_augmentation", horizontal=True)
g = c[3].columns(2)
if augmentation == OPEN:  # a set imported with `engine synthetic import`
    try:
        imported = store_synthetic.open_sets(store_path())
    except StoreError:
        imported = pd.DataFrame(columns=["name", "dataset_name", "n_images"])
    names = imported.name.tolist()
    generator = g[0].selectbox("Imported set", names, key="queue_open_set", index=0 if names else None,
                               format_func=lambda n: f"{n} ({imported.set_index('name').dataset_name[n]})",
                               help="`engine synthetic import NAME --dataset ... --from FOLDER` adds one")
    preset = None
else:
    generator = g[0].selectbox("Generator (closed set)", list(GENERATORS), key="queue_generator",
                               index=list(GENERATORS).index(DEFAULTS.generator),
                               format_func=lambda k: GENERATORS[k].name,
                               help="; ".join(f"{g.name}: {g.about}" for g in GENERATORS.values()))
    preset = g[1].selectbox("Preset", GENERATORS[generator].presets, key=f"queue_preset_{generator}")
c = st.columns(4)
# Text, not number_input: a number_input shows a rejected value (-5, or one past its max) while the
# server keeps the last valid one, and the button would queue that. Text reaches the server as
# shown, and validate() below is the one judge of it, as for `engine queue add`.
n_base = c[0].text_input("n_base", key="queue_n_base", help="images in the real base set")
added = c[1].text_input("Images to add", key="queue_added", help="counts, or multiples of N = n_base")
seeds = c[2].text_input("Seeds", key="queue_seeds", help=f"1 to {MAX_SEEDS}")
data_root = c[3].text_input("Data path (as the workers see it)", "", key="queue_data_root",
                            help="Workers run only jobs whose data lie under their --data-root folders.")
c = st.columns([2, 2, 1])
recipe = c[0].text_input("Recipe overrides", "", key="queue_recipe", placeholder="e.g. iterations=300, lr=0.05")
gen_opts = c[1].text_input("Generator options", "", key="queue_gen_opts", placeholder="e.g. train_images=60000")
traditional = c[2].selectbox("Traditional augmentation", ["(default for the dataset)", *TRADITIONAL],
                             key="queue_traditional", help="Random crop and/or horizontal flip of the classifier's "
                             "training images (the paper's Tab. 6). Each dataset's default: " + ", ".join(
                                 f"{d.form} {d.default_traditional}" for d in DATASETS.values()) + ".")
full_quality = st.checkbox(
    "Full quality metrics of the synthetic set", key="queue_full_quality", disabled=augmentation == REAL,
    help="After the synthetic runs the worker always measures the cheap metrics (FD, diversity, memorisation: "
         "seconds). This adds FID/IS (when the Inception weights are on the worker), the real-vs-synthetic domain "
         "classifier and t-SNE: minutes on a GPU. Shown on the Generators page.")
quality = "full" if full_quality and augmentation != REAL else DEFAULT_QUALITY
remote_data = st.checkbox(
    "Only the workers see the data path", key="queue_remote_data",
    help="Leave unticked to check here that the data path exists with its dataset's layout; tick it for a path "
         "that lies only on the workers' machines (a worker checks it when it takes the job).")

raw = {"dataset": dataset.strip(), "classifier": None if classifier.startswith("(") else classifier,
       "augmentation": augmentation, "generator": generator, "generator_preset": preset, "n_base": n_base, "added": added,
       "seeds": seeds, "data_root": data_root.strip() or None, "recipe": recipe, "generator_options": gen_opts,
       "traditional": None if traditional.startswith("(") else traditional}
try:
    spec = validate(raw)
    check_open_set(spec, store_path())  # the same store checks as `engine queue add`
    if not remote_data:
        check_data_here(spec)
    error = None
except (SpecError, StoreError) as err:
    spec, error = None, str(err)

if error:
    st.error(f"Cannot queue this: {error}")
else:
    cost = preview(spec)
    try:
        hours = estimate_job_hours(spec, store_path())["text"]
    except StoreError as err:
        hours = f"unknown: the store cannot be read ({err})"
    st.info(f"`{summary(spec, quality)}`\n\n"
            f"This job means {cost['classifier_trainings']} classifier trainings ({cost['points']} points × "
            f"{cost['seeds']} seeds)" + (" and up to 1 generator training (none if this base's generator "
                                         "is already trained)." if cost["generator_trainings"] else ".")
            + f"\n\nEstimated time: {hours}.")

# A second click on the same job soon after the first is more likely a double click or an unseen
# confirmation than a wish for two copies: ask first.
DUPLICATE_WINDOW_S = 10.0
job_key = json.dumps([spec.to_dict(), quality], sort_keys=True) if spec is not None else None


def say(kind: str, text: str) -> None:
    """Kept in session_state and shown by every run of the job table until the next action: a
    message drawn once would vanish at the table's next 2-second refresh."""
    st.session_state["queue_message"] = (kind, text)


def submit(spec, quality: str, key: str) -> None:
    try:
        with connect(store_path()) as con:
            migrate(con)
        job_id = jobs.submit(spec.to_dict(), store_path(), quality=quality)
    except StoreError as err:
        say("error", f"The store is busy or unreadable: {err}")
        return
    st.session_state["queue_last"] = {"key": key, "at": time.monotonic(), "job_id": job_id}
    say("success", f"Queued job {job_id}: {summary(spec, quality)}.")


# Whatever was clicked, only the spec validated in this very run, from the fields as shown, is queued.
if st.button("Queue this job", type="primary", disabled=spec is None, key="queue_submit") and spec is not None:
    last = st.session_state.get("queue_last")
    if last and last["key"] == job_key and time.monotonic() - last["at"] < DUPLICATE_WINDOW_S:
        st.session_state["queue_duplicate"] = job_key
    else:
        st.session_state.pop("queue_duplicate", None)
        submit(spec, quality, job_key)
if st.session_state.get("queue_duplicate") not in (None, job_key):
    del st.session_state["queue_duplicate"]  # the form changed: the question was about another job
if "queue_duplicate" in st.session_state:
    ask = st.empty()
    with ask.container():
        last = st.session_state["queue_last"]
        st.warning(f"This same job was queued {time.monotonic() - last['at']:.0f} s ago as job "
                   f"{last['job_id']}. Queue a second copy of it?")
        again = st.button("Queue it again", key="queue_again")
    if again:
        del st.session_state["queue_duplicate"]
        ask.empty()
        submit(spec, quality, job_key)


@st.fragment(run_every=2.0)
def job_table():
    """Refreshes on its own every 2 s with short read-only connections."""
    message = st.empty()  # above the table, filled after a cancel below has had its say
    jobs_and_cancel()
    if "queue_message" in st.session_state:
        kind, text = st.session_state["queue_message"]
        getattr(message, kind)(text)


@st.cache_data(show_spinner=False, max_entries=4)
def cost_model(path: str, file_stamp: tuple) -> CostModel:
    return CostModel.from_store(path)


def job_hours(specs) -> list[str]:
    """Each job's estimated hours on one worker (engine.analysis.cost), its 95 % interval where it has one."""
    model = cost_model(str(store_path()), stamp(store_path()))
    out = []
    for raw in specs:
        try:
            h = spec_estimate(validate(raw), model)["total"]
        except (SpecError, ValueError):
            out.append("")
            continue
        out.append("unknown" if h.hours is None else fmt_hours(h.hours) + (
            f" [{fmt_hours(h.lo)}-{fmt_hours(h.hi)}]" if h.lo is not None and h.hi is not None else ""))
    return out


def jobs_and_cancel():
    try:
        frame = jobs.list_jobs(store_path())
    except StoreError as err:
        st.warning(f"Jobs cannot be read right now: {err}")
        return
    st.subheader(f"Jobs ({len(frame)})")
    if frame.empty:
        st.caption("No jobs yet.")
        return

    try:  # cluster jobs also say where each run is
        where = cluster_progress.by_job(store_path())
    except StoreError:
        where = {}

    def progress(job_id, status, done, planned):
        if job_id in where:
            return cluster_progress.describe(where[job_id], status)
        return f"{int(done)}/{int(planned)}" if pd.notna(planned) and pd.notna(done) else ""
    status = ["cancelling" if s == "running" and pd.notna(c) and bool(c) else s
              for s, c in zip(frame.status, frame.get("cancel_requested", [False] * len(frame)))]
    view = pd.DataFrame({
        "job": frame.job_id, "status": status, "attempts": frame.attempts, "worker": frame.worker_id,
        "what": [summary(s, q) for s, q in zip(frame.spec, frame.get("quality", [None] * len(frame)))],
        "progress": [progress(j, s, d, p) for j, s, d, p in zip(frame.job_id, frame.status,
                                                                frame.get("runs_done", [None] * len(frame)),
                                                                frame.get("runs_planned", [None] * len(frame)))],
        "runs": frame.run_ids.map(lambda r: len(json.loads(r)) if isinstance(r, str) else 0),
        "error": frame.error, "queued at (UTC)": frame.created_at, "finished (UTC)": frame.finished_at})
    view.insert(4, "est. hours", job_hours(frame.spec))
    st.dataframe(view.iloc[::-1], hide_index=True, width="stretch", key="queue_jobs")
    active = frame[frame.status.isin(["queued", "running"])].job_id.tolist()
    if active:
        just = st.session_state.get("queue_last", {}).get("job_id")
        if just in active:  # the job just queued is the likeliest one to take back
            default_when_changed("queue_cancel_pick", (just,), just)
        c = st.columns([3, 1])
        pick = c[0].selectbox("Cancel a job (a running one stops at its next run boundary)", active,
                              key="queue_cancel_pick")
        if c[1].button("Cancel job", key="queue_cancel"):
            try:
                state = jobs.cancel(pick, store_path())
                say("success", f"Cancelled job {pick}." if state == "cancelled" else
                    f"Job {pick} will stop at its next run boundary; its finished runs stay stored.")
            except StoreError as err:
                say("error", str(err))


job_table()
