"""Synthetic sets as a user sees them: list every set (closed and open), add an imported (open)
set, and remove one. The images themselves are .npz files under the store's artifacts folder."""
from __future__ import annotations

import json

import pandas as pd

from engine.catalog.vocab import OPEN
from store.db import StoreError, column_names, connect, db_path, has_table, migrate, transaction


def open_set(name: str, path=None) -> dict | None:
    """The imported set called NAME, or None (also when there is no store yet)."""
    if not db_path(path).exists():
        return None
    with connect(path, read_only=True) as con:
        if not has_table(con, "synthetic_sets") or "kind" not in column_names(con, "synthetic_sets"):
            return None
        cur = con.execute("SELECT * FROM synthetic_sets WHERE kind = ? AND name = ?", [OPEN, name])
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    if not rows:
        return None
    row = dict(zip(names, rows[0]))
    for key in ("class_counts", "provenance"):  # provenance: stores from before migration 13 lack it
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def insert_open_set(row: dict, path=None) -> str:
    """Insert an imported set; returns 'added', or 'present' when the same images are already
    stored under the same name. Another name for the same images, or the same name for other
    images, is a StoreError naming the existing set."""
    row = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in row.items()}
    with transaction(path) as con:
        same_name = con.execute("SELECT content_hash FROM synthetic_sets WHERE kind = ? AND name = ?",
                                [OPEN, row["name"]]).fetchall()
        if same_name:
            if same_name[0][0] == row["content_hash"]:
                return "present"
            raise StoreError(f"a synthetic set named {row['name']!r} already holds other images: choose another "
                             f"name, or `engine synthetic remove {row['name']}` first")
        same_images = con.execute("SELECT name FROM synthetic_sets WHERE kind = ? AND content_hash = ?",
                                  [OPEN, row["content_hash"]]).fetchall()
        if same_images:
            raise StoreError(f"these images are already imported as {same_images[0][0]!r} for {row['dataset_name']}; "
                             f"use that name")
        cols = list(row)
        con.execute(f"INSERT INTO synthetic_sets ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                    [row[c] for c in cols])
    return "added"


def list_sets(path=None) -> pd.DataFrame:
    """Every synthetic set, closed and open, with its name, dataset, counts and the runs that use it."""
    with connect(path) as con:
        migrate(con)
    with connect(path, read_only=True) as con:
        return con.execute("""
            SELECT s.kind, coalesce(s.name, CAST(json_extract_string(g.config, '$.name') AS VARCHAR)) AS name,
                   coalesce(s.dataset_name, g.dataset) AS dataset, g.n_base, s.synthetic_set_id, s.n_images,
                   s.per_class, s.class_counts, s.image_size, s.channels, s.source_path,
                   coalesce(s.imported_at, s.created_at) AS created_at,
                   (SELECT count(*) FROM runs r WHERE r.synthetic_set_id = s.synthetic_set_id) AS runs
            FROM synthetic_sets s LEFT JOIN generators g USING (generator_id)
            ORDER BY s.kind, name, s.synthetic_set_id""").df()


def runs_using(synthetic_set_id: str, path=None) -> int:
    with connect(path, read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM runs WHERE synthetic_set_id = ?",
                               [synthetic_set_id]).fetchall()[0][0])


def jobs_needing(con, name: str) -> list[tuple[str, str]]:
    """(job id, status) of the queued and running open-set jobs that draw from the imported set NAME."""
    if not has_table(con, "jobs"):
        return []
    return [tuple(r) for r in con.execute(
        "SELECT job_id, status FROM jobs WHERE status IN ('queued', 'running') "
        "AND json_extract_string(spec, '$.augmentation') = ? AND json_extract_string(spec, '$.generator') = ? "
        "ORDER BY created_at, job_id", [OPEN, name]).fetchall()]


def delete_set(synthetic_set_id: str, path=None, *, name: str | None = None, force: bool = False) -> int:
    """The set's row and its quality rows; its runs stay (they are measurements). Returns the runs that use it.

    Refused unless `force` while stored runs use it, or a queued or running job needs it (a running one
    may not have stored a run yet): checked in the removal's own transaction, so a job queued or a run
    stored a moment before cannot slip between the check and the delete."""
    with transaction(path) as con:
        n_runs = int(con.execute("SELECT count(*) FROM runs WHERE synthetic_set_id = ?",
                                 [synthetic_set_id]).fetchall()[0][0])
        needing = jobs_needing(con, name) if name else []
        if not force and needing:
            shown = ", ".join(f"{j} ({status})" for j, status in needing[:3]) + (" ..." if len(needing) > 3 else "")
            raise StoreError(f"{len(needing)} job(s) need synthetic set {name!r}: {shown}; cancel them "
                             f"(`engine queue cancel ID`) or pass --force")
        if not force and n_runs:
            raise StoreError(f"{n_runs} stored runs use synthetic set {name or synthetic_set_id!r}: pass --force to "
                             f"remove it anyway (the runs stay)")
        if has_table(con, "quality"):
            con.execute("DELETE FROM quality WHERE synthetic_set_id = ?", [synthetic_set_id])
        con.execute("DELETE FROM synthetic_sets WHERE synthetic_set_id = ?", [synthetic_set_id])
    return n_runs


def open_runs_elsewhere(name: str, synthetic_set_id: str, path=None) -> int:
    """Engine runs stored under open-set generator NAME from another set than this one."""
    if not db_path(path).exists():
        return 0
    with connect(path, read_only=True) as con:
        if not has_table(con, "runs"):
            return 0
        return int(con.execute("SELECT count(*) FROM runs WHERE augmentation = ? AND generator = ? "
                               "AND synthetic_set_id IS NOT NULL AND synthetic_set_id <> ?",
                               [OPEN, name, synthetic_set_id]).fetchall()[0][0])


def set_file_used(file: str, path=None) -> bool:
    with connect(path, read_only=True) as con:
        return bool(con.execute("SELECT count(*) FROM synthetic_sets WHERE path = ?", [file]).fetchall()[0][0])


def open_sets(path=None) -> pd.DataFrame:
    """The imported sets (name, dataset, images), read-only: empty when there is no store or none."""
    if not db_path(path).exists():
        return pd.DataFrame(columns=["name", "dataset_name", "n_images"])
    with connect(path, read_only=True) as con:
        if not has_table(con, "synthetic_sets") or "kind" not in column_names(con, "synthetic_sets"):
            return pd.DataFrame(columns=["name", "dataset_name", "n_images"])
        return con.execute("SELECT name, dataset_name, n_images FROM synthetic_sets WHERE kind = ? "
                           "ORDER BY name", [OPEN]).df()
