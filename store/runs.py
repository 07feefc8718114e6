"""Runs in the store: the published runs, engine results, imports and exports, and the queries
the dashboard and the fits make.

The store can hold millions of runs, so nothing here loads every run: callers ask for one
setting, one page of the table, or per-point aggregates, and DuckDB does the selecting and the
averaging. Imports and exports stay inside DuckDB too (read_parquet / read_csv into a staging
table, every check in SQL, one INSERT; COPY ... TO for exports).
"""
from __future__ import annotations

import json
import math
import os
import re
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping

import duckdb
import pandas as pd

from store.db import StoreError, connect, has_table, migrate, transaction
from store.paper_tables import load_paper_tables

# The paper's n_total: the size of the full original training set, used for tau = 10 / n_total.
PAPER_N_TOTAL = {"CIFAR-10": 50_000, "BloodMNIST": 12_000, "ImageNet-100": 130_000}
AUGMENTATIONS = ("real", "closed", "open")
# Traditional augmentation of a run's classifier (the paper's Tab. 6), as engine.spec names it: the
# published runs all used crop + flip; a row imported without the column gets its dataset's default.
TRADITIONAL = ("crop+flip", "crop", "flip", "none")
_DEFAULT_TRADITIONAL = "CASE WHEN dataset = 'digits' THEN 'crop' ELSE 'crop+flip' END"
SOURCES = ("paper", "engine", "import")

RUN_COLUMNS = [
    "run_id", "run_key", "source", "dataset", "classifier", "augmentation", "generator",
    "n_base", "n_real_added", "n_syn_added", "seed", "top1", "top5", "n_total", "config",
    "created_at", "note", "wall_time_s", "device", "indices_hash", "generator_id",
    "synthetic_set_id", "traditional",
]
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
            "source": "paper",
            "dataset": rec["dataset"],
            "classifier": rec["classifier"],
            "augmentation": aug,
            "generator": rec["generator"] or None,
            "n_base": int(rec["n_base"]),
            "n_real_added": n_added if aug == "real" else 0,
            "n_syn_added": n_added if aug != "real" else 0,
            "seed": None,
            "top1": float(rec["top1"]),
            "top5": None if top5 is None or (isinstance(top5, float) and math.isnan(top5)) else float(top5),
            "n_total": PAPER_N_TOTAL[rec["dataset"]],
            "config": json.dumps({"table": int(rec["table"]), "arxiv": "2508.09550"}),
            "note": note,
            "traditional": "crop+flip",
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
    rows = [dict(r) for r in rows]
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
    if not keys or not Path(_resolve(path)).exists():
        return set()
    with connect(path, read_only=True) as con:
        if not has_table(con, "runs"):
            return set()
        found = con.execute("SELECT run_key FROM runs WHERE list_contains(?, run_key)", [keys]).fetchall()
    return {k for (k,) in found}


def _resolve(path):
    from store.db import db_path
    return db_path(path)


# ---------------------------------------------------------------------------------- reading

_INT_COLUMNS = {"n_base", "n_real_added", "n_syn_added", "seed", "n_total"}
_FLOAT_COLUMNS = {"top1", "top5", "wall_time_s"}
ORDER = "dataset, classifier, augmentation, generator, n_base, n_real_added, n_syn_added, seed"
FILTER_COLUMNS = ("source", "dataset", "classifier", "augmentation", "generator", "traditional", "n_base")


def _where(filters: Mapping) -> tuple[str, list]:
    """WHERE clause of typed comparisons (so DuckDB can prune row groups by their min/max);
    each filter is a value or a list of values, None or an empty list meaning no filter."""
    clauses, params = [], []
    for col, value in filters.items():
        if value is None:
            continue
        if col not in RUN_COLUMNS:
            raise StoreError(f"unknown run column {col!r}")
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        if not values:
            continue
        cast = int if col in _INT_COLUMNS else float if col in _FLOAT_COLUMNS else str
        try:
            values = [cast(v) for v in values]
        except (TypeError, ValueError):
            raise StoreError(f"{col} = {values!r}: not a valid {cast.__name__}") from None
        clauses.append(f"{col} = ?" if len(values) == 1 else f"{col} IN ({', '.join('?' * len(values))})")
        params += values
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _columns_sql(columns) -> str:
    if columns is None:
        return "*"
    bad = [c for c in columns if c not in RUN_COLUMNS]
    if bad:
        raise StoreError(f"unknown run column {bad[0]!r}")
    return ", ".join(columns)


def _read(path, sql: str, params=()) -> pd.DataFrame:
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
    sql = (f"SELECT {_columns_sql(columns)} FROM runs{where} AND (augmentation = 'real' OR "
           f"(augmentation = ?{gen})) ORDER BY {ORDER}")
    return _read(path, sql, params + [augmentation] + ([] if generator is None else [generator]))


def distinct_values(column: str, path=None, **filters) -> list:
    if column not in RUN_COLUMNS:
        raise StoreError(f"unknown column {column!r}")
    where, params = _where(filters)
    where = (where + " AND " if where else " WHERE ") + f"{column} IS NOT NULL"
    frame = _read(path, f"SELECT DISTINCT {column} AS v FROM runs{where} ORDER BY 1", params)
    return frame.v.tolist()


def picker_values(path=None, columns=FILTER_COLUMNS) -> dict[str, list]:
    """The distinct values of several columns in one connection (the dashboard's pickers)."""
    with connect(path, read_only=True) as con:
        return {c: [v for (v,) in con.execute(
            f"SELECT DISTINCT {c} FROM runs WHERE {c} IS NOT NULL ORDER BY 1").fetchall()]
            for c in columns if c in RUN_COLUMNS}


def setting_keys(path=None, *, traditional: bool = False) -> list[tuple]:
    """Every (dataset, classifier, augmentation, generator) with synthetic runs; with `traditional`,
    one key per traditional augmentation as a fifth field (runs trained with different ones are
    fitted apart, so each is a setting of its own)."""
    extra = ", traditional" if traditional else ""
    with connect(path, read_only=True) as con:
        rows = con.execute(f"SELECT DISTINCT dataset, classifier, augmentation, generator{extra} FROM runs "
                           "WHERE augmentation IN ('closed', 'open') ORDER BY ALL").fetchall()
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
        "((n_real_added = 0 AND n_syn_added = 0) OR (augmentation IN ('closed', 'open') AND n_syn_added = n_base))"
    return _read(path, "SELECT source, dataset, classifier, augmentation, generator, n_base, n_real_added, "
                       f"n_syn_added, seed, top1, traditional FROM runs{where} ORDER BY dataset, classifier", params)


# ---------------------------------------------------------------------------------- export

# Imports and exports of a million rows must not take gigabytes: past this DuckDB spills to disk.
IMPORT_MEMORY_LIMIT = "512MB"


def export_runs(out: str | os.PathLike, path=None, **filters) -> int:
    """Stream the (filtered) runs to CSV or Parquet; the file appears whole or not at all.

    The filter values are bound as parameters of the SELECT (DuckDB's relation API writes it out), never
    pasted into SQL: COPY ... TO takes no parameters, and a value pasted into it once let a crafted
    filter write a file wherever it named."""
    out = Path(out)
    fmt = {".parquet": "parquet", ".csv": "csv"}.get(out.suffix.lower())
    if fmt is None:
        raise StoreError(f"unknown export format {out.suffix!r}: use .csv or .parquet")
    if not out.parent.is_dir():
        raise StoreError(f"cannot write {out}: folder {out.parent} does not exist")
    where, params = _where(filters)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with connect(path, read_only=True) as con:
            con.execute("SET memory_limit = ?", [IMPORT_MEMORY_LIMIT])
            con.execute("SET enable_progress_bar = false")
            n = con.execute(f"SELECT count(*) FROM runs{where}", params).fetchall()[0][0]
            selected = con.sql(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs{where} ORDER BY {ORDER}", params=params)
            if fmt == "csv":
                selected.write_csv(str(tmp), header=True)
            else:
                selected.write_parquet(str(tmp))
        os.replace(tmp, out)
    except (duckdb.Error, OSError) as err:
        raise StoreError(f"cannot write {out}: {str(err).splitlines()[0]}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return int(n)


# ---------------------------------------------------------------------------------- import

INT32_MAX = 2**31 - 1
NULL_TEXTS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]  # what pandas read as missing


@dataclass(frozen=True)
class Field:
    """A column an import file may carry: its runs column type and the checks a value must pass.

    Each check is (SQL true when the value `v` is bad, the problem in words); numbers are also checked
    for being numbers, finite and (INTEGER) whole and within range, names for being set when required."""
    name: str
    type: str
    required: bool = False
    checks: tuple[tuple[str, str], ...] = ()
    default: str | None = None   # SQL for the value when the file has none (else the column's own default)


_PADDED = ("regexp_matches(v, '^\\s|\\s$')", "has leading or trailing spaces")
_PERCENT = ("v < 0 OR v > 100", "is outside 0-100 (percent)")
_POSITIVE = ("v <= 0", "must be positive")
_NEGATIVE = ("v < 0", "is negative")
# In the order a user should fix them: a row's first failing check is the one reported.
FIELDS = [
    Field("dataset", "VARCHAR", True, (("NOT regexp_matches(v, '\\S')", "is empty"), _PADDED)),
    Field("classifier", "VARCHAR", True, (("NOT regexp_matches(v, '\\S')", "is empty"), _PADDED)),
    Field("augmentation", "VARCHAR", True, ((f"v NOT IN {AUGMENTATIONS!r}", f"is not one of {', '.join(AUGMENTATIONS)}"),)),
    Field("generator", "VARCHAR", checks=(_PADDED,)),
    Field("n_base", "INTEGER", True, (_POSITIVE,)),
    Field("n_real_added", "INTEGER", True, (_NEGATIVE,)),
    Field("n_syn_added", "INTEGER", True, (_NEGATIVE,)),
    Field("seed", "INTEGER"),
    Field("top1", "DOUBLE", True, (_PERCENT,)),
    Field("top5", "DOUBLE", checks=(_PERCENT,)),
    Field("n_total", "INTEGER", checks=(_POSITIVE,)),
    Field("config", "JSON", checks=(("NOT json_valid(v)", "is not valid JSON"),)),
    Field("note", "VARCHAR"),
    # Absent or empty: the dataset's default (_DEFAULT_TRADITIONAL), never NULL, so fits can tell settings apart.
    Field("traditional", "VARCHAR", checks=((f"v NOT IN {TRADITIONAL!r}", f"is not one of {', '.join(TRADITIONAL)}"),),
          default=_DEFAULT_TRADITIONAL),
]
# Checks across columns, after every column's own: (column reported, SQL true when bad, problem).
ROW_CHECKS = [
    ("n_syn_added", "augmentation = 'real' AND n_syn_added <> 0", "but the run's augmentation is real"),
    ("n_real_added", "augmentation <> 'real' AND n_real_added <> 0", "but a synthetic run adds no real images"),
]
REQUIRED_IMPORT_COLUMNS = [f.name for f in FIELDS if f.required]
_TEXT = ("VARCHAR", "JSON")
# The names in a run's identity: few distinct combinations in a million rows, so their checks and the
# text part of the run_key are made once per combination, the numbers per row.
_NAMES = ("augmentation", "classifier", "config", "dataset", "generator")

# Python's json.dumps(str) with ensure_ascii, in SQL: printable ASCII needs only \ and " escaped,
# anything else goes character by character, so that an import's run_key is the same as it always was.
_JSON_STR = r"""CREATE OR REPLACE TEMP MACRO py_json_str(s) AS CASE
    WHEN s IS NULL THEN 'null'
    WHEN NOT regexp_matches(s, '[^ -~]') THEN '"' || replace(replace(s, '\', '\\'), '"', '\"') || '"'
    ELSE '"' || array_to_string(list_transform(string_split(s, ''), lambda c: CASE
        WHEN unicode(c) < 127 THEN CAST(to_json(c) AS VARCHAR)[2:-2]
        WHEN unicode(c) < 65536 THEN printf('\u%04x', unicode(c))
        ELSE printf('\u%04x\u%04x', 55296 + ((unicode(c) - 65536) >> 10), 56320 + ((unicode(c) - 65536) & 1023))
        END), '') || '"' END"""
# run_key = "import:" + sha256(json.dumps(identity, sort_keys=True))[:32], as imports always made it;
# run_id is the digest's other half written as a UUID (one hash a row instead of two).
_KEY_PREFIX = "'{' || " + " || ', ' || ".join(f"'\"{n}\": ' || py_json_str({n})" for n in _NAMES)
# concat(), not a chain of ||: one string a row instead of eleven (2.5x faster at a million rows).
_DIGEST = """sha256(concat(n.prefix, ', "n_base": ', t.n_base, ', "n_real_added": ', t.n_real_added,
    ', "n_syn_added": ', t.n_syn_added, ', "seed": ', coalesce(CAST(t.seed AS VARCHAR), 'null'),
    ', "top1": ', CAST(t.top1 AS VARCHAR), '}'))"""

# The digest's second half written as a UUID (substr and concat: slicing and casting cost 3x more).
_RUN_ID = "concat(" + ", '-', ".join(f"substr(digest, {a}, {n})" for a, n in ((33, 8), (41, 4), (45, 4), (49, 4), (53, 12))) + ")"


def _typed(field: Field, present: set[str]) -> tuple[str, str]:
    """SQL for the value as written (text) and as typed, of one field in the staging table."""
    if field.name not in present:
        return "CAST(NULL AS VARCHAR)", f"CAST(NULL AS {field.type})"
    raw = f"CAST({field.name} AS VARCHAR)"
    if field.type in _TEXT:
        # An empty generator is none; a blank dataset is caught by its check.
        return raw, f"nullif({raw}, '')" if field.name == "generator" or field.default else raw
    # Integers are read as numbers first, so that 1.5 is "not a whole number", not "not a number".
    return raw, f"TRY_CAST({field.name} AS {'DOUBLE' if field.type == 'INTEGER' else field.type})"


def _field_checks(field: Field) -> list[tuple[str, str, str]]:
    """(column, SQL true when bad, problem) of one field, on the typed view's columns."""
    name, raw = field.name, f"{field.name}_raw"
    out = [(name, f"{name if field.type in _TEXT else raw} IS NULL", "is empty")] if field.required else []
    if field.type not in _TEXT:
        out.append((name, f"{raw} IS NOT NULL AND {name} IS NULL",
                    "is not a number" if field.type in ("INTEGER", "DOUBLE") else f"is not a valid {field.type}"))
    if field.type in ("INTEGER", "DOUBLE"):
        out.append((name, f"isnan({name}) OR isinf({name})", "is not a finite number"))
    if field.type == "INTEGER":
        out += [(name, f"{name} <> floor({name})", "is not a whole number"),
                (name, f"abs({name}) > {INT32_MAX}", "is outside the INTEGER column's range")]
    return out + [(name, re.sub(r"\bv\b", name, cond), problem) for cond, problem in field.checks]


# Accuracies are stored in percent. A file of fractions (0.93 for 93 %) would pass the 0-100 check and
# be stored a hundred times too small, so a file whose every accuracy lies in [0, 1] must say its scale.
ACCURACY_SCALES = ("percent", "fraction")
_ACCURACIES = ("top1", "top5")
# Column types that hold more than one value a cell (or bytes): never stored as their text.
_NOT_SCALAR = re.compile(r"\[|^(STRUCT|MAP|UNION)\b|^BLOB$|^BIT$")


def _stage(con, file: Path, scale: str | None = None) -> set[str]:
    """The file as it is into a temporary table (its rowid is the file's row order), then a typed view
    (accuracies in percent: a `fraction` file's are scaled); returns the columns the file has."""
    suffix = file.suffix.lower()
    # The file's name is a bound parameter like every value: never part of the SQL text.
    if suffix == ".parquet":
        source, params = "read_parquet(?)", [str(file)]
    elif suffix == ".csv":
        source, params = "read_csv(?, header = true, all_varchar = true, nullstr = ?)", [str(file), NULL_TEXTS]
    else:
        raise StoreError(f"unknown import format {suffix!r}: use .csv or .parquet")
    try:
        con.execute(f"CREATE TEMP TABLE staging AS SELECT * FROM {source}", params)
    except duckdb.Error as err:  # a damaged file: say so in one line
        raise StoreError(f"cannot read {file}: {str(err).splitlines()[0]}") from err
    described = con.execute("DESCRIBE staging").fetchall()
    present = {r[0] for r in described}
    known = {f.name for f in FIELDS}
    for name, kind, *_ in described:
        if name in known and _NOT_SCALAR.search(str(kind)):
            raise StoreError(f"column {name} of {file} holds {kind} values: each cell must be a single number or text")
    missing = [c for c in REQUIRED_IMPORT_COLUMNS if c not in present]
    if missing:
        raise StoreError(f"import file lacks column(s) {', '.join(missing)}; required: "
                         f"{', '.join(REQUIRED_IMPORT_COLUMNS)}")
    # Rows of a table made inside a transaction are numbered from a large offset, in file order.
    first = con.execute("SELECT coalesce(min(rowid), 0) FROM staging").fetchall()[0][0]
    cols = [f"rowid - {int(first)} + 1 AS row"]
    for field in FIELDS:
        raw, value = _typed(field, present)
        if scale == "fraction" and field.name in _ACCURACIES and field.name in present:
            value = f"round({value} * 100, 10)"  # 0.93 -> 93.0, not 93.00000000000001
        cols += [f"{raw} AS {field.name}_raw", f"{value} AS {field.name}"]
    con.execute(f"CREATE TEMP VIEW typed AS SELECT {', '.join(cols)} FROM staging")
    return present


def _first_bad_row(con) -> str | None:
    """The first failing check of the first bad row, in words; None when every row passes.

    The names' checks run once per distinct combination of names (reporting its first row), the
    numbers' per row; both count in file order, and within a row in the order of FIELDS."""
    own = [c for f in FIELDS for c in _field_checks(f)]
    checks = own + ROW_CHECKS
    by_names = [i for i, (col, _, _) in enumerate(own) if col in _NAMES]
    per_row = [i for i in range(len(checks)) if i not in by_names]

    def first(indices, table):
        case = " ".join(f"WHEN {checks[i][1]} THEN {i}" for i in indices)
        found = con.execute(f"SELECT row, k FROM (SELECT row, CASE {case} END AS k FROM {table}) "
                            f"WHERE k IS NOT NULL ORDER BY row, k LIMIT 1").fetchall()
        return tuple(found[0]) if found else None

    found = [f for f in (first(by_names, "names"), first(per_row, "typed")) if f]
    consistency = _n_total_conflict(con)
    if consistency:
        found.append((consistency[0], len(checks)))
    if not found:
        return None
    row, k = min(found)
    if k == len(checks):
        return consistency[1]
    col, _, problem = checks[k]
    if problem == "is empty":
        return f"row {row}: {col} is empty"
    field = next(f for f in FIELDS if f.name == col)
    value = con.execute(f"SELECT {col if field.type in _TEXT else col + '_raw'} FROM typed WHERE row = ?",
                        [row]).fetchall()[0][0]
    if field.type == "JSON":
        return f"row {row}: {col} {problem}"
    as_written = field.type not in _TEXT and problem not in ("is not a number", "is not a finite number")
    shown = value if as_written else repr(value)
    return f"row {row}: {col} = {shown} {problem}"


def _n_total_conflict(con) -> tuple[int, str] | None:
    """The first row whose n_total differs from its dataset's: the paper's for the paper's datasets,
    else the one already stored, else the first one given in the file."""
    found = con.execute("""
        WITH paper(dataset, want) AS (SELECT unnest(?), unnest(?)),
        stored AS (SELECT dataset, max(n_total) AS want FROM runs WHERE n_total IS NOT NULL
                   AND dataset IN (SELECT DISTINCT dataset FROM typed) GROUP BY dataset),
        given AS (SELECT dataset, arg_min(n_total, row) AS want, min(row) AS first_row FROM typed
                  WHERE n_total IS NOT NULL GROUP BY dataset),
        expected AS (
            SELECT dataset, want, why, first_row FROM (
                SELECT dataset, want, 'paper' AS why, NULL AS first_row, 0 AS rank FROM paper
                UNION ALL SELECT dataset, want, 'stored', NULL, 1 FROM stored
                UNION ALL SELECT dataset, want, 'given', first_row, 2 FROM given)
            QUALIFY row_number() OVER (PARTITION BY dataset ORDER BY rank) = 1)
        SELECT t.row, t.dataset, t.n_total_raw, e.want, e.why, e.first_row FROM typed t JOIN expected e USING (dataset)
        WHERE t.n_total IS NOT NULL AND t.n_total <> e.want ORDER BY t.row LIMIT 1""",
                        [list(PAPER_N_TOTAL), list(PAPER_N_TOTAL.values())]).fetchall()
    if not found:
        return None
    row, dataset, value, want, why, first_row = found[0]
    want = f"{int(want):,}"
    reason = {"paper": f"is not {dataset}'s {want}, the paper's full training set (tau = 10 / n_total)",
              "stored": f"differs from n_total = {want} already stored for {dataset}",
              "given": f"differs from n_total = {want} given for {dataset} in row {first_row}"}[why]
    return row, f"row {row}: n_total = {value} {reason}"


def _insert_sql(con, present: set[str]) -> str:
    """One INSERT of every new row, keyed; a run already stored is skipped (an anti-join on run_key:
    the runs table has no index to conflict on), and so is a file's later copy of a run."""
    # an absent column keeps the runs table's default, or gets the field's
    fields = [f for f in FIELDS if f.name in present or f.required or f.default]
    typed = ", ".join(f"CAST(t.{f.name} AS {f.type}) AS {f.name}" if not f.default else
                      f"coalesce(CAST(t.{f.name} AS {f.type}), {f.default}) AS {f.name}" for f in FIELDS)
    names = ", ".join(f.name for f in fields)
    join = " AND ".join(f"t.{c} IS NOT DISTINCT FROM n.{c}" for c in _NAMES)
    # Two cheap looks decide what the statement must do. Distinct hashes of every row's identity mean
    # no run repeats in the file (equal hashes only might: then a window keeps each key's first row).
    # A file whose (dataset, classifier) pairs each come in one stretch keeps one setting's runs in
    # few row groups as it is (a per-setting query skips the rest by their min/max); else it is sorted.
    identity = ", ".join(_NAMES + ("n_base", "n_real_added", "n_syn_added", "seed", "top1"))
    repeats, grouped = con.execute(f"""
        SELECT (SELECT count(*) > count(DISTINCT hash({identity})) FROM typed),
               (SELECT coalesce(bool_and(last - first + 1 = n), true) FROM (
                   SELECT min(row) AS first, max(row) AS last, count(*) AS n FROM typed GROUP BY dataset, classifier))
        """).fetchall()[0]
    return f"""
        INSERT INTO runs (run_id, run_key, source, {names})
        SELECT {_RUN_ID}, run_key, 'import', {names} FROM (
            SELECT *, concat('import:', substr(digest, 1, 32)) AS run_key FROM (
                SELECT {_DIGEST} AS digest, t.*
                FROM (SELECT row, {typed} FROM typed t) t JOIN names n ON {join})) k
        WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_key = k.run_key)
        {"QUALIFY row_number() OVER (PARTITION BY run_key ORDER BY row) = 1" if repeats else ""}
        {"" if grouped else "ORDER BY " + ORDER}"""


def _scale_problem(con, file: Path, scale: str | None, present: set[str]) -> str | None:
    """A fraction file's value outside [0, 1]; or, with no scale given, a file whose every accuracy lies in
    [0, 1], which reads as fractions as well as percent (the user must say which)."""
    columns = [c for c in _ACCURACIES if c in present]
    if scale == "fraction":
        for col in columns:
            found = con.execute(f"SELECT row, {col}_raw FROM typed WHERE TRY_CAST({col}_raw AS DOUBLE) NOT BETWEEN 0 AND 1 "
                                "ORDER BY row LIMIT 1").fetchall()
            if found:
                return f"row {found[0][0]}: {col} = {found[0][1]} is outside 0-1 (--accuracy-scale fraction)"
        return None
    if scale == "percent":
        return None
    top = con.execute(f"SELECT {', '.join(f'max({c})' for c in columns)}, count(*) FROM typed").fetchall()[0]
    if top[-1] and all(v is None or v <= 1 for v in top[:-1]):
        return (f"every accuracy in {file} lies between 0 and 1 (top1 at most {top[0]:g}); the store keeps percent: "
                f"pass --accuracy-scale fraction if these are fractions (stored x 100), or --accuracy-scale percent")
    return None


def import_runs(file: str | os.PathLike, path=None, accuracy_scale: str | None = None) -> tuple[int, int]:
    """Check every row in SQL first, then write all in one statement: (added, already present).

    Nothing is written unless every row passes; the error names the first bad row, its column and value.
    `accuracy_scale`: 'percent' or 'fraction' (stored x 100); None refuses a file whose every accuracy
    lies in [0, 1], which could be either."""
    file = Path(file)
    if accuracy_scale not in (None, *ACCURACY_SCALES):
        raise StoreError(f"accuracy scale {accuracy_scale!r}; valid: {', '.join(ACCURACY_SCALES)}")
    if not file.is_file():
        raise StoreError(f"no such file: {file}")
    with transaction(path) as con:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET memory_limit = ?", [IMPORT_MEMORY_LIMIT])
        try:
            present = _stage(con, file, accuracy_scale)
            con.execute(_JSON_STR)
            con.execute(f"CREATE TEMP TABLE names AS SELECT *, {_KEY_PREFIX} AS prefix FROM "
                        f"(SELECT {', '.join(_NAMES)}, min(row) AS row FROM typed GROUP BY ALL)")
            problem = _scale_problem(con, file, accuracy_scale, present) if accuracy_scale == "fraction" else None
            problem = problem or _first_bad_row(con) or _scale_problem(con, file, accuracy_scale, present)
            if problem:
                raise StoreError(problem)
            n = con.execute("SELECT count(*) FROM staging").fetchall()[0][0]
            added = con.execute(_insert_sql(con, present)).fetchall()[0][0]
            if added:
                _touch(con, "typed")
        except duckdb.Error as err:
            raise StoreError(f"cannot import {file}: {str(err).splitlines()[0]}") from err
    return added, n - added
