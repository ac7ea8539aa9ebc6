"""The notebook member of a bundle: a version's executed cells rebuilt as an nbformat 4 notebook
(export, the MLflow bridge), and read back as Cells (import)."""

from __future__ import annotations

import re
import secrets

from ..errors import BundleError
from ..model import Cell, Version
from ..store import Store


def _cell_id(raw, i: int, seen: set) -> str:
    cid = raw if isinstance(raw, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", raw) else f"mv-cell-{i}"
    while cid in seen:
        cid = f"{cid[:56]}-{secrets.token_hex(3)}"
    seen.add(cid)
    return cid


def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else ("" if x is None else str(x))


def _nb_output(o: dict) -> dict | None:
    """A recorded output as a valid nbformat 4 output (or None when it is not one)."""
    if not isinstance(o, dict):
        return None
    t = o.get("output_type")
    if t == "stream":
        name = o.get("name") if o.get("name") in ("stdout", "stderr") else "stdout"
        return {"output_type": "stream", "name": name, "text": _text(o.get("text"))}
    if t in ("display_data", "execute_result"):
        data = {str(k): v for k, v in (o.get("data") or {}).items()}
        out = {"output_type": t, "data": data, "metadata": o.get("metadata") or {}}
        if t == "execute_result":
            ec = o.get("execution_count")
            out["execution_count"] = ec if isinstance(ec, int) else None
        return out
    if t == "error":
        tb = o.get("traceback") or []
        return {"output_type": "error", "ename": str(o.get("ename", "")), "evalue": str(o.get("evalue", "")),
                "traceback": [str(x) for x in tb] if isinstance(tb, list) else [str(tb)]}
    return None


def notebook_of(store: Store, version: Version, cells: list[Cell] | None = None) -> dict:
    """The notebook as it was at `version`: its executed cells (`cells`, default the stored ones),
    in order, as an nbformat 4.5 notebook (a JSON-ready dict; every cell a code cell with a valid
    id, its jupyter_mv cell id under metadata.jupyter_mv). Outputs are normalised to valid nbformat
    outputs; if the result still fails nbformat.validate, rich outputs are dropped (streams and
    errors kept), and if that fails too BundleError is raised (one line)."""
    import nbformat

    seen: set = set()
    recorded = store.cells(version) if cells is None else cells
    cells = []
    for i, c in enumerate(recorded):
        outs = [x for x in (_nb_output(o) for o in c.outputs) if x is not None]
        cells.append({
            "cell_type": "code", "id": _cell_id(c.cell_id, i, seen),
            "execution_count": c.execution_count if isinstance(c.execution_count, int) else None,
            "metadata": {"jupyter_mv": {"cell_id": c.cell_id}}, "source": c.source, "outputs": outs,
        })
    env = store.environment(version)
    nb = {
        "nbformat": 4, "nbformat_minor": 5, "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python", "version": env.get("python", "")},
            "jupyter_mv": {"version": version.label, "notebook": version.notebook, "created": version.created},
        },
    }
    node = nbformat.from_dict(nb)
    try:
        nbformat.validate(node)
    except nbformat.ValidationError as e:  # a recorded output we could not normalise: drop outputs, keep code
        for c in nb["cells"]:
            c["outputs"] = [o for o in c["outputs"] if o["output_type"] in ("stream", "error")]
        try:
            nbformat.validate(nbformat.from_dict(nb))
        except nbformat.ValidationError:
            raise BundleError(f"cannot build a valid notebook for {version.label}: {str(e).splitlines()[0]}") from None
    return nb


def cells_of(notebook: dict) -> list[Cell]:
    """The code cells of a bundle's notebook (nbformat 4 JSON, already validated) as Cells, in
    order: the cell id recorded under metadata.jupyter_mv (else the notebook's own id), stream
    texts joined into one string. The inverse of notebook_of for what a version stores."""
    out = []
    for c in notebook.get("cells", []):
        if c.get("cell_type") != "code":
            continue
        md = (c.get("metadata") or {}).get("jupyter_mv") or {}
        cid = md.get("cell_id", c.get("id")) if isinstance(md, dict) else c.get("id")
        outs = []
        for o in c.get("outputs", []):
            o = dict(o)
            if o.get("output_type") == "stream":
                o["text"] = _text(o.get("text"))
            outs.append(o)
        out.append(Cell(source=_text(c.get("source")), execution_count=c.get("execution_count"),
                        cell_id=cid if isinstance(cid, str) else None, outputs=tuple(outs)))
    return out
