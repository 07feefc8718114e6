"""The DuckDB store: where it lives, short-lived connections, and forward migrations.

DuckDB lets one process write or many processes read a file, never both at once, so a
connection that stays open blocks every other process. Every function here opens a
connection for one statement or one transaction and closes it straight away; a lock
conflict is retried with exponential backoff instead of failing the caller.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from pathlib import Path
from typing import Iterator

import duckdb

log = logging.getLogger(__name__)
DEFAULT_PATH = Path("data") / "equivalence.duckdb"
ENV_VAR = "EQUIV_DB"


class StoreError(RuntimeError):
    """A store problem the user can act on; its message is one line."""


def db_path(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_PATH


def _is_lock_conflict(err: Exception) -> bool:
    text = str(err).lower()
    # Another process holds the file; or, inside this process, another thread (a worker's
    # heartbeat) has it open in the other mode, which DuckDB refuses until that one closes.
    return ("lock" in text and ("conflict" in text or "could not set" in text or "held" in text)) or \
        "different configuration than existing connections" in text


@contextlib.contextmanager
def connect(path: str | os.PathLike | None = None, *, read_only: bool = False,
            timeout_s: float = 60.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store for one short unit of work, retrying while another process holds it."""
    path = db_path(path)
    if read_only and not path.exists():
        raise StoreError(f"no store at {path}: run `engine store init` first")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    con = None
    # The connection is made inside the try, so that an interrupt arriving between opening it
    # and using it still closes it (a leaked connection would block every later one in this
    # process, DuckDB refusing a second one in the other mode).
    try:
        while con is None:
            try:
                con = duckdb.connect(str(path), read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as err:
                if not _is_lock_conflict(err) or time.monotonic() > deadline:
                    raise StoreError(f"cannot open store {path}: {str(err).splitlines()[0]}") from err
                # Jitter keeps several waiting workers from retrying in lockstep.
                wait = delay * (0.5 + random.random())
                log.debug("store %s is busy (%s); retrying in %.3f s", path, str(err).splitlines()[0], wait)
                time.sleep(wait)
                delay = min(delay * 2, 0.5)
        yield con
    finally:
        if con is not None:
            con.close()


@contextlib.contextmanager
def transaction(path: str | os.PathLike | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """One write transaction: everything inside lands, or nothing does."""
    with connect(path) as con:
        migrate(con)
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


# Forward migrations: index i holds the statements that take the schema from version i to i+1.
# Never edit a released step; append a new one.
MIGRATIONS: list[list[str]] = [
    [  # 1: runs, one row per trained classifier (per seed) or per published mean
        """CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            run_key VARCHAR NOT NULL UNIQUE,
            source VARCHAR NOT NULL CHECK (source IN ('paper', 'engine', 'import')),
            dataset VARCHAR NOT NULL,
            classifier VARCHAR NOT NULL,
            augmentation VARCHAR NOT NULL CHECK (augmentation IN ('real', 'closed', 'open')),
            generator VARCHAR,
            n_base INTEGER NOT NULL CHECK (n_base > 0),
            n_real_added INTEGER NOT NULL CHECK (n_real_added >= 0),
            n_syn_added INTEGER NOT NULL CHECK (n_syn_added >= 0),
            seed INTEGER,
            top1 DOUBLE NOT NULL,
            top5 DOUBLE,
            n_total INTEGER,
            config JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            note VARCHAR
        )""",
    ],
    [  # 2: what an engine run needs to be traced to: its device, time, data and generator
        "ALTER TABLE runs ADD COLUMN wall_time_s DOUBLE",
        "ALTER TABLE runs ADD COLUMN device VARCHAR",
        "ALTER TABLE runs ADD COLUMN indices_hash VARCHAR",
        "ALTER TABLE runs ADD COLUMN generator_id VARCHAR",
        "ALTER TABLE runs ADD COLUMN synthetic_set_id VARCHAR",
        """CREATE TABLE generators (
            generator_id VARCHAR PRIMARY KEY,
            dataset VARCHAR NOT NULL,
            n_base INTEGER NOT NULL,
            indices_hash VARCHAR NOT NULL,
            preset VARCHAR NOT NULL,
            seed INTEGER NOT NULL,
            train_images BIGINT NOT NULL,
            checkpoint VARCHAR NOT NULL,
            train_time_s DOUBLE,
            final_loss DOUBLE,
            memorisation JSON,
            config JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        """CREATE TABLE synthetic_sets (
            synthetic_set_id VARCHAR PRIMARY KEY,
            generator_id VARCHAR NOT NULL,
            n_images INTEGER NOT NULL,
            per_class INTEGER NOT NULL,
            seed INTEGER NOT NULL,
            path VARCHAR NOT NULL,
            sampling_s_per_image DOUBLE,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
    ],
]
MIGRATIONS.append([  # 3: the job queue that workers take studies from
    """CREATE TABLE jobs (
        job_id VARCHAR PRIMARY KEY,
        spec JSON NOT NULL,
        status VARCHAR NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 3,
        worker_id VARCHAR,
        heartbeat_at TIMESTAMP,
        error VARCHAR,
        created_at TIMESTAMP NOT NULL,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        run_ids JSON
    )""",
])
MIGRATIONS.append([  # 4: per-job progress reported by whoever runs the job (the cluster dispatcher)
    """CREATE TABLE job_progress (
        job_id VARCHAR PRIMARY KEY,
        planned INTEGER NOT NULL,
        done INTEGER NOT NULL,
        running JSON,
        updated_at TIMESTAMP NOT NULL
    )""",
])
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchall()[0]
    return int(row[0] or 0)


def migrate(con: duckdb.DuckDBPyConnection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema forward to `target`, one version per transaction."""
    version = current_version(con)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store schema version {version} is newer than this program's {SCHEMA_VERSION}: upgrade the program")
    for step in range(version, target):
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                        "version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT current_timestamp)")
            for statement in MIGRATIONS[step]:
                con.execute(statement)
            con.execute("INSERT INTO schema_version (version) VALUES (?)", [step + 1])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return max(version, target)
