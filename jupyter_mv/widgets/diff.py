"""The diff view: what `%mv_diff A B`, the history's Diff button and a displayed `mv.diff(a, b)` show.
Python computes the diff (`Diff.to_dict()`); the front end only renders it."""

from __future__ import annotations

import difflib

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


CONTEXT = 3  # unchanged lines kept around each change in the side-by-side view


def for_view(d: Diff) -> dict:
    """`d.to_dict()` plus, per changed cell, side-by-side rows for the front end to paint."""
    out = d.to_dict()
    out["cells"] = [dict(c) for c in out["cells"]]
    for c in out["cells"]:
        if c["status"] == "changed" and c.get("a_source") is not None and c.get("b_source") is not None:
            c["sbs"] = side_by_side(c["a_source"], c["b_source"])
    return out


def side_by_side(a: str, b: str, context: int = CONTEXT) -> list[list]:
    """Rows [left line no, left text, right line no, right text, kind]; kind is same, changed,
    removed, added, or skip (a run of unchanged lines left out)."""
    la, lb = a.splitlines(), b.splitlines()
    rows: list[list] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        if tag == "equal":
            n = i2 - i1
            keep = range(n) if n <= 2 * context + 1 else [*range(context), None, *range(n - context, n)]
            for k in keep:
                if k is None:
                    rows.append([None, f"… {n - 2 * context} unchanged lines", None, "", "skip"])
                else:
                    rows.append([i1 + k + 1, la[i1 + k], j1 + k + 1, lb[j1 + k], "same"])
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            left = i1 + k if i1 + k < i2 else None
            right = j1 + k if j1 + k < j2 else None
            kind = "changed" if left is not None and right is not None else ("removed" if right is None else "added")
            rows.append([None if left is None else left + 1, "" if left is None else la[left],
                         None if right is None else right + 1, "" if right is None else lb[right], kind])
    return rows
