"""Shared pieces of the dashboard: cached store queries, cached fits, the setting pickers.

The store may hold millions of runs, so a page never loads them all: it asks the store for what
it shows (the pickers' distinct values, one setting's runs, one page of the table, per-point
means) and DuckDB selects and aggregates. Each result is cached per query, keyed by the store's
change stamps: one per (dataset, classifier), bumped in the same transaction as the rows
written (store.runs.run_changes). A worker's new run therefore invalidates its own setting's
queries and the store-wide ones (pickers, counts), never another setting's fit. Connections are
read-only and closed before a rerun ends: a held connection would block the engine's writes.
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.analysis.fit import ALL_SOURCES, analyse
from engine.analysis.select import one_traditional, settings, sources_of
from engine.analysis.labels import FEATURE_LABELS, format_interval
from engine.analysis.surface import CRITERIA, DEFAULT_EPS, FEATURES, PAPER_FEATURES, FitError
from engine.analysis.verdict import parameter_labels
from store import runs as store_runs
from store.db import StoreError, db_path, upgrade
from engine.catalog.vocab import AUGMENTATION_LABELS
from app.links import link_default, linked



def store_path() -> Path:
    return db_path(os.environ.get("EQUIV_DB") or None).resolve()


@st.cache_resource(show_spinner="Bringing the store's schema up to date…")
def _upgraded(path: str) -> int:
    return upgrade(path)


def upgrade_store(path: Path) -> None:
    """Once per server and store: a store last written by an older engine lacks columns the pages
    read (the traditional augmentation, quality levels), as an engine write would add them."""
    if path.exists():
        _upgraded(str(path))


def stamp(path: Path) -> tuple:
    """Changes whenever the store file (or its write-ahead log) is written."""
    parts = []
    for p in (path, Path(str(path) + ".wal")):
        try:
            s = p.stat()
            parts.append((s.st_mtime_ns, s.st_size))
        except FileNotFoundError:
            parts.append(None)
    return tuple(parts)


@st.cache_data(show_spinner=False, max_entries=4)
def _changes(path: str, file_stamp: tuple) -> dict:
    return store_runs.run_changes(path)


class Stamps:
    """The store's change stamps for this rerun: `all` keys store-wide queries, `pair(d, c)` one setting's."""

    def __init__(self, path: Path):
        file_stamp = stamp(path)
        # Read from the store only when its file changed: most reruns cost one stat().
        self.pairs = _changes(str(path), file_stamp)
        # A store not yet migrated has no per-setting stamps: fall back to the file's.
        self.all = hashlib.md5(repr(sorted(self.pairs.items())).encode()).hexdigest() if self.pairs \
            else repr(file_stamp)

    def pair(self, dataset, classifier) -> str:
        return repr(self.pairs.get((dataset, classifier))) if self.pairs else self.all


# ------------------------------------------------------------------------- cached queries
# Each takes the path and the stamp it depends on as its first two arguments (the cache key).

@st.cache_data(show_spinner=False, max_entries=16)
def run_summary(path: str, key: str, filters: tuple = ()) -> dict:
    return store_runs.summary(path, **dict(filters))


@st.cache_data(show_spinner=False, max_entries=4)
def picker_values(path: str, key: str) -> dict:
    return store_runs.picker_values(path)


@st.cache_data(show_spinner=False, max_entries=4)
def setting_options(path: str, key: str, traditional: bool = False) -> list[tuple]:
    return store_runs.setting_keys(path, traditional=traditional)


@st.cache_data(show_spinner=False, max_entries=64)
def setting_runs(path: str, key: str, dataset: str, classifier: str, augmentation: str, generator) -> pd.DataFrame:
    return store_runs.setting_runs(path, dataset, classifier, augmentation, generator)


def ready() -> tuple[Path, Stamps] | None:
    """The store and its stamps, or None (with a message shown) when there is no store or no run."""
    path = store_path()
    if not path.exists():
        st.info(f"No store at `{path}` yet. Create it with `engine store init` (it loads the paper's "
                f"published runs), or point `EQUIV_DB` at an existing store.")
        return None
    try:
        stamps = Stamps(path)
        total = run_summary(str(path), stamps.all)["total"]
    except StoreError as err:
        st.error(f"The store cannot be read: {err}")
        return None
    if not total:
        st.info("The store has no runs yet. `engine store init` loads the paper's published runs; "
                "`engine run` or `engine study digits` adds your own.")
        return None
    return path, stamps


# ---------------------------------------------------------------------------------- fits

@st.cache_data(show_spinner=False, max_entries=256)
def cached_analysis(path: str, key: str, dataset: str, classifier: str, augmentation: str, generator,
                    features, eps: float, excluded: tuple, n_boot: int, source: str | None = None,
                    traditional: str | None = None):
    runs = setting_runs(path, key, dataset, classifier, augmentation, generator)
    start = time.perf_counter()
    result = analyse(runs, dataset, classifier, augmentation, generator, traditional, features=features, eps=eps,
                     n_boot=n_boot, exclude_run_ids=excluded, source=source)
    return result, (time.perf_counter() - start) * 1000


def fit(setting: tuple, features, eps: float, excluded: tuple = (), n_boot: int = 200, source: str | None = None,
        traditional: str | None = None):
    """(Analysis or None, error text or None, fit milliseconds); `source` None is the default source,
    `traditional` None the fit's default traditional augmentation."""
    path = store_path()
    key = Stamps(path).pair(*setting[:2])
    try:
        analysis, ms = cached_analysis(str(path), key, *setting, features, eps, tuple(sorted(excluded)), n_boot,
                                       source, traditional)
    except FitError as err:
        return None, str(err), 0.0
    return analysis, None, ms


@st.cache_data(show_spinner=False, max_entries=20_000)
def fit_summary(path: str, key: str, setting: tuple, features, eps: float, traditional: str | None = None) -> dict:
    """c1, c2, their intervals and the tuple counts of one setting: small, so every setting of a
    large store stays cached (the full Analysis objects would not fit in memory)."""
    try:
        a, _ = cached_analysis(path, key, *setting, features, eps, (), 200, None, traditional)
    except FitError as err:
        return {"note": str(err)}
    if a.c1 is None:
        return {"note": a.eq1_error}
    return {"c1": a.c1, "c2": a.c2, "c1_ci": a.c1_ci, "c2_ci": a.c2_ci, "tuples": len(a.tuples),
            "dropped": len(a.dropped), "source": a.source, "labels": parameter_labels(a), "note": ""}


def default_when_changed(widget_key: str, context: tuple, default, options=None) -> None:
    """Set a picker back to its default when what it chooses among changed (another setting, another
    source): Streamlit would keep a choice that is still among the options, and the new setting's
    default (engine runs first, the traditional augmentation with the most runs) would never be
    offered. The default is assigned, not the key deleted: a deleted key changes the server's value
    but not what the browser shows, which then sends its old choice back (streamlit#16388)."""
    marker = f"{widget_key}__for"
    if st.session_state.get(marker) != context:
        if marker not in st.session_state and options is not None:
            default = link_default(widget_key, options, default)  # a copied link names the choice
        st.session_state[widget_key] = default
        st.session_state[marker] = context


def source_picker(runs: pd.DataFrame, setting: tuple, key: str) -> str:
    """Which runs a fit uses: one source (the default prefers engine, then import, then paper) or all pooled."""
    options = sources_of(runs, *setting) + [ALL_SOURCES]
    default_when_changed(f"{key}_source", tuple(setting), options[0], options)
    labels = {ALL_SOURCES: "all sources pooled (a run without a seed is one observation, never a seed)"}
    return linked(st.radio, "Runs to fit", options, key=f"{key}_source", horizontal=True,
                    format_func=lambda s: labels.get(s, f"{s} runs"),
                    help="A fit uses one source of runs unless you pool them.")


def traditional_picker(runs: pd.DataFrame, setting: tuple, source: str, key: str) -> str | None:
    """The traditional augmentation (crop, flip) whose runs a fit uses: a fit never pools runs trained
    with different ones (the paper's Tab. 6). Asked only when the setting's synthetic runs of this
    source have several; the fit's default (the one with the most synthetic runs) is offered first.
    Returns the one the fit will use (None: the runs record none)."""
    _, default, others = one_traditional(runs, setting[2], setting[3], None, source)
    if not others:
        return default
    default_when_changed(f"{key}_traditional", (*setting, source), default, [default, *others])
    return linked(st.radio, "Traditional augmentation of the runs fitted", [default, *others], key=f"{key}_traditional",
                    horizontal=True, format_func=lambda t: f"{t} (most synthetic runs)" if t == default else t,
                    help="Random crop and/or flip of the classifier's training images. Runs trained with "
                         "different ones are different settings: a fit never pools them.")


def setting_picker(runs: pd.DataFrame | None, key: str) -> tuple | None:
    """Dataset, classifier, augmentation and generator of a setting with synthetic runs (the
    options come from the store when `runs` is None)."""
    if runs is None:
        options = setting_options(str(store_path()), Stamps(store_path()).all)
    else:
        options = settings(runs)
    if not options:
        st.info("No closed- or open-set runs in the store: an equivalence needs synthetic runs beside real ones.")
        return None
    cols = st.columns(4)
    datasets = sorted({o[0] for o in options})
    dataset = linked(cols[0].selectbox, "Dataset", datasets, key=f"{key}_dataset")
    classifiers = sorted({o[1] for o in options if o[0] == dataset})
    classifier = linked(cols[1].selectbox, "Classifier", classifiers, key=f"{key}_classifier")
    augs = sorted({o[2] for o in options if o[:2] == (dataset, classifier)})
    augmentation = linked(cols[2].selectbox, "Augmentation", augs, key=f"{key}_augmentation",
                                     format_func=AUGMENTATION_LABELS.get)
    gens = sorted({o[3] or "" for o in options if o[:3] == (dataset, classifier, augmentation)})
    generator = linked(cols[3].selectbox, "Generator", gens, key=f"{key}_generator")
    return dataset, classifier, augmentation, generator or None


def page_with_setting(title: str, key: str) -> tuple[pd.DataFrame, tuple]:
    """Title, a chosen setting and that setting's runs (its real and its synthetic runs); stops the
    page with a message when there is none."""
    st.title(title)
    found = ready()
    if found is None:
        st.stop()
    path, stamps = found
    setting = setting_picker(None, key)
    if setting is None:
        st.stop()
    return setting_runs(str(path), stamps.pair(*setting[:2]), *setting), setting


def surface_controls(key: str):
    """Feature subset and eps of the accuracy surface; returns (features, eps)."""
    cols = st.columns([3, 2, 1])
    chosen = linked(cols[0].multiselect, "Surface features", list(FEATURES), default=list(PAPER_FEATURES),
                                 format_func=FEATURE_LABELS.get, key=f"{key}_features",
                                 help="The paper's surface uses the three log terms (Eq. 10).")
    best = linked(cols[1].selectbox, "…or the best of all 31 subsets by", ["(use the features chosen)", *CRITERIA],
                             key=f"{key}_best")
    eps = linked(cols[2].number_input, "eps", min_value=1e-9, max_value=10.0, value=DEFAULT_EPS, format="%.0e",
                               key=f"{key}_eps", help="eps inside the log terms")
    if best != "(use the features chosen)":
        return f"best:{best}", float(eps)
    return tuple(f for f in FEATURES if f in chosen), float(eps)


def fmt_ci(ci, fmt="{:,.0f}") -> str:  # images by default on the pages
    return format_interval(ci, fmt)


def features_text(features) -> str:
    if isinstance(features, tuple) and len(features) == 2 and isinstance(features[1], dict):
        return f"{features[0]} (per base: " + "; ".join(f"{b}: {'+'.join(v)}" for b, v in features[1].items()) + ")"
    return " + ".join(FEATURE_LABELS.get(f, f) for f in features)
