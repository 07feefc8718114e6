"""`engine app`: serve the Streamlit dashboard on the store."""
from __future__ import annotations

import sys
from typing import Annotated

import typer

from engine.cli.common import Db, UserError, app, console, guarded
from store.db import db_path


@app.command("app")
@guarded
def app_command(port: Annotated[int, typer.Option(help="Port to serve the dashboard on.")] = 8501,
                headless: Annotated[bool, typer.Option(help="Do not open a browser.")] = True,
                db: Db = None):
    """Start the Streamlit dashboard on the store."""
    import os
    import subprocess
    from pathlib import Path as _Path
    import app as app_pkg
    path = db_path(db).resolve()
    if not path.exists():
        raise UserError(f"no store at {path}: run `engine store init` first")
    main_py = _Path(app_pkg.__file__).resolve().parent / "main.py"
    env = dict(os.environ, EQUIV_DB=str(path))
    console.print(f"dashboard on http://localhost:{port} (store {path}); Ctrl-C stops it")
    cmd = [sys.executable, "-m", "streamlit", "run", str(main_py), "--server.port", str(port),
           "--server.headless", str(headless).lower(), "--browser.gatherUsageStats", "false"]
    try:
        raise typer.Exit(subprocess.call(cmd, env=env))
    except KeyboardInterrupt:
        raise typer.Exit(0)
