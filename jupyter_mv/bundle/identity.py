"""Whether two copies of a version are the same version: the check behind every global id a bundle or
a remote manifest claims.

A bundle (and a remote manifest built from the same record) names the global id (`Version.gid`) of
the version it carries. That id is the sender's word: taken as is, a hostile bundle could claim the
id of a version the user or the team holds and so hide it (a pull would skip the real one as
"already here") or pass for it. So a claimed id is accepted only when the content verifies: the
version held under that id has the same fingerprint.

The fingerprint covers what a receiver can check itself: each variable's name, type, codec, codec
meta and buffers (blob ids, which import and pull re-hash, and inline bytes), the executed cells
(sources, execution counts, outputs as a bundle's notebook holds them), params, metrics and the
creation time. Not the variables' content hashes: a bundle states them and nothing re-derives them
(a scikit-learn model travels as skops under its pickled form's hash). Labels (name, tags, message)
are not content. A version made in this store is compared in its shareable form (redaction.plan
with safe formats: credentials withheld or shipped, estimators as skops), which is what its bundle
or push carries.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

from .. import jsondata
from ..errors import MVError
from ..model import Cell, Version
from ..store import Store
from .notebook import _nb_output


def _buffers(buffers: list) -> list:
    return [["i", b["n"], b["i"]] if "i" in b else ["c", b["n"], list(b.get("c", []))] for b in buffers]


def _cells(cells: Iterable[Cell]) -> list:
    # normalised as a bundle's notebook holds them (notebook_of): a store's own cells and the ones
    # read back from a bundle or a remote then compare equal
    return [[c.source or "", c.execution_count if isinstance(c.execution_count, int) else None,
             [x for x in (_nb_output(o) for o in c.outputs) if x is not None]] for c in cells]


def fingerprint(variables: Iterable[tuple], cells: Iterable[Cell], params: dict, metrics: dict,
                created: str) -> str:
    """64 hex digits (sha256 of canonical JSON) over `variables` — (name, type_name, codec, meta,
    buffers) tuples, buffers as a store manifest lists them ({"n", "c"} or {"n", "i"}) — the
    `cells`, `params`, `metrics` (non-finite numbers as jsondata writes them) and `created`."""
    body = {
        "variables": sorted([str(n), str(t), str(c), meta, _buffers(bufs)] for n, t, c, meta, bufs in variables),
        "cells": _cells(cells),
        "params": params or {},
        "metrics": {str(k): float(v) for k, v in (metrics or {}).items()},
        "created": created,
    }
    return hashlib.sha256(jsondata.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def of_record(rec: dict, cells: Iterable[Cell]) -> str:
    """The fingerprint of a checked bundle manifest (validation.check_manifest) or the `bundle` part
    of a remote version manifest, with the cells of its notebook (notebook.cells_of)."""
    ver = rec["version"]
    return fingerprint(
        ((v["name"], v["type_name"], v["codec"], v["manifest"]["meta"], v["manifest"]["buffers"])
         for v in rec["variables"]),
        cells,
        {k: jsondata.number(x) for k, x in (ver.get("params") or {}).items()},  # as import stores them
        {k: jsondata.number(x) for k, x in (ver.get("metrics") or {}).items()},
        ver["created"])


def _of_stored(store: Store, version: Version, variables: list, cells: list) -> str:
    return fingerprint(((sv.name, sv.type_name, sv.codec, sv.manifest["meta"], sv.manifest["buffers"])
                        for sv in variables), cells, version.params, version.metrics, version.created)


def matches(store: Store, version: Version, fp: str) -> bool:
    """Does `version` of `store` have fingerprint `fp` (of_record of a bundle or remote manifest)?
    A version from elsewhere is compared as stored (it is the shareable form it arrived in); one made
    here in its shareable form, without and then with its credentials (the sender may have shipped
    them on purpose). Reading a local model to re-encode it can take as long as an export of it.
    A version that cannot be read (a damaged store: `jupyter-mv verify` names it) does not match:
    the other copy is then kept as a version of its own, never taken for it."""
    from .. import redaction

    try:
        version = store.version_by_id(version.id)
        if store.is_imported(version):
            stored = [store.stored_variable(version, n) for n in version.variables]
            return _of_stored(store, version, stored, store.cells(version)) == fp
        for include in (False, True):
            shared = redaction.plan(store, version, include_secrets=include, safe_formats=True)
            if _of_stored(store, shared.version, shared.variables, shared.cells) == fp:
                return True
            if not shared.withheld:  # nothing was withheld: with credentials it is the same form
                return False
    except MVError:
        return False
    return False
