"""The probe that runs inside the re-executed kernel after the bundle's last cell: it loads each
recorded variable from the private store the bundle was imported into and compares it with the live
value of the same name (compare.compare_values). The live objects never leave the kernel, and the
reproducing process never unpickles anything from the bundle; the kernel already ran the bundle's
code, so loading its pickled models there adds no trust that running it did not need."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..compare import compare_values
from ..errors import MVError


def kernel_probe(namespace: dict, recorded_store: str, version_id: int, rtol: float, out_path: str) -> None:
    """Run inside the re-executed kernel: compare every recorded variable of version `version_id`
    in the store at `recorded_store` with the live one in `namespace` (rtol: relative tolerance)
    and write the findings as JSON to `out_path`: {"variables": [{"name", "type", "status":
    "same" | "differs" | "skipped", "detail"}], "environment": {"python", "packages": {name: version}}}.
    A value that cannot be loaded or compared is reported, never raised."""
    from .. import capture, loading
    from ..store import Store

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
