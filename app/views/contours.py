"""Contours: the fitted accuracy surface of one base over (real added, synthetic added) (the paper's Fig. 2)."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.common import features_text, fit, page_with_setting, source_picker, surface_controls, traditional_picker
from engine.analysis.surface import all_subsets
from engine.catalog.vocab import REAL
from app.links import linked

runs, setting = page_with_setting("Equivalence contours", "contours")
source = source_picker(runs, setting, "contours")
traditional = traditional_picker(runs, setting, source, "contours")
features, eps = surface_controls("contours")
if not features:
    st.warning("Choose at least one surface feature.")
    st.stop()
analysis, error, ms = fit(setting, features, eps, n_boot=0, source=source, traditional=traditional)
if analysis is None:
    st.error(f"No fit: {error}")
    st.stop()
fitted = [b for b, f in sorted(analysis.bases.items()) if f.surface is not None]
failed = {b: f.error for b, f in analysis.bases.items() if f.surface is None}
if not fitted:
    st.error("No base of this setting can be fitted: " + "; ".join(failed.values()))
    st.stop()
n_base = linked(st.selectbox, "Base size n_base", fitted, format_func=lambda b: f"{b:,}", key="contours_n_base")
base = analysis.bases[n_base]
surface, points = base.surface, base.points

max_real = max(points.n_real_added.max(), n_base) * 1.25
max_syn = max(points.n_syn_added.max(), n_base) * 1.1
real_axis = np.linspace(0, max_real, 90)
syn_axis = np.linspace(0, max_syn, 90)
R, S = np.meshgrid(real_axis, syn_axis)
Z = surface.predict(n_base + R, S)
# Accuracy cannot exceed 100 %: where the fitted surface does, it is extrapolating, so that region
# is left blank rather than drawn as a contour no classifier can reach.
CEILING = 100.0
masked = Z > CEILING
Z = np.where(masked, np.nan, Z)
fig = go.Figure(go.Contour(
    x=real_axis, y=syn_axis, z=Z, colorscale="Viridis", ncontours=18,
    contours=dict(showlabels=True, labelfont=dict(size=11, color="white"), start=float(np.floor(np.nanmin(Z))),
                  end=float(np.ceil(np.nanmax(Z)))),
    colorbar=dict(title="fitted top-1 (%)"), name="fitted surface",
    hovertemplate="+%{x:,.0f} real, +%{y:,.0f} synthetic<br>fitted top-1 %{z:.2f}%<extra></extra>"))
kind = np.where(points.n_real_added > 0, REAL, np.where(points.n_syn_added > 0, "synthetic", "base"))
fig.add_trace(go.Scatter(
    x=points.n_real_added, y=points.n_syn_added, mode="markers+text", name="measured runs (mean)",
    text=[f"{a:.1f}" for a in points.acc], textposition="top right",
    marker=dict(size=10, color="white", line=dict(color="black", width=1.5)),
    customdata=np.stack([points.acc, surface.predict(n_base + points.n_real_added, points.n_syn_added), kind], 1),
    hovertemplate="%{customdata[2]} run<br>measured %{customdata[0]:.2f}%<br>fitted %{customdata[1]:.2f}%<extra></extra>"))
tuples = [t for t in analysis.tuples if t["n_base"] == n_base]
if tuples:
    fig.add_trace(go.Scatter(
        x=[t["n_real_added"] for t in tuples], y=[t["n_syn_added"] for t in tuples], mode="markers",
        name="equivalence tuples (Eq. 12)", marker=dict(symbol="star", size=14, color="#ff7f0e",
                                                         line=dict(color="black", width=1))))
fig.update_layout(title=f"{setting[0]} · {setting[1]} · {setting[2]}" + (f" ({setting[3]})" if setting[3] else "")
                  + f", n_base {n_base:,}", xaxis_title="real images added (n_real_added)",
                  yaxis_title="synthetic images added (n_syn_added)", height=560,
                  xaxis=dict(range=[0, max_real]), yaxis=dict(range=[0, max_syn]),
                  legend=dict(orientation="h", y=-0.18))
st.plotly_chart(fig, key="contours_figure")
seeds = int(points.n_seeds.max())
st.caption(f"Fitted on the {len(points)} measured points of this base ({'means over up to ' + str(seeds) + ' seeds' if seeds else 'published means'}): "
           f"the real-augmentation runs, the {setting[2]}-set runs and the base-only run. Surface "
           + (f"chosen as the best of 31 subsets ({features}): " if isinstance(features, str) else "")
           + f"{features_text(surface.features)}, eps = {eps:g}: {surface.formula()}. "
           f"Lines join equal fitted accuracy; a tuple lies where adding real and adding synthetic images "
           f"give the same accuracy. Outside the measured points the surface extrapolates. Fitted on "
           f"{analysis.source} runs"
           + (f" trained with traditional augmentation {analysis.traditional}." if analysis.traditional else ".")
           + (f" Blank: the {masked.mean():.0%} of the map where the fitted surface exceeds {CEILING:g} % top-1, an "
              f"extrapolation no classifier can reach, so no contour is drawn there." if masked.any() else ""))
c = st.columns(4)
c[0].metric("R²", f"{surface.stats['r2']:.3f}")
c[1].metric("adjusted R²", f"{surface.stats['adj_r2']:.3f}")
c[2].metric("leave-one-out RMSE", f"{surface.stats['loo_rmse']:.2f} pts")
c[3].metric("fit time", f"{ms:.0f} ms")
if failed:
    st.caption("Bases without a surface: " + "; ".join(failed.values()))
with st.expander("All 31 feature subsets for this base"):
    table = pd.DataFrame(all_subsets(n_base, n_base + points.n_real_added, points.n_syn_added, points.acc, eps))
    table["features"] = table.features.map(lambda f: " + ".join(f))
    st.dataframe(table, hide_index=True, width="stretch")
