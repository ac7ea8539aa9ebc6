"""The report of a reproduce run: the findings per cell, metric and variable (Result, CellResult),
and their renderings as text (the CLI), a dict (JSON) and a standalone HTML page (`--report`)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CellResult:
    position: int  # 1-based, among the bundle notebook's cells
    execution_count: int | None
    source: str
    status: str  # same | differs | warn
    details: list = field(default_factory=list)

    @property
    def title(self) -> str:
        first = (self.source.strip().splitlines() or [""])[0]
        first = first if len(first) <= 70 else first[:69] + "…"
        ec = f"In [{self.execution_count}]" if self.execution_count is not None else "In [ ]"
        return f"cell {self.position} ({ec}) `{first}`"


@dataclass
class Result:
    """The findings of one reproduce run. `ok` when every cell, metric and variable matches."""

    bundle: str
    notebook: str
    version: str
    rtol: float
    cells: list = field(default_factory=list)  # CellResult
    metrics: list = field(default_factory=list)  # {"name", "recorded", "now", "status"}
    variables: list = field(default_factory=list)  # {"name", "type", "status", "detail"}
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def failures(self) -> dict:
        return {
            "cells": [c for c in self.cells if c.status == "differs"],
            "metrics": [m for m in self.metrics if m["status"] == "differs"],
            "variables": [v for v in self.variables if v["status"] == "differs"],
        }

    @property
    def ok(self) -> bool:
        return not any(self.failures.values())

    def to_dict(self) -> dict:
        return {"bundle": self.bundle, "notebook": self.notebook, "version": self.version, "rtol": self.rtol,
                "ok": self.ok, "cells": [c.__dict__ | {"title": c.title} for c in self.cells],
                "metrics": self.metrics, "variables": self.variables, "warnings": self.warnings,
                "notes": self.notes}

    def text(self) -> str:
        f = self.failures
        lines = [f"reproduce {self.bundle}: {self.notebook} {self.version}, {len(self.cells)} cells, "
                 f"{len(self.variables)} variables, {len(self.metrics)} metrics (rtol {self.rtol:g})"]
        for c in self.cells:
            if c.status == "differs":
                lines.append(f"DIFFERS  {c.title}")
                lines += ["    " + d.replace("\n", "\n    ") for d in c.details]
        for m in f["metrics"]:
            lines.append(f"DIFFERS  metric {m['name']}: {m['recorded']!r} recorded, {m['now']!r} now")
        for v in f["variables"]:
            lines.append(f"DIFFERS  variable {v['name']}: {v['detail']}")
        for v in self.variables:
            if v["status"] == "skipped":
                lines.append(f"skipped  variable {v['name']}: {v['detail']}")
        for c in self.cells:
            if c.status == "warn":
                lines.append(f"warning  {c.title}: " + "; ".join(c.details))
        lines += [f"warning  {w}" for w in self.warnings]
        lines += [f"note     {n}" for n in self.notes]
        if self.ok:
            lines.append(f"OK: every cell's outputs, {len(self.metrics)} metric(s) and "
                         f"{sum(v['status'] == 'same' for v in self.variables)} variable(s) match")
        else:
            parts = [f"{len(x)} {k[:-1] if len(x) == 1 else k}" for k, x in f.items() if x]
            lines.append("FAILED: " + ", ".join(parts) + " differ")
        return "\n".join(lines)

    def html(self) -> str:
        e = html.escape
        ok = self.ok
        rows = []
        for c in self.cells:
            color = {"same": "#e6f4ea", "warn": "#fff8e1", "differs": "#fde7e9"}[c.status]
            rows.append(f"<tr style='background:{color}'><td>{c.position}</td><td>{e(str(c.execution_count))}</td>"
                        f"<td><pre>{e(c.source[:2000])}</pre></td><td>{e(c.status)}</td>"
                        f"<td><pre>{e(chr(10).join(c.details))}</pre></td></tr>")
        var_rows = "".join(f"<tr><td>{e(v['name'])}</td><td>{e(v.get('type', ''))}</td><td>{e(v['status'])}</td>"
                           f"<td>{e(v['detail'])}</td></tr>" for v in self.variables)
        met_rows = "".join(f"<tr><td>{e(m['name'])}</td><td>{e(repr(m['recorded']))}</td><td>{e(repr(m['now']))}</td>"
                           f"<td>{e(m['status'])}</td></tr>" for m in self.metrics)
        warn = "".join(f"<li>{e(w)}</li>" for w in self.warnings + self.notes)
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>reproduce {e(self.bundle)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}}pre{{margin:0;white-space:pre-wrap}}</style>
</head><body><h1>{'✔ reproduced' if ok else '✘ not reproduced'}: {e(self.bundle)}</h1>
<p>{e(self.notebook)} {e(self.version)}, relative tolerance {self.rtol:g}</p>
<h2>Cells</h2><table><tr><th>#</th><th>In</th><th>source</th><th>status</th><th>details</th></tr>{''.join(rows)}</table>
<h2>Metrics</h2><table><tr><th>metric</th><th>recorded</th><th>now</th><th>status</th></tr>{met_rows}</table>
<h2>Variables</h2><table><tr><th>name</th><th>type</th><th>status</th><th>details</th></tr>{var_rows}</table>
<h2>Warnings and notes</h2><ul>{warn}</ul></body></html>"""

    def write_html(self, path) -> None:
        Path(path).write_text(self.html(), encoding="utf-8")
