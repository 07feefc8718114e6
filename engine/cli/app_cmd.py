"""`engine app`: serve the Streamlit dashboard on the store, on loopback unless told otherwise."""
from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import Db, UserError, app, console, err_console, guarded


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("app")
@guarded
def app_command(port: Annotated[int, typer.Option(help="Port to serve the dashboard on.")] = 8501,
                host: Annotated[str, typer.Option(
                    help="Address to listen on. The dashboard has no login: keep it on loopback and put a "
                         "reverse proxy with authentication in front to share it.")] = "127.0.0.1",
                headless: Annotated[bool, typer.Option(help="Do not open a browser.")] = True,
                db: Db = None):
    """Start the Streamlit dashboard on the store."""
    import app as app_pkg
    from store.db import db_path
    if not 1 <= port <= 65535:
        raise UserError(f"--port {port} must be between 1 and 65535")
    path = db_path(db).resolve()
    if not path.exists():
        raise UserError(f"no store at {path}: run `engine store init` first")
    if not is_loopback(host):
        err_console.print(f"[bold yellow]warning:[/] listening on {host}: anyone who can reach it can read the "
                          f"store and queue jobs (the dashboard has no login); put an authenticating reverse "
                          f"proxy in front", highlight=False)
    main_py = Path(app_pkg.__file__).resolve().parent / "main.py"
    shown = f"[{host}]" if ":" in host else host
    console.print(f"dashboard on http://{shown}:{port} (store {path}); Ctrl-C stops it", highlight=False)
    sys.stdout.flush()
    cmd = [sys.executable, "-m", "streamlit", "run", str(main_py), "--server.address", host,
           "--server.port", str(port), "--server.headless", str(headless).lower(),
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
    # The server replaces this process, so a signal to `engine app` (Ctrl-C, docker stop,
    # systemd) reaches Streamlit itself and no orphaned server is left behind.
    os.execve(sys.executable, cmd, dict(os.environ, EQUIV_DB=str(path)))
