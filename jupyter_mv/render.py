"""Text and HTML renderings of history and versions, shared by the magics and the CLI."""

from __future__ import annotations

import html

from .jsondata import value_text
from .model import human_bytes


class HistoryTable:
    """Text/HTML rendering of the history (the widget replaces it where widgets render)."""

    def __init__(self, versions, n=None, all_notebooks=False, notebook=None):
        vs = list(reversed(versions))
        self.rows = vs[:n] if n else vs
        self.n = n  # the history widget (widgets.install) rebuilds itself from rows, n, all and notebook
        self.all = all_notebooks
        self.notebook = notebook  # None: the kernel's own notebook

    def _cells(self, v):
        row = [v.label, v.name, v.message, v.created[:19].replace("T", " "), ", ".join(v.tags),
               _short(v.params), _short(v.metrics), ", ".join(v.variables)[:60], human_bytes(v.nbytes),
               f"v{v.parent}" if v.parent else ""]
        return ([v.notebook] if self.all else []) + row

    @property
    def header(self):
        return (["notebook"] if self.all else []) + ["version", "name", "message", "created", "tags", "params",
                                                     "metrics", "variables", "size", "parent"]

    def _repr_html_(self):
        if not self.rows:
            return "<p>No versions yet: take one with <code>%mv_snapshot</code>.</p>"
        head = "".join(f"<th>{h}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in self._cells(v)) + "</tr>"
                       for v in self.rows)
        return f"<table class='jupyter-mv-log'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self):
        if not self.rows:
            return "No versions yet: take one with %mv_snapshot."
        table = [self.header] + [[str(c) for c in self._cells(v)] for v in self.rows]
        widths = [min(40, max(len(r[i]) for r in table)) for i in range(len(self.header))]
        return "\n".join("  ".join(c[:40].ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)


def _short(d: dict, limit: int = 60) -> str:
    def fmt(v):
        return value_text(v)

    s = ", ".join(f"{k}={fmt(v)}" for k, v in d.items())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def version_text(i: dict) -> str:
    """Readable lines for `api.show()`'s dict."""
    lines = ["  ".join(x for x in (i["id"], i["name"], i["message"]) if x), f"  created  {i['created']}",
             f"  notebook {i['notebook']}", f"  parent   {i['parent'] or '-'}",
             *([f"  id       {i['gid']}"] if i.get("gid") else []),
             # made elsewhere (a bundle, a remote): where from, and by whom when a remote said so
             *([f"  from     {i['origin']}" + (f" (by {i['author']})" if i.get("author") else "")]
               if i.get("origin", "local") != "local" else []),
             f"  tags     {', '.join(i['tags']) or '-'}", f"  params   {_short(i['params'], 200) or '-'}",
             f"  metrics  {_short(i['metrics'], 200) or '-'}", "  variables:"]
    for v in i["variables"]:
        s = v["summary"]
        shape = f" {'x'.join(map(str, s['shape']))}" if "shape" in s else ""
        dtype = f" {s['dtype']}" if "dtype" in s else ""
        cred = f"  holds a credential ({', '.join(v['credential'])})" if v.get("credential") else ""
        lines.append(f"    {v['name']:<20} {v['type']}{shape}{dtype}  {human_bytes(v['bytes'])}  {v['hash'][:10]}{cred}")
        p, ev = s.get("prompt"), s.get("eval")
        if isinstance(p, dict):  # a prompt template (prompts.py): its placeholders and text
            lines.append(f"      prompt ({p.get('kind')}), placeholders: {', '.join(p.get('placeholders') or []) or 'none'}")
            lines.extend(f"      | {ln}" for ln in str(p.get("text", "")).splitlines()[:40])
        if isinstance(ev, dict):  # an eval table (evals.py)
            means = ", ".join(f"{k} {m:.4g}" for k, m in (ev.get("means") or {}).items())
            lines.append(f"      eval table: {ev.get('rows')} examples by {ev.get('id_column') or 'index'}; "
                         f"mean {means or '-'}; dataset {str(ev.get('dataset_hash', ''))[:12]}")
    env = i.get("environment") or {}
    if env:
        git = env.get("git") or {}
        lines.append(f"  env      Python {env.get('python')} on {env.get('platform')}, "
                     f"{len(env.get('packages', {}))} packages"
                     + (f", git {git.get('commit', '')[:10]}{' (dirty)' if git.get('dirty') else ''}" if git else ""))
    lines.append(f"  cells    {len(i['cells'])}")
    return "\n".join(lines)


class VersionDetails:
    def __init__(self, info: dict):
        self.info = info

    def __repr__(self):
        return version_text(self.info)


