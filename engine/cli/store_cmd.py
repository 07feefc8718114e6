"""`engine store`: create and migrate the store."""
from __future__ import annotations

import typer

from engine.cli.common import Db, app, console, guarded


store_app = typer.Typer(help="Create and migrate the store.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("init")
@guarded
def store_init(db: Db = None):
    """Create the store (or migrate it) and load the paper's published runs and tables. Idempotent."""
    from store import runs as store_runs
    from store.db import db_path
    from store.paper_tables import shipped_rows
    added = store_runs.init_counts(db)
    console.print(f"store {db_path(db)}: {added['runs']} published runs added "
                  f"({len(store_runs.paper_rows()) - added['runs']} already present); "
                  f"{added['paper_tables']} published table values added "
                  f"({len(shipped_rows()) - added['paper_tables']} already present)")
