"""Runs: filter the store, see accuracy against augmentation scale (the paper's Figs. 5, 6, 8).

Everything is asked of the store with SQL: the filter options, the count, one page of the
table, per-point means and spreads for the chart, and the download (streamed by COPY on click).
"""
import tempfile
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app.common import picker_values, ready, run_summary
from store import exchange as store_exchange
from store import runs as store_runs
from store.runs import FILTER_COLUMNS, TAB9_NOTE
from engine.catalog.vocab import CLOSED, OPEN, REAL
from app.links import linked

PAGE_SIZE = 200
# Above this many generators in one chart the curves are too many to read (a pair of a large store
# drew 66, and the browser took ~1.5 s to draw them): the chart then draws the real curves and the
# generators picked, two by default, as the Scaling page does with pairs.
MAX_GENERATORS = 4
SHOWN = ["source", "dataset", "classifier", "augmentation", "generator", "traditional", "n_base", "n_real_added",
         "n_syn_added", "seed", "top1", "top5", "n_total", "created_at", "note"]


@st.cache_data(show_spinner=False, max_entries=32)
def table_page(path: str, key: str, filters: tuple, page: int):
    return store_runs.page_of_runs(path, columns=SHOWN, limit=PAGE_SIZE, offset=page * PAGE_SIZE, **dict(filters))


@st.cache_data(show_spinner=False, max_entries=32)
def table9_shown(path: str, key: str, filters: tuple) -> bool:
    return store_runs.has_note(path, "Table 9 prints", **dict(filters))


@st.cache_data(show_spinner=False, max_entries=64)
def curves(path: str, key: str, filters: tuple):
    return store_runs.point_means(path, **dict(filters))


st.title("Runs")
found = ready()
if found is None:
    st.stop()
path, stamps = found
options = picker_values(str(path), stamps.all)
cols = st.columns(len(FILTER_COLUMNS))
chosen = {}
for col, name in zip(cols, FILTER_COLUMNS):
    chosen[name] = linked(col.multiselect, name.replace("_", " "), options.get(name, []), key=f"runs_{name}",
                                   placeholder="all")
filters = tuple((k, tuple(v)) for k, v in chosen.items() if v)
summary = run_summary(str(path), stamps.all, filters)
if not summary["matching"]:
    st.info("No runs match these filters.")
    st.stop()

# ----------------------------------------------------------------------------- the chart first
st.caption(f"{summary['matching']:,} of {summary['total']:,} runs · sources: {', '.join(summary['sources'])}")
pairs = summary["pairs"]
labels = [f"{d} · {c}" for d, c in pairs]
pick = linked(st.selectbox, "Chart", labels, key="runs_chart") if len(labels) > 1 else labels[0]
dataset, classifier = pairs[labels.index(pick)]
pair_filters = tuple(dict(filters, dataset=(dataset,), classifier=(classifier,)).items())
points = curves(str(path), stamps.pair(dataset, classifier), pair_filters)
generators = sorted(g for g in points.generator.unique() if g) if not points.empty else []  # real: ''
if len(generators) > MAX_GENERATORS:
    drawn = linked(st.multiselect, f"Generators drawn ({len(generators)} in these runs; real curves always)", generators,
                           default=generators[:2], key="runs_generators")
    points = points[(points.generator == "") | points.generator.isin(drawn)].copy()
if points.empty:
    st.info("These runs hold base-only points: add real or synthetic runs to draw curves." if not generators else
            "No curve to draw: pick a generator above.")
else:
    points["scale"] = points.added / points.n_base
    DASH = {REAL: "solid", CLOSED: "dash", OPEN: "dot"}
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    bases = sorted(points.n_base.unique())
    # Runs trained with different traditional augmentation (crop, flip; the paper's Tab. 6) are
    # separate curves; the label names it only when the chart holds more than one.
    several = points.traditional.nunique() > 1
    # Lists, not Series: a pair of a large store draws ~70 lines, and plotly inspects every array it gets
    # (0.6 s a rerun with Series, 0.2 s with lists).
    traces = []
    for (n_base, aug, gen, trad), g in points.groupby(["n_base", "augmentation", "generator", "traditional"], sort=True):
        sd = g.sd.to_numpy(dtype=float)
        traces.append(go.Scatter(
            x=g.scale.tolist(), y=g.acc.tolist(), mode="lines+markers",
            name=f"n_base {n_base:,} · {aug}" + (f" ({gen})" if gen else "") + (f" · {trad or '?'}" if several else ""),
            line=dict(dash=DASH[aug], color=palette[bases.index(n_base) % len(palette)]),
            error_y=dict(type="data", array=np.nan_to_num(sd).tolist(), visible=bool(np.isfinite(sd).any())),
            customdata=g[["added", "seeds"]].to_numpy().tolist(),
            hovertemplate="+%{customdata[0]:,} images (×%{x:.2f})<br>top-1 %{y:.2f}%<br>%{customdata[1]} seeds"))
    fig = go.Figure(traces)
    fig.update_layout(title=f"{dataset} · {classifier}: accuracy against augmentation scale",
                      xaxis_title="augmentation scale: images added / n_base", yaxis_title="top-1 test accuracy (%)",
                      legend_title="base size · augmentation", height=480, margin=dict(t=60))
    st.plotly_chart(fig, key="runs_figure")
    pair_count = run_summary(str(path), stamps.pair(dataset, classifier), pair_filters)["matching"]
    st.caption(f"Uses the {pair_count:,} filtered runs of {dataset} · {classifier}. Solid: real images added; "
               "dashed: closed-set synthetic; dotted: open-set synthetic. "
               + ("Points are means over seeds with ± one standard deviation. " if points.seeds.sum() else "")
               + ("Published runs are means of 3 trials whose spread was not published." if points.published.any() else ""))

# ----------------------------------------------------------------------------- the table, paged in SQL
pages = max(1, -(-summary["matching"] // PAGE_SIZE))
page = 0
if pages > 1:
    page = int(linked(st.number_input, f"Page (of {pages:,}, {PAGE_SIZE} runs each)", min_value=1, max_value=pages, value=1,
                               key="runs_page")) - 1
st.dataframe(table_page(str(path), stamps.all, filters, page), hide_index=True, width="stretch", height=280)


def export_csv():
    """Run on click, on its own thread: DuckDB streams the filtered runs to a file, which is sent."""
    out = Path(tempfile.mkdtemp(prefix="equiv-runs-")) / "runs.csv"
    store_exchange.export_runs(out, path, **dict(filters))
    handle = out.open("rb")
    out.unlink()  # the open handle keeps the data until it is sent
    out.parent.rmdir()
    return handle


st.download_button(f"Download these {summary['matching']:,} runs as CSV", export_csv, "runs.csv", "text/csv",
                   key="runs_download")
if table9_shown(str(path), stamps.all, filters):
    st.warning("CIFAR-10, n_base 25,000, real +15,000: " + TAB9_NOTE)
