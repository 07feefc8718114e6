"""Paper check: the paper's seven equations (Eq. 2-6, 8, 9) beside our refit of its published runs."""
import pandas as pd
import streamlit as st

from app.common import fmt_ci
from engine.analysis.paper import paper_check
from store.runs import TAB9_NOTE, TAB9_READINGS

st.title("Paper check")
st.caption("Each equation refitted from the paper's own published runs (shipped with the product, not the store): "
           "its surface, its Eq. 12 grid, tau = 10 / n_total, and a 95 % bootstrap interval (surface residuals and "
           "points resampled; published means carry no seeds). `engine paper-check --json` prints the same.")

reading = st.radio("Table 9, CIFAR-10, n_base 25,000: the row printed as 15,000 real images added",
                   list(TAB9_READINGS), key="paper_tab9", horizontal=True,
                   format_func=lambda r: {"total": "read as 20,000 (its total 45,000 and ratio 1:0.8)",
                                          "printed": "read as printed, 15,000"}[r])
st.caption(TAB9_NOTE)


@st.cache_data(show_spinner="Refitting the seven equations…", max_entries=4)
def check(tab9: str):
    return paper_check(tab9=tab9, n_boot=200)


rows = check(reading)
table = pd.DataFrame([{
    "Eq.": r["equation"], "setting": f"{r['dataset']} · {r['classifier']} · {r['augmentation']} ({r['generator']})",
    "published c1": r["published_c1"], "published c2": r["published_c2"],
    "c1 [95% CI]": f"{r['c1']:.3g} {fmt_ci(r['c1_ci'], '{:.3g}')}" if r["c1"] is not None else "—",
    "c2 [95% CI]": f"{r['c2']:.3g} {fmt_ci(r['c2_ci'], '{:.3g}')}" if r["c2"] is not None else "—",
    "published inside": {True: "yes", False: "no", None: "n/a"}[r["inside"]],
    "tuples kept / dropped": f"{r['tuples']} / {r['dropped']}"} for r in rows])
st.dataframe(table, hide_index=True, width="stretch")

st.subheader("What Table 9's reading does to Eq. 3 and Eq. 4")
alt_rows = []
for r in rows:
    if "tab9_other_reading" not in r:
        continue
    for x in (r, r["tab9_other_reading"]):
        alt_rows.append({"Eq.": r["equation"], "Table 9 row read as": f"{TAB9_READINGS[x['tab9']]:,} ({x['tab9']})",
                         "c1 [95% CI]": f"{x['c1']:.3g} {fmt_ci(x['c1_ci'], '{:.3g}')}" if x["c1"] is not None else "—",
                         "c2 [95% CI]": f"{x['c2']:.3g} {fmt_ci(x['c2_ci'], '{:.3g}')}" if x["c2"] is not None else "—",
                         "published inside": {True: "yes", False: "no", None: "n/a"}[x["inside"]]})
st.dataframe(pd.DataFrame(alt_rows), hide_index=True, width="stretch")

st.subheader("The evidence, equation by equation")
for r in rows:
    with st.expander(f"Eq. {r['equation']}: {r['dataset']} · {r['classifier']} · {r['augmentation']}",
                     expanded=r["inside"] is False):
        st.markdown(f"**{r['note'].split(':')[0]}.**")
        for line in r["evidence"]:
            st.markdown(f"- {line}")
