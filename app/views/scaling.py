"""Scaling: IR(n_base) (the paper's Fig. 7), the fitted c1, c2 of every setting side by side, and appendix G:
a synthetic base (Fig. 13, Tab. 20), zero-shot classification (Fig. 14, Tab. 21) and Tab. 6."""
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app.common import fit_summary, fmt_ci, ready, run_summary, setting_options
from engine.analysis.ir import improvement_ratio
from engine.analysis.surface import DEFAULT_EPS, PAPER_FEATURES
from engine.analysis.coverage_table import label
from engine.catalog.vocab import CLOSED, OPEN, SYNTHETIC_BASE, ZERO_SHOT
from store import runs as store_runs
from app.links import linked
from app.published import published

PARAMETER_LABELS = (f"with seeds, c1 {label('c1:seeds')}, c2 {label('c2:seeds')}; on published means, c1 "
                    f"{label('c1:means')}, c2 {label('c2:means')}")


# Beyond this many (dataset, classifier) pairs the page shows those the user picks: a chart of a
# hundred pairs (2,400 lines) is unreadable, and every setting shown costs a fit.
MAX_PAIRS = 8
# Likewise for generators: every closed-set generator is paired with every open-set one (6 x 4 = 24
# lines a pair in a large store, 1.4 s for the browser to draw two pairs); above this many
# combinations the chart draws the generators picked, two of each kind by default. The table below
# it lists them all.
MAX_GENERATOR_PAIRS = 4


@st.cache_data(show_spinner=False, max_entries=256)
def improvement_ratios(path: str, key: str, dataset: str, classifier: str):
    """IR(n_base) of one (dataset, classifier), from the only runs it reads; cached until its runs change."""
    return improvement_ratio(store_runs.improvement_rows(path, dataset=dataset, classifier=classifier),
                             dataset, classifier)


st.title("Scaling")
found = ready()
if found is None:
    st.stop()
path, stamps = found
pairs = [tuple(p) for p in run_summary(str(path), stamps.all)["pairs"]]
if len(pairs) > MAX_PAIRS:
    names = {f"{d} · {c}": (d, c) for d, c in pairs}
    chosen = linked(st.multiselect, f"Dataset · classifier ({len(pairs):,} in the store)", list(names),
                            default=list(names)[:2], key="scaling_pairs")
    pairs = [names[n] for n in chosen]

# ------------------------------------------------------------------------------ IR(n_base)
st.subheader("Improvement ratio IR(n_base)")
fig = go.Figure()
ir_rows = []
for dataset, classifier in pairs:
    ir = improvement_ratios(str(path), stamps.pair(dataset, classifier), dataset, classifier)
    if not ir.empty:
        ir_rows.append(ir.assign(dataset=dataset, classifier=classifier))
drawn = pd.concat(ir_rows) if ir_rows else pd.DataFrame()
if not drawn.empty and drawn[["generator_closed", "generator_open"]].drop_duplicates().shape[0] > MAX_GENERATOR_PAIRS:
    closed, opened = sorted(drawn.generator_closed.unique()), sorted(drawn.generator_open.unique())
    left, right = st.columns(2)
    pick_closed = linked(left.multiselect, f"Closed-set generators drawn ({len(closed)})", closed, default=closed[:2],
                                   key="scaling_closed")
    pick_open = linked(right.multiselect, f"Open-set generators drawn ({len(opened)})", opened, default=opened[:2],
                                  key="scaling_open")
    drawn = drawn[drawn.generator_closed.isin(pick_closed) & drawn.generator_open.isin(pick_open)]
for (dataset, classifier), ir in (drawn.groupby(["dataset", "classifier"], sort=False) if not drawn.empty else []):
    # One line per (source, traditional augmentation, closed generator, open generator): never
    # averaged across them. The traditional augmentation is named only where a pair has several.
    several = ir.traditional.nunique(dropna=False) > 1
    for (source, trad, gc, go_), g in ir.groupby(["source", "traditional", "generator_closed", "generator_open"],
                                                  dropna=False):
        finite = np.isfinite(g.IR_lo) & np.isfinite(g.IR_hi)
        shown_trad = f", {trad if isinstance(trad, str) else 'traditional not recorded'}" if several else ""
        fig.add_trace(go.Scatter(
            x=g.n_base, y=g.IR, mode="lines+markers",
            name=f"{dataset} · {classifier} · {gc} vs {go_} ({source}{shown_trad})",
            error_y=dict(type="data", symmetric=False, array=np.where(finite, g.IR_hi - g.IR, np.nan),
                         arrayminus=np.where(finite, g.IR - g.IR_lo, np.nan)),
            customdata=g[["gain_closed", "gain_open", "note"]],
            hovertemplate="n_base %{x:,}<br>IR %{y:.2f}<br>closed gain %{customdata[0]:+.2f}"
                          "<br>open gain %{customdata[1]:+.2f}<br>%{customdata[2]}<extra></extra>"))
if ir_rows:
    fig.add_hline(y=1, line_dash="dot", annotation_text="closed = open")
    fig.update_layout(xaxis_type="log", xaxis_title="base set size n_base (log scale)",
                      yaxis_title="IR = closed-set gain / open-set gain at 1:1", height=420,
                      legend_title="dataset · classifier · closed vs open generator (source[, traditional])")
    st.plotly_chart(fig, key="scaling_ir")
    table = pd.concat(ir_rows)
    st.caption("Eq. 7: at each n_base, the accuracy gain of n_base closed-set synthetic images over the gain of "
               "n_base open-set ones, both against the base-only run of the same source and traditional "
               "augmentation; measured runs only. One line per source, traditional augmentation and pair of "
               "generators. Error bars: 95 % interval over seeds (resampled, paired) where at least two seeds "
               f"exist; published means have none. {len(table)} rows (a row per line and n_base).")
    st.dataframe(table[["dataset", "classifier", "source", "traditional", "n_base", "acc_base", "generator_closed",
                        "gain_closed", "generator_open", "gain_open", "IR", "IR_lo", "IR_hi", "note"]],
                 hide_index=True, width="stretch")
else:
    st.info("IR needs a base-only run and closed-set and open-set runs at 1:1 (n_syn_added = n_base) of the same "
            "base, source and traditional augmentation.")

# --------------------------------------------------------------------------- c1, c2 side by side
st.subheader("Fitted c1 and c2 of every setting")
rows = []
# One row per traditional augmentation of a setting: runs trained with different ones are never pooled.
shown = [s for s in setting_options(str(path), stamps.all, traditional=True) if s[:2] in pairs]
progress = st.empty()
for i, (*setting, traditional) in enumerate(shown):
    setting = tuple(setting)
    # A line of progress between fits also lets Streamlit stop this loop as soon as the user leaves
    # the page; without it the fits ran on, slowing every page visited next.
    progress.caption(f"Fitting setting {i + 1:,} of {len(shown):,} ({' · '.join(s or '' for s in setting)})")
    found = fit_summary(str(path), stamps.pair(*setting[:2]), setting, PAPER_FEATURES, DEFAULT_EPS, traditional)
    row = {"dataset": setting[0], "classifier": setting[1], "augmentation": setting[2], "generator": setting[3] or "",
           "traditional": traditional or "", "source": found.get("source", "")}
    if "c1" not in found:
        row["note"] = found["note"]
    else:
        row.update(c1=found["c1"], c2=found["c2"], c1_lo=(found["c1_ci"] or (np.nan, np.nan))[0],
                   c1_hi=(found["c1_ci"] or (np.nan, np.nan))[1], c2_lo=(found["c2_ci"] or (np.nan, np.nan))[0],
                   c2_hi=(found["c2_ci"] or (np.nan, np.nan))[1], tuples=found["tuples"],
                   dropped=found["dropped"], note="",
                   covered=f"c1 {found['labels']['c1']}; c2 {found['labels']['c2']}")
    rows.append(row)
progress.empty()
table = pd.DataFrame(rows)
fitted = table[table.get("c1", pd.Series(dtype=float)).notna()] if "c1" in table else table.iloc[0:0]
if not fitted.empty:
    figc = make_subplots(rows=1, cols=2, subplot_titles=("c1 (base-size factor)", "c2 (growth with the real ratio)"))
    colors = {CLOSED: "#d62728", OPEN: "#1f77b4"}
    for aug, g in fitted.groupby("augmentation"):
        x = [f"{d} · {c}" for d, c in zip(g.dataset, g.classifier)]
        for col, name in ((1, "c1"), (2, "c2")):
            figc.add_trace(go.Scatter(
                x=x, y=g[name], mode="markers", name=f"{aug} set", legendgroup=aug, showlegend=col == 1,
                marker=dict(size=11, color=colors.get(aug, "gray")),
                error_y=dict(type="data", symmetric=False, array=g[f"{name}_hi"] - g[name],
                             arrayminus=g[name] - g[f"{name}_lo"]),
                customdata=g[["generator", "traditional"]],
                hovertemplate="%{x} (%{customdata[0]}, traditional %{customdata[1]})<br>" + name + " %{y:.3g}<extra></extra>"),
                row=1, col=col)
    figc.update_yaxes(type="log", title_text="c1 (log scale)", row=1, col=1)
    figc.update_yaxes(type="log", title_text="c2 (log scale)", row=1, col=2)
    figc.update_layout(height=460, legend_title="augmentation")
    st.plotly_chart(figc, key="scaling_c")
    st.caption("Each point: Eq. 1 fitted to that setting's equivalence tuples from its default source (engine runs "
               f"if it has any, else imported, else the paper's; the table says which; paper surface, eps = {DEFAULT_EPS:g}), with "
               f"bootstrap intervals ({PARAMETER_LABELS}); c2 > 1 in the fit (a constraint of Eq. 13: whether the "
               "data support it is tested below). A larger c2 means more synthetic images per real image, growing "
               "faster with the real ratio.")
show = table.copy()
if "c1" in show:
    show["c1 [interval]"] = [f"{a:.3g} {fmt_ci((l, h), '{:.3g}')}" if pd.notna(a) else "" for a, l, h in
                            zip(show.c1, show.c1_lo, show.c1_hi)]
    show["c2 [interval]"] = [f"{a:.3g} {fmt_ci((l, h), '{:.3g}')}" if pd.notna(a) else "" for a, l, h in
                            zip(show.c2, show.c2_lo, show.c2_hi)]
    show["intervals covered"] = show.covered.fillna("")
cols = [c for c in ["dataset", "classifier", "augmentation", "generator", "traditional", "source", "c1 [interval]",
                    "c2 [interval]", "intervals covered", "tuples", "dropped", "note"] if c in show]
st.dataframe(show[cols], hide_index=True, width="stretch")


# ------------------------------------------------------------------ two of the paper's claims, tested
st.subheader("Two of the paper's claims, tested rather than assumed")
st.caption("c2 > 1: Eq. 13 refitted with c2 free (> 0) on each setting's tuples and its bootstrap draws. Closed-set "
           "c1 below open-set c1: the difference of the two fits' c1 with a bootstrap interval (the fits share the real "
           "runs but their draws are independent here, so the interval is wider than it would be, never narrower). "
           "`engine claims --dataset D --classifier C --json` prints the same.")


@st.cache_data(show_spinner="Testing the claims…", max_entries=64)
def claims(path: str, key: str, dataset: str, classifier: str):
    from engine.analysis.checks import claim_c2_above_one, claim_closed_below_open
    from engine.analysis.fit import analyse
    from engine.analysis.select import settings
    from engine.analysis.surface import FitError
    runs = store_runs.query_runs(path, dataset=dataset, classifier=classifier)
    c2 = []
    for setting in sorted({st_[:4] for st_ in settings(runs)}, key=str):
        try:
            a = analyse(runs, *setting, n_boot=200)
        except FitError as err:
            c2.append({"setting": " · ".join(str(x) for x in setting if x), "claim": "c2 > 1", "text": str(err)})
            continue
        c2.append({"setting": " · ".join(str(x) for x in setting if x), **claim_c2_above_one(a)})
    return c2, claim_closed_below_open(runs, dataset, classifier)


claim_rows = []
for d, c in sorted({s[:2] for s in shown}):
    c2_rows, closed_open = claims(str(path), stamps.pair(d, c), d, c)
    claim_rows += [{"dataset · classifier": f"{d} · {c}", "claim": "c2 > 1", "setting": r["setting"],
                    "supported": {True: "yes", False: "no", None: "not decided"}.get(r.get("supported")),
                    "what the data say": r.get("text", "")} for r in c2_rows]
    claim_rows += [{"dataset · classifier": f"{d} · {c}", "claim": "closed-set c1 < open-set c1",
                    "setting": f"{r[CLOSED]['generator']} vs {r[OPEN]['generator']}",
                    "supported": {True: "yes", False: "no", None: "not decided"}.get(r.get("supported")),
                    "what the data say": r.get("text", "")} for r in closed_open]
if claim_rows:
    st.dataframe(pd.DataFrame(claim_rows), hide_index=True, width="stretch")


# ------------------------------------------------------------- appendix G: synthetic base, zero-shot
# Runs of appendix G's protocols are settings of their own (the store's `base` and `task`): no fit or
# IR above reads them, and each line below is one (dataset, classifier, set, traditional augmentation,
# base, and for zero-shot the text encoder), never averaged across them.

@st.cache_data(show_spinner=False, max_entries=8)
def protocol_runs(path: str, key: str, protocol: str) -> pd.DataFrame:
    """The runs of one of appendix G's protocols (its own filter: a query sees them only when asked)."""
    filters = {"base": SYNTHETIC_BASE} if protocol == SYNTHETIC_BASE else {"task": ZERO_SHOT}
    return store_runs.query_runs(path, columns=["source", "dataset", "classifier", "augmentation", "generator",
                                                "n_base", "n_real_added", "n_syn_added", "seed", "top1",
                                                "traditional", "config"], **filters)


def encoder_of(config) -> str:
    """A zero-shot run's text encoder, by the first digits of its content hash."""
    try:
        found = json.loads(config).get("text_encoder_sha256") if isinstance(config, str) else None
    except ValueError:
        found = None
    return f"BERT {found[:10]}" if found else "text encoder not recorded"


def protocol_points(runs: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """Mean, sd and seeds of top-1 per line and ratio. A synthetic base's ratio is real images added over
    its n_base; a zero-shot one's synthetic images over its real n_base, whose real-only run (no set
    behind it) starts the line of every set it is measured beside."""
    r = runs.copy()
    r["traditional"] = r.traditional.fillna("not recorded")
    if protocol == SYNTHETIC_BASE:
        r["ratio"], r["line"] = r.n_real_added / r.n_base, r.generator.fillna("")
        keys = ["dataset", "classifier", "line", "traditional", "n_base"]
    else:
        r["ratio"], r["encoder"] = r.n_syn_added / r.n_base, r.config.map(encoder_of)
        keys = ["dataset", "classifier", "encoder", "traditional", "n_base"]
        base = r[r.n_syn_added == 0]
        sets = r[r.n_syn_added > 0][keys + ["generator"]].drop_duplicates()
        r = pd.concat([r[r.n_syn_added > 0].assign(line=r.generator),
                       base.merge(sets, on=keys, how="left", suffixes=("_run", ""))
                       .assign(line=lambda f: f.generator.fillna("no synthetic runs yet"))])
        keys = ["dataset", "classifier", "line", "encoder", "traditional", "n_base"]
    if r.empty:
        return pd.DataFrame()
    out = r.groupby(keys + ["source", "ratio"], dropna=False).top1.agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"mean": "top1", "std": "sd", "count": "runs"})


def ratio_axis(ratios, zero_label: str) -> tuple[dict, float]:
    """A log axis of ratios with the zero (only the base) drawn a decade left of the smallest ratio."""
    positive = sorted({float(x) for x in ratios if x > 0})
    zero_at = (positive[0] if positive else 1.0) / 10
    ticks = [zero_at] + positive
    return dict(type="log", tickvals=ticks, ticktext=[zero_label] + [f"1:{x:g}" for x in positive]), zero_at


def protocol_figure(points: pd.DataFrame, paper: pd.DataFrame | None, x_title: str, zero_label: str, key: str):
    ratios = (list(points.ratio) if not points.empty else []) + (list(paper.ratio) if paper is not None else [])
    axis, zero_at = ratio_axis(ratios, zero_label)
    fig = go.Figure()
    group = [c for c in ("dataset", "classifier", "line", "encoder", "traditional", "n_base", "source") if c in points]
    for values, g in (points.groupby(group, dropna=False) if not points.empty else []):
        label = dict(zip(group, values))
        g = g.sort_values("ratio")
        fig.add_trace(go.Scatter(
            x=g.ratio.where(g.ratio > 0, zero_at), y=g.top1, mode="lines+markers",
            name=" · ".join(str(label[c]) for c in group if c not in ("n_base",)) + f" · n_base {label['n_base']:,}",
            error_y=dict(type="data", array=g.sd.fillna(0)), customdata=g[["runs"]],
            hovertemplate="ratio %{x:g}<br>top-1 %{y:.2f} %<br>%{customdata[0]} runs<extra></extra>"))
    if paper is not None:
        for (dataset, generator), g in paper.groupby(["dataset", "generator"], sort=False):
            g = g.sort_values("ratio")
            fig.add_trace(go.Scatter(x=g.ratio.where(g.ratio > 0, zero_at), y=g.value, mode="lines+markers",
                                     line=dict(dash="dash"), marker=dict(symbol="diamond"),
                                     name=f"paper: {dataset} · {generator}",
                                     hovertemplate="ratio %{x:g}<br>published top-1 %{y:.2f} %<extra></extra>"))
    fig.update_layout(xaxis=dict(title=x_title, **axis), yaxis_title="top-1 accuracy (%)", height=440,
                      legend_title="ours (mean ± sd over seeds) and the paper's (dashed)")
    st.plotly_chart(fig, key=key)


st.subheader("Synthetic base, real images added (the paper's Fig. 13 and Tab. 20)")
g1_runs = protocol_runs(str(path), stamps.all, SYNTHETIC_BASE)
tab20 = published(20, str(path), stamps.all)
tab20 = tab20.assign(ratio=tab20.n_real / tab20.n_syn) if tab20 is not None else None
g1 = protocol_points(g1_runs, SYNTHETIC_BASE)
if g1.empty:
    st.info(f"No runs with a synthetic base yet: `engine run --base {SYNTHETIC_BASE} --generator NAME --n-base K "
            f"--added 0,0.01N,0.1N,0.5N,N` trains them (docs/openset.md). The paper's Tab. 20 is drawn alone.")
protocol_figure(g1, tab20, "real images added : synthetic base (log scale)", "syn only", "scaling_g1")
st.caption("Appendix G.1: the base is n_base synthetic images of one set, and real images are added at "
           "syn-to-real ratios. Ours: mean ± sd over seeds of each point; the paper's Tab. 20 (ImageNet-10, "
           "13,000 images of SD2 or SD3, 3 trials' means, classifier not named) dashed.")
if not g1.empty:
    st.dataframe(g1, hide_index=True, width="stretch")
if tab20 is not None:
    st.dataframe(tab20[["dataset", "generator", "n_syn", "n_real", "ratio", "value", "delta", "setting"]].rename(
        columns={"n_syn": "synthetic base", "n_real": "real added", "value": "top-1 (Tab. 20)",
                 "delta": "gain (printed)"}), hide_index=True, width="stretch")

st.subheader("Zero-shot classification (the paper's Fig. 14 and Tab. 21)")
g2_runs = protocol_runs(str(path), stamps.all, ZERO_SHOT)
tab21 = published(21, str(path), stamps.all)
tab21 = tab21.assign(ratio=tab21.n_syn / tab21.n_real) if tab21 is not None else None
g2 = protocol_points(g2_runs, ZERO_SHOT)
if g2.empty:
    st.info(f"No zero-shot runs yet: `engine run --task {ZERO_SHOT} --text-encoder DIR --augmentation open "
            "--generator NAME --added 0,0.1N,0.5N,N,10N` trains them (docs/openset.md). The paper's Tab. 21 is "
            "drawn alone.")
protocol_figure(g2, tab21, "synthetic images of the unseen classes : real images of the seen ones (log scale)",
                "real only", "scaling_g2")
st.caption("Appendix G.2: real images of the first half of the classes, synthetic images of the second half, "
           "tested on the second half's test images among those classes; a frozen BERT encodes each class's "
           "sentence, the image encoder is trained from scratch (512-d joint space, cosine similarity). One line "
           "per set, text encoder and traditional augmentation; the real-only run starts each. The paper's "
           "Tab. 21 dashed (its ImageNet-100 base is printed as 130,000: kept as printed).")
if not g2.empty:
    st.dataframe(g2, hide_index=True, width="stretch")
if tab21 is not None:
    st.dataframe(tab21[["dataset", "generator", "n_real", "n_syn", "ratio", "value", "delta", "note"]].rename(
        columns={"n_real": "real (seen classes)", "n_syn": "synthetic (unseen)", "value": "top-1 (Tab. 21)",
                 "delta": "gain (printed)"}), hide_index=True, width="stretch")

st.subheader("Traditional augmentation against generative (the paper's Tab. 6)")
tab6 = published(6, str(path), stamps.all)
if tab6 is None:
    st.info("The store holds no published tables yet: `engine store init` loads them.")
else:
    st.dataframe(tab6[["dataset", "classifier", "traditional", "augmentation", "generator", "n_real", "n_syn",
                       "value", "delta"]].rename(columns={"value": "top-1 (Tab. 6)", "delta": "gain over none"}),
                 hide_index=True, width="stretch")
    st.caption("CIFAR-10-Large, ResNet-110 (docs/paper-tables.md says how each cell was read). "
               "`engine study digits --traditional-baseline` measures the same comparison on digits.")
