"""Generators: each synthetic set's training curve, samples, memorisation pairs, quality metrics
and t-SNE (Fig. 1), and every set's quality against the gain its images bought."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.common import fit, store_path
from engine.analysis.surface import DEFAULT_EPS, PAPER_FEATURES
from store import quality as store_quality
from store.db import StoreError
from engine.catalog.vocab import CLOSED, REAL
from app.links import linked
from app.published import published_quality

LABELS = {"fd": "FD, reference classifier (synthetic vs real test split)",
          "fd_real": "FD of real train images, same n (the ruler)", "fid": "FID (pytorch-fid Inception)",
          "is": "Inception Score (± sd over 10 splits)", "domain": "domain classifier accuracy % (chance 50)",
          "domain_patch": "domain classifier accuracy on patches %", "diversity": "diversity of the set",
          "diversity_real": "diversity of real images, same size", "memorisation": "memorisation ratio"}
SHOWN = 8  # images per class in the grid
DOMAIN_COLOURS = {REAL: "#1f77b4", "synthetic": "#d62728"}

st.title("Generators and synthetic sets")
path = store_path()
try:
    sets = store_quality.list_sets(path)
    quality = store_quality.query_quality(path)
    gains = store_quality.gains_at_ratio(path)
except StoreError as err:
    st.error(f"The store cannot be read: {err}")
    st.stop()
STAMP = path.stat().st_mtime if path.exists() else 0.0
if sets.empty:
    st.info("No synthetic sets in the store yet: `engine run --augmentation closed ...` or `engine study digits` "
            "trains a generator and samples one; `engine quality SET` then measures it.")
    published_quality(path, STAMP)
    st.stop()


def label(r) -> str:
    base = "" if pd.isna(r.n_base) else f" · n_base {int(r.n_base)}"
    return f"{r.generator or r.generator_id} · {r.dataset if isinstance(r.dataset, str) else '?'}{base} · {r.synthetic_set_id}"


labels = [label(r) for r in sets.itertuples()]
pick = linked(st.selectbox, "Synthetic set", labels, key="gen_set")
s = sets.iloc[labels.index(pick)]
q = quality[quality.synthetic_set_id == s.synthetic_set_id]
rows = {r["metric"]: r for r in q.to_dict("records")}

# ----------------------------------------------------------------------------- training
st.subheader("Training")
c = st.columns(4)
c[0].metric("train images", "-" if pd.isna(s.train_images) else f"{int(s.train_images):,}")
c[1].metric("train time", "-" if pd.isna(s.train_time_s) else f"{s.train_time_s:.0f} s")
c[2].metric("final loss", "-" if pd.isna(s.final_loss) else f"{s.final_loss:.3f}")
c[3].metric("sampling", "-" if pd.isna(s.sampling_s_per_image) else f"{1000 * s.sampling_s_per_image:.1f} ms/image")
curve = json.loads(s.loss_curve) if isinstance(s.loss_curve, str) else None
if curve:
    fig = go.Figure(go.Scatter(x=[p[0] for p in curve], y=[p[1] for p in curve], mode="lines+markers", name="loss"))
    fig.update_layout(title="Training loss (smoothed) against images seen", xaxis_title="images seen",
                      yaxis_title="loss", height=320, margin=dict(t=50))
    st.plotly_chart(fig, key="gen_loss")
else:
    st.caption("No loss curve stored: this generator was trained before curves were recorded, or elsewhere.")

# ----------------------------------------------------------------------------- samples


def upscale(img: np.ndarray, to: int = 48) -> np.ndarray:
    k = max(1, to // img.shape[0])
    img = np.kron(img, np.ones((k, k, 1), img.dtype))
    return img[..., 0] if img.shape[-1] == 1 else img


def grid(images: np.ndarray) -> np.ndarray:
    tiles = [np.pad(upscale(im), 2, constant_values=255) if im.shape[-1] == 1 else
             np.pad(upscale(im), ((2, 2), (2, 2), (0, 0)), constant_values=255) for im in images]
    return np.concatenate(tiles, axis=1)


st.subheader("Samples")
images_path = Path(s.path)
if images_path.is_file():
    with np.load(images_path, allow_pickle=False) as npz:
        x, y = npz["images"], npz["labels"]
    for cls in np.unique(y):
        st.image(grid(x[np.flatnonzero(y == cls)[:SHOWN]]), caption=f"class {cls}", clamp=True)
    st.caption(f"Uncurated: the first {SHOWN} images of each class in the set's seeded stream "
               f"(sampling seed {int(s.seed)}), shown as sampled, none picked or dropped; {len(x):,} images in all.")
else:
    st.warning(f"The set's images file `{images_path}` is missing.")

# ----------------------------------------------------------------------------- memorisation
st.subheader("Memorisation")
mem = rows.get("memorisation")
pairs_path = json.loads(mem["detail"]).get("pairs") if mem and isinstance(mem["detail"], str) else None
if pairs_path and Path(pairs_path).is_file():
    with np.load(pairs_path, allow_pickle=False) as npz:
        st.image(grid(npz["synthetic"]), caption="the synthetic images nearest to any base image …", clamp=True)
        st.image(grid(npz["base"]), caption="… and, under each, that base image", clamp=True)
        dist = ", ".join(f"{d:.3f}" for d in npz["distance"])
    d = json.loads(mem["detail"])
    st.caption(f"L2 distances on [0,1] pixels: {dist}. Median distance of samples to their nearest base image "
               f"{d['syn_to_base_median']:.3f} against {d['heldout_to_base_median']:.3f} for real images outside the "
               f"base (ratio {d['ratio']:.2f}; well below 1 means copying).")
else:
    st.caption("No memorisation pairs stored for this set (`engine quality SET --metrics memorisation`; "
               "needs a closed-set generator whose base set is recorded).")

# ----------------------------------------------------------------------------- metrics
st.subheader("Quality metrics")
if q.empty:
    st.info(f"No quality metrics stored for this set: `engine quality {s.synthetic_set_id}`.")
else:
    table = pd.DataFrame([{
        "metric": LABELS.get(r["metric"], r["metric"]), "value": r["value"],
        "95% interval": "" if pd.isna(r["ci_low"]) else f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
        "n real": r["n_real"], "n synthetic": r["n_syn"], "feature extractor": r["extractor"],
        "seconds": r["seconds"], "computed": r["created_at"]} for r in q.to_dict("records") if r["metric"] in LABELS])
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption("Intervals: FD and diversity ± 1.96 bootstrap sd; domain accuracy exact binomial; IS ± sd over "
               "splits. FD is biased upward at small n: compare it with the ruler row (real images, same n).")

# ----------------------------------------------------------------------------- t-SNE
tsne = [(m, t) for m, t in (("tsne_domain", "Domain classifier features (Fig. 1a)"),
                            ("tsne_reference", "Reference classifier features (Fig. 1b)")) if m in rows]
if tsne:
    st.subheader("t-SNE of real and synthetic features")
    colour = linked(st.radio, "Colour by", ["domain", "class"], horizontal=True, key="gen_tsne_colour")
    cols = st.columns(len(tsne))
    for col, (metric, title) in zip(cols, tsne):
        pts = pd.DataFrame(json.loads(rows[metric]["detail"]))
        fig = go.Figure()
        for key, g in pts.groupby(colour):
            marker = dict(size=5, color=DOMAIN_COLOURS[key]) if colour == "domain" else dict(size=5)
            fig.add_trace(go.Scattergl(x=g.x, y=g.y, mode="markers", name=str(key), marker=marker,
                                       customdata=g[["domain", "class"]],
                                       hovertemplate="%{customdata[0]} · class %{customdata[1]}<extra></extra>"))
        fig.update_layout(title=title, height=420, margin=dict(t=50), legend_title=colour,
                          xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False))
        col.plotly_chart(fig, key=f"gen_{metric}")
    st.caption("Fig. 1a: in a real-vs-synthetic classifier's features the domains separate; Fig. 1b: in a "
               "classifier trained on real images they overlap. Held-out images only in 1a; t-SNE at most 500 a side.")

# ----------------------------------------------------------------------------- across sets
st.subheader("Across sets: quality against the gain the images bought")
wide = quality.pivot_table(index="synthetic_set_id", columns="metric", values="value", aggfunc="first")
# An open-set (imported or generated) set has no generator row: no n_base of its own, and its runs'
# setting is augmentation open.
kinds = sets["kind"].fillna(CLOSED) if "kind" in sets else pd.Series(CLOSED, index=sets.index)
cmp = sets.assign(kind=kinds)[["synthetic_set_id", "generator", "dataset", "n_base", "n_images", "kind"]].merge(
    wide.reset_index(), on="synthetic_set_id", how="left").merge(
    gains[["synthetic_set_id", "classifier", "gain_mean", "gain_sd", "pairs"]], on="synthetic_set_id", how="left")
c2 = []
for r in cmp.itertuples():
    value = None
    if isinstance(r.generator, str) and isinstance(r.classifier, str):
        analysis, _, _ = fit((r.dataset, r.classifier, r.kind, r.generator), PAPER_FEATURES, DEFAULT_EPS)
        if analysis is not None and analysis.c2 is not None:
            ci = f" [{analysis.c2_ci[0]:.2f}, {analysis.c2_ci[1]:.2f}]" if analysis.c2_ci else ""
            value = f"{analysis.c2:.2f}{ci}"
    c2.append(value)
cmp["c2 of its setting"] = c2
show = [c for c in ["synthetic_set_id", "generator", "n_base", "n_images", "fd", "fid", "domain", "diversity",
                    "gain_mean", "gain_sd", "pairs", "c2 of its setting"] if c in cmp.columns]
st.dataframe(cmp[show].rename(columns={"gain_mean": "gain at 1:1 (points)", "gain_sd": "gain sd"}),
             hide_index=True, width="stretch")
choices = [m for m in ("fd", "fid", "domain", "diversity") if m in cmp.columns and cmp[m].notna().any()]
have = cmp[cmp.gain_mean.notna()]
if choices and len(have):
    metric = linked(st.selectbox, "Quality metric on the x axis", choices, format_func=LABELS.get, key="gen_cmp_metric")
    have = have[have[metric].notna()]
    names = [f"n_base {int(b)}" if pd.notna(b) else f"{g} (open set)" for b, g in zip(have.n_base, have.generator)]
    fig = go.Figure(go.Scatter(
        x=have[metric], y=have.gain_mean, mode="markers+text", text=names,
        textposition="top center", error_y=dict(type="data", array=have.gain_sd.fillna(0)),
        customdata=have[["synthetic_set_id"]], hovertemplate="%{customdata[0]}<br>%{x:.3f} → %{y:+.2f} points"))
    fig.update_layout(title="Does better quality go with a bigger gain? (the paper's Tab. 2 argument)",
                      xaxis_title=LABELS[metric], yaxis_title="accuracy gain at 1:1, paired by seed (points)",
                      height=420, margin=dict(t=50))
    st.plotly_chart(fig, key="gen_cmp")
    st.caption("Each point is one synthetic set: mean gain of adding n_base of its images over the base run, "
               "± sd over seeds. Sets of different n_base differ in more than quality; few points prove nothing.")
else:
    st.caption("A comparison needs sets with quality metrics and runs that add n_base of their images (1:1).")

# ----------------------------------------------------------------------------- the paper's numbers
published_quality(path, STAMP, {
    "dataset": s.dataset if isinstance(s.dataset, str) else None, "generator": s.generator or s.generator_id,
    "augmentation": s.get("kind", CLOSED) if isinstance(s.get("kind"), str) else CLOSED,
    "n_syn": int(rows["fid"]["n_syn"]) if "fid" in rows and pd.notna(rows["fid"]["n_syn"]) else None,
    "fid": rows["fid"]["value"] if "fid" in rows else None, "is": rows["is"]["value"] if "is" in rows else None,
    "s_per_image": None if pd.isna(s.sampling_s_per_image) else float(s.sampling_s_per_image)})
