"""What every command group shares: the root Typer app, the consoles, the --db option, and the
rule that a user's mistake is one line on stderr with a non-zero exit, never a traceback.

Only typer and rich are imported here: `engine --help` and every command pay for the modules
they use, not for numpy, pandas, DuckDB or the analysis (tests/test_cli_startup.py checks it)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console


app = typer.Typer(help="Closed-set generative vs real data augmentation: runs, fits and answers.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

console = Console()
err_console = Console(stderr=True)

Db = Annotated[Optional[Path], typer.Option("--db", envvar="EQUIV_DB", show_envvar=True,
                                            help="Store path [default: data/equivalence.duckdb].")]


class UserError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


def fail(message: str, code: int = 2):
    from engine.messages import clip_values
    from rich.markup import escape
    err_console.print(f"[bold red]error:[/] {escape(clip_values(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn):
    """Turn the errors a user can cause into one clear line and a non-zero exit."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (UserError, ValueError) as err:  # FitError and SpecError are ValueErrors
            fail(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
        except OSError as err:  # a missing, unreadable or unwritable file or folder
            where = f" {err.filename}" if getattr(err, "filename", None) else ""
            fail(f"{err.strerror}:{where}" if err.strerror else str(err).strip().splitlines()[0])
        except Exception as err:
            # StoreError and DuckDB's errors, looked up only once a command has touched the store
            # (importing them here would load DuckDB for `engine --help`).
            known = [m.StoreError for m in [sys.modules.get("store.db")] if m is not None]
            known += [m.Error for m in [sys.modules.get("duckdb")] if m is not None]
            if isinstance(err, tuple(known)):
                fail(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
            raise
    return wrapper


def check_choice(kind: str, value, valid) -> None:
    valid = sorted({v for v in valid if v is not None}, key=str)
    if value not in valid:
        raise UserError(f"unknown {kind} {value!r}; valid: {', '.join(map(str, valid)) or '(none in store)'}")


def to_json(obj) -> str:
    """Strict JSON: numpy scalars become numbers, NaN and infinities become null."""
    import numpy as np

    def clean(o):
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple, np.ndarray)):
            return [clean(v) for v in (o.tolist() if isinstance(o, np.ndarray) else o)]
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (float, np.floating)):
            return float(o) if math.isfinite(o) else None
        if isinstance(o, np.bool_):
            return bool(o)
        return o
    return json.dumps(clean(obj), allow_nan=False)


def with_store(db) -> None:
    """Create or migrate the store so that the queue exists."""
    from store.db import connect, migrate
    with connect(db) as con:
        migrate(con)
