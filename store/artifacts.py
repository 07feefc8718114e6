"""Generators and synthetic sets: rows that point at files under the artifacts folder."""
from __future__ import annotations

import json

from store.db import connect, db_path, has_table, migrate, transaction


def artifacts_dir(path=None):
    """Checkpoints and synthetic sets live beside the store, in <store folder>/artifacts."""
    return db_path(path).parent / "artifacts"


def _one(path, table: str, key: str, value: str) -> dict | None:
    if not db_path(path).exists():
        return None
    with connect(path, read_only=True) as con:
        if not has_table(con, table):
            return None
        cur = con.execute(f"SELECT * FROM {table} WHERE {key} = ?", [value])
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    return dict(zip(names, rows[0])) if rows else None


def get_generator(generator_id: str, path=None) -> dict | None:
    return _one(path, "generators", "generator_id", generator_id)


def get_synthetic_set(synthetic_set_id: str, path=None) -> dict | None:
    return _one(path, "synthetic_sets", "synthetic_set_id", synthetic_set_id)


def _upsert(path, table: str, key: str, row: dict) -> None:
    row = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in row.items()}
    cols = list(row)
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != key)
    sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
           f"ON CONFLICT ({key}) DO UPDATE SET {updates}")
    with transaction(path) as con:
        con.execute(sql, [row[c] for c in cols])


def upsert_generator(row: dict, path=None) -> None:
    _upsert(path, "generators", "generator_id", row)


def upsert_synthetic_set(row: dict, path=None) -> None:
    _upsert(path, "synthetic_sets", "synthetic_set_id", row)


def list_generators(path=None):
    with connect(path) as con:
        migrate(con)
    with connect(path, read_only=True) as con:
        return con.execute("SELECT * FROM generators ORDER BY created_at").df()


def set_memorisation(generator_id: str, result: dict, path=None) -> None:
    with transaction(path) as con:
        con.execute("UPDATE generators SET memorisation = ? WHERE generator_id = ?", [json.dumps(result), generator_id])
