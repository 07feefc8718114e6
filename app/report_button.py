"""The "Download report" button of the Budget and Paper check pages: the same self-contained HTML file
`engine report --html` writes (engine.report.html.build_report, one code path), built on request,
since a report refits its settings and a page must stay interactive while a user explores."""
from __future__ import annotations

import re

import streamlit as st

from app.common import store_path


def report_button(key: str, settings: list[tuple] | None, questions=None, *, eps: float, source: str | None,
                  name: str, note: str = "") -> None:
    args = (tuple(map(tuple, settings)) if settings else None, tuple(questions or ()), eps, source)
    slot = f"{key}_report"
    if st.button("Build a report to download", key=f"{key}_report_build",
                 help="One HTML file that opens offline: verdicts, contours, Eq. 1, the paper check, "
                      "quality metrics and provenance (engine report --html)."):
        from engine.report.html import build_report
        with st.spinner("Fitting and drawing the report…"):
            html = build_report(str(store_path()), args[0], list(args[1]) or None, eps=eps, source=source)
        st.session_state[slot] = (args, html)
    built = st.session_state.get(slot)
    if built and built[0] == args:
        st.download_button("Download report (HTML)", built[1], file_name=re.sub(r"[^\w.-]+", "_", name) + ".html",
                           mime="text/html", key=f"{key}_report_download", type="primary")
    elif built:
        st.caption("The report built earlier was for other choices: build it again for these.")
    if note:
        st.caption(note)
