"""Plain records passed between layers. Stdlib only, immutable."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VariableRef:
    """One stored variable of one version."""

    name: str
    type_name: str
    codec: str
    content_hash: str
    nbytes: int
    summary: dict = field(default_factory=dict)
    safe: bool = True  # False when restoring it would unpickle
    credential: tuple = ()  # where it holds a credential (`client.api_key`); () when it holds none


@dataclass(frozen=True)
class Cell:
    """One executed cell: source, execution count and outputs (nbformat output dicts)."""

    source: str
    execution_count: int | None = None
    cell_id: str | None = None
    outputs: tuple = ()

    def to_dict(self) -> dict:
        return {
            "cell_id": self.cell_id,
            "execution_count": self.execution_count,
            "source": self.source,
            "outputs": list(self.outputs),
        }


@dataclass(frozen=True)
class Version:
    """A committed snapshot of a notebook's state."""

    id: int  # store-wide primary key
    n: int  # per-notebook number: the N of "vN"
    notebook: str
    created: str  # ISO 8601, UTC
    message: str = ""
    name: str = ""
    parent: int | None = None  # per-notebook number of the parent version
    kind: str = "manual"  # manual | auto | imported
    tags: tuple = ()
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    variables: tuple = ()  # names
    nbytes: int = 0  # logical size of the variables
    new_bytes: int = 0  # bytes this version added to the store
    env_id: int | None = None
    execution_count: int | None = None  # for automatic versions: the cell execution that made it
    origin: str = "local"  # local: made in this store; anything else (imported, pulled) is untrusted
    gid: str = ""  # global identity: 32 hex digits (UUID4), the same in every store that holds the version
    author: str = ""  # who made it elsewhere (user@host or the git user, from a remote); "" when made here

    @property
    def label(self) -> str:
        return f"v{self.n}"

    @property
    def is_local(self) -> bool:
        """Made in this store. Versions from elsewhere (a bundle, a remote) are untrusted: never
        unpickled without the user's say-so, their recorded outputs shown sanitized."""
        return self.origin == "local"

    def to_dict(self) -> dict:
        return {
            "id": self.label,
            "name": self.name,
            "message": self.message,
            "created": self.created,
            "tags": list(self.tags),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "variables": list(self.variables),
            "bytes": self.nbytes,
            "new_bytes": self.new_bytes,
            "parent": f"v{self.parent}" if self.parent else None,
            "kind": self.kind,
            "notebook": self.notebook,
            "execution_count": self.execution_count,
            "origin": self.origin,
            "gid": self.gid,
            "author": self.author,
        }


@dataclass(frozen=True)
class Skipped:
    """A variable a snapshot could not store, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class SnapshotResult:
    """What a snapshot did: the version it made, what it skipped, and notes on what it stored in a
    changed form (Skipped-shaped: name, text; e.g. a numpy memmap stored as its data)."""

    version: Version
    skipped: tuple = ()
    notes: tuple = ()
    shared_bytes: int = 0  # bytes of variables unchanged from the parent version: referenced, not copied

    def summary_line(self) -> str:
        v = self.version
        n = len(v.variables)
        words = [v.label]
        if v.name:
            words.append(v.name)
        if v.message:
            words.append(v.message)
        words.append(f"{n} variable{'s' if n != 1 else ''}")
        # nbytes: the variables' size; new_bytes: what this version added to the blob files
        # (compressed; small values live in the database instead). "0 B new" alone read as "nothing
        # was saved", so the line says what is stored and how much of it is shared, not copied.
        size = f"{human_bytes(v.nbytes)} stored"
        if v.new_bytes or self.shared_bytes:
            size += f", {human_bytes(v.new_bytes)} new"
        if self.shared_bytes:
            size += f" ({human_bytes(self.shared_bytes)} unchanged, shared with earlier versions)"
        words.append(size)
        if v.tags:
            words.append("tags: " + ", ".join(v.tags))
        if self.skipped:
            words.append("skipped: " + ", ".join(s.name for s in self.skipped))
        return "  ".join(words)


def human_bytes(n: int | float) -> str:
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@dataclass(frozen=True)
class Diff:
    """Structured difference between two versions. `to_dict()` follows schemas/diff.schema.json.
    Data only: diffing.py computes it, diffview.Diff (what `api.diff()` returns) adds its text and
    HTML renderings from the layer above, so this module imports nothing of the package."""

    a: str
    b: str
    notebook: str
    params: dict  # {"added": {k: v}, "removed": {k: v}, "changed": {k: [old, new]}, "same": {k: v}}
    metrics: dict  # {"added":…, "removed":…, "changed": {k: {"old","new","delta"}}, "same":…}
    variables: dict  # {"added": [summary…], "removed": [...], "changed": [{name, old, new}], "same": [names]}
    cells: list  # [{"status", "cell_id", "a_index", "b_index", "source_diff", "outputs_changed", "outputs_diff"}]

    def to_dict(self) -> dict:
        return {
            "schema": 1,
            "a": self.a,
            "b": self.b,
            "notebook": self.notebook,
            "params": self.params,
            "metrics": self.metrics,
            "variables": self.variables,
            "cells": self.cells,
        }

    @property
    def empty(self) -> bool:
        return not (
            self.params["added"] or self.params["removed"] or self.params["changed"]
            or self.metrics["added"] or self.metrics["removed"] or self.metrics["changed"]
            or self.variables["added"] or self.variables["removed"] or self.variables["changed"]
            or any(c["status"] != "same" for c in self.cells)
        )
