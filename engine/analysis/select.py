"""Which runs a fit uses: one setting's runs of one source and one traditional augmentation, as numpy
columns, grouped into each base's points (the surface's rows) and seeds. The dashboard's pages call the
same selection the fit makes (fit_runs), so that what they list is what is fitted."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from engine.analysis.surface import FitError
from engine.catalog.vocab import ALL_SOURCES, REAL, SOURCE_ORDER, SYNTHETIC, TRADITIONAL

UNNAMED_SOURCE = "given"  # runs handed in without a source column
# When a setting's runs were trained with several traditional augmentations and none is asked for,
# the fit takes the one with the most synthetic runs; ties go to the first of this order.
TRADITIONAL_ORDER = TRADITIONAL


def surface_points(runs: pd.DataFrame | dict, n_base: int, augmentation: str, generator) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The rows of one base's surface: its real runs, its synthetic runs, the base-only run once.

    Runs with a seed fill a points x seeds matrix (repeated rows of one point and seed are
    averaged); the seed bootstrap and the paired test use only that matrix. A run without a seed
    (a published mean) is one observation of its point, never a seed: the point's mean counts it
    once per source (the paper prints its base-only run in several tables), its spread does not.
    Plain numpy: pandas' groupby costs tens of milliseconds here, and the dashboard refits on
    every click.
    """
    cols = runs if isinstance(runs, dict) else columns(runs)
    at = cols["n_base"] == n_base
    real = at & (cols["augmentation"] == REAL)
    syn = at & (cols["augmentation"] == augmentation) & same_generator(cols["generator"], generator)
    zero = (cols["n_real_added"] == 0) & (cols["n_syn_added"] == 0)
    base_only = (real | syn) & zero
    if (real & zero).any():
        base_only = real & zero
    keep = (real & (cols["n_real_added"] > 0)) | (syn & (cols["n_syn_added"] > 0)) | base_only
    empty = pd.DataFrame({"n_real_added": pd.Series(dtype=int), "n_syn_added": pd.Series(dtype=int),
                          "acc": pd.Series(dtype=float), "sd": pd.Series(dtype=float),
                          "n_seeds": pd.Series(dtype=int), "n_unseeded": pd.Series(dtype=int),
                          "unseeded_sum": pd.Series(dtype=float)})
    if not keep.any():
        return empty, None
    point_keys = np.stack([cols["n_real_added"][keep], cols["n_syn_added"][keep]], axis=1)
    seeds, acc, source = cols["seed"][keep], cols["top1"][keep], cols["source"][keep]
    points_u, point_idx = np.unique(point_keys, axis=0, return_inverse=True)
    point_idx = point_idx.ravel()
    n_points = len(points_u)
    seeded = np.isfinite(seeds)
    matrix = None
    seed_sum = np.zeros(n_points)
    seed_n = np.zeros(n_points)
    if seeded.any():
        seeds_u, seed_idx = np.unique(seeds[seeded], return_inverse=True)
        total = np.zeros((n_points, len(seeds_u)))
        count = np.zeros_like(total)
        np.add.at(total, (point_idx[seeded], seed_idx.ravel()), acc[seeded])
        np.add.at(count, (point_idx[seeded], seed_idx.ravel()), 1)
        with np.errstate(invalid="ignore"):
            matrix = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        seed_sum, seed_n = np.nansum(matrix, axis=1), np.isfinite(matrix).sum(axis=1)
    un_sum, un_n = _unseeded(point_idx[~seeded], source[~seeded], acc[~seeded], n_points)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (seed_sum + un_sum) / (seed_n + un_n)
        sd = np.full(n_points, np.nan)
        if matrix is not None and matrix.shape[1] > 1:
            with warnings.catch_warnings():  # points with fewer than two seeds: NaN by design
                warnings.simplefilter("ignore", RuntimeWarning)
                sd = np.where(seed_n > 1, np.nanstd(matrix, axis=1, ddof=1), np.nan)
    points = pd.DataFrame({"n_real_added": points_u[:, 0].astype(int), "n_syn_added": points_u[:, 1].astype(int),
                           "acc": mean, "sd": sd, "n_seeds": seed_n.astype(int), "n_unseeded": un_n.astype(int),
                           "unseeded_sum": un_sum})
    return points, matrix


def _unseeded(point_idx, source, acc, n_points):
    """Sum and count of the seedless observations per point: one (their mean) per source."""
    if point_idx.size == 0:
        return np.zeros(n_points), np.zeros(n_points)
    _, src = np.unique(source.astype(str), return_inverse=True)
    combo = point_idx * (src.max() + 1) + src.ravel()
    combo_u, combo_idx = np.unique(combo, return_inverse=True)
    means = np.bincount(combo_idx, acc) / np.bincount(combo_idx)
    owner = combo_u // (src.max() + 1)
    return np.bincount(owner, means, minlength=n_points), np.bincount(owner, minlength=n_points).astype(float)


def columns(runs: pd.DataFrame) -> dict:
    """The run columns as numpy arrays, converted once per refit; a missing seed stays NaN."""
    return {
        "n_base": runs.n_base.to_numpy(dtype=np.int64),
        "n_real_added": runs.n_real_added.to_numpy(dtype=np.int64),
        "n_syn_added": runs.n_syn_added.to_numpy(dtype=np.int64),
        "augmentation": runs.augmentation.to_numpy(dtype=object),
        "generator": runs.generator.astype(object).where(runs.generator.notna(), "").to_numpy(dtype=object),
        "seed": pd.to_numeric(runs.seed, errors="coerce").astype(float).to_numpy(),
        "top1": runs.top1.to_numpy(dtype=float),
        "source": (runs.source.astype(object).fillna("") if "source" in runs
                   else pd.Series("", index=runs.index)).to_numpy(dtype=object),
    }


def same_generator(column, generator) -> np.ndarray:
    """Which rows (a runs column or its numpy copy) a generator made; None: every row. A run
    without a generator is read as ''."""
    if generator is None:
        return np.ones(len(column), dtype=bool)
    return pd.Series(column).fillna("").to_numpy(dtype=object) == generator


def sources_of(runs: pd.DataFrame, dataset: str, classifier: str, augmentation: str, generator=None) -> list[str]:
    """The sources with synthetic runs of a setting, in the order a default fit prefers them."""
    if "source" not in runs:
        return [UNNAMED_SOURCE]
    syn = runs[(runs.dataset == dataset) & (runs.classifier == classifier) & (runs.augmentation == augmentation)
               & same_generator(runs.generator, generator)]
    found = set(syn.source.dropna())
    return [s for s in SOURCE_ORDER if s in found] + sorted(found - set(SOURCE_ORDER))


def one_traditional(sel: pd.DataFrame, augmentation: str, generator, traditional: str | None, source=None):
    """(runs of one traditional augmentation, its name, the others present): a fit never pools runs
    whose classifiers were trained with different traditional augmentation (the paper's Tab. 6).
    The default is counted among the synthetic runs of `source` when one is named."""
    if "traditional" not in sel:
        if traditional is not None:
            raise FitError(f"traditional augmentation {traditional!r} asked for, but these runs do not record one")
        return sel, None, []
    counted = sel if source in (None, ALL_SOURCES) or "source" not in sel else sel[sel.source == source]
    syn = counted[(counted.augmentation == augmentation) & same_generator(counted.generator, generator)]
    counts = syn.traditional.dropna().value_counts()
    if traditional is None:
        if counts.empty:
            return sel, None, []
        rank = {t: i for i, t in enumerate(TRADITIONAL_ORDER)}
        traditional = max(counts.index, key=lambda t: (counts[t], -rank.get(t, len(rank))))
    elif traditional not in counts.index:
        raise FitError(f"no {augmentation}-set runs with traditional augmentation {traditional!r} here; "
                       f"available: {', '.join(sorted(counts.index)) or 'no traditional augmentation'}")
    return sel[sel.traditional == traditional], traditional, sorted(set(counts.index) - {traditional})


def select_setting(runs, dataset, classifier, augmentation, generator, traditional, exclude_run_ids, source):
    """The setting's runs from one source (or pooled) and one traditional augmentation, its synthetic
    runs, the source chosen, the traditional augmentation chosen and the others present."""
    sel = runs[(runs.dataset == dataset) & (runs.classifier == classifier)]
    if "source" not in sel:
        sel = sel.assign(source=UNNAMED_SOURCE)
    if len(exclude_run_ids):
        sel = sel[~sel.run_id.isin(list(exclude_run_ids))]
    sel, traditional, other_traditional = one_traditional(sel, augmentation, generator, traditional, source)
    label = f"{dataset} / {classifier}" + (f" / {generator}" if generator else "")
    available = sources_of(sel, dataset, classifier, augmentation, generator)
    if not available:
        raise FitError(f"no {augmentation}-set runs for {label}")
    if source is None:
        source = available[0]
    elif source != ALL_SOURCES and source not in available:
        raise FitError(f"source {source!r} has no {augmentation}-set runs for {label}; "
                       f"available: {', '.join(available)}, or {ALL_SOURCES} to pool them")
    if source != ALL_SOURCES:
        sel = sel[sel.source == source]
    syn_runs = sel[(sel.augmentation == augmentation) & same_generator(sel.generator, generator)]
    return sel, syn_runs, source, traditional, other_traditional


def settings(runs: pd.DataFrame) -> list[tuple]:
    """Every (dataset, classifier, augmentation, generator[, traditional]) with synthetic runs;
    traditional is there when the runs record it."""
    syn = runs[runs.augmentation.isin(SYNTHETIC)]
    keys = syn[["dataset", "classifier", "augmentation", "generator"]
               + (["traditional"] if "traditional" in syn else [])].drop_duplicates()
    return [tuple(None if pd.isna(v) else v for v in row) for row in keys.itertuples(index=False)]


def fit_runs(runs: pd.DataFrame, dataset: str, classifier: str, augmentation: str, generator=None,
             traditional: str | None = None, source: str | None = None, exclude_run_ids=()) -> pd.DataFrame:
    """The runs a fit of this setting reads: its real runs and its synthetic runs of this generator, from
    the source and traditional augmentation the fit picks (the same choice, made by the same code)."""
    sel, syn, *_ = select_setting(runs, dataset, classifier, augmentation, generator, traditional, exclude_run_ids,
                                  source)
    return sel[(sel.augmentation == REAL) | sel.index.isin(syn.index)]
