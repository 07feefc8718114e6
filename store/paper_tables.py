"""The paper's other published numbers: Tables 2, 3, 6, 7, 8, 20 and 21 of arXiv 2508.09550.

They ship in `store/data/paper_tables.csv`, one printed value a row (docs/paper-tables.md says what
every column means and every reading choice); `engine store init` copies them into the store's
`paper_tables` table, and `paper_table` reads them back for the dashboard's pages.
"""
from __future__ import annotations

from importlib import resources
from typing import Mapping

import duckdb
import pandas as pd

from store.db import StoreError, connect, equals_clause, has_table, transaction

TABLES = (2, 3, 6, 7, 8, 20, 21)
COLUMNS = ["table", "dataset", "classifier", "augmentation", "generator", "traditional", "setting", "metric",
           "n_real", "n_syn", "ratio", "value", "unit", "delta", "note"]
# What tells two printed values apart; Tab. 21 prints ImageNet-10's real-only run in two blocks,
# which only the block's generator separates.
KEY_COLUMNS = ("table", "dataset", "classifier", "augmentation", "generator", "traditional", "metric",
               "n_real", "n_syn")
FILTER_COLUMNS = ("dataset", "classifier", "augmentation", "generator", "traditional", "setting", "metric",
                  "n_real", "n_syn", "ratio", "unit")
_INT = ("table", "n_real", "n_syn")
_FLOAT = ("value", "delta")
_TEXT = tuple(c for c in COLUMNS if c not in _INT + _FLOAT)
# The column is named as in paper_runs.csv, and `table` is an SQL keyword.
_SELECT = ", ".join('"table"' if c == "table" else c for c in COLUMNS)


def shipped_rows() -> pd.DataFrame:
    """The shipped CSV as the store holds it: typed, empty cells as missing, with `row_key` and
    `position` (the row's place in the CSV, which follows the paper's row order)."""
    with resources.as_file(resources.files("store").joinpath("data/paper_tables.csv")) as p:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise StoreError(f"paper_tables.csv lacks column(s) {', '.join(missing)}")
    frame = pd.DataFrame({"row_key": [
        "|".join(str(rec[c]) for c in KEY_COLUMNS) for rec in raw.to_dict("records")]})
    frame["position"] = pd.array(range(len(raw)), dtype="Int32")
    for c in COLUMNS:
        cells = raw[c].str.strip()
        cells = cells.mask(cells == "")
        if c in _INT:
            frame[c] = pd.array(pd.to_numeric(cells), dtype="Int64")
        elif c in _FLOAT:
            frame[c] = pd.array(pd.to_numeric(cells), dtype="Float64")
        else:
            frame[c] = cells.astype(object).where(cells.notna(), None)
    bad = frame[~frame["table"].isin(TABLES) | frame["unit"].isna() | frame["value"].isna()]
    if len(bad):
        raise StoreError(f"paper_tables.csv row {int(bad.position.iloc[0]) + 2}: needs a table in "
                         f"{', '.join(map(str, TABLES))}, a value and a unit")
    dup = frame.row_key[frame.row_key.duplicated()]
    if len(dup):
        raise StoreError(f"paper_tables.csv: two rows for {dup.iloc[0]}")
    return frame


def load_paper_tables(path=None) -> int:
    """Bring the store's `paper_tables` in line with the shipped CSV; returns the rows that were not
    there before (0 on a second run). The table holds nothing but the shipped values, so a corrected
    transcription in a newer release replaces the stored one rather than sitting beside it; when
    nothing differs, nothing is written."""
    incoming = shipped_rows()
    names = ", ".join(['row_key', 'position', _SELECT])
    with transaction(path) as con:
        con.register("incoming", incoming)
        try:
            added = con.execute("SELECT count(*) FROM incoming i WHERE NOT EXISTS "
                                "(SELECT 1 FROM paper_tables p WHERE p.row_key = i.row_key)").fetchall()[0][0]
            # EXCEPT compares missing cells as equal, so an unchanged table gives 0 both ways.
            differs = con.execute(f"SELECT (SELECT count(*) FROM (SELECT {names} FROM incoming EXCEPT "
                                  f"SELECT {names} FROM paper_tables)) + (SELECT count(*) FROM (SELECT {names} "
                                  f"FROM paper_tables EXCEPT SELECT {names} FROM incoming))").fetchall()[0][0]
            if differs:
                con.execute("DELETE FROM paper_tables")
                con.execute(f"INSERT INTO paper_tables ({names}) SELECT {names} FROM incoming ORDER BY position")
        finally:
            con.unregister("incoming")
    return int(added)


def _where(table, filters: Mapping) -> tuple[str, list]:
    # Column names cannot be bound, so only the listed ones are let into the SQL; every value is a
    # bound parameter.
    if isinstance(table, bool) or not isinstance(table, int) or table not in TABLES:
        raise StoreError(f"table = {table!r}: the published tables in the store are {', '.join(map(str, TABLES))}")
    clauses, params = ['"table" = ?'], [table]
    for col, value in filters.items():
        if col not in FILTER_COLUMNS:
            raise StoreError(f"cannot filter paper tables by {col!r}; choose from {', '.join(FILTER_COLUMNS)}")
        clause = equals_clause(col, value, int if col in _INT else str)
        if clause:
            clauses.append(clause[0])
            params += clause[1]
    return " WHERE " + " AND ".join(clauses), params


def paper_table(table: int, path=None, **filters) -> pd.DataFrame:
    """One of the paper's Tables 2, 3, 6, 7, 8, 20, 21 from the store, in the paper's row order.

    Columns (docs/paper-tables.md has the full list and every reading choice):
    table, dataset, classifier, augmentation (real / closed / open), generator (EDM, DiT, CIFAKE,
    SD2, SD3), traditional (Tab. 6: none / flip / crop), setting (text: prompt, machine, protocol),
    metric, n_real, n_syn (training images of a run; for fid and is, the synthetic images scored),
    ratio (the printed Real:Syn cell), value, unit, delta (the printed gain in points, Tab. 6, 20,
    21), note. Missing cells are None (text) or <NA> (numbers).

    What each table holds, by metric and unit:
      2, 3  FID and IS of the closed- and open-set synthetic data (CIFAR-10; ImageNet-100):
            metric 'fid' (unit 'FID'), 'is' ('IS'); n_syn = images scored.
      6     traditional vs generative augmentation on CIFAR-10-Large, ResNet-110: 'top1' ('percent').
      7     ImageNet-10's SD2 and SD3 sets: 'images', 'cfg_scale', 'classes', 'fid', 'is'.
      8     sampling cost per generator: 'sampling_steps' ('steps'), 'batch_size' ('images/batch'),
            'memory' ('MB'), 'time_per_image' ('s/image'). Its dataset is printed for two datasets
            at once ('CIFAR-10/BloodMNIST', 'ImageNet-10/ImageNet-100'): filter it by generator.
      20    ImageNet-10, 13,000 synthetic images plus n_real real ones: 'top1'.
      21    zero-shot on ImageNet-10 and ImageNet-100, n_real real images of half the classes
            plus n_syn synthetic ones of the other half: 'top1'.

    Filters: any of FILTER_COLUMNS, each a value or a list of values (None or an empty list: no
    filter), e.g. `paper_table(3, metric="fid")`, `paper_table(21, dataset=<a stored dataset name>,
    generator=["SD2", "SD3"])`. Values are bound parameters, never pasted into the SQL.
    A store without these rows (made before migration 13, or never `engine store init`-ed since)
    is a StoreError that names the command; a filter that matches nothing is an empty frame.
    """
    where, params = _where(table, filters)
    with connect(path, read_only=True) as con:
        if not has_table(con, "paper_tables") or not con.execute(
                "SELECT count(*) FROM paper_tables").fetchall()[0][0]:
            raise StoreError("the store holds no published tables yet: run `engine store init`")
        try:
            frame = con.execute(f"SELECT {_SELECT} FROM paper_tables{where} ORDER BY position", params).df()
        except duckdb.Error as err:
            raise StoreError(f"cannot read the store: {str(err).splitlines()[0]}") from err
    for c in _INT:
        frame[c] = frame[c].astype("Int64")
    for c in _TEXT:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame
