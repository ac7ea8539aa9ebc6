"""Reproduce a bundle: re-run its notebook from scratch in a fresh kernel in a temporary directory,
then compare what came out with what was recorded — each cell's outputs, the metrics, the
variables — and warn where the installed packages differ from the bundle's.

How variables are compared: the bundle is imported into a private temporary store, and after the
last cell a probe runs *inside the re-executed kernel*: it loads each recorded variable from that
store and compares it with the live value of the same name. The live objects never leave the
kernel, and this process never unpickles anything from the bundle; the kernel already ran the
bundle's code, so loading its pickled models there adds no trust that running it did not need.
Metrics come from the last version the re-run notebook snapshotted (its own store, in the
temporary directory), read from this side without unpickling anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import bundle as bundle_mod, credentials
from .compare import close, compare_values
from .errors import MVError

__all__ = ["reproduce", "Result", "compare_outputs", "compare_values", "mask"]

SETUP = "%load_ext jupyter_mv"  # the extension's own load cell is never in the recorded cells


# -- masking volatile text -----------------------------------------------------------------------
_MASKS = [
    # progress bars (tqdm and friends): keep only that there was one
    (re.compile(r"^.*(\d+%\|[^\n]*\||\d+(\.\d+)?(it|s)/(s|it)\]).*$", re.M), "<progress>"),
    # jupyter_mv's own summary lines: version numbers and byte counts depend on the store's history
    (re.compile(r"^v\d+  .*$", re.M), "<jupyter_mv snapshot>"),
    (re.compile(r"\b(exported|restored .* from|imported) v\d+\b"), r"\1 v<n>"),
    (re.compile(r"\d[\d,]*(\.\d+)? ?(B|kB|MB|GB|TB|bytes)\b"), "<bytes>"),
    # timings
    (re.compile(r"^(CPU times|Wall time|Elapsed|Time taken|took)\b.*$", re.M | re.I), "<timing>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ns|µs|us|ms|s|sec|secs|seconds|min|minutes)\b(?! \w+ per)"), "<duration>"),
    # dates and clock times
    (re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"), "<date>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(\.\d+)?\b"), "<time>"),
    # memory addresses and object ids
    (re.compile(r"0x[0-9a-fA-F]{4,}"), "0x<addr>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    # absolute paths (temporary directories, site-packages in warnings)
    (re.compile(r"(?<![\w.])(/[\w.@+-]+){2,}/?"), "<path>"),
    (re.compile(r"[A-Za-z]:\\[^\s'\"]+"), "<path>"),
    # scikit-learn's HTML repr numbers its containers per session
    (re.compile(r"sk-(container-id|estimator-id)-\d+"), r"sk-\1-<n>"),
]
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|\bnan\b|\binf\b", re.I)


def mask(text: str) -> str:
    """`text` with volatile things (timings, addresses, dates, paths, progress bars) replaced."""
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))  # \r-redrawn lines: last state
    # a bundle's recorded outputs have their credentials masked (redaction.py): mask the re-run's alike
    text = credentials.mask_json(text)
    for rx, sub in _MASKS:
        text = rx.sub(sub, text)
    return text


def _close(a: str, b: str, rtol: float, atol: float) -> bool:
    """Two number texts within tolerance (other texts: equal)."""
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a == b
    return close(x, y, rtol, atol)


def texts_match(a: str, b: str, rtol: float, atol: float = 1e-12) -> bool:
    """Equal after masking, numbers within tolerance."""
    a, b = mask(a), mask(b)
    if a == b:
        return True
    na, nb = _NUMBER.findall(a), _NUMBER.findall(b)
    if len(na) != len(nb) or _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    return all(_close(x, y, rtol, atol) for x, y in zip(na, nb))


def _first_difference(a: str, b: str) -> tuple[str, str]:
    la, lb = mask(a).splitlines() or [""], mask(b).splitlines() or [""]
    for x, y in zip(la, lb):
        if x != y:
            return x, y
    if len(la) != len(lb):
        return (la[len(lb)] if len(la) > len(lb) else "(nothing more)",
                lb[len(la)] if len(lb) > len(la) else "(nothing more)")
    return la[0], lb[0]


# -- comparing outputs ---------------------------------------------------------------------------
def _join(x) -> str:
    return "".join(x) if isinstance(x, list) else ("" if x is None else str(x))


def _streams(outputs: list) -> dict:
    out: dict = {}
    for o in outputs:
        if o.get("output_type") == "stream":
            out[o.get("name", "stdout")] = out.get(o.get("name", "stdout"), "") + _join(o.get("text"))
    return out


def _prefix_like(recorded: str, now: str) -> str:
    """As many lines of `now` as `recorded` has (a cell cut short by the snapshot it ran)."""
    if not recorded:
        return ""
    n = recorded.count("\n") + (0 if recorded.endswith("\n") else 1)
    return "".join(now.splitlines(keepends=True)[:n])


def _rich(outputs: list) -> list:
    return [o for o in outputs if o.get("output_type") in ("display_data", "execute_result", "error")]


def _image_hash(data) -> str:
    raw = _join(data)
    try:
        raw_bytes = base64.b64decode(raw)
    except ValueError:
        raw_bytes = raw.encode()
    return hashlib.sha256(raw_bytes).hexdigest()[:12]


def _compare_data(rec: dict, now: dict, rtol: float) -> str | None:
    keys_r = {k for k in rec if not k.startswith("application/vnd.jupyter.widget")}
    keys_n = {k for k in now if not k.startswith("application/vnd.jupyter.widget")}
    if keys_r != keys_n:
        return f"output types differ: recorded {sorted(keys_r)}, now {sorted(keys_n)}"
    for k in sorted(keys_r):
        a, b = rec[k], now[k]
        if k.startswith("image/") and k != "image/svg+xml":
            if _image_hash(a) != _image_hash(b):
                return f"{k} image differs (sha256 {_image_hash(a)} recorded, {_image_hash(b)} now)"
        elif isinstance(a, (dict, list)) and not (isinstance(a, list) and all(isinstance(x, str) for x in a)):
            if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
                return f"{k} differs"
        elif not texts_match(_join(a), _join(b), rtol):
            x, y = _first_difference(_join(a), _join(b))
            return f"{k} differs:\n    recorded: {x[:200]}\n    now:      {y[:200]}"
    return None


def compare_outputs(recorded: list, now: list, rtol: float, partial: bool = False) -> tuple[list[str], list[str]]:
    """(differences, warnings) between two cells' outputs. stderr alone only warns: it carries
    warnings, logs and progress, which vary between runs without changing results. `partial`:
    the recorded outputs are what the cell had produced when the snapshot was taken, so only that
    much of the new outputs is compared."""
    diffs, warns = [], []
    sr, sn = _streams(recorded), _streams(now)
    if partial:
        now = [o for o in now if o.get("output_type") != "stream"][: len(_rich(recorded))] + [
            o for o in now if o.get("output_type") == "stream"]
        sn = {k: _prefix_like(sr.get(k, ""), v) for k, v in sn.items()}
    if not texts_match(sr.get("stdout", ""), sn.get("stdout", ""), rtol):
        x, y = _first_difference(sr.get("stdout", ""), sn.get("stdout", ""))
        diffs.append(f"printed output differs:\n    recorded: {x[:200]}\n    now:      {y[:200]}")
    if not texts_match(sr.get("stderr", ""), sn.get("stderr", ""), rtol):
        x, y = _first_difference(sr.get("stderr", ""), sn.get("stderr", ""))
        warns.append(f"stderr differs: recorded {x[:120]!r}, now {y[:120]!r}")
    rr, rn = _rich(recorded), _rich(now)
    if len(rr) != len(rn):
        kinds = lambda outs: ", ".join(o["output_type"] for o in outs) or "none"  # noqa: E731
        diffs.append(f"{len(rr)} rich output(s) recorded ({kinds(rr)}), {len(rn)} now ({kinds(rn)})")
        for o in rn:
            if o.get("output_type") == "error":
                diffs.append(f"it raised {o.get('ename')}: {str(o.get('evalue'))[:200]}")
        return diffs, warns
    for i, (a, b) in enumerate(zip(rr, rn)):
        if a["output_type"] == "error" or b["output_type"] == "error":
            if (a["output_type"], a.get("ename")) != (b["output_type"], b.get("ename")) or not texts_match(
                    str(a.get("evalue", "")), str(b.get("evalue", "")), rtol):
                was = f"{a.get('ename')}: {a.get('evalue')}" if a["output_type"] == "error" else "no error"
                got = f"{b.get('ename')}: {b.get('evalue')}" if b["output_type"] == "error" else "no error"
                diffs.append(f"error differs: recorded {was[:150]}, now {got[:150]}")
            continue
        why = _compare_data(a.get("data") or {}, b.get("data") or {}, rtol)
        if why:
            diffs.append(f"output {i + 1}: {why}")
    return diffs, warns


# -- comparing values (runs inside the re-executed kernel) ---------------------------------------
# One comparison for values and models, shared with the model-aware diff: see compare.py.

def kernel_probe(namespace: dict, recorded_store: str, version_id: int, rtol: float, out_path: str) -> None:
    """Run inside the re-executed kernel: compare every recorded variable with the live one and
    write the findings (and this environment's packages) as JSON to `out_path`."""
    from . import capture, loading
    from .store import Store

    results = []
    with Store(recorded_store, create=False) as st:
        v = st.version_by_id(version_id)
        for ref in st.variables(v):
            name = ref.name
            if name not in namespace:
                results.append({"name": name, "status": "differs", "detail": "not defined after the re-run"})
                continue
            try:
                rec = loading.load(st, v, [name], trust=True)[name]  # this kernel already ran the bundle's code
            except (MVError, Exception) as e:  # a package missing here, a class renamed...
                results.append({"name": name, "status": "skipped",
                                "detail": f"recorded value cannot be loaded here: {str(e)[:200]}"})
                continue
            try:
                why = compare_values(rec, namespace[name], rtol)
            except Exception as e:
                why = f"cannot be compared: {type(e).__name__}: {str(e)[:150]}"
            results.append({"name": name, "type": ref.type_name,
                            "status": "differs" if why else "same", "detail": why or ""})
    env = {"python": sys.version.split()[0], "packages": capture._packages()}
    Path(out_path).write_text(json.dumps({"variables": results, "environment": env}))


# -- the run -------------------------------------------------------------------------------------
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


def _package_warnings(recorded: dict, here: dict, python_rec: str, python_here: str) -> list[str]:
    out = []
    if python_rec and python_here and python_rec.split(".")[:2] != python_here.split(".")[:2]:
        out.append(f"Python {python_here} here, {python_rec} in the bundle")
    diffs = []
    for name, ver in sorted(recorded.items()):
        now = here.get(name)
        if now is None:
            diffs.append(f"{name} {ver} in the bundle is not installed here")
        elif now != ver:
            diffs.append(f"{name} {now} here, {ver} in the bundle")
    out += diffs[:15]
    if len(diffs) > 15:
        out.append(f"... and {len(diffs) - 15} more package differences (see the bundle's requirements.txt)")
    return out


def reproduce(path, kernel: str | None = None, rtol: float = 1e-6, timeout: float = 600,
              progress: bool = True) -> Result:
    """Re-run the bundle's notebook from scratch and compare; see the module docstring."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .store import Store

    if not (rtol >= 0):
        raise MVError(f"--rtol must be a non-negative number, got {rtol}")
    b = bundle_mod.read(path)
    ver = b.version
    result = Result(Path(path).name, ver["notebook"], ver["label"], rtol)
    with tempfile.TemporaryDirectory(prefix="jupyter_mv-reproduce-") as tmp:
        tmp = Path(tmp)
        with Store(tmp / "recorded" / ".jupyter_mv") as rec_store:
            recorded = bundle_mod.import_(rec_store, b.path).version
            rec_refs = rec_store.variables(recorded)
        work = tmp / "work"
        work.mkdir()
        nb = nbformat.from_dict(b.notebook)
        recorded_cells = [c for c in nb.cells if c.cell_type == "code"]
        run_nb = nbformat.v4.new_notebook(metadata=nb.metadata)
        # the extension must be loaded before any %mv_ magic; older captures did not record its load cell
        loads = any(re.search(r"load_ext\s+jupyter_mv|import\s+jupyter_mv", _join(c.source)) for c in recorded_cells)
        run_nb.cells = [nbformat.v4.new_code_cell("" if loads else SETUP)] + [
            nbformat.v4.new_code_cell(c.source) for c in recorded_cells]
        probe_out = tmp / "probe.json"
        probe = nbformat.v4.new_code_cell(
            "import jupyter_mv.reproduce as _mv_reproduce\n"
            f"_mv_reproduce.kernel_probe(globals(), {str(rec_store.root)!r}, {recorded.id}, {rtol!r}, "
            f"{str(probe_out)!r})\ndel _mv_reproduce")
        run_nb.cells.append(probe)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MV_", "JPY_SESSION"))}
        env.update({"JUPYTER_MV_STORE": str(work / ".jupyter_mv"), "JUPYTER_MV_NOTEBOOK": ver["notebook"],
                    "MPLBACKEND": env.get("MPLBACKEND", "Agg")})
        client = NotebookClient(run_nb, timeout=timeout, kernel_name=kernel or "python3", allow_errors=True,
                                resources={"metadata": {"path": str(work)}})
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(run_nb.cells) - 1, desc="reproduce", unit="cell", leave=False)
        try:
            with client.setup_kernel(env=env, cwd=str(work)):
                for i, cell in enumerate(run_nb.cells):
                    try:
                        client.execute_cell(cell, i)
                    except CellTimeoutError:
                        cell.outputs = [{"output_type": "error", "ename": "Timeout",
                                         "evalue": f"cell did not finish within {timeout:g} s", "traceback": []}]
                        if i == len(run_nb.cells) - 1:
                            break
                    if bar is not None and i < len(run_nb.cells) - 1:
                        bar.update(1)
        except DeadKernelError as e:
            result.notes.append(f"the kernel died: {str(e)[:200]}")
        except Exception as e:  # no such kernel, cannot start one
            if type(e).__name__ in ("NoSuchKernel",):
                raise MVError(f"no Jupyter kernel named {kernel!r}; see `jupyter kernelspec list`") from None
            raise MVError(f"cannot run the notebook: {type(e).__name__}: {str(e)[:200]}") from None
        finally:
            if bar is not None:
                bar.close()
        setup_errors = [o for o in run_nb.cells[0].outputs if o.get("output_type") == "error"]
        if setup_errors:
            result.notes.append(f"loading jupyter_mv in the kernel failed: {setup_errors[0].get('evalue')}")
        # cells
        for pos, (rec, got) in enumerate(zip(recorded_cells, run_nb.cells[1:-1]), start=1):
            # the last cell was still running when the version was taken (it ran the snapshot):
            # only the outputs it had produced by then were recorded
            partial = pos == len(recorded_cells)
            diffs, warns = compare_outputs(list(rec.get("outputs", [])), list(got.get("outputs", [])), rtol,
                                           partial=partial)
            status = "differs" if diffs else ("warn" if warns else "same")
            result.cells.append(CellResult(pos, rec.get("execution_count"), _join(rec.source), status, diffs + warns))
        # metrics: from the last version the re-run snapshotted
        rec_metrics = ver.get("metrics") or {}
        final = None
        if (work / ".jupyter_mv" / "store.db").exists():
            with Store(work / ".jupyter_mv", create=False) as run_store:
                vs = run_store.versions(ver["notebook"])
                final = vs[-1] if vs else None
        if rec_metrics and final is None:
            result.notes.append("the notebook did not snapshot when re-run: metrics not compared")
        elif final is not None:
            for k, val in sorted(rec_metrics.items()):
                now = final.metrics.get(k)
                same = now is not None and _close(repr(float(val)), repr(float(now)), rtol, 1e-12)
                result.metrics.append({"name": k, "recorded": val, "now": now, "status": "same" if same else "differs"})
        # variables and environment, from the probe
        if probe_out.exists():
            found = json.loads(probe_out.read_text())
            result.variables = found["variables"]
            here = found["environment"]
            result.warnings += _package_warnings(b.environment.get("packages") or {}, here["packages"],
                                                 b.environment.get("python", ""), here["python"])
        else:
            err = [o for o in run_nb.cells[-1].get("outputs", []) if o.get("output_type") == "error"]
            why = f": {err[0].get('ename')}: {err[0].get('evalue')}" if err else ""
            for ref in rec_refs:
                result.variables.append({"name": ref.name, "type": ref.type_name, "status": "differs",
                                         "detail": f"could not be compared{why}"})
    return result
