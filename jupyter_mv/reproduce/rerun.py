"""The re-run: a bundle's notebook executed from scratch in a fresh kernel (nbclient) in a
temporary directory, then compared with what was recorded — each cell's outputs (comparison.py,
after masking.py), the metrics of the last version it snapshotted, the variables (probe.py, inside
the kernel) — with warnings where the installed packages differ from the bundle's."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from .. import bundle as bundle_mod
from ..errors import MVError
from .comparison import _join, _package_warnings, compare_outputs
from .masking import _close
from .report import CellResult, Result

SETUP = "%load_ext jupyter_mv"  # the extension's own load cell is never in the recorded cells


def reproduce(path, kernel: str | None = None, rtol: float = 1e-6, timeout: float = 600,
              progress: bool = True) -> Result:
    """Re-run the notebook of the bundle at `path` from scratch in a fresh kernel (`kernel`: a
    kernelspec name, default python3) and compare it with what was recorded; see the package
    docstring. `rtol`: relative tolerance for numbers in outputs, metrics and values; `timeout`:
    seconds a cell may run (a cell that times out is recorded as a Timeout error); `progress`: a
    tqdm bar of cells. Returns a Result (`ok` when everything matches). Raises BundleError (one line)
    when the bundle is refused, before anything runs; MVError for a negative rtol, an unknown
    kernel or a kernel that cannot start. Nothing is written outside a temporary directory."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from ..store import Store

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
