"""Errors a user can act on, and how a user's value appears in them: whole when short, clipped when long.

Errors echo the value they refuse, and a 100,000-character value would make a 100 KB error line (in a
terminal, a log or a page). Plain Python, imported by the catalog, the spec's checks and the CLI."""
from __future__ import annotations

import re

LIMIT = 120
_QUOTED = re.compile(r"'[^']{%d,}'|\"[^\"]{%d,}\"" % (LIMIT, LIMIT))
_LONG_WORD = re.compile(r"\S{%d,}" % (2 * LIMIT))


def clip(value, limit: int = LIMIT) -> str:
    """str(value), or its start and end around a count of what was cut."""
    text = str(value)
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]}…[{len(text) - 2 * keep:,} characters]…{text[-keep:]}"


def clip_values(message: str, limit: int = 1000) -> str:
    """A message whose quoted values and very long words are clipped, and then the message itself."""
    message = _QUOTED.sub(lambda m: m.group(0)[0] + clip(m.group(0)[1:-1]) + m.group(0)[-1], message)
    message = _LONG_WORD.sub(lambda m: clip(m.group(0), 2 * LIMIT), message)
    return clip(message, limit)


class InputError(ValueError):
    """Bad input, or a request that cannot be met as asked: one line for the user, who can act on it (the
    CLI prints it and exits 2, a page shows it). Anything else that goes wrong is a bug and keeps its
    traceback. Every validation error of the engine is one of these; the message is clipped when long."""

    def __init__(self, message: str = ""):
        super().__init__(clip_values(str(message)))
