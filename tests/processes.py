"""Helpers for tests that run real worker, dispatcher or Ray processes against a store."""
import os
import signal
import subprocess
import time
from pathlib import Path

from store import runs as store_runs


def fresh_store(tmp_path):
    db = tmp_path / "s.duckdb"
    store_runs.init_store(db)
    return db


def wait_for(predicate, timeout=240, every=0.25):
    """Poll until predicate() is true; a failure to get there within `timeout` fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass  # the store is being written: look again
        time.sleep(every)
    raise AssertionError("timed out")


def engine_rows(db):
    return store_runs.query_runs(db, source="engine")


class Spawned(subprocess.Popen):
    """A child whose output goes to a file, not a pipe: nobody reads a pipe while the test waits, so a
    chatty worker fills its 64 KiB and blocks in a write, and then cannot even log its own Ctrl-C."""

    def __init__(self, args, log_path, **kwargs):
        self.log_path = Path(log_path)
        with open(self.log_path, "w") as log:
            super().__init__(args, stdout=log, stderr=subprocess.STDOUT, text=True, **kwargs)

    def wait_or_dump(self, timeout: float) -> int:
        """wait(); a child still running after `timeout` is aborted, and the failure shows where each
        of its threads was (children started with `python -X faulthandler` print them on SIGABRT)."""
        try:
            return self.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            state = _kernel_view(self.pid)
            self.send_signal(signal.SIGABRT)
            self.wait(timeout=30)
            raise AssertionError(f"{self.args[:6]} still running {timeout} s on; {state}\nits last output:\n"
                                 f"{self.output(8000)}") from None

    def output(self, tail: int | None = 2000) -> str:
        text = self.log_path.read_text(errors="replace")
        return text[-tail:] if tail else text


def _kernel_view(pid: int) -> str:
    """Where a stuck child waits, as Linux sees it: each thread's kernel wait channel, and the file
    locks held on the machine (/proc/locks: type, pid, inode), to tell a lock wait from a busy loop."""
    lines = []
    try:
        for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
            wchan = (task / "wchan").read_text().strip() or "running"
            lines.append(f"thread {task.name}: {(task / 'stat').read_text().split()[2]} {wchan}")
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if ".duckdb" in target:
                lines.append(f"fd {fd.name}: {target} inode {os.stat(fd).st_ino}")
        lines.append("locks:\n" + Path("/proc/locks").read_text())
    except OSError as err:
        lines.append(f"(no /proc view: {err})")
    return "\n".join(lines)


def spawn(args, tmp_path, name="proc", **kwargs) -> Spawned:
    """Start a child process logging to tmp_path/<name>-<n>.log (unique per call)."""
    n = len(list(Path(tmp_path).glob(f"{name}-*.log")))
    return Spawned(args, Path(tmp_path) / f"{name}-{n}.log", **kwargs)
