"""Static images of Plotly figures through Plotly's own route: kaleido >= 1 driving a local Chrome or
Chromium (Debian's `chromium` here; kaleido 1 ships no browser of its own, and plotly 6.1+ no longer
talks to kaleido 0.2's bundled one). Nothing is fetched: kaleido loads plotly.js from the installed
plotly package, and no figure of ours uses MathJax (whose script it would otherwise ask a CDN for)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from engine.messages import InputError

FORMATS = ("png", "svg", "pdf")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class ExportError(InputError):
    """Static export cannot run here (no kaleido, no browser): one line saying what to install."""


def browser_path() -> str | None:
    """The Chrome or Chromium kaleido will drive (choreographer looks the same way): BROWSER_PATH if set,
    else the first on PATH."""
    explicit = os.environ.get("BROWSER_PATH")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def check_export() -> None:
    """Raise ExportError naming what is missing before any figure is computed."""
    from plotly.io._kaleido import kaleido_available
    if not kaleido_available():
        raise ExportError("static export needs kaleido >= 1 (pip install 'kaleido>=1'); it is not installed")
    found = browser_path()
    if found is None:
        raise ExportError("static export needs Chrome or Chromium, found none on PATH"
                          + (f" nor at BROWSER_PATH={os.environ['BROWSER_PATH']!r}" if os.environ.get("BROWSER_PATH")
                             else "") + " (apt-get install chromium)")


def write_images(figures: list, paths: list[Path], fmt: str, width: int = 1100, height: int | None = None,
                 scale: float = 1.0) -> None:
    """Every figure to its path in one browser session (one start for all: a start costs seconds)."""
    import plotly.io as pio
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    check_export()
    widths = [max(width, int(f.layout.width or 0)) for f in figures]
    heights = [height or int(f.layout.height or 500) for f in figures]
    todo = list(range(len(figures)))
    # kaleido can return without writing a figure whose render timed out on a loaded machine: what is
    # missing is tried once more, then said, never reported as written.
    for _attempt in range(2):
        try:
            pio.write_images([figures[i] for i in todo], [str(paths[i]) for i in todo], format=fmt,
                             width=[widths[i] for i in todo], height=[heights[i] for i in todo], scale=scale)
        except RuntimeError as err:  # plotly's word for kaleido failing to start a browser
            raise ExportError(f"static export failed: {str(err).strip().splitlines()[0]}") from err
        todo = [i for i in todo if not (paths[i].exists() and paths[i].stat().st_size > 0)]
        if not todo:
            return
    raise ExportError(f"static export wrote no file for {', '.join(paths[i].name for i in todo)} (twice): "
                      "kaleido's browser did not render them")
