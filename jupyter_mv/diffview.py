"""How a diff shows itself: plain text (terminal, CLI, `print`), HTML (frontends without widgets)
and IPython's pretty printer. It only reads the structured diff (`Diff.to_dict()`'s fields,
schemas/diff.schema.json); diffing.py computes it, widgets/diff.py is the interactive view.

model.Diff (L0) is data only; `Diff` here is the same record with the display methods attached
from this layer, so the records layer never imports upward. `api.diff()` returns one."""

from __future__ import annotations

import html
import math

from . import model
from .jsondata import number_text, value_text
from .model import human_bytes

__all__ = ["Diff", "render_text", "render_html"]


class Diff(model.Diff):
    """A model.Diff that renders itself: `str(d)` is render_text, `_repr_html_` render_html, and
    IPython's pretty printer shows the text. Fields, `to_dict()` and equality are model.Diff's."""

    @classmethod
    def of(cls, d: model.Diff) -> Diff:
        """`d` itself when it already renders, else the same fields as a rendering Diff."""
        if isinstance(d, cls):
            return d
        return cls(a=d.a, b=d.b, notebook=d.notebook, params=d.params, metrics=d.metrics,
                   variables=d.variables, cells=d.cells)

    def _repr_html_(self) -> str:
        return render_html(self)

    def __str__(self) -> str:
        return render_text(self)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


def _fmt(v) -> str:
    """A value by the one rule (jsondata.value_text, as every front end shows it); strings quoted."""
    return repr(v) if isinstance(v, str) and v not in ("NaN", "Infinity", "-Infinity") else value_text(v)


def _signed(d) -> str:
    """A change by the one rule with its sign ("+0.25", "-1e-5"); infinities as "∞"/"-∞"."""
    text = value_text(d)
    return text if not isinstance(d, (int, float)) or d < 0 or d != d or d in (math.inf,) else "+" + text


def _var_line(v: dict, with_type: bool = True) -> str:
    s = v["summary"]
    bits = [v["type"].rsplit(".", 1)[-1]] if with_type else []
    if "shape" in s:
        bits.append("x".join(map(str, s["shape"])) or "scalar")
    if "dtype" in s:
        bits.append(str(s["dtype"]))
    bits.append(human_bytes(v["bytes"]))
    return " ".join(bits)


def render_text(d: model.Diff) -> str:
    """The diff as lines of text (str, newline-separated, no trailing newline): a header
    `diff vA -> vB  (notebook)`, then what changed under params/metrics/variables/cells, marked
    `~` changed, `+` added, `-` removed; a metric's change carries an arrow and the signed delta
    (none when either side is NaN). Cell source and outputs are shown as the diff's unified-diff lines
    (difflib format, the `---`/`+++` header dropped; at most 10 output lines a cell). Reads only the
    diff's fields; raises nothing for any diff that validates against schemas/diff.schema.json."""
    lines = [f"diff {d.a} -> {d.b}  ({d.notebook})"]
    if d.empty:
        lines.append("  no differences")
        return "\n".join(lines)
    p = d.params
    if p["added"] or p["removed"] or p["changed"]:
        lines.append("params:")
        for k, (o, n) in p["changed"].items():
            lines.append(f"  ~ {k}: {_fmt(o)} -> {_fmt(n)}")
        for k, v in p["added"].items():
            lines.append(f"  + {k}: {_fmt(v)}")
        for k, v in p["removed"].items():
            lines.append(f"  - {k}: {_fmt(v)}")
    m = d.metrics
    if m["added"] or m["removed"] or m["changed"]:
        lines.append("metrics:")
        for k, c in m["changed"].items():
            delta = c["delta"]
            # no arrow for a change from or to NaN (its delta is NaN: neither up nor down)
            how = "" if not isinstance(delta, (int, float)) or delta != delta else \
                f" ({'↑' if delta > 0 else '↓' if delta < 0 else '='} {_signed(delta)})"
            lines.append(f"  ~ {k}: {_fmt(c['old'])} -> {_fmt(c['new'])}{how}")
        for k, v in m["added"].items():
            lines.append(f"  + {k}: {_fmt(v)}")
        for k, v in m["removed"].items():
            lines.append(f"  - {k}: {_fmt(v)}")
    var = d.variables
    if var["added"] or var["removed"] or var["changed"]:
        lines.append("variables:")
        for v in var["changed"]:
            if v["old"]["type"] == v["new"]["type"]:  # the type once, beside the name
                lines.append(f"  ~ {v['name']} ({v['new']['type'].rsplit('.', 1)[-1]}): "
                             f"{_var_line(v['old'], False)} -> {_var_line(v['new'], False)}")
            else:
                lines.append(f"  ~ {v['name']}: {_var_line(v['old'])} -> {_var_line(v['new'])}")
            llm = (v.get("analysis") or {}).get("kind") in ("prompt", "eval")
            for k, ch in v["changes"].items():
                if k in ("bytes", "layers", "columns") or not isinstance(ch, list) or llm and k == "repr":
                    continue
                lines.append(f"      {k}: {_fmt(ch[0])} -> {_fmt(ch[1])}")
            lines.extend("      " + line for line in analysis_lines(v.get("analysis")))
        for v in var["added"]:
            lines.append(f"  + {v['name']}: {_var_line(v)}")
        for v in var["removed"]:
            lines.append(f"  - {v['name']}: {_var_line(v)}")
    changed_cells = [c for c in d.cells if c["status"] != "same"]
    if changed_cells:
        lines.append("cells:")
        for c in changed_cells:
            where = f"[{c['b_index'] if c['b_index'] is not None else c['a_index']}]"
            if c["status"] == "added":
                lines.append(f"  + cell {where}: {_first_line(c['b_source'])}")
            elif c["status"] == "removed":
                lines.append(f"  - cell {where}: {_first_line(c['a_source'])}")
            else:
                lines.append(f"  ~ cell {where}" + ("  (outputs changed)" if c["outputs_changed"] else ""))
                lines.extend("      " + line for line in c["source_diff"][2:])
                lines.extend("      out " + line for line in c["outputs_diff"][2:12])
    return "\n".join(lines)


def analysis_lines(a: dict | None) -> list[str]:
    """Text lines of a prompt's or an eval table's analysis (diff.schema.json "prompt" / "eval");
    [] for other kinds (their summary changes say enough in text)."""
    if not a:
        return []
    if a.get("kind") == "prompt":
        ph = a.get("placeholders") or {}
        kinds = a.get("prompt_kind") or [None, None]
        kind = kinds[1] if kinds[0] == kinds[1] else f"{kinds[0]} -> {kinds[1]}"
        head = f"prompt ({kind}), placeholders: {', '.join(ph.get('new') or []) or 'none'}"
        change = [f"+{p}" for p in ph.get("added") or []] + [f"-{p}" for p in ph.get("removed") or []]
        out = [head + (f"  ({', '.join(change)})" if change else "")]
        out.extend(a.get("line_diff") or [])
        if a.get("truncated"):
            out.append("(a prompt longer than the summary keeps: the diff covers its first part)")
        return out
    if a.get("kind") == "model":
        return _adapter_lines(a.get("adapters"))
    if a.get("kind") != "eval":
        return []
    out = []
    c = a.get("counts")
    where = f"by {a['id_column']}" if a.get("id_column") else "by index"
    if c is not None:
        out.append(f"eval {where}: {c['regressions']} regressed, {c['improvements']} improved, {c['added']} new, "
                   f"{c['removed']} removed, {c['unchanged']} unchanged")
    elif a.get("examples_note"):
        out.append(f"eval {where}: {a['examples_note']}")
    if a.get("note"):
        out.append("! " + a["note"])
    for s, m in (a.get("mean_delta") or {}).items():
        d = m.get("delta")
        out.append(f"mean {s}: {_fmt(m.get('old'))} -> {_fmt(m.get('new'))}"
                   + ("" if not isinstance(d, (int, float)) else f" ({_signed(d)})"))
    for label, key in (("regressed", "regressions"), ("improved", "improvements")):
        for e in a.get(key) or []:
            sc = ", ".join(f"{s} {_fmt(o)} -> {_fmt(n)}" for s, (o, n) in e["scores"].items())
            out.append(f"{label} {_fmt(e['id'])}: {sc}")
    for label, key in (("new", "added"), ("removed", "removed")):
        ids = a.get(key) or []
        if ids:
            more = (c or {}).get(key, len(ids)) - min(len(ids), 20)
            out.append(f"{label}: " + ", ".join(_fmt(i) for i in ids[:20]) + (f" (+{more} more)" if more > 0 else ""))
    return out


def _adapter_lines(ad: dict | None) -> list[str]:
    """One line for a PEFT model's adapter changes (diff.schema.json model "adapters"): the adapter
    weights that changed with their relative change (|new - old| / |old|), and the base's state."""
    if not ad:
        return []
    changed = ad.get("changed") or []
    base = ad.get("base_changed", 0)
    tail = "; base unchanged" if not base else f"; {base} base weights changed too"
    if not changed:
        return [f"adapter: unchanged{tail}"]

    def one(x) -> str:
        rel = x.get("relative")
        how = "from zero" if rel is None and x.get("delta_norm") else (
            "?" if rel is None else f"{number_text(rel * 100, '.3g')}%")
        return f"{x['name'].removeprefix('base_model.model.')} {how}"

    shown = ", ".join(one(x) for x in changed[:8]) + (f" (+{len(changed) - 8} more)" if len(changed) > 8 else "")
    return [f"adapter: {len(changed)} of {len(changed) + ad.get('unchanged', 0)} weights changed: {shown}{tail}"]


def _first_line(s: str | None) -> str:
    s = (s or "").strip().splitlines()
    return (s[0][:70] + ("…" if len(s[0]) > 70 or len(s) > 1 else "")) if s else ""


def render_html(d: model.Diff) -> str:
    """The diff as one HTML fragment (str) for frontends without the widget (nbconvert, GitHub,
    nbviewer): `render_text`'s lines, HTML-escaped, in a `<pre class='jupyter-mv-diff'>` inside a
    `<div class='jupyter-mv'>`. Not a renderer of its own: the interactive views are the rendering
    layer's (labextension/src/render), the static one is the text. Every recorded text is escaped, so
    the fragment carries no markup or script from the diff's contents."""
    return (f"<div class='jupyter-mv'><pre class='jupyter-mv-diff'>{html.escape(render_text(d))}</pre></div>")
