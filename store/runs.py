"""Runs in the store: the published runs, engine results, and the queries the dashboard and the fits
make. Imports and exports of run files are store.exchange's.

The store can hold millions of runs, so nothing here loads every run: callers ask for one setting, one
page of the table, or per-point aggregates, and DuckDB does the selecting and the averaging, with every
value bound as a parameter.
"""
from __future__ import annotations

import json
import math
import uuid
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping

import duckdb
import pandas as pd

from engine.catalog.datasets import paper_datasets
from engine.catalog.vocab import CROP_FLIP, PAPER, REAL, REAL_BASE, SUPERVISED, SYNTHETIC
from store.db import StoreError, connect, db_path, equals_clause, has_table, migrate, transaction, upgrade
from store.migrations import default_traditional_sql

# The paper's n_total: the size of the full original training set, used for tau = 10 / n_total.
PAPER_N_TOTAL = paper_datasets()
# A row imported without the traditional column gets its dataset's default (the catalog's).
_DEFAULT_TRADITIONAL = default_traditional_sql()

RUN_COLUMNS = [
    "run_id", "run_key", "source", "dataset", "classifier", "augmentation", "generator",
    "n_base", "n_real_added", "n_syn_added", "seed", "top1", "top5", "n_total", "config",
    "created_at", "note", "wall_time_s", "device", "indices_hash", "generator_id",
    "synthetic_set_id", "traditional", "base", "task",
]
# Appendix G's protocols (a synthetic base, zero-shot) are settings of their own, and most readers
# (fits, IR, the pages' curves) know nothing of them: a query sees such runs only when it names
# `base` or `task` (None: every protocol), so that they can never be pooled with the main protocol's.
PROTOCOL_DEFAULTS = {"base": REAL_BASE, "task": SUPERVISED}
# Table 9's inconsistent row (CIFAR-10, n_base 25,000): printed "15,000 added", but its total (45,000),
# its ratio (1:0.8) and Table 11's 1:0.8 at the same base all say 20,000. Read as 20,000 by default.
TAB9_READINGS = {"total": 20_000, "printed": 15_000}
TAB9_NOTE = ("Table 9 prints this row as 15,000 added but gives its total as 45,000 and its ratio "
             "as 1:0.8, and Table 11 uses 20,000 for 1:0.8 at this base; it is read as 20,000 added "
             "(`engine paper-check --tab9 printed` and the Paper check page show the printed reading).")
TAB9_NOTE_PRINTED = ("Table 9 prints this row as 15,000 added but gives its total as 45,000 and its ratio "
                     "as 1:0.8 (20,000 added); the printed 15,000 is used here.")
_DTYPES = {"n_base": "Int64", "n_real_added": "Int64", "n_syn_added": "Int64", "seed": "Int64",
           "n_total": "Int64", "top1": "Float64", "top5": "Float64", "wall_time_s": "Float64"}
_NAMESPACE = uuid.UUID("5b0e4c1e-8d0f-4f7a-9a57-2f3c6f3d9b11")


def init_store(path=None) -> int:
    """Create or migrate the store and load the published runs and tables; returns runs added."""
    return init_counts(path)["runs"]


def init_counts(path=None) -> dict[str, int]:
    """init_store, saying what it added: published runs, and published table values (Tab. 2-8, 20, 21)."""
    from store.paper_tables import load_paper_tables
    with connect(path) as con:
        migrate(con)
    return {"runs": load_paper_runs(path), "paper_tables": load_paper_tables(path)}


def paper_rows(tab9: str = "total") -> list[dict]:
    """The published runs; `tab9` reads Table 9's inconsistent row as its total says (20,000) or as printed."""
    if tab9 not in TAB9_READINGS:
        raise StoreError(f"unknown Table 9 reading {tab9!r}; choose from {', '.join(TAB9_READINGS)}")
    csv = resources.files("store").joinpath("data/paper_runs.csv")
    with resources.as_file(csv) as p:
        frame = pd.read_csv(p, dtype={"generator": str}, keep_default_na=False, na_values={"top5": [""]})
    rows = []
    for rec in frame.to_dict("records"):
        aug = rec["augmentation"]
        n_added = int(rec["n_added"])
        key = f"paper:table{rec['table']}:{rec['dataset']}:{rec['classifier']}:{aug}:" \
              f"{rec['generator']}:{rec['n_base']}:{n_added}"
        note = f"paper Table {rec['table']}, mean of 3 trials"
        if rec["table"] == 9 and rec["n_base"] == 25_000 and n_added == 15_000:
            # The run key keeps the printed cell, so a store never holds both readings of it.
            n_added = TAB9_READINGS[tab9]
            note += ". " + (TAB9_NOTE if tab9 == "total" else TAB9_NOTE_PRINTED)
        top5 = rec["top5"]
        rows.append({
            "run_id": str(uuid.uuid5(_NAMESPACE, key)),
            "run_key": key,
            "source": PAPER,
            "dataset": rec["dataset"],
            "classifier": rec["classifier"],
            "augmentation": aug,
            "generator": rec["generator"] or None,
            "n_base": int(rec["n_base"]),
            "n_real_added": n_added if aug == REAL else 0,
            "n_syn_added": n_added if aug != REAL else 0,
            "seed": None,
            "top1": float(rec["top1"]),
            "top5": None if top5 is None or (isinstance(top5, float) and math.isnan(top5)) else float(top5),
            "n_total": PAPER_N_TOTAL[rec["dataset"]],
            "config": json.dumps({"table": int(rec["table"]), "arxiv": "2508.09550"}),
            "note": note,
            "traditional": CROP_FLIP,   # the published runs all used crop + flip (appendices B, D)
        })
    return rows


def load_paper_runs(path=None) -> int:
    return insert_runs(paper_rows(), path)


# ---------------------------------------------------------------------------------- writing

def _touch(con, source: str) -> None:
    """Bump the change stamp of every (dataset, classifier) in `source`, in the writer's transaction:
    readers cache per setting on it, so a worker's new row invalidates only its own setting."""
    con.execute(f"""INSERT INTO run_changes
                    SELECT DISTINCT dataset, classifier, 1, current_timestamp FROM {source}
                    ON CONFLICT (dataset, classifier) DO UPDATE
                    SET version = run_changes.version + 1, changed_at = excluded.changed_at""")


def insert_runs(rows: Iterable[Mapping], path=None, *, replace: bool = False) -> int:
    """Write rows in one transaction; a row whose run_key exists is skipped (or replaced, keeping its run_id)."""
    rows = [{**PROTOCOL_DEFAULTS, **r} for r in rows]  # never NULL: readers select on them
    if not rows:
        return 0
    columns = [c for c in RUN_COLUMNS if c != "created_at" and any(c in r for r in rows)]
    # One set-based insert from a DataFrame: executemany costs ~10 ms a row in DuckDB.
    incoming = pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype=_DTYPES.get(c, object))
                             for c in columns})
    incoming = incoming.drop_duplicates("run_key", keep="last" if replace else "first") \
        if "run_key" in incoming else incoming
    names = ", ".join(columns)
    with transaction(path) as con:
        con.register("incoming", incoming)
        if replace:
            updates = ", ".join(f"{c} = i.{c}" for c in columns if c not in ("run_key", "run_id"))
            con.execute(f"UPDATE runs SET {updates} FROM incoming i WHERE runs.run_key = i.run_key")
        added = con.execute(f"INSERT INTO runs ({names}) SELECT {names} FROM incoming i WHERE NOT EXISTS "
                            f"(SELECT 1 FROM runs r WHERE r.run_key = i.run_key)").fetchall()[0][0]
        if replace or added:
            _touch(con, "incoming")
        con.unregister("incoming")
    return len(incoming) if replace else added


def existing_run_keys(keys: Iterable[str], path=None) -> set[str]:
    keys = list(keys)
    if not keys or not Path(db_path(path)).exists():
        return set()
    with connect(path, read_only=True) as con:
        if not has_table(con, "runs"):
            return set()
        found = con.execute("SELECT run_key FROM runs WHERE list_contains(?, run_key)", [keys]).fetchall()
    return {k for (k,) in found}


# ---------------------------------------------------------------------------------- reading

_INT_COLUMNS = {"n_base", "n_real_added", "n_syn_added", "seed", "n_total"}
_FLOAT_COLUMNS = {"top1", "top5", "wall_time_s"}
ORDER = "dataset, classifier, augmentation, generator, n_base, n_real_added, n_syn_added, seed"
FILTER_COLUMNS = ("source", "dataset", "classifier", "augmentation", "generator", "traditional", "n_base")


_CURRENT: set[str] = set()


def _current(path) -> None:
    """Bring a store older than this program forward once per process before reading it (as the
    dashboard does): readers select on the protocol columns, which an older store lacks."""
    key = str(db_path(path))
    if key in _CURRENT:
        return
    try:
        upgrade(path)
    except StoreError:
        return  # no store, or one that cannot be written: the read says what is wrong
    _CURRENT.add(key)


def _where(filters: Mapping) -> tuple[str, list]:
    """WHERE clause of typed comparisons (so DuckDB can prune row groups by their min/max);
    each filter is a value or a list of values, None or an empty list meaning no filter.
    Unless `base` or `task` is named, only the main protocol's runs match (PROTOCOL_DEFAULTS)."""
    clauses, params = [], []
    filters = {**PROTOCOL_DEFAULTS, **filters}
    for col, value in filters.items():
        if value is None:
            continue
        if col not in RUN_COLUMNS:
            raise StoreError(f"unknown run column {col!r}")
        clause = equals_clause(col, value, int if col in _INT_COLUMNS else float if col in _FLOAT_COLUMNS else str)
        if clause:
            clauses.append(clause[0])
            params += clause[1]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _columns_sql(columns) -> str:
    if columns is None:
        return "*"
    bad = [c for c in columns if c not in RUN_COLUMNS]
    if bad:
        raise StoreError(f"unknown run column {bad[0]!r}")
    return ", ".join(columns)


def _read(path, sql: str, params=()) -> pd.DataFrame:
    _current(path)
    with connect(path, read_only=True) as con:
        try:
            return con.execute(sql, list(params)).df()
        except duckdb.Error as err:
            raise StoreError(f"cannot read the store: {str(err).splitlines()[0]}") from err


def query_runs(path=None, *, columns=None, **filters) -> pd.DataFrame:
    """Runs as a DataFrame; each keyword filters a column by a value or a list of values.
    `columns` picks the columns (default: all). Filtering on dataset and classifier reads only
    that setting's row groups, which imports keep together."""
    where, params = _where(filters)
    return _read(path, f"SELECT {_columns_sql(columns)} FROM runs{where} ORDER BY {ORDER}", params)


def setting_runs(path, dataset: str, classifier: str, augmentation: str, generator=None, columns=None) -> pd.DataFrame:
    """What one setting's fit needs: its real runs and its synthetic runs of this generator."""
    where, params = _where({"dataset": dataset, "classifier": classifier})
    gen = "" if generator is None else " AND generator = ?"
    sql = (f"SELECT {_columns_sql(columns)} FROM runs{where} AND (augmentation = ? OR "
           f"(augmentation = ?{gen})) ORDER BY {ORDER}")
    return _read(path, sql, params + [REAL, augmentation] + ([] if generator is None else [generator]))


def distinct_values(column: str, path=None, **filters) -> list:
    if column not in RUN_COLUMNS:
        raise StoreError(f"unknown column {column!r}")
    where, params = _where(filters)
    where = (where + " AND " if where else " WHERE ") + f"{column} IS NOT NULL"
    frame = _read(path, f"SELECT DISTINCT {column} AS v FROM runs{where} ORDER BY 1", params)
    return frame.v.tolist()


def picker_values(path=None, columns=FILTER_COLUMNS) -> dict[str, list]:
    """The distinct values of several columns in one connection (the dashboard's pickers)."""
    where, params = _where({})
    _current(path)
    with connect(path, read_only=True) as con:
        return {c: [v for (v,) in con.execute(
            f"SELECT DISTINCT {c} FROM runs{where} AND {c} IS NOT NULL ORDER BY 1", params).fetchall()]
            for c in columns if c in RUN_COLUMNS}


def setting_keys(path=None, *, traditional: bool = False) -> list[tuple]:
    """Every (dataset, classifier, augmentation, generator) with synthetic runs; with `traditional`,
    one key per traditional augmentation as a fifth field (runs trained with different ones are
    fitted apart, so each is a setting of its own)."""
    extra = ", traditional" if traditional else ""
    where, params = _where({})
    _current(path)
    with connect(path, read_only=True) as con:
        rows = con.execute(f"SELECT DISTINCT dataset, classifier, augmentation, generator{extra} FROM runs{where} "
                           "AND list_contains(?, augmentation) ORDER BY ALL", params + [list(SYNTHETIC)]).fetchall()
    return [tuple(r) for r in rows]


def run_changes(path=None) -> dict[tuple, tuple]:
    """(dataset, classifier) -> (version, changed_at): the change stamp each cached query is keyed by."""
    with connect(path, read_only=True) as con:
        if not has_table(con, "run_changes"):
            return {}
        rows = con.execute("SELECT dataset, classifier, version, changed_at FROM run_changes").fetchall()
    return {(d, c): (v, str(t)) for d, c, v, t in rows}


def summary(path=None, **filters) -> dict:
    """How many runs match, of how many, from which sources."""
    where, params = _where(filters)
    _current(path)
    with connect(path, read_only=True) as con:
        total = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
        n, sources, pairs = con.execute(
            f"SELECT count(*), list(DISTINCT source ORDER BY source), "
            f"list(DISTINCT [dataset, classifier] ORDER BY [dataset, classifier]) FROM runs{where}", params).fetchall()[0]
    return {"total": total, "matching": n, "sources": sources or [], "pairs": [tuple(p) for p in pairs or []]}


def page_of_runs(path=None, *, columns=None, limit: int = 100, offset: int = 0, **filters) -> pd.DataFrame:
    """One page of the (filtered) runs table."""
    where, params = _where(filters)
    return _read(path, f"SELECT {_columns_sql(columns)} FROM runs{where} ORDER BY {ORDER} LIMIT ? OFFSET ?",
                 params + [int(limit), int(offset)])


def has_note(path=None, text: str = "", **filters) -> bool:
    where, params = _where(filters)
    where = (where + " AND " if where else " WHERE ") + "contains(note, ?)"
    _current(path)
    with connect(path, read_only=True) as con:
        return bool(con.execute(f"SELECT count(*) FROM (SELECT 1 FROM runs{where} LIMIT 1)",
                                params + [text]).fetchall()[0][0])


def point_means(path=None, **filters) -> pd.DataFrame:
    """Mean and spread of top-1 over seeds per measured point (the Runs page's curves).

    Repeated rows of one base-only run (the paper prints it in every table) count once; every
    curve of a base starts at that base's base-only mean of the same traditional augmentation
    (runs trained with different traditional augmentation are never averaged together)."""
    where, params = _where(filters)
    sql = f"""
        WITH sel AS (
            SELECT n_base, augmentation, coalesce(generator, '') AS generator, coalesce(traditional, '') AS traditional,
                   n_real_added + n_syn_added AS added, seed, top1, run_key, source FROM runs{where}),
        points AS (
            SELECT n_base, augmentation, generator, traditional, added, avg(top1) AS acc, stddev_samp(top1) AS sd,
                   count(seed) AS seeds, count(*) AS rows, bool_or(source = 'paper') AS published
            FROM sel WHERE added > 0 GROUP BY ALL),
        base AS (
            SELECT n_base, traditional, avg(top1) AS acc, stddev_samp(top1) AS sd, count(seed) AS seeds,
                   count(*) AS rows, bool_or(source = 'paper') AS published
            FROM (SELECT DISTINCT n_base, traditional, seed, top1, run_key, source FROM sel WHERE added = 0)
            GROUP BY n_base, traditional),
        kinds AS (SELECT DISTINCT n_base, augmentation, generator, traditional FROM points)
        SELECT n_base, augmentation, generator, traditional, added, acc, sd, seeds, rows, published FROM points
        UNION ALL
        SELECT k.n_base, k.augmentation, k.generator, k.traditional, 0 AS added, b.acc, b.sd, b.seeds, b.rows,
               b.published
        FROM kinds k JOIN base b USING (n_base, traditional)
        ORDER BY n_base, augmentation, generator, traditional, added"""
    return _read(path, sql, params)


def improvement_rows(path=None, **filters) -> pd.DataFrame:
    """Only the runs IR(n_base) (Eq. 7) reads: base-only runs and synthetic runs at 1:1 (of the filtered runs)."""
    where, params = _where(filters)
    where = (where + " AND " if where else " WHERE ") + \
        "((n_real_added = 0 AND n_syn_added = 0) OR (list_contains(?, augmentation) AND n_syn_added = n_base))"
    return _read(path, "SELECT source, dataset, classifier, augmentation, generator, n_base, n_real_added, "
                       f"n_syn_added, seed, top1, traditional FROM runs{where} ORDER BY dataset, classifier",
                 params + [list(SYNTHETIC)])
