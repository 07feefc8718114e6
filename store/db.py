"""The DuckDB store: where it lives, short-lived connections, and forward migrations.

DuckDB lets one process write or many processes read a file, never both at once, so a
connection that stays open blocks every other process. Every function here opens a
connection for one statement or one transaction and closes it straight away; a lock
conflict is retried with exponential backoff instead of failing the caller.

DuckDB's own file lock is not enough to hand the file from one process to the next: with duckdb
2.0.1, processes that each open, insert one row, commit and close, on a busy machine, lose a row
whose commit had returned in a third to a half of tries (with or without a CHECKPOINT before
close; tests/test_store.py has the case): the next process gets in while the last one's close is
still finishing. So every connection here also holds a lock on a file beside the store
(`<store>.lock`) from before it opens until after it has closed: shared for readers, exclusive for
a writer. With it, no try lost a row.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import random
import threading
import time
from pathlib import Path
from typing import Iterator

import duckdb

log = logging.getLogger(__name__)
DEFAULT_PATH = Path("data") / "equivalence.duckdb"
ENV_VAR = "EQUIV_DB"


class StoreError(RuntimeError):
    """A store problem the user can act on; its message is one line."""


INTERRUPTED = "Query interrupted"   # what DuckDB raises (a RuntimeError) when a signal lands in a statement


# Never fetch or load extensions behind the user's back: a file of another format (SQLite, say) made
# DuckDB try to download its reader. Everything the store needs is built in.
CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# DuckDB's file starts with three 4 KiB headers, then its blocks, block i at HEADER_BYTES + i * block_size.
# A file shorter than its highest block in use ends is damaged (a fresh store holds exactly its headers
# and blocks: tests/test_hardening.py checks that, so a change of DuckDB's layout shows there). The
# headers' own block_count is no guide: it counts free blocks that DuckDB trims off the file's end.
HEADER_BYTES = 3 * 4096
_CHECKED: dict = {}  # path -> the file's (inode, size, mtime) when it last passed check_store


def _file_state(path: Path) -> tuple:
    s = path.stat()
    return s.st_ino, s.st_size, s.st_mtime_ns


def bytes_in_use(con: duckdb.DuckDBPyConnection) -> int:
    """How long the file must be for every block its tables' checkpointed data use (their metadata
    says where each segment lies, without reading the segments)."""
    block_size = con.execute("SELECT block_size FROM pragma_database_size() "
                             "WHERE database_name = current_database()").fetchall()[0][0]
    top = -1
    for (table,) in con.execute("SELECT table_name FROM duckdb_tables() "
                                "WHERE database_name = current_database()").fetchall():
        found = con.execute("SELECT max(block_id) FROM pragma_storage_info(?) WHERE persistent",
                            [table]).fetchall()[0][0]
        top = max(top, -1 if found is None else int(found))
    return HEADER_BYTES + (top + 1) * int(block_size)


def check_store(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse, for readers and writers alike, before anything is read or written: a damaged file (a
    truncated store opens, and a writer would add to it, while every read of its missing blocks fails),
    a DuckDB file that is not an equivalence store, and a store of a newer schema than this program's.
    A file unchanged since it last passed is not looked at again (a page makes many connections)."""
    state = _file_state(path)
    if _CHECKED.get(path) == state:
        return
    expected = bytes_in_use(con)
    if state[1] < expected:
        raise StoreError(f"store {path} is damaged: the file holds {state[1]:,} bytes, but its tables' data reach "
                         f"byte {expected:,} (truncated?); restore it from a backup or give another --db")
    tables = table_names(con)
    if tables and "schema_version" not in tables:
        raise StoreError(f"{path} is not an equivalence store (it holds table(s) {', '.join(sorted(tables)[:5])}): "
                         f"give another --db")
    _check_not_newer(current_version(con))
    _CHECKED[path] = state


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


class _ProcessLocks:
    """POSIX record locks on `<store>.lock`, one per store per process, counted across threads.

    Record locks belong to the process, so threads (a worker's heartbeat beside its runs, the
    dashboard's sessions) share one, as they share DuckDB's in-process database; the file stays
    open while any thread holds it, because closing any descriptor of it would drop the lock."""

    def __init__(self):
        self._forget()
        if hasattr(os, "register_at_fork"):  # a forked child holds none of its parent's locks
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self):
        self._guard = threading.Lock()
        self._held = {}  # lock path -> [fd, readers, writers, mode]
        self._turns = {}  # lock path -> RLock

    def writer_turn(self, lock_path: Path) -> threading.RLock:
        """Writers of one process take turns too: two threads' transactions on one DuckDB database
        (a heartbeat and a job's finish, both updating the job's row) fail with "Conflict on tuple
        deletion" instead of waiting. Re-entrant, for a writer that opens a second connection."""
        with self._guard:
            return self._turns.setdefault(lock_path, threading.RLock())

    def try_acquire(self, lock_path: Path, write: bool) -> bool:
        """Take (or join) the lock without waiting; False while another process holds it."""
        with self._guard:
            entry = self._held.get(lock_path)
            if entry is None:
                entry = [os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644), 0, 0, None]
            need = fcntl.LOCK_EX if (write or entry[2]) else fcntl.LOCK_SH
            if entry[3] != need and entry[3] != fcntl.LOCK_EX:
                try:
                    fcntl.lockf(entry[0], need | fcntl.LOCK_NB)
                except OSError as err:
                    if lock_path not in self._held:
                        os.close(entry[0])
                    if err.errno in (errno.EACCES, errno.EAGAIN):
                        return False
                    raise
                entry[3] = need
            entry[2 if write else 1] += 1
            self._held[lock_path] = entry
            return True

    def release(self, lock_path: Path, write: bool) -> None:
        with self._guard:
            entry = self._held[lock_path]
            entry[2 if write else 1] -= 1
            if entry[1] == entry[2] == 0:
                del self._held[lock_path]
                os.close(entry[0])  # drops the lock
            elif entry[2] == 0 and entry[3] == fcntl.LOCK_EX:
                fcntl.lockf(entry[0], fcntl.LOCK_SH)  # only readers left: let other readers in
                entry[3] = fcntl.LOCK_SH


_LOCKS = _ProcessLocks()


def lock_path(path: str | os.PathLike) -> Path:
    path = Path(path).resolve()
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def connect(path: str | os.PathLike | None = None, *, read_only: bool = False,
            timeout_s: float = 60.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store for one short unit of work, retrying while another process holds it."""
    path = db_path(path)
    if read_only and not path.exists():
        raise StoreError(f"no store at {path}: run `engine store init` first")
    if path.is_dir():
        raise StoreError(f"store path {path} is a folder; give a file path such as {path / 'equivalence.duckdb'}")
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the store's folder {path.parent}: {err.strerror or err}") from None
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    con = None
    locked = lock_path(path)
    write = not read_only
    held = False
    turn, my_turn = (_LOCKS.writer_turn(locked) if write else None), False
    # The connection is made inside the try, so that an interrupt arriving between opening it
    # and using it still closes it (a leaked connection would block every later one in this
    # process, DuckDB refusing a second one in the other mode), and the lock is let go only
    # after the close has returned.
    try:
        if turn is not None:
            my_turn = turn.acquire(timeout=max(0.0, deadline - time.monotonic()))  # one deadline for both waits
            if not my_turn:
                raise StoreError(f"cannot open store {path}: still busy after {timeout_s:g} s (another thread "
                                 f"of this process is writing)")
        while con is None:
            busy = None
            try:
                held = _LOCKS.try_acquire(locked, write)
            except OSError as err:
                if write:
                    raise StoreError(f"cannot lock store {path}: cannot open {locked}: "
                                     f"{err.strerror or err}") from None
                held = None  # read-only media: no writer can be there either; read without it
            if held is False:
                busy = "another process is writing" if read_only else "another process has it open"
            else:
                try:
                    con = duckdb.connect(str(path), read_only=read_only, config=CONFIG)
                except duckdb.Error as err:
                    if not _is_lock_conflict(err) or time.monotonic() > deadline:
                        raise StoreError(f"cannot open store {path}: {_first_line(err)}") from err
                    busy = _first_line(err)
                    if held:
                        _LOCKS.release(locked, write)
                    held = False
            if con is None:
                if time.monotonic() > deadline:
                    raise StoreError(f"cannot open store {path}: still busy after {timeout_s:g} s ({busy})")
                # Jitter keeps several waiting workers from retrying in lockstep.
                wait = delay * (0.5 + random.random())
                log.debug("store %s is busy (%s); retrying in %.3f s", path, busy, wait)
                time.sleep(wait)
                delay = min(delay * 2, 0.5)
        # One time base for every process and every TIMESTAMP: UTC, whatever the host's TZ.
        con.execute("SET TimeZone = 'UTC'")
        check_store(con, path.resolve())
        try:
            yield con
        except RuntimeError as err:
            # DuckDB's client turns a Ctrl-C (or SIGTERM) that lands inside a statement into this
            # ordinary error, and a caller would take it for a failed statement and go on: a worker
            # marked its job failed and took the next one. It is the user's stop, so it is raised as one.
            if str(err) == INTERRUPTED:
                raise KeyboardInterrupt from err
            raise
    finally:
        try:
            if con is not None:
                con.close()
            if held:
                _LOCKS.release(locked, write)
        finally:
            if my_turn:
                turn.release()


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


# The runs columns from `source` to `note` with their checks: step 1 created them, step 12
# recreates them unchanged (only the key columns' indexes go).
_RUN_FIELDS = """source VARCHAR NOT NULL CHECK (source IN ('paper', 'engine', 'import')),
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
            note VARCHAR"""

# Forward migrations: index i holds the statements that take the schema from version i to i+1.
# Never edit a released step; append a new one.
MIGRATIONS: list[list[str]] = [
    [  # 1: runs, one row per trained classifier (per seed) or per published mean
        f"""CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            run_key VARCHAR NOT NULL UNIQUE,
            {_RUN_FIELDS}
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
MIGRATIONS.append([  # 4: cancelling running jobs, job time limits, progress, and the workers alive per host
    "ALTER TABLE jobs ADD COLUMN cancel_requested BOOLEAN DEFAULT false",
    "ALTER TABLE jobs ADD COLUMN max_hours DOUBLE",
    "ALTER TABLE jobs ADD COLUMN runs_planned INTEGER",
    "ALTER TABLE jobs ADD COLUMN runs_done INTEGER",
    """CREATE TABLE workers (
        worker_id VARCHAR PRIMARY KEY,
        host VARCHAR NOT NULL,
        pid INTEGER,
        device VARCHAR,
        threads INTEGER,
        started_at TIMESTAMP NOT NULL,
        seen_at TIMESTAMP NOT NULL
    )""",
])
MIGRATIONS.append([  # 5: stores made before Table 9's inconsistent row was read as its total says (20,000)
    "UPDATE runs SET n_real_added = 20000, note = 'paper Table 9, mean of 3 trials. Table 9 prints this row as "
    "15,000 added but gives its total as 45,000 and its ratio as 1:0.8, and Table 11 uses 20,000 for 1:0.8 at "
    "this base; it is read as 20,000 added (`engine paper-check --tab9 printed` and the Paper check page show "
    "the printed reading).' WHERE run_key = 'paper:table9:CIFAR-10:ResNet-110:real::25000:15000' "
    "AND n_real_added = 15000",
])
MIGRATIONS.append([  # 6: a change stamp per (dataset, classifier): readers cache per setting on it
    """CREATE TABLE run_changes (
        dataset VARCHAR NOT NULL,
        classifier VARCHAR NOT NULL,
        version BIGINT NOT NULL,
        changed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (dataset, classifier)
    )""",
    "INSERT INTO run_changes SELECT dataset, classifier, 1, current_timestamp FROM runs GROUP BY dataset, classifier",
])
MIGRATIONS.append([  # 7: quality of each synthetic set, and each generator's loss at its checkpoints
    """CREATE TABLE quality (
        quality_id VARCHAR PRIMARY KEY,
        synthetic_set_id VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,
        value DOUBLE,
        ci_low DOUBLE,
        ci_high DOUBLE,
        extractor VARCHAR,
        extractor_sha256 VARCHAR,
        n_real INTEGER,
        n_syn INTEGER,
        config JSON,
        detail JSON,
        seconds DOUBLE,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
    "ALTER TABLE generators ADD COLUMN loss_curve JSON",
])
MIGRATIONS.append([  # 8: per-job progress reported by whoever runs the job (the cluster dispatcher)
    """CREATE TABLE job_progress (
        job_id VARCHAR PRIMARY KEY,
        planned INTEGER NOT NULL,
        done INTEGER NOT NULL,
        running JSON,
        updated_at TIMESTAMP NOT NULL
    )""",
])
MIGRATIONS.append([  # 9: how much quality measurement a job's worker runs after closed-set runs (NULL: the default)
    "ALTER TABLE jobs ADD COLUMN quality VARCHAR",
])
MIGRATIONS.append([  # 10: imported (open-set) synthetic sets beside the closed-set ones the engine samples
    # kind 'open': a user's images (engine synthetic import), named by the user; the content hash
    # makes a re-import a no-op; class_counts maps each dataset class to its images.
    "ALTER TABLE synthetic_sets ADD COLUMN kind VARCHAR DEFAULT 'closed'",
    "UPDATE synthetic_sets SET kind = 'closed' WHERE kind IS NULL",
    "ALTER TABLE synthetic_sets ADD COLUMN name VARCHAR",
    "ALTER TABLE synthetic_sets ADD COLUMN dataset_name VARCHAR",
    "ALTER TABLE synthetic_sets ADD COLUMN image_size INTEGER",
    "ALTER TABLE synthetic_sets ADD COLUMN channels INTEGER",
    "ALTER TABLE synthetic_sets ADD COLUMN content_hash VARCHAR",
    "ALTER TABLE synthetic_sets ADD COLUMN class_counts JSON",
    "ALTER TABLE synthetic_sets ADD COLUMN source_path VARCHAR",
    "ALTER TABLE synthetic_sets ADD COLUMN imported_at TIMESTAMP",
])
MIGRATIONS.append([  # 11: traditional augmentation (the paper's Tab. 6) of each run: part of a setting's identity
    "ALTER TABLE runs ADD COLUMN traditional VARCHAR",
    # Engine rows say it in their recipe (crop_pad 0 = no crop); the published runs all used random crop +
    # flip (the paper, appendices B and D); imports and anything else get their dataset's default
    # (engine.spec.DEFAULT_TRADITIONAL: digits crops only, a flipped digit being another digit).
    """UPDATE runs SET traditional = CASE
        WHEN source = 'engine' AND json_extract(config, '$.recipe.flip') IS NOT NULL THEN
            CASE WHEN CAST(json_extract(config, '$.recipe.crop_pad') AS INTEGER) > 0
                 THEN CASE WHEN CAST(json_extract(config, '$.recipe.flip') AS BOOLEAN) THEN 'crop+flip' ELSE 'crop' END
                 ELSE CASE WHEN CAST(json_extract(config, '$.recipe.flip') AS BOOLEAN) THEN 'flip' ELSE 'none' END END
        WHEN source = 'paper' THEN 'crop+flip'
        WHEN dataset = 'digits' THEN 'crop'
        ELSE 'crop+flip' END""",
])
MIGRATIONS.append([  # 12: runs without ART indexes; imports write a million rows 4x faster (docs/store.md)
    # DuckDB cannot drop a PRIMARY KEY or UNIQUE constraint, so the table is rebuilt: the same columns,
    # checks and defaults, without the indexes on run_id and run_key (the writers keep run_key unique),
    # its rows sorted by setting so that a per-setting query reads only that setting's row groups.
    # run_id and run_key are random hex: stored uncompressed, a million of them are written in a third
    # of the time DuckDB's dictionary compression takes to find nothing to share (85 MB instead of 43).
    f"""CREATE TABLE runs_v12 (
        run_id VARCHAR NOT NULL USING COMPRESSION uncompressed,
        run_key VARCHAR NOT NULL USING COMPRESSION uncompressed,
        {_RUN_FIELDS},
        wall_time_s DOUBLE,
        device VARCHAR,
        indices_hash VARCHAR,
        generator_id VARCHAR,
        synthetic_set_id VARCHAR,
        traditional VARCHAR
    )""",
    # BY NAME: a column this list lacks fails here rather than being dropped.
    "INSERT INTO runs_v12 BY NAME SELECT * FROM runs "
    "ORDER BY dataset, classifier, augmentation, generator, n_base, n_real_added, n_syn_added, seed",
    "DROP TABLE runs",
    "ALTER TABLE runs_v12 RENAME TO runs",
])
MIGRATIONS.append([  # 13: how a generated open-set set was made (engine synthetic generate): pipeline and CLIP
    # folder hashes, prompt protocol, sampling settings, filter; NULL for imported sets and closed-set ones.
    "ALTER TABLE synthetic_sets ADD COLUMN provenance JSON",
])
SCHEMA_VERSION = len(MIGRATIONS)


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables a store has: an older store may lack the newer ones, so readers ask first."""
    return {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def column_names(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """A table's columns: a store older than a migration lacks that migration's columns."""
    return {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                      [table]).fetchall()}


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return name in table_names(con)


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    if not has_table(con, "schema_version"):
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchall()[0]
    return int(row[0] or 0)


def _check_not_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store schema version {version} is newer than this program's {SCHEMA_VERSION}: upgrade the program")


def upgrade(path=None) -> int:
    """Bring a store written by an older version forward (a reader's pages ask for columns later
    steps add); a store already current costs one read-only look. Returns the schema version."""
    with connect(path, read_only=True) as con:
        version = current_version(con)
    _check_not_newer(version)
    if version < SCHEMA_VERSION:
        with connect(path) as con:
            version = migrate(con)
    return version


def migrate(con: duckdb.DuckDBPyConnection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema forward to `target`, one version per transaction."""
    version = current_version(con)
    if version == 0:
        foreign = sorted(table_names(con))
        if foreign:
            raise StoreError(f"this DuckDB file is not an equivalence store (it holds table(s) "
                             f"{', '.join(sorted(foreign)[:5])}); refusing to add tables to it: give another --db")
    _check_not_newer(version)
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
