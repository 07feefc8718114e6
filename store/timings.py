"""The measured times the cost model (engine.analysis.cost) is fitted to: each engine run's training
seconds with what it trained on, each generator's training seconds, each synthetic set's sampling
seconds per image, with the device that measured them. Read-only, one short connection each.
"""
from __future__ import annotations

import pandas as pd

from store.db import column_names, connect, has_table

RUN_COLUMNS = ["classifier", "dataset", "device", "n_base", "n_train", "n_total", "wall_time_s", "steps",
               "batch_size", "input_size"]
GENERATOR_COLUMNS = ["generator_id", "dataset", "kind", "preset", "train_images", "train_time_s", "device"]
SAMPLING_COLUMNS = ["kind", "preset", "sampling_s_per_image", "device"]


def _frame(path, sql: str, params: list, columns: list[str], needs: tuple[str, str]) -> pd.DataFrame:
    table, column = needs
    with connect(path, read_only=True) as con:
        if not has_table(con, table) or column not in column_names(con, table):
            return pd.DataFrame(columns=columns)
        return con.execute(sql, params).df()


def classifier_timings(path=None, source: str = "engine") -> pd.DataFrame:
    """One row per timed run of `source`: its stored classifier, dataset, device, training-set size,
    and the steps, batch size and input size its config recorded (null where it recorded none)."""
    sql = ("SELECT classifier, dataset, device, n_base, n_base + n_real_added + n_syn_added AS n_train, n_total, "
           "wall_time_s, TRY_CAST(json_extract(config, '$.steps') AS BIGINT) AS steps, "
           "TRY_CAST(json_extract(config, '$.recipe.batch_size') AS BIGINT) AS batch_size, "
           "TRY_CAST(json_extract(config, '$.recipe.input_size') AS BIGINT) AS input_size "
           "FROM runs WHERE source = ? AND wall_time_s > 0 ORDER BY classifier, dataset")
    return _frame(path, sql, [source], RUN_COLUMNS, ("runs", "wall_time_s"))


def generator_timings(path=None, default_kind: str = "edm") -> pd.DataFrame:
    """One row per trained generator with a training time: its kind (rows written before the kind was
    recorded are `default_kind`'s), preset, images seen, seconds, and the device of a run that used it
    (generators record no device of their own; null when no run used it)."""
    sql = ("SELECT g.generator_id, g.dataset, coalesce(json_extract_string(g.config, '$.kind'), ?) AS kind, "
           "g.preset, g.train_images, g.train_time_s, d.device "
           "FROM generators g LEFT JOIN (SELECT generator_id, any_value(device) AS device FROM runs "
           "WHERE generator_id IS NOT NULL GROUP BY generator_id) d USING (generator_id) "
           "WHERE g.train_time_s > 0 AND g.train_images > 0 ORDER BY g.generator_id")
    return _frame(path, sql, [default_kind], GENERATOR_COLUMNS, ("generators", "train_time_s"))


def sampling_timings(path=None, default_kind: str = "edm") -> pd.DataFrame:
    """One row per sampled closed-set synthetic set: its generator's kind and preset, the seconds each
    image took, and the device of a run that used it."""
    sql = ("SELECT coalesce(json_extract_string(g.config, '$.kind'), ?) AS kind, g.preset, s.sampling_s_per_image, "
           "d.device FROM synthetic_sets s JOIN generators g USING (generator_id) "
           "LEFT JOIN (SELECT synthetic_set_id, any_value(device) AS device FROM runs "
           "WHERE synthetic_set_id IS NOT NULL GROUP BY synthetic_set_id) d USING (synthetic_set_id) "
           "WHERE s.sampling_s_per_image > 0 ORDER BY g.generator_id")
    return _frame(path, sql, [default_kind], SAMPLING_COLUMNS, ("synthetic_sets", "sampling_s_per_image"))


def generator_checkpoints(path=None, default_kind: str = "edm") -> list[tuple]:
    """(kind, preset, checkpoint path) of every stored generator."""
    with connect(path, read_only=True) as con:
        if not has_table(con, "generators"):
            return []
        return con.execute("SELECT coalesce(json_extract_string(config, '$.kind'), ?), preset, checkpoint "
                           "FROM generators ORDER BY generator_id", [default_kind]).fetchall()
