"""Queue: ask the engine's workers for new runs, and watch the jobs."""
import json

import pandas as pd
import streamlit as st

from app.common import store_path
from engine import jobspec
from engine.catalog import CLASSIFIERS, GENERATOR_PRESETS
from engine.spec import SpecError
from store import jobs, progress
from store.db import StoreError, connect, migrate

st.title("Queue new runs")
st.caption("A job is a study grid (points × seeds) that `engine worker` executes with the same code as "
           "`engine run`; its runs then appear on the other pages. Start a worker with "
           "`engine worker --device cuda:0` (one per GPU) or `engine worker --device cpu`, or send the jobs "
           "to a Ray cluster with `engine cluster --address HOST:PORT`.")

c = st.columns(4)
dataset = c[0].text_input("Dataset", "digits", key="queue_dataset",
                          help="digits, cifar10, medmnist:<flag> or folder:<path>")
classifier = c[1].selectbox("Classifier", ["(default for the dataset)", *CLASSIFIERS], key="queue_classifier")
augmentation = c[2].radio("Augmentation", ["real", "closed"], key="queue_augmentation", horizontal=True)
preset = c[3].selectbox("Generator preset (closed set)", GENERATOR_PRESETS, key="queue_preset")
c = st.columns(4)
n_base = c[0].number_input("n_base", min_value=1, value=50, step=10, key="queue_n_base")
added = c[1].text_input("Images to add", "0,N,2N,3N", key="queue_added", help="counts, or multiples of N = n_base")
seeds = c[2].number_input("Seeds", min_value=1, max_value=100, value=3, key="queue_seeds")
data_root = c[3].text_input("Data path (as the workers see it)", "", key="queue_data_root")
c = st.columns(2)
recipe = c[0].text_input("Recipe overrides", "", key="queue_recipe", placeholder="e.g. iterations=300, lr=0.05")
gen_opts = c[1].text_input("Generator options", "", key="queue_gen_opts", placeholder="e.g. train_images=60000")

raw = {"dataset": dataset.strip(), "classifier": None if classifier.startswith("(") else classifier,
       "augmentation": augmentation, "generator_preset": preset, "n_base": int(n_base), "added": added,
       "seeds": int(seeds), "data_root": data_root.strip() or None, "recipe": recipe, "generator_options": gen_opts}
try:
    spec = jobspec.validate(raw)
    error = None
except SpecError as err:
    spec, error = None, str(err)

if error:
    st.error(f"Cannot queue this: {error}")
else:
    cost = jobspec.preview(spec)
    st.info(f"This job means {cost['classifier_trainings']} classifier trainings ({cost['points']} points × "
            f"{cost['seeds']} seeds)" + (" and up to 1 generator training (none if this base's generator "
                                         "is already trained)." if cost["generator_trainings"] else "."))
if st.button("Queue this job", type="primary", disabled=spec is None, key="queue_submit"):
    try:
        with connect(store_path()) as con:
            migrate(con)
        job_id = jobs.submit(spec, store_path())
        st.success(f"Queued job {job_id}.")
    except StoreError as err:
        st.error(f"The store is busy or unreadable: {err}")


@st.fragment(run_every=2.0)
def job_table():
    """Refreshes on its own every 2 s with short read-only connections."""
    try:
        frame = jobs.list_jobs(store_path())
        done = progress.by_job(store_path())
    except StoreError as err:
        st.warning(f"Jobs cannot be read right now: {err}")
        return
    st.subheader(f"Jobs ({len(frame)})")
    if frame.empty:
        st.caption("No jobs yet.")
        return

    def summary(spec):
        s = json.loads(spec) if isinstance(spec, str) else spec
        return f"{s['dataset']} · {s['classifier']} · n_base {s['n_base']} · {s['augmentation']} +{s['added']} × {s['seeds']} seeds"
    view = pd.DataFrame({
        "job": frame.job_id, "status": frame.status, "attempts": frame.attempts, "worker": frame.worker_id,
        "what": frame.spec.map(summary),
        "runs": frame.run_ids.map(lambda r: len(json.loads(r)) if isinstance(r, str) else 0),
        "progress": [progress.describe(done.get(j), s) for j, s in zip(frame.job_id, frame.status)],
        "error": frame.error, "queued at (UTC)": frame.created_at, "finished (UTC)": frame.finished_at})
    st.dataframe(view.iloc[::-1], hide_index=True, width="stretch", key="queue_jobs")
    queued = frame[frame.status == "queued"].job_id.tolist()
    if queued:
        c = st.columns([3, 1])
        pick = c[0].selectbox("Cancel a queued job", queued, key="queue_cancel_pick")
        if c[1].button("Cancel job", key="queue_cancel"):
            try:
                jobs.cancel(pick, store_path())
                st.success(f"Cancelled job {pick}.")
            except StoreError as err:
                st.error(str(err))


job_table()
