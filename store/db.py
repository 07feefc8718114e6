"""The DuckDB store: where it lives, short-lived connections, and forward migrations.

DuckDB lets one process write or many processes read a file, never both at once, so a
connection that stays open blocks every other process. Every function here opens a
connection for one statement or one transaction and closes it straight away; a lock
conflict is retried with exponential backoff instead of failing the caller.

DuckDB's own file lock is not enough to hand the file from one process to the next: with duckdb
2.0.1, processes that each open, insert one row, commit and close, on a busy machine, lose a row
whose commit had returned in a third to a half of tries (with or without a CHECKPOINT before
close; tests/store/test_runs.py has the case): the next process gets in while the last one's close is
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

from store.migrations import MIGRATIONS, SCHEMA_VERSION  # noqa: F401 (the schema this program writes)

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
# and blocks: tests/cli/test_bad_input.py checks that, so a change of DuckDB's layout shows there). The
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


def migrate(con: duckdb.DuckDBPyConnection, target: int | None = None) -> int:
    """Bring the schema forward to `target` (default: this program's), one version per transaction."""
    target = SCHEMA_VERSION if target is None else target
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


def equals_clause(col: str, value, cast) -> tuple[str, list] | None:
    """`col = ?` or `col IN (?, ...)` for a value or a list of values, each cast before binding so a wrong
    type is one clear StoreError; None or an empty list is no filter. `col` must already be a known name:
    column names cannot be bound."""
    if value is None:
        return None
    values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    if not values:
        return None
    try:
        values = [cast(v) for v in values]
    except (TypeError, ValueError):
        raise StoreError(f"{col} = {values!r}: not a valid {cast.__name__}") from None
    return (f"{col} = ?" if len(values) == 1 else f"{col} IN ({', '.join('?' * len(values))})"), values
