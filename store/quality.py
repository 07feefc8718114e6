"""Quality metrics of synthetic sets: one row per (set, metric), replaced when recomputed."""
from __future__ import annotations

import json
import uuid

import pandas as pd

from store.db import column_names, connect, db_path, has_table, migrate, table_names, transaction

COLUMNS = ["quality_id", "synthetic_set_id", "metric", "value", "ci_low", "ci_high", "extractor",
           "extractor_sha256", "n_real", "n_syn", "config", "detail", "seconds"]


def _ready(path) -> None:
    with connect(path) as con:
        migrate(con)


def write_metrics(synthetic_set_id: str, rows: list[dict], path=None) -> None:
    """Store the given metrics of one set; a metric computed again replaces its old row."""
    if not rows:
        return
    records = []
    for row in rows:
        rec = {c: row.get(c) for c in COLUMNS}
        rec["quality_id"] = str(uuid.uuid4())
        rec["synthetic_set_id"] = synthetic_set_id
        for c in ("config", "detail"):
            rec[c] = json.dumps(rec[c]) if rec[c] is not None else None
        records.append(rec)
    with transaction(path) as con:
        con.executemany("DELETE FROM quality WHERE synthetic_set_id = ? AND metric = ?",
                        [[synthetic_set_id, r["metric"]] for r in records])
        con.executemany(f"INSERT INTO quality ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})",
                        [[r[c] for c in COLUMNS] for r in records])




def query_quality(path=None, synthetic_set_id: str | None = None) -> pd.DataFrame:
    """Stored quality rows (all sets, or one), newest last; empty when there are none yet."""
    if not db_path(path).exists():
        return pd.DataFrame(columns=COLUMNS + ["created_at"])
    with connect(path, read_only=True) as con:
        if not has_table(con, "quality"):
            return pd.DataFrame(columns=COLUMNS + ["created_at"])
        sql = "SELECT * FROM quality" + (" WHERE synthetic_set_id = ?" if synthetic_set_id else "") + \
              " ORDER BY synthetic_set_id, metric"
        return con.execute(sql, [synthetic_set_id] if synthetic_set_id else []).df()


# Each synthetic set with its generator and the name its runs were stored under (runs.generator).
_SETS_SQL = """
    SELECT s.*, g.dataset, g.n_base, g.indices_hash, g.preset, g.train_images, g.train_time_s, g.final_loss,
           g.memorisation, g.config AS generator_config, g.loss_curve, g.checkpoint,
           (SELECT min(r.generator) FROM runs r WHERE r.synthetic_set_id = s.synthetic_set_id) AS generator
    FROM synthetic_sets s LEFT JOIN generators g USING (generator_id)
"""


def list_sets(path=None) -> pd.DataFrame:
    """Every stored synthetic set, with its generator's fields; empty when there is no store."""
    if not db_path(path).exists():
        return pd.DataFrame()
    with connect(path, read_only=True) as con:
        tables = table_names(con)
        if not {"synthetic_sets", "generators", "runs"} <= tables:
            return pd.DataFrame()
        cols = column_names(con, "generators")
        sql = _SETS_SQL if "loss_curve" in cols else _SETS_SQL.replace("g.loss_curve,", "NULL AS loss_curve,")
        set_cols = column_names(con, "synthetic_sets")
        if "dataset_name" in set_cols:  # an imported (open) set has no generator row: its own dataset
            sql = sql.replace("SELECT s.*, g.dataset,", "SELECT s.*, coalesce(g.dataset, s.dataset_name) AS dataset,")
        return con.execute(sql + " ORDER BY dataset, g.n_base, s.synthetic_set_id").df()


def resolve_sets(query: str, path=None) -> pd.DataFrame:
    """The sets a user means by SET: a synthetic set id, a generator id, a generator name or an
    imported set's name."""
    _ready(path)
    sets = list_sets(path)
    if sets.empty:
        return sets
    for column in ("synthetic_set_id", "generator_id", "generator", "name"):  # name: an imported set's
        if column not in sets:
            continue
        hit = sets[sets[column] == query]
        if len(hit):
            return hit.reset_index(drop=True)
    return sets.iloc[0:0]


def gains_at_ratio(path=None, ratio: float = 1.0) -> pd.DataFrame:
    """Per synthetic set: accuracy gain of adding ratio x n_base of its images over the base run,
    paired by seed (mean, sd, pairs), from the engine's runs."""
    from store.runs import PROTOCOL_DEFAULTS, _current
    if not db_path(path).exists():
        return pd.DataFrame()
    _current(path)
    with connect(path, read_only=True) as con:
        if not has_table(con, "runs"):
            return pd.DataFrame()
        # The main protocol's runs only: a synthetic base's or a zero-shot run's gain is another question.
        main = list(PROTOCOL_DEFAULTS.values())
        return con.execute("""
            WITH syn AS (
                SELECT synthetic_set_id, dataset, classifier, n_base, seed, avg(top1) AS top1
                FROM runs WHERE synthetic_set_id IS NOT NULL AND n_syn_added = round(? * n_base)
                AND base = ? AND task = ? GROUP BY ALL),
            base AS (
                SELECT dataset, classifier, n_base, seed, avg(top1) AS top1 FROM runs
                WHERE source = 'engine' AND n_real_added = 0 AND n_syn_added = 0 AND base = ? AND task = ?
                GROUP BY ALL)
            SELECT syn.synthetic_set_id, syn.dataset, syn.classifier, syn.n_base,
                   avg(syn.top1 - base.top1) AS gain_mean, stddev_samp(syn.top1 - base.top1) AS gain_sd,
                   count(*) AS pairs
            FROM syn JOIN base USING (dataset, classifier, n_base, seed)
            GROUP BY ALL ORDER BY syn.dataset, syn.n_base
        """, [ratio, *main, *main]).df()


def subset_seed_of(generator_id: str, path=None) -> int | None:
    """The subset seed that chose a generator's base set, from the runs that used it."""
    if not db_path(path).exists():
        return None
    with connect(path, read_only=True) as con:
        row = con.execute("SELECT CAST(json_extract(config, '$.subset_seed') AS INTEGER) FROM runs "
                          "WHERE generator_id = ? AND config IS NOT NULL LIMIT 1", [generator_id]).fetchall()
    return int(row[0][0]) if row and row[0][0] is not None else None
