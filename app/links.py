"""Links that reopen a view: every picker keeps its value in the page URL's query parameters.

A parameter is named after the widget's key without the page's prefix (`budget_n_base` → `n_base`), so
`/budget?dataset=CIFAR-10&classifier=ResNet-110&n_base=5000&n_real_added=2000` reopens that question.
The URL is read once per session and widget, when the widget is first drawn; after that the widget
owns its value and the URL follows it. A value a link names that is not among the options (a run
deleted since, an edited link) is ignored: the picker keeps its default rather than failing.
"""
from __future__ import annotations

import streamlit as st

_SEEDED = "_links_seeded"
_MISSING = object()


def param_name(key: str) -> str:
    return key.split("_", 1)[1] if "_" in key else key


def _cast(raw: list[str], options, multi: bool, like):
    if options is not None:
        by_text = {str(o): o for o in options}
        hits = [by_text[r] for r in raw if r in by_text]
        if multi:
            # An empty choice is written as one empty parameter (`?generators=`) so it survives the link.
            return hits if hits or raw == [""] else _MISSING
        return hits[0] if hits else _MISSING
    text = raw[0]
    if isinstance(like, bool):
        return {"true": True, "false": False}.get(text.lower(), _MISSING)
    if isinstance(like, (int, float)):
        try:
            number = type(like)(float(text)) if isinstance(like, int) else float(text)
        except ValueError:
            return _MISSING
        return number if number == number and abs(number) != float("inf") else _MISSING
    return text


def from_link(key: str, options=None, multi: bool = False, like: object = "") -> object:
    """The value the page's link gives this widget, the first time this session asks; otherwise (or
    when the link gives none, or one that is not among `options`) `_MISSING`."""
    seeded = st.session_state.setdefault(_SEEDED, set())
    if key in seeded:
        return _MISSING
    seeded.add(key)
    raw = st.query_params.get_all(param_name(key))
    return _cast(raw, options, multi, like) if raw else _MISSING


def link_default(key: str, options, default):
    """`default`, unless the page's link names another valid option (for pickers whose state is
    assigned before they are drawn, e.g. by app.common.default_when_changed)."""
    value = from_link(key, options)
    return default if value is _MISSING else value


def to_link(key: str, value) -> None:
    name = param_name(key)
    text = ([str(v) for v in value] or [""]) if isinstance(value, (list, tuple)) else str(value)
    if st.query_params.get_all(name) != (text if isinstance(text, list) else [text]):
        st.query_params[name] = text


def linked(widget, label: str, options=None, *, key: str, **kwargs):
    """Draw `widget` (st.selectbox, cols[1].radio, st.text_input, …) with its value taken from the page's
    link the first time, and written back to it every time; returns what the widget returns."""
    kind = getattr(widget, "__name__", "")
    multi = kind == "multiselect"
    like = kwargs.get("value", "")
    if key not in st.session_state:
        value = from_link(key, options, multi, like)
        if value is not _MISSING:
            st.session_state[key] = value
            # The widget now takes its value from the session state; a default passed beside it would
            # make Streamlit warn on the page that both were set.
            for arg in ("index", "value", "default"):
                kwargs.pop(arg, None)
    else:
        st.session_state.setdefault(_SEEDED, set()).add(key)
    chosen = widget(label, options, key=key, **kwargs) if options is not None else widget(label, key=key, **kwargs)
    if chosen is not None:
        to_link(key, chosen)
    return chosen
