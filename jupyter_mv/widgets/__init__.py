"""Notebook widgets (anywidget; the only package that imports ipywidgets/anywidget).

`install(shell)` makes IPython display the plain objects the magics and the API return as widgets:
a `HistoryTable` (what `%mv_log` displays) as the history browser, a `Diff` (what `%mv_diff` and
`mv.diff()` return) as the diff view. The objects stay plain; their text/HTML stays in the bundle."""

from __future__ import annotations

from .diff import DiffWidget
from .history import HistoryWidget

__all__ = ["HistoryWidget", "DiffWidget", "history_widget", "diff_widget", "install", "uninstall"]


def history_widget(n: int | None = None, all: bool = False, store=None) -> HistoryWidget:
    """The history browser of this notebook (or of every notebook in the store with all=True)."""
    return HistoryWidget(n=n, all=all, store=store)


def diff_widget(a=None, b=None, store=None) -> DiffWidget:
    from .. import api

    return DiffWidget(api.diff(a, b, store=store))


def _history_bundle(table):
    w = HistoryWidget(n=getattr(table, "n", None), all=table.all, versions=list(reversed(table.rows)),
                      notebook=getattr(table, "notebook", None))
    return w._repr_mimebundle_()


def _diff_bundle(d):
    return DiffWidget(d)._repr_mimebundle_()


def install(shell) -> None:
    """Register the widget views with an IPython shell's display formatter (no IPython import)."""
    from ..model import Diff
    from ..render import HistoryTable

    f = shell.display_formatter.mimebundle_formatter
    f.for_type(HistoryTable, _history_bundle)
    f.for_type(Diff, _diff_bundle)


def uninstall(shell) -> None:
    from ..model import Diff
    from ..render import HistoryTable

    f = shell.display_formatter.mimebundle_formatter
    for cls in (HistoryTable, Diff):
        try:
            f.pop(cls)
        except KeyError:
            pass
