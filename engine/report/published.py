"""The paper's published values a report or a figure sets beside the store's: the published runs with
the appendix table each came from, the seven equations, and the FID / IS of Tab. 2 and 3.

The runs and equations are read from the files shipped with the product (engine.analysis.paper), not
from the store, so they overlay a store that holds only a user's runs as well."""
from __future__ import annotations

import json
from functools import lru_cache

import pandas as pd

from engine.analysis.paper import paper_runs, published_equations
from engine.catalog.vocab import CROP_FLIP, REAL

QUALITY_TABLES = (2, 3)   # FID and IS of the closed- and open-set synthetic data
QUALITY_METRICS = ("fid", "is")


@lru_cache(maxsize=2)
def _runs(tab9: str) -> pd.DataFrame:
    runs = paper_runs(tab9)
    runs["table"] = [json.loads(c)["table"] for c in runs.config]
    runs["added"] = runs.n_real_added + runs.n_syn_added
    runs["generator"] = runs.generator.fillna("")
    return runs


def published_runs(tab9: str = "total") -> pd.DataFrame:
    """The published means with `table` (9-19) and `added` (images added, real or synthetic); generator
    '' for real runs. Table 9's inconsistent row is read as `tab9` says (engine.analysis.paper)."""
    return _runs(tab9).copy()


def pair_of_tables(tables) -> tuple[str, str]:
    """The (dataset, classifier) whose runs the given appendix tables print."""
    runs = _runs("total")
    pairs = runs[runs.table.isin(list(tables))][["dataset", "classifier"]].drop_duplicates()
    if len(pairs) != 1:
        raise ValueError(f"tables {tables} print {len(pairs)} (dataset, classifier) pairs, not one")
    return tuple(pairs.iloc[0])


def equation(number: int) -> dict:
    return next(e for e in published_equations() if e["equation"] == number)


def equation_for(dataset, classifier, augmentation, generator, traditional=None) -> dict | None:
    """The published equation fitted to this setting's runs, if the paper printed one (its runs all
    trained with crop + flip: a setting of another traditional augmentation is not the paper's)."""
    if traditional not in (None, CROP_FLIP):
        return None
    return next((e for e in published_equations() if (e["dataset"], e["classifier"], e["augmentation"],
                                                      e["generator"]) == (dataset, classifier, augmentation,
                                                                          generator)), None)


def setting_points(dataset, classifier, augmentation, generator, n_base: int) -> pd.DataFrame:
    """The published runs of one setting at one base: its real runs and its synthetic runs, the base-only
    run once (the paper prints it in each table of the base)."""
    runs = _runs("total")
    at = runs[(runs.dataset == dataset) & (runs.classifier == classifier) & (runs.n_base == n_base)
              & ((runs.augmentation == REAL) | ((runs.augmentation == augmentation) & (runs.generator == (generator or ""))))]
    return at.sort_values(["table", "n_real_added", "n_syn_added"]).drop_duplicates(["n_real_added", "n_syn_added"])


def published_quality(tables: dict[int, pd.DataFrame], dataset, augmentation, generator) -> pd.DataFrame:
    """Tab. 2 / 3 rows (FID, IS) of this dataset and kind of synthetic data, from frames read by the caller."""
    frames = [t[(t.dataset == dataset) & (t.augmentation == augmentation) & (t.generator == generator)
                & t.metric.isin(QUALITY_METRICS)] for t in tables.values() if len(t)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
