"""Dashboard entry point: `engine app` or `streamlit run app/main.py`."""
import sys
from pathlib import Path

import streamlit as st

# `streamlit run app/main.py` from a checkout puts app/ first on sys.path; the project root must
# be importable too so that `app`, `engine` and `store` resolve as packages.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.common import store_path, upgrade_store  # noqa: E402
from store.db import StoreError  # noqa: E402

st.set_page_config(page_title="Synthetic vs real data", page_icon=":material/balance:", layout="wide")
VIEWS = Path(__file__).resolve().parent / "views"
navigation = st.navigation([
    st.Page(VIEWS / "runs.py", title="Runs", icon=":material/table_chart:", default=True),
    st.Page(VIEWS / "contours.py", title="Contours", icon=":material/map:"),
    st.Page(VIEWS / "budget.py", title="Budget calculator", icon=":material/calculate:"),
    st.Page(VIEWS / "scaling.py", title="Scaling", icon=":material/trending_up:"),
    st.Page(VIEWS / "paper_check.py", title="Paper check", icon=":material/fact_check:"),
    st.Page(VIEWS / "queue.py", title="Queue", icon=":material/queue:"),
    st.Page(VIEWS / "generators.py", title="Generators", icon=":material/auto_awesome:"),
])
st.sidebar.caption(f"Store: `{store_path()}`")
st.sidebar.caption("Method: Wang, Zhang et al., arXiv 2508.09550 — Eq. 1: "
                   "n_syn/n_base = c1^(τ·n_base)·(c2^(n_real/n_base) − 1), τ = 10/n_total.")
try:
    upgrade_store(store_path())
except StoreError as err:  # a newer schema, a foreign file, a store busy past the retry window
    st.error(f"Cannot use the store {store_path()}: {err}")
    st.stop()
navigation.run()
