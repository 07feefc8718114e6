"""Plotly figures of the equivalence: a base's fitted surface as contours (Fig. 2), Eq. 1 against the
tuples, accuracy against the augmentation scale (Figs. 5, 6, 8, 10) and IR(n_base) (Fig. 7).

Pure Plotly on an engine.analysis result or on plain frames: no Streamlit, no store, no torch, so the
HTML report, `engine figures` and a page can all draw the same figure. Published values are passed in
by the caller and drawn in their own traces, named by where the paper prints them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.analysis.bootstrap import MIN_DRAWS
from engine.analysis.equivalence import eq1
from engine.catalog.vocab import AUGMENTATION_LABELS, CLOSED, OPEN, REAL

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
KIND_COLORS = {REAL: "#333333", CLOSED: "#1f77b4", OPEN: "#d62728"}
# Accuracy cannot exceed 100 %: where a fitted surface does, it is extrapolating, and no contour is drawn.
CEILING = 100.0
PUBLISHED_MARKER = dict(symbol="x-thin-open", size=11, line=dict(width=2), color="#111111")


def setting_title(dataset, classifier, augmentation, generator=None, traditional=None) -> str:
    return (f"{dataset} · {classifier} · {augmentation}" + (f" ({generator})" if generator else "")
            + (f" · {traditional}" if traditional else ""))


def _layout(fig: go.Figure, title: str, height: int, **more) -> go.Figure:
    # Titles are plain text: a "$" would make plotly.js fetch MathJax, which a report opened offline lacks.
    fig.update_layout(title=dict(text=title, x=0.02), height=height, template="plotly_white",
                      legend=dict(orientation="h", y=-0.2), margin=dict(l=70, r=30, t=70, b=90), **more)
    return fig


# ------------------------------------------------------------------------------------ Fig. 2

def published_eq1_pairs(published: dict, n_base: int, max_real: float, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(n_real_added, n_syn_added) that a published equation calls equivalent at this base; its tau is
    the printed one, 1 / tau_n_base."""
    real = np.linspace(0.0, max_real, n)
    with np.errstate(over="ignore", invalid="ignore"):
        syn = eq1(n_base, real, published["published_c1"], published["published_c2"], 1.0 / published["tau_n_base"])
    return real, syn


def contour_figure(analysis, n_base: int, *, published: dict | None = None,
                   published_points: pd.DataFrame | None = None, grid: int = 60, title: str | None = None) -> go.Figure:
    """The fitted surface of one base over (real added, synthetic added), its measured points and
    Eq. 12 tuples; a published equation's equivalent pairs and the published runs when given."""
    base = analysis.bases[n_base]
    surface, points = base.surface, base.points
    max_real = max(float(points.n_real_added.max()), n_base) * 1.25
    max_syn = max(float(points.n_syn_added.max()), n_base) * 1.1
    real_axis, syn_axis = np.linspace(0, max_real, grid), np.linspace(0, max_syn, grid)
    R, S = np.meshgrid(real_axis, syn_axis)
    Z = surface.predict(n_base + R, S)
    masked = Z > CEILING
    # Two decimals of a percent: finer than any measured difference, and a third of the file's size.
    Z = np.round(np.where(masked, np.nan, Z), 2)
    fig = go.Figure(go.Contour(
        x=np.round(real_axis, 1), y=np.round(syn_axis, 1), z=Z, colorscale="Viridis", ncontours=18,
        contours=dict(showlabels=True, labelfont=dict(size=11, color="white"),
                      start=float(np.floor(np.nanmin(Z))), end=float(np.ceil(np.nanmax(Z)))),
        colorbar=dict(title=dict(text="fitted top-1 (%)")), name="fitted surface",
        hovertemplate="+%{x:,.0f} real, +%{y:,.0f} synthetic<br>fitted top-1 %{z:.2f}%<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=points.n_real_added, y=points.n_syn_added, mode="markers+text", name=f"measured runs ({analysis.source})",
        text=[f"{a:.1f}" for a in points.acc], textposition="top right",
        marker=dict(size=10, color="white", line=dict(color="black", width=1.5)),
        hovertemplate="measured %{text}%<extra></extra>"))
    tuples = [t for t in analysis.tuples if t["n_base"] == n_base]
    if tuples:
        fig.add_trace(go.Scatter(
            x=[t["n_real_added"] for t in tuples], y=[t["n_syn_added"] for t in tuples], mode="markers",
            name="equivalence tuples (Eq. 12)",
            marker=dict(symbol="star", size=14, color="#ff7f0e", line=dict(color="black", width=1))))
    if published_points is not None and len(published_points):
        fig.add_trace(go.Scatter(
            x=published_points.n_real_added, y=published_points.n_syn_added, mode="markers",
            name="published runs (" + ", ".join(f"Tab. {t}" for t in sorted(set(published_points.table))) + ")",
            marker=PUBLISHED_MARKER, customdata=published_points.top1,
            hovertemplate="published %{customdata:.2f}%<extra></extra>"))
    if published is not None:
        real, syn = published_eq1_pairs(published, n_base, max_real)
        fig.add_trace(go.Scatter(
            x=real, y=syn, mode="lines", line=dict(color="#111111", dash="dash", width=2),
            name=f"published Eq. {published['equation']} (c1 {published['published_c1']:g}, "
                 f"c2 {published['published_c2']:g}): equivalent pairs"))
    blank = f"; blank: fitted above {CEILING:g} %" if masked.any() else ""
    return _layout(fig, title or (setting_title(analysis.dataset, analysis.classifier, analysis.augmentation,
                                                analysis.generator, analysis.traditional)
                                  + f", n_base {n_base:,}{blank}"), 560,
                   xaxis=dict(title=dict(text="real images added (n_real_added)"), range=[0, max_real]),
                   yaxis=dict(title=dict(text="synthetic images added (n_syn_added)"), range=[0, max_syn]))


# ------------------------------------------------------------------------------ Eq. 1 fits

def eq1_figure(analysis, *, published: dict | None = None, questions=(), title: str | None = None) -> go.Figure:
    """Eq. 1 (our c1, c2) against the tuples of every base, with its bootstrap band; the published
    equation dashed when given; each question's verdict as a star with its interval.

    `questions`: (n_base, n_real_added, verdict) of syn-for-real questions (engine.analysis.verdict)."""
    fig = go.Figure()
    bases = sorted({t["n_base"] for t in analysis.tuples}) or \
        sorted(b for b, f in analysis.bases.items() if f.surface is not None)
    draws = analysis.draws
    band_ok = analysis.c1 is not None and draws is not None and draws.n_ok >= MIN_DRAWS
    q = (1 - analysis.level) / 2
    y_top = max([t["syn_ratio"] for t in analysis.tuples] + [1.0]) * 1.5
    for i, b in enumerate(bases):
        color = PALETTE[i % len(PALETTE)]
        ts = [t for t in analysis.tuples if t["n_base"] == b]
        r = np.linspace(0, max([t["ratio"] for t in ts] + [1.0]) * 1.2, 60)
        if band_ok:
            with np.errstate(over="ignore", invalid="ignore"):  # draws far out: cut at the axis
                band = eq1(b, r[None, :] * b, draws.c1[draws.ok, None], draws.c2[draws.ok, None], analysis.tau) / b
            lo, hi = np.quantile(np.where(np.isfinite(band), band, 1e12), [q, 1 - q], axis=0)
            fig.add_trace(go.Scatter(x=np.r_[r, r[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", opacity=0.15,
                                     line=dict(width=0), fillcolor=color, hoverinfo="skip", showlegend=False,
                                     name=f"{analysis.level:.0%} band, n_base {b:,}"))
        if analysis.c1 is not None:
            curve = eq1(b, r * b, analysis.c1, analysis.c2, analysis.tau) / b
            y_top = max(y_top, float(curve[-1]) * 1.1)
            fig.add_trace(go.Scatter(x=r, y=curve, mode="lines", line=dict(color=color),
                                     name=f"Eq. 1 refitted, n_base {b:,}"))
        if published is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                pub = eq1(b, r * b, published["published_c1"], published["published_c2"],
                          1.0 / published["tau_n_base"]) / b
            fig.add_trace(go.Scatter(x=r, y=pub, mode="lines", line=dict(color=color, dash="dash"),
                                     name=f"published Eq. {published['equation']}, n_base {b:,}"))
        if ts:
            fig.add_trace(go.Scatter(
                x=[t["ratio"] for t in ts], y=[t["syn_ratio"] for t in ts], mode="markers", name=f"tuples, n_base {b:,}",
                marker=dict(color=color, size=10,
                            symbol=["diamond-open" if t["extrapolated"] else "circle" for t in ts]),
                hovertemplate="real ×%{x:.2f} ≙ synthetic ×%{y:.2f}<extra></extra>"))
    for n_base, amount, v in questions:
        value = v["value"] if v["value"] is not None else v["lo"]
        if value is None:
            continue
        err = {}
        if v["value"] is not None and v["lo"] is not None:
            err = dict(error_y=dict(type="data", symmetric=False, array=[((v["hi"] or value) - value) / n_base],
                                    arrayminus=[(value - v["lo"]) / n_base]))
        y = value / n_base
        y_top = max(y_top, y * 1.2)
        fig.add_trace(go.Scatter(x=[amount / n_base], y=[y], mode="markers", **err,
                                 name=f"verdict, n_base {n_base:,}, N {amount:,.0f} (grade {v['grade']})",
                                 marker=dict(symbol="star", size=16, color="#111111")))
    fig.update_yaxes(range=[0, y_top])
    head = "Eq. 1 against the equivalence tuples" + (f" (dashed: published Eq. {published['equation']})"
                                                     if published else "")
    return _layout(fig, title or head, 480,
                   xaxis=dict(title=dict(text="real images added / n_base (n_real_added / n_base)")),
                   yaxis=dict(title=dict(text="equivalent synthetic images / n_base")))


# ------------------------------------------------------------------- Figs. 5, 6, 8, 10

def _kind_color(augmentation: str, generator: str, seen: dict) -> str:
    if augmentation == REAL:
        return KIND_COLORS[REAL]
    key = (augmentation, generator)
    if key not in seen:
        same_kind = sum(1 for a, _ in seen if a == augmentation)
        seen[key] = KIND_COLORS.get(augmentation) if same_kind == 0 else PALETTE[(len(seen) + 2) % len(PALETTE)]
    return seen[key]


def curve_name(augmentation: str, generator: str | None) -> str:
    label = AUGMENTATION_LABELS.get(augmentation, augmentation)
    return label + (f" ({generator})" if generator else "")


def accuracy_figure(curves: pd.DataFrame, published: pd.DataFrame | None, title: str) -> go.Figure:
    """Top-1 against the augmentation scale k = images added / n_base, one panel per n_base.

    `curves`: the store's point means (store.runs.point_means, with a `label` column naming the runs'
    source and traditional augmentation); `published`: the published means (n_base, augmentation,
    generator, added, top1, table), drawn as crosses over the curves."""
    bases = sorted({int(b) for b in curves.n_base} | ({int(b) for b in published.n_base} if published is not None
                                                       else set()))
    fig = make_subplots(rows=1, cols=max(len(bases), 1), subplot_titles=[f"n_base {b:,}" for b in bases],
                        horizontal_spacing=0.05)
    colors, shown = {}, set()
    for col, b in enumerate(bases, start=1):
        at = curves[curves.n_base == b]
        for (label, aug, gen), g in at.groupby(["label", "augmentation", "generator"], sort=True):
            g = g.sort_values("added")
            name = curve_name(aug, gen or None) + (f", {label}" if label else "")
            seeded = g.seeds.fillna(0).to_numpy() >= 2
            fig.add_trace(go.Scatter(
                x=g.added / b, y=g.acc, mode="lines+markers", name=name, legendgroup=name,
                showlegend=name not in shown, line=dict(color=_kind_color(aug, gen, colors)),
                error_y=dict(type="data", array=np.where(seeded, g.sd.fillna(0).to_numpy(), np.nan), visible=True),
                hovertemplate=f"{name}<br>k %{{x:.2f}}<br>top-1 %{{y:.2f}}%<extra></extra>"), row=1, col=col)
            shown.add(name)
        if published is None:
            continue
        pub = published[published.n_base == b]
        for (aug, gen), g in pub.groupby(["augmentation", "generator"], sort=True):
            g = g.sort_values("added")
            name = f"published: {curve_name(aug, gen or None)} (" + \
                ", ".join(f"Tab. {t}" for t in sorted(set(g.table))) + ")"
            fig.add_trace(go.Scatter(
                x=g.added / b, y=g.top1, mode="markers", name=name, legendgroup=name, showlegend=name not in shown,
                marker={**PUBLISHED_MARKER, "color": _kind_color(aug, gen, colors)},
                hovertemplate=f"{name}<br>k %{{x:.2f}}<br>top-1 %{{y:.2f}}%<extra></extra>"), row=1, col=col)
            shown.add(name)
    fig.update_xaxes(title_text="augmentation scale k (added / n_base)")
    fig.update_yaxes(title_text="top-1 (%)", col=1)
    return _layout(fig, title, 480, width=max(420 * len(bases), 700))


# ------------------------------------------------------------------------------------ Fig. 7

def ir_figure(ir: pd.DataFrame, published: pd.DataFrame | None, title: str,
              text_value: tuple[float, str] | None = None) -> go.Figure:
    """IR(n_base) (Eq. 7), one line per (source, traditional augmentation, closed and open generator) of
    `ir` (engine.analysis.ir.improvement_ratio) with its interval where seeds give one; the published
    means' IR as crosses, and a value the paper's text states (value, where) at the largest base."""
    fig = go.Figure()
    keys = ["source", "traditional", "generator_closed", "generator_open"]
    several = ir.traditional.nunique(dropna=False) > 1 if len(ir) else False
    for i, (key, g) in enumerate(ir.groupby(keys, dropna=False, sort=True) if len(ir) else []):
        source, trad, gc, go_ = key
        finite = np.isfinite(g.IR_lo.astype(float)) & np.isfinite(g.IR_hi.astype(float))
        fig.add_trace(go.Scatter(
            x=g.n_base, y=g.IR, mode="lines+markers", line=dict(color=PALETTE[i % len(PALETTE)]),
            name=f"{gc} vs {go_} ({source}" + (f", {trad}" if several and isinstance(trad, str) else "") + ")",
            error_y=dict(type="data", symmetric=False, array=np.where(finite, g.IR_hi - g.IR, np.nan),
                         arrayminus=np.where(finite, g.IR - g.IR_lo, np.nan)),
            hovertemplate="n_base %{x:,}<br>IR %{y:.2f}<extra></extra>"))
    if published is not None and len(published):
        for (gc, go_), g in published.groupby(["generator_closed", "generator_open"], sort=True):
            fig.add_trace(go.Scatter(x=g.n_base, y=g.IR, mode="markers", marker=PUBLISHED_MARKER,
                                     name=f"published means: {gc} vs {go_}",
                                     hovertemplate="n_base %{x:,}<br>IR %{y:.3f} from the published means<extra></extra>"))
        if text_value is not None:
            value, where = text_value
            x = int(published.n_base.max())
            fig.add_trace(go.Scatter(x=[x], y=[value], mode="markers+text", text=[f"{value:.2f} ({where})"],
                                     textposition="top left", name=f"the paper's text: IR {value:.2f} ({where})",
                                     marker=dict(symbol="diamond-open", size=16, color="#111111", line=dict(width=2))))
    fig.add_hline(y=1.0, line=dict(color="#888888", dash="dot"))
    return _layout(fig, title, 460, xaxis=dict(type="log", title=dict(text="n_base")),
                   yaxis=dict(title=dict(text="IR = closed-set gain / open-set gain at 1:1")))
