"""The paper's published quality and cost tables (Tab. 2, 3, 7, 8), read from the store's
`paper_tables` (store/data/paper_tables.csv, docs/paper-tables.md), drawn beside our own metrics."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from store.db import StoreError
from store.paper_tables import paper_table


@st.cache_data(show_spinner=False, max_entries=64)
def published(table: int, path: str, stamp) -> pd.DataFrame | None:
    """One of the paper's tables from the store (`stamp`: the store's change stamp, so a reloaded store is
    read again); None where the store holds no published tables (made before them, never `store init`-ed)."""
    try:
        return paper_table(table, path)
    except StoreError:
        return None


def _wide(rows: pd.DataFrame, index: list[str], metrics: dict[str, str]) -> pd.DataFrame:
    # pivot_table drops a row whose index holds a missing value (Tab. 7 gives no n_syn): index on text.
    keep = rows[rows.metric.isin(metrics)].copy()
    for col in index:
        keep[col] = keep[col].astype("string").fillna("")
    if keep.empty:
        return keep
    wide = keep.pivot_table(index=index, columns="metric", values="value", aggfunc="first", sort=False)
    return wide.reindex(columns=[m for m in metrics if m in wide.columns]).rename(columns=metrics).reset_index()


def published_quality(path, stamp: float, ours: dict | None = None) -> None:
    """Tab. 2/3 (FID, IS of closed- vs open-set data), Tab. 7 (ImageNet-10's SD2/SD3 sets) and Tab. 8
    (sampling cost), with our own figures of the chosen set beside them where we have the same metric.
    `ours`: {"dataset", "fid", "is", "s_per_image"} of the set shown on the page, or None."""
    st.subheader("What the paper published (Tab. 2, 3, 7, 8)")
    tables = {t: published(t, str(path), stamp) for t in (2, 3, 7, 8)}
    quality = pd.concat([tables[t] for t in (2, 3, 7) if tables[t] is not None] or [pd.DataFrame()],
                        ignore_index=True)
    cost = tables[8] if tables[8] is not None else pd.DataFrame()
    if quality.empty and cost.empty:
        st.caption("The store has no published tables: `engine store init` loads them.")
        return
    table = _wide(quality,
                  ["table", "dataset", "augmentation", "generator", "setting", "n_syn"],
                  {"fid": "FID", "is": "IS", "images": "images", "cfg_scale": "CFG scale"})
    if ours and any(ours.get(m) is not None for m in ("fid", "is")):
        table = pd.concat([table, pd.DataFrame([{
            "table": "ours", "dataset": ours.get("dataset"), "augmentation": ours.get("augmentation"),
            "generator": ours.get("generator"), "setting": "the set shown above", "n_syn": ours.get("n_syn"),
            "FID": ours.get("fid"), "IS": ours.get("is")}])], ignore_index=True)
    st.dataframe(table.rename(columns={"n_syn": "synthetic images scored"}), hide_index=True, width="stretch")
    st.caption("FID and IS as printed (Tab. 2 CIFAR-10, Tab. 3 ImageNet-100, Tab. 7 ImageNet-10). The paper "
               "does not say which base set's generator or which real images FID compares with, and FID "
               "depends on how many images are scored: a row of ours is comparable only at the same n and "
               "against the same real images.")
    if not cost.empty:
        costs = _wide(cost, ["dataset", "generator", "setting"],
                      {"sampling_steps": "steps", "batch_size": "images/batch", "memory": "memory (MB)",
                       "time_per_image": "s/image"})
        if ours and ours.get("s_per_image") is not None:
            costs = pd.concat([costs, pd.DataFrame([{
                "dataset": ours.get("dataset"), "generator": ours.get("generator"),
                "setting": f"ours, {ours.get('device') or 'this store'}",
                "s/image": ours["s_per_image"]}])], ignore_index=True)
        st.dataframe(costs.rename(columns={"setting": "machine"}), hide_index=True, width="stretch")
        st.caption("Tab. 8: sampling cost per image as printed (A4500 for EDM, A6000 for SD2, SD3 and DiT).")
