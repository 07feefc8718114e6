"""Budget calculator: how many synthetic images equal N more real ones (or the inverse), refitted live."""
import re
import time
from urllib.parse import quote

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.common import (default_when_changed, features_text, fit, fmt_ci, page_with_setting, source_picker, stamp,
                        store_path, surface_controls, traditional_picker)
from engine.analysis.cost import CostModel
from engine.analysis.pricing import answer_cost
from engine.analysis.equivalence import eq1
from engine.analysis.bootstrap import MIN_DRAWS
from engine.analysis.select import fit_runs
from engine.analysis.verdict import explain, interval_labels
from engine.analysis.surface import FitError
from engine.catalog.vocab import REAL
from app.links import linked
from app.report_button import report_button

started = time.perf_counter()
runs, setting = page_with_setting("Budget calculator", "budget")
dataset, classifier, augmentation, generator = setting
source = source_picker(runs, setting, "budget")
traditional = traditional_picker(runs, setting, source, "budget")
features, eps = surface_controls("budget")
if not features:
    st.warning("Choose at least one surface feature.")
    st.stop()

# The runs the fit reads (the fit's own selection: source, traditional augmentation), each of which the
# user may tick out of it.
try:
    setting_runs = fit_runs(runs, dataset, classifier, augmentation, generator, traditional, source)
except FitError as err:
    st.error(f"No fit: {err}")
    st.stop()


def run_label(r) -> str:
    added = f"+{r.n_real_added:,} real" if r.n_real_added else (f"+{r.n_syn_added:,} synthetic" if r.n_syn_added else "base only")
    seed = "" if pd.isna(r.seed) else f", seed {r.seed}"
    return f"n_base {r.n_base:,} {added}{seed}: {r.top1:.2f}% ({r.source})"


labels = {run_label(r): r.run_id for r in setting_runs.itertuples()}
with st.expander(f"Runs in the fit ({len(setting_runs)}): leave some out"):
    left_out = st.multiselect("Leave these runs out of the fit", list(labels), key="budget_excluded",
                              placeholder="none: every run is used")
    st.dataframe(setting_runs[["n_base", "augmentation", "generator", "n_real_added", "n_syn_added", "seed", "top1",
                               "traditional", "source", "note"]], hide_index=True, width="stretch", height=240)
excluded = tuple(labels[label] for label in left_out)

analysis, error, fit_ms = fit(setting, features, eps, excluded, source=source, traditional=traditional)
if analysis is None:
    st.error(f"No fit: {error}")
    st.stop()

# Digits, plain or in groups of three between commas, then an optional decimal part and exponent.
COUNT = re.compile(r"[+-]?(\d+|\d{1,3}(,\d{3})+)(\.\d*)?([eE][+-]?\d+)?")
MAX_COUNT = 10**12
OTHER_BASE = "another"


def parse_count(text: str, name: str, low: int = 0) -> int:
    """A whole number of images as people type it (5000, 5,000, 1e6, 2.5e5), or ValueError naming
    the text: never a nearby value, as a number_input gave (it read '1e6' as 1 without a word)."""
    t = text.strip()
    shown = repr(text if len(text) <= 40 else f"{text[:18]}…{text[-18:]}")  # a pasted page stays one line
    if not COUNT.fullmatch(t):
        raise ValueError(f"{name} = {shown} is not a number of images: write it like 5000, 5,000, 1e6 or 2.5e5")
    value = float(t.replace(",", ""))
    if not low <= value <= MAX_COUNT:
        raise ValueError(f"{name} = {shown} must be between {low:,} and {MAX_COUNT:.0e}")
    if not value.is_integer():
        raise ValueError(f"{name} = {shown} is {value:,g}: a number of images is a whole number")
    return int(value)


def eq1_chart(analysis, bases, pct, question=None):
    """Eq. 1 against the tuples, with its bootstrap band; the user's question and its verdict as a star."""
    fig = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    draws = analysis.draws
    draws_ok = draws is not None and draws.n_ok >= MIN_DRAWS
    for i, b in enumerate(bases):
        color = palette[i % len(palette)]
        ts = [t for t in analysis.tuples if t["n_base"] == b]
        r_max = max([t["ratio"] for t in ts] + [1.0]) * 1.2
        r = np.linspace(0, r_max, 60)
        if analysis.c1 is not None:
            if draws_ok:
                with np.errstate(over="ignore", invalid="ignore"):  # draws far out: cut at the axis, not warned
                    band = eq1(b, r[None, :] * b, draws.c1[draws.ok, None], draws.c2[draws.ok, None], analysis.tau) / b
                band = np.where(np.isfinite(band), band, 1e12)
                lo, hi = np.quantile(band, [(1 - analysis.level) / 2, 1 - (1 - analysis.level) / 2], axis=0)
                fig.add_trace(go.Scatter(x=np.r_[r, r[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", opacity=0.15,
                                         line=dict(width=0), fillcolor=color, name=f"{pct} band, n_base {b:,}",
                                         hoverinfo="skip", showlegend=False))
            fig.add_trace(go.Scatter(x=r, y=eq1(b, r * b, analysis.c1, analysis.c2, analysis.tau) / b, mode="lines",
                                     line=dict(color=color), name=f"Eq. 1, n_base {b:,}"))
        if ts:
            fig.add_trace(go.Scatter(x=[t["ratio"] for t in ts], y=[t["syn_ratio"] for t in ts], mode="markers",
                                     marker=dict(color=color, size=10, symbol=["diamond-open" if t["extrapolated"] else "circle" for t in ts]),
                                     name=f"tuples, n_base {b:,}",
                                     hovertemplate="real ×%{x:.2f} ≙ synthetic ×%{y:.2f}<extra></extra>"))
    # The bootstrap band can run off to huge values; scale the axis to the tuples and point fits.
    y_top = max([t["syn_ratio"] for t in analysis.tuples] + [1.0]) * 1.5
    if analysis.c1 is not None:
        y_top = max(y_top, max(float(eq1(b, 1.2 * max([t["ratio"] for t in analysis.tuples if t["n_base"] == b] + [1.0]) * b,
                                         analysis.c1, analysis.c2, analysis.tau)) / b for b in bases) * 1.1)
    fig.update_yaxes(range=[0, y_top])
    fig.update_layout(title="Eq. 1 against the equivalence tuples",
                      xaxis_title="real images added / n_base (n_real_added / n_base)",
                      yaxis_title="equivalent synthetic images / n_base", height=460, legend=dict(orientation="h", y=-0.2))
    if question is not None:
        n_base, amount, direction, v = question
        value = v["value"] if v["value"] is not None else v["lo"]
        if value is not None:
            x, y = (amount / n_base, value / n_base) if direction == "syn_for_real" else (value / n_base, amount / n_base)
            err = {}
            if v["value"] is not None and v["lo"] is not None and direction == "syn_for_real":
                err = dict(error_y=dict(type="data", symmetric=False, array=[((v["hi"] or value) - value) / n_base],
                                        arrayminus=[(value - v["lo"]) / n_base]))
            fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers", name=f"your question (verdict, grade {v['grade']})",
                                     marker=dict(symbol="star", size=16, color="#111111"), **err,
                                     hovertemplate=f"n_base {n_base:,}: your question, verdict grade {v['grade']}"
                                                   "<extra></extra>"))
            y_top = max(y_top, y * 1.2)
            fig.update_yaxes(range=[0, y_top])
    st.plotly_chart(fig, key="budget_figure")


GRADES = {"A": "bracketed by measured runs at this base", "B": "interpolated between measured runs at this base",
          "C": "extrapolated past the measured runs or across bases", "D": "no number the runs support"}


@st.cache_data(show_spinner=False, max_entries=512)
def _verdict(_analysis, key: tuple, n_base: int, amount: int, direction: str) -> dict:
    """engine.analysis.verdict.explain, cached per setting and question (a widget change reruns it once)."""
    return explain(_analysis, n_base, amount, direction)


def verdict_of(analysis, setting_key, n_base, amount, direction) -> dict:
    key = (setting_key, analysis.source, analysis.traditional, analysis.features, analysis.eps, len(analysis.tuples),
           analysis.c1, analysis.c2)
    return _verdict(analysis, key, n_base, amount, direction)


@st.fragment
def question_panel(analysis, setting_key):
    """The question, its answer and the Eq. 1 chart. A fragment: changing the amount reruns only
    this part (the fit is already cached), which keeps the answer's update well under the budget."""
    started = time.perf_counter()
    bases = sorted({t["n_base"] for t in analysis.tuples}) or sorted(b for b, f in analysis.bases.items() if f.surface)
    measured = sorted({int(b) for b in analysis.bases} | {int(b) for b in bases})
    cols = st.columns([2, 2, 2])
    question = linked(cols[0].radio, "Question", ["synthetic for real", "real for synthetic"], key="budget_question",
                             format_func=lambda q: {"synthetic for real": "How many synthetic images equal N more real ones?",
                                                    "real for synthetic": "How many real images are K synthetic ones worth?"}[q])
    default_base = int(bases[len(bases) // 2]) if bases else (measured[len(measured) // 2] if measured else 1000)
    # The measured bases of this setting: a base carried over from another setting is measured there,
    # not here. Another one can be typed, and is then said to be unmeasured.
    options = [*measured, OTHER_BASE]
    default_when_changed("budget_n_base", (setting_key, tuple(measured)), default_base, options)
    if st.session_state.get("budget_n_base") not in options:
        st.session_state["budget_n_base"] = default_base
    picked = linked(cols[1].selectbox, "n_base (real base set)", options, key="budget_n_base",
                               format_func=lambda b: "another base…" if b == OTHER_BASE else f"{b:,}",
                               help="The bases this setting has runs at, or another one typed in")
    # Each question keeps its own amount: N real images and K synthetic ones are different numbers.
    # Text, not number_input, which read '1e6' as 1; what is typed is what is answered, or an error.
    if question == "synthetic for real":
        amount_text = linked(cols[2].text_input, "N: real images added", value=str(default_base), key="budget_n_real_added")
    else:
        amount_text = linked(cols[2].text_input, "K: synthetic images added", value=str(default_base), key="budget_k_syn_added")
    prices = price_fields()
    try:
        if picked == OTHER_BASE:
            n_base = parse_count(linked(cols[1].text_input, "Another n_base", value=str(default_base), key="budget_n_base_other"),
                                 "n_base", low=1)
        else:
            n_base = int(picked)
        amount = parse_count(amount_text, "N" if question == "synthetic for real" else "K")
    except ValueError as err:
        st.error(f"No answer: {err}")
        return
    if n_base not in measured:
        st.warning(f"n_base {n_base:,} is not measured in this setting (its bases: "
                   f"{', '.join(f'{b:,}' for b in measured) or 'no base'}).")

    if analysis.c1 is None:
        st.error(f"No equivalence can be estimated for this setting: {analysis.eq1_error}")
        if analysis.unidentified:
            st.caption(f"The solver stopped at c1 = {analysis.unidentified['c1']:.3g}, "
                       f"c2 = {analysis.unidentified['c2']:.6g}: numbers at a bound are not an estimate.")
    direction = "syn_for_real" if question == "synthetic for real" else "real_for_syn"
    answer = (analysis.syn_for_real(n_base, amount) if direction == "syn_for_real"
              else analysis.real_for_syn(n_base, amount))
    exp = verdict_of(analysis, setting_key, n_base, amount, direction)
    v, labels = exp["verdict"], interval_labels(analysis, exp)
    unit = "synthetic images" if direction == "syn_for_real" else "real images"
    st.session_state["budget_question_asked"] = (n_base, amount, direction, v)
    # The one line a person acts on: the verdict, its grade and what its interval covered in simulation.
    # D is an answer too ("more than K", "within seed noise"), not a failure: never an error box,
    # which the page keeps for input it cannot read.
    box = {"A": st.success, "B": st.success, "C": st.warning, "D": st.info}[v["grade"]]
    box(f"**Verdict, grade {v['grade']}** ({GRADES[v['grade']]}): {v['text']}")
    cost_line(analysis, v, direction, amount, n_base, prices)
    st.caption(f"[Paper check: how the published equations fare on their own runs](./paper_check?dataset="
               f"{quote(analysis.dataset)}&classifier={quote(analysis.classifier)}) · grades: "
               + "; ".join(f"{g} {t}" for g, t in GRADES.items()))
    st.markdown("**The other answers**")
    m = st.columns(4)
    if answer.get("eq1") is not None:
        m[0].metric(f"Eq. 1: {unit}", f"{answer['eq1']:,.0f}", help="From c1, c2 fitted over all bases")
        m[0].caption(f"interval {fmt_ci(answer.get('eq1_ci'))}, {labels['eq1']}")
    else:
        m[0].metric(f"Eq. 1: {unit}", "—")
        m[0].caption(answer.get("eq1_error") or "")
    if answer.get("surface") is not None:
        m[1].metric(f"This base's surface: {unit}", f"{answer['surface']:,.0f}",
                    help="Solved directly on the fitted surface of this n_base (Eq. 12)")
        m[1].caption(f"interval {fmt_ci(answer.get('surface_ci'))}, {labels['surface']}")
    else:
        m[1].metric(f"This base's surface: {unit}", "—")
        m[1].caption(answer.get("surface_error", ""))
    if analysis.c1 is not None:
        m[2].metric("c1", f"{analysis.c1:.4g}")
        m[2].caption(f"interval {fmt_ci(analysis.c1_ci, '{:.3g}')}, {labels['c1']}")
        m[3].metric("c2", f"{analysis.c2:.4g}")
        m[3].caption(f"interval {fmt_ci(analysis.c2_ci, '{:.3g}')}, {labels['c2']}")
    if answer.get("bound"):
        # Gains within seed noise: the honest answer is a bound, or that nothing is measurable here.
        st.info(f"At n_base {n_base:,}: {answer['bound']['text']}.")
    for w in answer["warnings"]:
        st.warning(w)

    eq1_chart(analysis, bases, f"{analysis.level:.0%}", st.session_state.get("budget_question_asked"))
    st.caption(f"Answer computed in {(time.perf_counter() - started) * 1000:.0f} ms")
    if prices[2]:
        advice_panel(analysis, setting_key)


@st.cache_data(show_spinner=False, max_entries=4)
def cost_model(path: str, file_stamp: tuple) -> CostModel:
    """engine.analysis.cost's model of this store's timings, refitted when the store changes."""
    return CostModel.from_store(path)


def price_fields() -> tuple[float, float]:
    """The prices the cost sentence uses; drawn on every run of the panel, whatever else fails below them."""
    p = st.columns([1, 1, 4])
    gpu_price = linked(p[0].number_input, "Price per GPU-hour ($)", min_value=0.0, value=2.0, step=0.5, key="budget_gpu_cost")
    label_price = linked(p[1].number_input, "Price per labelled image ($)", min_value=0.0, value=0.10, step=0.01,
                                    format="%.3f", key="budget_label_cost")
    advise = p[2].toggle("Advise the next runs to buy (simulates each candidate: seconds)", key="budget_advice_on")
    return gpu_price, label_price, advise


def cost_line(analysis, v: dict, direction: str, amount: int, n_base: int, prices: tuple) -> None:
    """One sentence: labelling the real images against generating the synthetic ones, at the page's prices."""
    c = answer_cost(v, direction, amount, n_base, analysis.generator, cost_model(str(store_path()), stamp(store_path())),
                    *prices[:2])
    st.markdown(f"**Cost:** {c['text']}", help=c["basis"])


ADVICE_TOP = 5


@st.cache_data(show_spinner="Simulating each candidate run…", max_entries=16)
def _advice(path: str, file_stamp: tuple, setting: tuple, source, traditional, n_base: int, amount: int) -> dict:
    from engine.analysis.advise import setting_advice
    from store.jobs import folder_forms
    runs_here = runs[(runs.dataset == setting[0]) & (runs.classifier == setting[1])]
    return setting_advice(runs_here, cost_model(path, file_stamp), setting[0], setting[1], setting[2], setting[3],
                          n_base, amount, sims=4, n_boot=50, top=ADVICE_TOP, source=source, traditional=traditional,
                          dataset_form=folder_forms(path).get(setting[0]))


def advice_panel(analysis, setting) -> None:
    """The five runs expected to narrow the verdict most per GPU-hour, each a button that opens the Queue
    form prefilled with it (st.session_state["queue_prefill"], read by views/queue.py)."""
    asked = st.session_state.get("budget_question_asked")
    if not asked or asked[2] != "syn_for_real":
        st.caption("Advice answers the question \"how many synthetic images equal N more real ones\".")
        return
    n_base, amount = int(asked[0]), int(asked[1])
    st.markdown("**Next runs to buy**: ranked by how much each is expected to narrow the verdict's interval per "
                "GPU-hour (its outcome simulated from the current fit and the runs' own noise)")
    try:
        adv = _advice(str(store_path()), stamp(store_path()), setting, analysis.source, analysis.traditional,
                      n_base, amount)
    except Exception as err:  # an advice the fit cannot give is said, never a broken page
        st.warning(f"No advice: {err}")
        return
    if not adv["candidates"]:
        st.info("No advice: " + "; ".join(dict.fromkeys(adv["left_out"])))
        return
    for k, row in enumerate(adv["candidates"]):
        c = st.columns([5, 1])
        what = {"synthetic": f"{row['n_added']:,} synthetic images", REAL: f"{row['n_added']:,} more real images",
                "seeds": f"{row['seeds']} more seeds at +{row['n_added']:,} {row.get('point') or ''}",
                "base": f"a new base (base run, +{row['n_added']:,} real and synthetic)"}[row["kind"]]
        hours = "unknown hours" if row["gpu_hours"] is None else f"{row['gpu_hours']:.3g} h on {adv['device']}"
        shrink = "—" if row["shrink_per_gpu_hour"] is None else f"{row['shrink_per_gpu_hour']:,.0f} images / h"
        c[0].markdown(f"{k + 1}. n_base {row['n_base']:,}: {what}, {row['seeds']} seeds; {hours}; interval "
                      f"{row['width_now']:,.0f} → {row['width_expected']:,.0f} images expected ({shrink})")
        if c[1].button("Queue this", key=f"budget_advice_queue_{k}", disabled=row.get("queue") is None,
                       help=None if row.get("queue") else "its dataset or generator cannot be queued from here"):
            st.session_state["queue_prefill"] = row["queue"]
            st.session_state["queue_prefill_note"] = row.get("queue_note")
            st.switch_page("views/queue.py")


question_panel(analysis, setting)
pct = f"{analysis.level:.0%}"
draws = analysis.draws
n_dropped = len(analysis.dropped)
st.caption(f"Fitted on {analysis.source} runs"
           + (f" trained with traditional augmentation {analysis.traditional}" if analysis.traditional else "")
           + (" (sources pooled: a run without a seed is one observation, never a seed)" if analysis.source == "all" else "")
           + f"; Eq. 12 grid: {analysis.grid_rule}.")
st.caption(f"Tuples solved on each base's surface ({features_text(analysis.features)}, eps = {eps:g}) from "
           f"{len(setting_runs) - len(excluded)} runs; open diamonds extrapolate beyond the measured runs. "
           f"Curves: Eq. 1 with τ = 10/{analysis.n_total:,}; shaded: {pct} bootstrap band "
           f"({draws.method if draws else 'no draws'}, {draws.n_ok if draws else 0} draws). "
           f"{n_dropped} tuple(s) dropped.")
if analysis.dropped:
    with st.expander(f"Dropped tuples ({len(analysis.dropped)})"):
        st.dataframe(pd.DataFrame(analysis.dropped), hide_index=True, width="stretch")
for w in analysis.warnings:
    st.caption(f"⚠️ {w}")
st.caption(f"Refit: {fit_ms:.0f} ms (0 when cached) · page computed in {(time.perf_counter() - started) * 1000:.0f} ms")

# ----------------------------------------------------------------------------- share
st.subheader("Share")
asked = st.session_state.get("budget_question_asked")
report_button("budget", [setting], [asked[:2]] if asked and asked[2] == "syn_for_real" else None,
              eps=eps, source=source,
              name=f"report {dataset} {classifier} {augmentation} {generator or ''}",
              note="The report refits this setting with the paper's three surface features and the default "
                   "traditional augmentation on every run (as `engine report --html` does), and answers the "
                   "question above when it asks for synthetic images; the page's link (the URL) reopens this view.")
