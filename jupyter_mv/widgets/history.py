"""The history browser: a paged, sortable, filterable table of versions with details, a metrics
chart and Restore / Restore outputs / Diff / Tag / Export actions.

Only one page of compact rows crosses the comm; the front end asks for others by setting `page`,
`sort_by`, `sort_desc` and `filter`. Actions arrive as a `request` dict (with a `seq` so repeating one
is a change) and every outcome lands in `message`: nothing raises into the notebook. The synced state
follows schemas/history-widget.schema.json; the front end is the rendering layer's bundle (static/history.js)."""

from __future__ import annotations

import anywidget
import traitlets as t

from .. import api, credentials, sanitize
from ..errors import Untrusted
from ..jsondata import plain, value_text
from ..model import Version
from . import assets
from .diff import for_view
from .messages import error_message
from .query import Query

MAX_CHART_POINTS = 2000
MAX_KEY_PARAMS = 4
MAX_METRIC_COLUMNS = 6
MAX_OUTPUT_CHARS = 2_000_000  # per version's details; larger outputs are elided with a note
_SHOWN_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "text/html", "text/markdown", "text/plain")


def plain_json(value, widget=None):
    """Synced state is RFC 8259 JSON: NaN/±inf metrics travel as "NaN"/"Infinity"/"-Infinity" (see
    jsondata), which the front end shows as NaN / ∞."""
    return plain(value)


class HistoryWidget(anywidget.AnyWidget):
    """`mv.history_widget()` and what `%mv_log` shows."""

    _esm = assets.module("history")
    _css = assets.css()

    notebook = t.Unicode("").tag(sync=True)
    all_notebooks = t.Bool(False).tag(sync=True)
    rows = t.List([]).tag(sync=True, to_json=plain_json)  # the current page, compact
    total = t.Int(0).tag(sync=True)  # rows matching the filter
    count = t.Int(0).tag(sync=True)  # versions loaded
    page = t.Int(0).tag(sync=True)
    page_size = t.Int(25).tag(sync=True)
    sort_by = t.Unicode("version").tag(sync=True)
    sort_desc = t.Bool(True).tag(sync=True)
    filter = t.Unicode("").tag(sync=True)
    key_params = t.List([]).tag(sync=True)
    metric_names = t.List([]).tag(sync=True)
    selected = t.List([]).tag(sync=True)  # version ids, in the order picked
    details = t.Dict({}).tag(sync=True, to_json=plain_json)
    chart = t.Dict({}).tag(sync=True, to_json=plain_json)
    diff = t.Dict({}).tag(sync=True, to_json=plain_json)
    replay = t.Dict({}).tag(sync=True, to_json=plain_json)  # a version's outputs, re-displayed by "Restore outputs"
    request = t.Dict({}).tag(sync=True)
    message = t.Dict({}).tag(sync=True, to_json=plain_json)
    can_export = t.Bool(False).tag(sync=True)
    view = t.Unicode("table").tag(sync=True)  # table | graph (the versions drawn by their parents)
    graph = t.List([]).tag(sync=True)  # every loaded version as a graph node (schema: $defs/graphNode)
    variable = t.Unicode("").tag(sync=True)  # the variable picked for its history ("metric:NAME" for a metric)
    var_names = t.Dict({}).tag(sync=True)  # {"variables": [...], "metrics": [...]}: what can be picked
    var_history = t.Dict({}).tag(sync=True, to_json=plain_json)  # api.variable_history of `variable`, or {}

    def __init__(self, n: int | None = None, all: bool = False, store=None, versions: list | None = None,
                 notebook: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self._store = store
        self._notebook = notebook  # None: the kernel's notebook
        self._n = n
        self._seq = 0
        self.last_diff = None  # the Diff object behind `diff`, for Python callers
        self.all_notebooks = bool(all)
        self.can_export = callable(getattr(api, "export", None))
        self._by_id: dict[int, Version] = {}
        self._versions: list[Version] = []
        self._guard(self._load, versions)
        self.observe(self._on_view, names=["page", "page_size", "sort_by", "sort_desc", "filter"])
        self.observe(self._on_selected, names=["selected"])
        self.observe(self._on_request, names=["request"])
        self.observe(lambda change: self._guard(self._variable_history), names=["variable"])
        self.observe(lambda change: self._guard(self._graph), names=["view"])
        self._listeners = api.session().listeners
        self._listeners.append(self._on_snapshot)

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self):
        try:
            self._listeners.remove(self._on_snapshot)
        except ValueError:
            pass
        super().close()

    def _repr_mimebundle_(self, **kwargs):
        """The widget, plus the text/HTML table for frontends that cannot render widgets."""
        from ..render import HistoryTable

        got = super()._repr_mimebundle_(**kwargs)
        data, md = got if isinstance(got, tuple) else (got, {})
        table = HistoryTable(self._versions, self._n, self.all_notebooks)
        data = {**data, "text/plain": repr(table), "text/html": table._repr_html_()}
        return data, md

    # -- messages -----------------------------------------------------------------------------
    def _say(self, kind: str, text: str) -> None:
        self._seq += 1
        self.message = {"kind": kind, "text": text, "seq": self._seq}

    def _guard(self, fn, *args):
        """Run an action; report its error in the message area instead of raising."""
        try:
            return fn(*args)
        except Exception as e:  # every failure becomes a readable line in the widget
            msg = error_message(e)
            self._say(msg["kind"], msg["text"])
            return None

    # -- data ---------------------------------------------------------------------------------
    def _load(self, versions=None) -> None:
        self._complete = versions is None and not self._n  # all of the store's versions (for _variable_history)
        if versions is None:
            versions = api.versions(self._notebook, all=self.all_notebooks, store=self._store)
        versions = list(versions)
        if self._n:
            versions = versions[-self._n:]
        self._versions = versions
        self._by_id = {v.id: v for v in versions}
        if self.all_notebooks:
            self.notebook = "all notebooks"
        elif versions:
            self.notebook = versions[-1].notebook
        else:
            self.notebook = self._notebook or api.current_notebook(self._store)
        self._columns()
        self._refresh()
        self._graph()
        self._guard(self._variable_history)

    def _columns(self) -> None:
        """Key params: those whose value differs between versions; metric columns: the most common."""
        seen: dict = {}
        varying: dict = {}
        metric_count: dict = {}
        for v in self._versions:
            for k, val in v.params.items():
                if k not in seen:
                    seen[k] = val
                    varying.setdefault(k, False)
                elif not varying[k] and seen[k] != val:
                    varying[k] = True
            for k in v.metrics:
                metric_count[k] = metric_count.get(k, 0) + 1
        keys = [k for k, vary in varying.items() if vary][:MAX_KEY_PARAMS]
        self.key_params = keys
        self.metric_names = sorted(metric_count, key=lambda k: (-metric_count[k], k))[:MAX_METRIC_COLUMNS]

    def _matching(self) -> list[Version]:
        q = Query(self.filter)
        return [v for v in self._versions if q.match(v)] if q else list(self._versions)

    def _sort_key(self):
        col = self.sort_by
        if col.startswith("metric:"):
            k = col[7:]
            return lambda v: (k not in v.metrics, v.metrics.get(k, 0.0))
        if col.startswith("param:"):
            k = col[6:]
            return lambda v: (k not in v.params, _sortable(v.params.get(k)))
        return {
            "name": lambda v: v.name.lower(), "message": lambda v: v.message.lower(),
            "created": lambda v: v.created, "tags": lambda v: ",".join(v.tags),
            "variables": lambda v: len(v.variables), "size": lambda v: v.nbytes,
            "parent": lambda v: v.parent or 0, "notebook": lambda v: (v.notebook, v.n),
        }.get(col, lambda v: (v.notebook, v.n) if self.all_notebooks else v.n)

    def _refresh(self) -> None:
        rows = self._matching()
        self.total = len(rows)
        self.count = len(self._versions)
        self._chart(rows)
        missing_last = self.sort_by.startswith(("metric:", "param:"))
        if missing_last:  # versions without the value go last in both directions
            have = [v for v in rows if not self._sort_key()(v)[0]]
            rest = [v for v in rows if self._sort_key()(v)[0]]
            have.sort(key=self._sort_key(), reverse=self.sort_desc)
            rows = have + rest
        else:
            rows.sort(key=self._sort_key(), reverse=self.sort_desc)
        pages = max(1, -(-len(rows) // max(1, self.page_size)))
        if self.page >= pages:
            self.page = pages - 1  # re-enters _refresh through the observer
            return
        start = self.page * self.page_size
        self.rows = [self._row(v) for v in rows[start: start + self.page_size]]

    def _graph(self) -> None:
        """The graph view's nodes: every loaded version (filter and page apply to the table only), its
        parent as the parent's store id (None when the parent is not loaded), oldest first. Built only
        while the graph is shown (a table of 10,000 versions syncs one page, not 10,000 nodes)."""
        names = sorted({n for v in self._versions for n in v.variables})
        metrics = sorted({k for v in self._versions for k in v.metrics})
        self.var_names = {"variables": names, "metrics": metrics}
        if self.view != "graph":
            self.graph = []
            return
        by_n = {(v.notebook, v.n): v.id for v in self._versions}
        self.graph = [{"key": v.id, "label": v.label, "parent": by_n.get((v.notebook, v.parent)) if v.parent else None,
                       "tags": list(v.tags), "name": v.name, "kind": v.kind, "message": v.message[:120],
                       "notebook": v.notebook} for v in sorted(self._versions, key=lambda v: (v.notebook, v.n))]

    def _variable_history(self) -> None:
        """`var_history` for the picked `variable` ("metric:NAME" picks a metric), of this notebook."""
        picked = self.variable.strip()
        if not picked:
            self.var_history = {}
            return
        if self.all_notebooks:
            self.var_history = {}
            raise ValueError("a variable's history is per notebook: open the history of one notebook")
        kind, name = ("metric", picked[7:]) if picked.startswith("metric:") else ("variable", picked)
        nb = self._versions[-1].notebook if self._versions else self._notebook
        # the loaded versions when they are all of the notebook's (not the last -n N): no second read
        loaded = self._versions if getattr(self, "_complete", False) and self._versions else None
        self.var_history = api.variable_history(name, nb, store=self._store, kind=kind, versions=loaded)

    def _row(self, v: Version) -> dict:
        parent_ok = v.parent is None or v.parent == v.n - 1
        return {
            "id": v.id, "label": v.label, "n": v.n, "notebook": v.notebook, "name": v.name,
            "message": v.message, "created": v.created, "tags": list(v.tags),
            "params": {k: _short(v.params[k]) for k in self.key_params if k in v.params},
            "metrics": {k: v.metrics[k] for k in self.metric_names if k in v.metrics},
            "variables": len(v.variables), "variable_names": ", ".join(v.variables)[:200],
            "bytes": v.nbytes,
            "parent": f"v{v.parent}" if v.parent else None, "branch": not parent_ok, "kind": v.kind,
        }

    def _chart(self, rows: list[Version]) -> None:
        pts = sorted(rows, key=lambda v: (v.created, v.n))
        pts = [v for v in pts if v.metrics]
        if len(pts) > MAX_CHART_POINTS:  # evenly thinned, always keeping the newest
            step = len(pts) / MAX_CHART_POINTS
            pts = [pts[int(i * step)] for i in range(MAX_CHART_POINTS - 1)] + [pts[-1]]
        names = sorted({k for v in pts for k in v.metrics})[:12]
        self.chart = {
            "ids": [v.id for v in pts], "x": list(range(len(pts))) if self.all_notebooks else [v.n for v in pts],
            "labels": [v.label if not self.all_notebooks else f"{v.notebook} {v.label}" for v in pts],
            "series": {k: [v.metrics.get(k) for v in pts] for k in names},
        }

    # -- observers ----------------------------------------------------------------------------
    def _on_view(self, change) -> None:
        if change["name"] in ("filter", "sort_by", "sort_desc", "page_size") and self.page != 0:
            self.page = 0
            return
        self._guard(self._refresh)

    def _on_selected(self, change) -> None:
        self._guard(self._details)

    def _on_request(self, change) -> None:
        req = change["new"] or {}
        action = req.get("action")
        if not action:
            return
        handler = getattr(self, f"_do_{action}", None)
        if handler is None:
            self._say("error", f"unknown action {action!r}")
            return
        self._guard(handler, req)

    def _on_snapshot(self, version: Version) -> None:
        version = credentials.mask_version(version)  # shown: credentials masked
        if not self.all_notebooks and version.notebook != self.notebook:
            return
        if version.id in self._by_id:
            return

        def add():
            self._versions.append(version)
            if self._n and len(self._versions) > self._n:
                del self._by_id[self._versions.pop(0).id]
            self._by_id[version.id] = version
            self._columns()
            self._refresh()
            self._graph()
            self._variable_history()
            self._say("info", f"new version {version.label}" + (f": {version.message}" if version.message else ""))

        self._guard(add)

    # -- selection ----------------------------------------------------------------------------
    def _selected_versions(self) -> list[Version]:
        out = []
        for i in self.selected:
            v = self._by_id.get(int(i))
            if v is None:
                raise LookupError(f"version id {i} is not in this history (refresh it)")
            out.append(v)
        return out

    def _one(self) -> Version:
        vs = self._selected_versions()
        if not vs:
            raise LookupError("select a version first")
        return vs[-1]

    def _details(self) -> None:
        vs = self._selected_versions()
        if not vs:
            self.details = {}
            return
        v = vs[-1]
        info = api.show(v, notebook=v.notebook, store=self._store)
        env = info.get("environment") or {}
        pk = env.get("packages") or {}
        info["environment"] = {
            "python": env.get("python"), "platform": env.get("platform"), "packages": len(pk),
            "key_packages": {k: pk[k] for k in ("numpy", "pandas", "scikit-learn", "torch", "jupyter-mv",
                                                  "jupyter_mv") if k in pk},
            "git": env.get("git"),
        }
        budget = [MAX_OUTPUT_CHARS]
        info["cells"] = [{**c, "outputs": [_output(o, budget) for o in c["outputs"]]} for c in info["cells"]]
        for var in info["variables"]:
            var["hash"] = var["hash"][:10]
        info["lineage"] = self._lineage(v)
        info["children"] = [f"v{x.n}" for x in self._versions if x.notebook == v.notebook and x.parent == v.n]
        self.details = info

    def _lineage(self, v: Version) -> list[str]:
        by_n = {x.n: x for x in self._versions if x.notebook == v.notebook}
        chain, cur = [], v
        while cur is not None and len(chain) < 30:
            chain.append(cur.label)
            cur = by_n.get(cur.parent) if cur.parent else None
        return chain[::-1]

    # -- actions ------------------------------------------------------------------------------
    def _do_refresh(self, req) -> None:
        self._load()
        self._say("ok", f"{self.count} version(s)")

    def _do_goto(self, req) -> None:
        """Select version `req["label"]` (vN of this notebook): a variable's history stepping to it."""
        label = str(req.get("label") or "")
        v = next((x for x in reversed(self._versions) if x.label == label), None)
        if v is None:
            raise LookupError(f"{label or 'that version'} is not in this history (refresh it)")
        self.selected = [v.id]
        self._say("info", f"{label} selected")

    def _do_restore(self, req) -> None:
        """Restore the selected version (or `req["version"]`, the id a trust choice was offered for).
        An imported version whose variables need unpickling is never trusted silently: the message
        names them and offers the choice (kind "trust", `choices` holding the request that retries
        with `trust`); only that request, sent when the user picks it, restores them."""
        v = self._by_id.get(int(req["version"])) if req.get("version") is not None else self._one()
        if v is None:
            raise LookupError(f"version id {req['version']} is not in this history (refresh it)")
        names = [n for n in (req.get("names") or []) if n] or None
        prefix = (req.get("prefix") or "").strip()
        trust = req.get("trust") is True
        try:
            done = api.restore(v, names, prefix=prefix, trust=trust, store=self._store)
        except Untrusted as e:
            needs = "; ".join(e.needs) or str(e)
            self._seq += 1
            self.message = {
                "kind": "trust", "seq": self._seq,
                "text": f"{v.label} was made elsewhere ({v.origin or 'imported'}): restoring {needs}. Unpickling runs "
                        "code its author chose, so nothing was restored: restore anyway only if you trust its author.",
                "choices": [
                    {"label": "Restore anyway (trust this version)", "class": "mv-trust-restore",
                     "request": {"action": "restore", "version": v.id, "names": names or [], "prefix": prefix,
                                 "trust": True}},
                    {"label": "Cancel", "class": "mv-trust-cancel", "cancel": f"{v.label}: nothing restored"},
                ],
            }
            return
        # a PartialRestore reaches _guard, whose translator (messages.py) says what came back and what not
        self._say("ok", f"restored {', '.join(done) if done else 'nothing'} from {v.label}")

    def _do_restore_outputs(self, req) -> None:
        v = self._one()
        cells = api.outputs(v, store=self._store)
        budget = [MAX_OUTPUT_CHARS]
        shown = [{**c.to_dict(), "outputs": [_output(o, budget) for o in c.outputs]} for c in cells if c.outputs]
        self.replay = {"version": v.label, "cells": shown, "seq": self._seq + 1}
        self._say("ok", f"{v.label}: {len(shown)} cell output(s) re-displayed below" if shown
                  else f"{v.label} recorded no cell outputs")

    def _do_diff(self, req) -> None:
        vs = self._selected_versions()
        if len(vs) >= 2:
            a, b = sorted(vs[-2:], key=lambda x: (x.created, x.n))
            d = api.diff(a, b, notebook=b.notebook, store=self._store)
        elif len(vs) == 1:
            d = api.diff_current(vs[0], store=self._store)
        else:
            raise LookupError("select one version (diff against the current state) or two")
        self.last_diff = d
        self.diff = for_view(d)
        self._say("ok", f"diff {d.a} → {d.b}" + ("" if not d.empty else ": no differences"))

    def _do_tag(self, req) -> None:
        v = self._one()
        tag = (req.get("tag") or "").strip()
        if not tag:
            raise ValueError("type a tag first")
        remove = bool(req.get("remove"))
        nv = api.tag(v, tag, remove=remove, store=self._store)
        if not remove:  # a tag names one version per notebook: drop it from the others shown
            self._versions = [x if x.notebook != nv.notebook or x.id == nv.id or tag not in x.tags
                              else _with_tags(x, tuple(t_ for t_ in x.tags if t_ != tag)) for x in self._versions]
        self._versions = [nv if x.id == nv.id else x for x in self._versions]
        self._by_id = {x.id: x for x in self._versions}
        self._refresh()
        self._graph()
        self._guard(self._details)
        self._say("ok", f"{'removed tag' if remove else 'tagged'} {v.label} {tag}")

    def _do_export(self, req) -> None:
        export = getattr(api, "export", None)
        if not callable(export):
            raise RuntimeError("export is not available in this version of jupyter_mv")
        v = self._one()
        path = (req.get("path") or "").strip() or f"{v.label}.mvz"
        import warnings

        from ..errors import CredentialsWithheld

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CredentialsWithheld)
            result = export(v, path, notebook=v.notebook, store=self._store)
        notes = [str(w.message) for w in caught if issubclass(w.category, CredentialsWithheld)]
        self._say("warning" if notes else "ok", f"exported {v.label} to {result or path}"
                  + "".join(f"; {n}" for n in notes))

    # -- Python conveniences (what the buttons do) ---------------------------------------------
    def act(self, action: str, **kw) -> dict:
        """Send a request as the front end would; returns the message it produced."""
        self._seq += 1
        self.request = {"action": action, "seq": self._seq, **kw}
        return dict(self.message)


def _with_tags(v: Version, tags: tuple) -> Version:
    from dataclasses import replace

    return replace(v, tags=tags)


def _output(o: dict, budget: list) -> dict:
    """One nbformat output reduced to what the widget renders (the richest mime type, as the notebook
    shows it; never script) within a budget of characters; still an nbformat output."""
    kind = o.get("output_type")
    if kind == "stream":
        text = _text(o.get("text", ""))
        return {"output_type": "stream", "name": o.get("name", "stdout"), "text": _cut(text, budget)}
    if kind == "error":
        return {"output_type": "error", "ename": str(o.get("ename", "")), "evalue": str(o.get("evalue", "")),
                "traceback": []}
    data = o.get("data") or {}
    shown = {}
    for mime in _SHOWN_MIMES:
        if mime in data:
            value = _text(data[mime])
            if len(value) > budget[0]:
                shown["text/plain"] = f"[{mime} output of {len(value)} characters not shown]"
                break
            budget[0] -= len(value)
            if mime == "text/markdown":  # shown rendered; the widget sanitizes it (DOMPurify) as any HTML
                shown["text/html"] = sanitize.markdown_html(value)
            else:
                shown[mime] = value
            if mime != "text/plain":
                break  # the richest one plus nothing else, as the notebook shows it
    if "text/plain" in data and "text/plain" not in shown and not shown:
        shown["text/plain"] = _cut(_text(data["text/plain"]), budget)
    return {"output_type": "display_data", "data": shown, "metadata": {}}


def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else str(x)


def _cut(text: str, budget: list) -> str:
    if len(text) > budget[0]:
        text = text[: max(0, budget[0])] + "\n[… output truncated]"
    budget[0] -= len(text)
    return text


def _short(v) -> str:
    s = value_text(v)
    return s if len(s) <= 40 else s[:39] + "…"


def _sortable(v):
    if isinstance(v, bool) or v is None:
        return (1, str(v))
    if isinstance(v, (int, float)):
        return (0, v)
    return (1, str(v))
