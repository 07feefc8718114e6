"""Drive the real dashboard server in headless Chromium (Debian's package, through Playwright)."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = {"runs": "", "contours": "contours", "budget": "budget", "scaling": "scaling", "paper_check": "paper_check",
         "queue": "queue", "generators": "generators"}


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dashboard(db: Path, timeout: float = 90.0):
    """Start `streamlit run app/main.py` on a free port; yield its base URL once healthy."""
    port = free_port()
    env = dict(os.environ, EQUIV_DB=str(db))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
                             "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dashboard did not start: {proc.stdout.read() if proc.poll() is not None else 'timeout'}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_until_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the page's script has rendered its title and finished running."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout_ms)
    for _ in range(3):  # the status widget can blink between reruns: see it gone three times in a row
        page.wait_for_function("""() => !document.querySelector('[data-testid="stStatusWidget"]')""",
                               timeout=timeout_ms)
        page.wait_for_timeout(250)
