"""Runs: filter the store, see accuracy against augmentation scale (the paper's Figs. 5, 6, 8)."""
import duckdb
import plotly.graph_objects as go
import streamlit as st

from app.common import load_runs
from store.runs import TAB9_NOTE

st.title("Runs")
runs = load_runs()
if runs is None:
    st.stop()

FILTERS = ["source", "dataset", "classifier", "augmentation", "generator", "n_base"]
cols = st.columns(len(FILTERS))
chosen = {}
for col, name in zip(cols, FILTERS):
    values = sorted(runs[name].dropna().unique().tolist())
    chosen[name] = col.multiselect(name.replace("_", " "), values, key=f"runs_{name}", placeholder="all")
sel = runs
for name, values in chosen.items():
    if values:
        sel = sel[sel[name].isin(values)]

if sel.empty:
    st.info("No runs match these filters.")
    st.stop()

st.caption(f"{len(sel):,} of {len(runs):,} runs · sources: {', '.join(sorted(sel.source.unique()))}")
shown = ["source", "dataset", "classifier", "augmentation", "generator", "n_base", "n_real_added", "n_syn_added",
         "seed", "top1", "top5", "n_total", "created_at", "note"]
st.dataframe(sel[shown], hide_index=True, width="stretch", height=280)
st.download_button("Download these runs as CSV", sel.to_csv(index=False).encode(), "runs.csv", "text/csv")
if sel.note.fillna("").str.contains("Table 9 prints").any():
    st.warning("CIFAR-10, n_base 25,000, real +15,000: " + TAB9_NOTE)

# ----------------------------------------------------------------------------- the chart
pairs = sel[["dataset", "classifier"]].drop_duplicates().sort_values(["dataset", "classifier"])
labels = [f"{d} · {c}" for d, c in pairs.itertuples(index=False)]
pick = st.selectbox("Chart", labels, key="runs_chart") if len(labels) > 1 else labels[0]
dataset, classifier = pairs.iloc[labels.index(pick)]
chart_runs = sel[(sel.dataset == dataset) & (sel.classifier == classifier)].copy()
chart_runs["added"] = chart_runs.n_real_added + chart_runs.n_syn_added
chart_runs["generator"] = chart_runs.generator.fillna("")

# Mean and spread over seeds per point; the base-only run (added = 0) starts every curve of its base.
curves = duckdb.sql("""
    WITH points AS (
        SELECT n_base, augmentation, generator, added, avg(top1) AS acc, stddev_samp(top1) AS sd,
               count(seed) AS seeds, count(*) AS rows
        FROM chart_runs WHERE added > 0
        GROUP BY ALL),
    base AS (
        SELECT n_base, avg(top1) AS acc, stddev_samp(top1) AS sd, count(seed) AS seeds, count(*) AS rows
        FROM (SELECT DISTINCT n_base, seed, top1, run_key FROM chart_runs WHERE added = 0)
        GROUP BY n_base),
    kinds AS (SELECT DISTINCT n_base, augmentation, generator FROM points)
    SELECT n_base, augmentation, generator, added, acc, sd, seeds, rows FROM points
    UNION ALL
    SELECT k.n_base, k.augmentation, k.generator, 0 AS added, b.acc, b.sd, b.seeds, b.rows
    FROM kinds k JOIN base b USING (n_base)
    ORDER BY n_base, augmentation, generator, added
""").df()

if curves.empty:
    st.info("These runs hold base-only points: add real or synthetic runs to draw curves.")
    st.stop()
curves["scale"] = curves.added / curves.n_base
DASH = {"real": "solid", "closed": "dash", "open": "dot"}
fig = go.Figure()
palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
bases = sorted(curves.n_base.unique())
for (n_base, aug, gen), g in curves.groupby(["n_base", "augmentation", "generator"], sort=True):
    name = f"n_base {n_base:,} · {aug}" + (f" ({gen})" if gen else "")
    has_sd = g.sd.notna().any()
    fig.add_trace(go.Scatter(
        x=g.scale, y=g.acc, mode="lines+markers", name=name,
        line=dict(dash=DASH[aug], color=palette[bases.index(n_base) % len(palette)]),
        error_y=dict(type="data", array=g.sd.fillna(0), visible=bool(has_sd)),
        customdata=g[["added", "seeds"]],
        hovertemplate="+%{customdata[0]:,} images (×%{x:.2f})<br>top-1 %{y:.2f}%<br>%{customdata[1]} seeds"))
fig.update_layout(title=f"{dataset} · {classifier}: accuracy against augmentation scale",
                  xaxis_title="augmentation scale: images added / n_base", yaxis_title="top-1 test accuracy (%)",
                  legend_title="base size · augmentation", height=480, margin=dict(t=60))
st.plotly_chart(fig, key="runs_figure")
seeded = chart_runs.seed.notna().any()
st.caption(f"Uses the {len(chart_runs):,} filtered runs of {dataset} · {classifier}. Solid: real images added; "
           "dashed: closed-set synthetic; dotted: open-set synthetic. "
           + ("Points are means over seeds with ± one standard deviation. " if seeded else "")
           + ("Published runs are means of 3 trials whose spread was not published." if (chart_runs.source == "paper").any() else ""))
