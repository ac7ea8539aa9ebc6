"""What of a version may leave the machine: its record with credentials withheld, for bundles
(`bundle.export`) and the MLflow bridge (`mlflow_bridge.push`).

Withheld: variables that hold a credential (marked in the store, or plain data found to hold one),
params whose value is one; masked (`sk-…****`): the message, name and tags, cell sources, cell
outputs and variable summaries. `include_secrets=True` is the user's explicit override: nothing is
withheld and the variables that hold credentials are listed so the receiving store marks them.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

from . import codecs, credentials
from .errors import CredentialsWithheld
from .model import Cell, Version
from .store import Store, StoredVariable

__all__ = ["Redacted", "plan", "warn"]


@dataclass
class Redacted:
    """A version as it may be shared."""

    version: Version  # params without credentials; message, name, tags masked
    variables: list  # StoredVariable, withheld ones left out, summaries masked
    cells: list  # Cell, sources and outputs masked
    withheld: list = field(default_factory=list)  # manifest records: {"kind", ...}
    included: dict = field(default_factory=dict)  # include_secrets: {variable: [where]} holding credentials

    def describe(self) -> list[str]:
        """One phrase per withheld or masked item (`variable client (client.api_key)`)."""
        out = []
        for w in self.withheld:
            k = w["kind"]
            if k == "variable":
                where = [p for p in w.get("where", []) if p != w["name"]]
                out.append(f"variable {w['name']}" + (f" ({', '.join(where)})" if where else ""))
            elif k == "param":
                out.append(f"param {w['name']}")
            elif k in ("message", "name"):
                out.append(f"the version's {k} (masked)")
            elif k == "tag":
                out.append(f"a tag ({w['name']})")
            elif k == "summary":
                out.append(f"the summary of variable {w['name']} (masked)")
            elif k == "source":
                out.append(f"source of {_cell_label(w)} (masked)")
            elif k == "output":
                out.append(f"output of {_cell_label(w)} (masked)")
        return out


def _cell_label(w: dict) -> str:
    ec = w.get("execution_count")
    return f"cell {w['cell'] + 1}" + (f" In [{ec}]" if isinstance(ec, int) else "")


def _plain_findings(store: Store, version: Version, sv: StoredVariable) -> list:
    """Credentials in a plain-data variable that carries no mark (stores older than the mark):
    plain JSON decodes without unpickling, so it is checked at no risk."""
    if sv.codec != "plain":
        return []
    try:
        buffers = [store.blobs.read_buffer(m) for m in sv.manifest["buffers"]]
        value = codecs.decode(sv.codec, sv.manifest["meta"], buffers, codecs.DecodeContext())
    except Exception:
        return []
    return credentials.scan_object(sv.name, value)


def plan(store: Store, version: Version, include_secrets: bool = False) -> Redacted:
    """The shareable form of `version` (read afresh from the store, never a masked copy)."""
    version = store.version_by_id(version.id)
    stored = [store.stored_variable(version, n) for n in version.variables]
    cells = store.cells(version)
    if include_secrets:
        included = {}
        for sv in stored:
            where = list(sv.credential) or [f.where for f in _plain_findings(store, version, sv)]
            if where:
                included[sv.name] = list(dict.fromkeys(where))
        return Redacted(version, stored, cells, [], included)
    withheld: list = []
    kept = []
    for sv in stored:
        where = list(sv.credential) or [f.where for f in _plain_findings(store, version, sv)]
        if where:
            withheld.append({"kind": "variable", "name": sv.name, "where": list(dict.fromkeys(where))})
            continue
        summary = credentials.mask_json(sv.summary)
        if summary != sv.summary:
            withheld.append({"kind": "summary", "name": sv.name})
            sv = dataclasses.replace(sv, summary=summary)
        kept.append(sv)
    params = {}
    for k, v in version.params.items():
        masked = v if isinstance(v, str) else credentials.mask_json(v)
        # `is not` first: a NaN param is returned as itself and NaN != NaN would withhold it
        if isinstance(v, str) and credentials.is_credential(str(k), v) or (
                not isinstance(v, str) and masked is not v and masked != v):
            withheld.append({"kind": "param", "name": str(k)})
        else:
            params[k] = v
    message, name = credentials.mask_json(version.message), credentials.mask_json(version.name)
    for k, before, after in (("message", version.message, message), ("name", version.name, name)):
        if before != after:
            withheld.append({"kind": k})
    tags = []
    for t in version.tags:
        if credentials.mask_json(t) != t:
            withheld.append({"kind": "tag", "name": credentials.mask_json(t)})
        else:
            tags.append(t)
    out_cells: list[Cell] = []
    for i, c in enumerate(cells):
        mc, source_masked, outputs = credentials.mask_cell(c)
        if source_masked:
            withheld.append({"kind": "source", "cell": i, "execution_count": c.execution_count})
        if outputs:
            withheld.append({"kind": "output", "cell": i, "execution_count": c.execution_count, "outputs": outputs})
        out_cells.append(mc)
    shared = dataclasses.replace(version, params=params, message=message, name=name, tags=tuple(tags),
                                 variables=tuple(sv.name for sv in kept))
    return Redacted(shared, kept, out_cells, withheld, {})


def warn(r: Redacted, where: str, flag: str = "--include-secrets (include_secrets=True)") -> None:
    """One warning naming every withheld or masked item, when there is any."""
    items = r.describe()
    if items:
        warnings.warn(CredentialsWithheld(
            f"credentials withheld from {where}: {'; '.join(items)}. Pass {flag} to include them on purpose"),
            stacklevel=3)
