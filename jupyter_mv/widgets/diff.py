"""The diff view: what `%mv_diff A B`, the history's Diff button and a displayed `mv.diff(a, b)` show.
Python computes the diff (`Diff.to_dict()`, schemas/diff.schema.json); the front end (the rendering layer's
bundle, static/diff.js) only renders it. Its synced state follows schemas/diff-widget.schema.json."""

from __future__ import annotations

import anywidget
import traitlets as t

from ..jsondata import plain
from ..diffview import render_html, render_text
from ..model import Diff
from . import assets
from .messages import error_message


class DiffWidget(anywidget.AnyWidget):
    """Renders one `Diff`: params (changed only, or all), metrics with deltas, model-aware variable
    changes, cells side by side, output text diffs and images side by side."""

    _esm = assets.module("diff")
    _css = assets.css()

    diff = t.Dict({}).tag(sync=True, to_json=lambda v, w: plain(v))  # RFC 8259: see jsondata
    show_all_params = t.Bool(False).tag(sync=True)  # the "show all" toggle of the params table
    message = t.Dict({}).tag(sync=True)

    def __init__(self, d: Diff | None = None, **kwargs):
        super().__init__(**kwargs)
        self.source = d
        if d is not None:
            try:
                self.diff = for_view(d)
            except Exception as e:  # rendering must never raise into the notebook
                self.message = {**error_message(e, "cannot show this diff", bug=True), "seq": 1}

    def _repr_mimebundle_(self, **kwargs):
        """The widget, plus the text/HTML diff for frontends that cannot render widgets."""
        got = super()._repr_mimebundle_(**kwargs)
        data, md = got if isinstance(got, tuple) else (got, {})
        if self.source is not None:
            data = {**data, "text/plain": render_text(self.source), "text/html": render_html(self.source)}
        return data, md

    def params_rows(self) -> list[tuple]:
        """(key, old, new, status) rows the params table shows under the current toggle."""
        p = self.diff.get("params") or {}
        rows = [(k, o, n, "changed") for k, (o, n) in (p.get("changed") or {}).items()]
        rows += [(k, None, v, "added") for k, v in (p.get("added") or {}).items()]
        rows += [(k, v, None, "removed") for k, v in (p.get("removed") or {}).items()]
        if self.show_all_params:
            rows += [(k, v, v, "same") for k, v in (p.get("same") or {}).items()]
        return rows


def for_view(d: Diff) -> dict:
    """The diff as the widget receives it: exactly `d.to_dict()` (diff.schema.json), the same JSON the REST
    API serves; the front end lays cell sources out side by side from its unified `source_diff`."""
    return d.to_dict()
