"""What every command group shares: the root Typer app, the consoles, the --db option, and the
rule that a user's mistake is one line on stderr with a non-zero exit, and a bug keeps its traceback.

Only typer and rich are imported here: `engine --help` and every command pay for the modules
they use, not for numpy, pandas, DuckDB or the analysis (tests/cli/test_startup.py checks it)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from engine.messages import InputError  # plain Python: costs nothing at start

app = typer.Typer(help="Closed-set generative vs real data augmentation: runs, fits and answers.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

console = Console()
err_console = Console(stderr=True)

Db = Annotated[Optional[Path], typer.Option("--db", envvar="EQUIV_DB", show_envvar=True,
                                            help="Store path [default: data/equivalence.duckdb].")]


class UserError(InputError):
    """Bad input at the command line: reported as one line on stderr, exit status 2."""


INTERNAL_HINT = ("internal error: this is a bug in the program, not in your input; the traceback above says "
                 "where (please report it with the command you ran)")


def interrupted() -> typer.Exit:
    """The exit of a command that handled Ctrl-C (or SIGTERM): status 130, as a shell reports one.

    CPython remembers a KeyboardInterrupt that escaped an exec() of a source string even after the
    program caught it (the signal may land while a library builds a namedtuple or a dataclass that
    way), and a `python -m engine.cli` run then ends by re-raising SIGINT: its parent saw -2 instead
    of 130, about once in ten worker stops under load. Executing any string resets that flag."""
    exec("pass")
    return typer.Exit(130)


def fail(message: str, code: int = 2):
    from engine.messages import clip_values
    from rich.markup import escape
    err_console.print(f"[bold red]error:[/] {escape(clip_values(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn):
    """Turn the errors a user can cause into one clear line and exit status 2; keep a bug's traceback.

    A user's errors are the engine's InputError (every validation error: spec, dataset, import, fit,
    quality, checkpoint), the store's StoreError and the operating system's OSError (a missing,
    unreadable or unwritable file). Anything else (a numpy or pandas error inside the analysis, say) is
    a bug: its traceback is printed, then a one-line hint, and the exit status is 1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as err:
            fail(_first_line(err))
        except OSError as err:
            where = f" {err.filename}" if getattr(err, "filename", None) else ""
            fail(f"{err.strerror}:{where}" if err.strerror else _first_line(err))
        except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:
            # StoreError is looked up only once a command has touched the store (importing it here would
            # load DuckDB for `engine --help`).
            store_db = sys.modules.get("store.db")
            if store_db is not None and isinstance(err, store_db.StoreError):
                fail(_first_line(err))
            import traceback
            traceback.print_exc()
            err_console.print(f"[bold red]{INTERNAL_HINT}[/]", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
    return wrapper


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


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
