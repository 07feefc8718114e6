"""Run files in and out of the store: `engine runs import` (CSV or Parquet, every row checked in SQL
before one INSERT writes them all) and `engine runs export` (the filtered runs streamed out).

Imports and exports stay inside DuckDB (read_parquet / read_csv into a staging table, every check in
SQL, one INSERT; a relation written out for exports), with every value, file name included, bound as a
parameter: filters and files are a user's text.
"""
from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from engine.catalog.vocab import AUGMENTATIONS, BASES, REAL, REAL_BASE, SUPERVISED, SYNTHETIC_BASE, TASKS, TRADITIONAL
from store.db import StoreError, connect, transaction
from store.runs import ORDER, PAPER_N_TOTAL, RUN_COLUMNS, _DEFAULT_TRADITIONAL, _current, _touch, _where


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
    # Every protocol's runs unless the filters name one: an export is the store's, appendix G's included.
    where, params = _where({"base": None, "task": None, **filters})
    _current(path)
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
    # Appendix G's protocols; absent or empty: the main protocol's (a real base, supervised).
    Field("base", "VARCHAR", checks=((f"v NOT IN {BASES!r}", f"is not one of {', '.join(BASES)}"),),
          default=f"'{REAL_BASE}'"),
    Field("task", "VARCHAR", checks=((f"v NOT IN {TASKS!r}", f"is not one of {', '.join(TASKS)}"),),
          default=f"'{SUPERVISED}'"),
]
# Checks across columns, after every column's own: (column reported, SQL true when bad, problem).
ROW_CHECKS = [
    ("n_syn_added", f"augmentation = '{REAL}' AND n_syn_added <> 0", f"but the run's augmentation is {REAL}"),
    ("n_real_added", f"augmentation <> '{REAL}' AND n_real_added <> 0", "but a synthetic run adds no real images"),
    ("base", f"base = '{SYNTHETIC_BASE}' AND generator IS NULL", "needs a generator: the synthetic set of its base"),
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
    ', "top1": ', CAST(t.top1 AS VARCHAR), """ + f"""
    CASE WHEN t.base = '{REAL_BASE}' AND t.task = '{SUPERVISED}' THEN ''
         ELSE concat(', "base": ', py_json_str(t.base), ', "task": ', py_json_str(t.task)) END, '}}'))"""

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
    identity = ", ".join(_NAMES + ("n_base", "n_real_added", "n_syn_added", "seed", "top1", "base", "task"))
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
