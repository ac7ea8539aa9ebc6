"""Where a notebook's history lives, seen from the Jupyter server.

A kernel's store is `.jupyter_mv/` in its working directory, which JupyterLab sets to the
notebook's own directory, and versions are keyed by the notebook's path relative to the store's
parent (normally just the file name). The setting `c.JupyterMV.store` (jupyter_server_config.py) or
`JUPYTER_MV_STORE` moves the store; then the key is the notebook's path relative to that store's parent,
as the kernel computes it. No tornado here."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import config
from ..config import JupyterMV
from ..errors import PathRefused

__all__ = ["Location", "PathRefused", "check_ref", "locate"]

MAX_PATH = 4096
# vN, N, latest~K, a tag or a version name: printable, no slash, not absurdly long
_REF = re.compile(r"[^\x00-\x1f\x7f/\\]{1,200}")


@dataclass(frozen=True)
class Location:
    """One notebook as the store knows it."""

    path: str  # as the client sent it, normalised, relative to the server root
    file: Path  # absolute path of the notebook file (it need not exist any more)
    store: Path  # the `.jupyter_mv/` directory holding its history
    key: str  # the notebook name versions are recorded under

    @property
    def has_store(self) -> bool:
        return (self.store / "store.db").is_file()


def locate(root: str | os.PathLike, notebook: str | None, settings: JupyterMV | None = None) -> Location:
    """Map `notebook` (relative to the server root, '/'-separated) to its store and key. `settings`: the
    server extension's JupyterMV (`c.JupyterMV.store` in jupyter_server_config.py; env JUPYTER_MV_STORE
    overrides it); None reads config.current().
    Raises PathRefused: 400 for a missing, absolute or malformed path, 403 for one that escapes."""
    if notebook is None or not str(notebook).strip():
        raise PathRefused(400, "the 'notebook' parameter is required (a path relative to the server root)")
    raw = str(notebook)
    if len(raw) > MAX_PATH or "\x00" in raw or any(ord(c) < 32 for c in raw):
        raise PathRefused(400, "malformed notebook path")
    raw = raw.replace("\\", "/")
    if raw.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", raw):
        raise PathRefused(400, f"notebook path {notebook!r} must be relative to the server root")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if not parts:
        raise PathRefused(400, "the 'notebook' parameter is required (a path relative to the server root)")
    if ".." in parts:
        raise PathRefused(403, f"notebook path {notebook!r} leaves the server root")
    base = Path(root).expanduser().resolve()
    file = base.joinpath(*parts).resolve()
    try:
        file.relative_to(base)
    except ValueError:  # a symlink pointing outside
        raise PathRefused(403, f"notebook path {notebook!r} leaves the server root") from None
    given = config.view(settings).store
    if given:
        store = Path(given).expanduser().absolute()
        try:
            key = file.relative_to(store.parent.resolve()).as_posix()
        except ValueError:
            key = file.as_posix()
    else:
        store = file.parent / ".jupyter_mv"
        key = file.name
    return Location("/".join(parts), file, store, key)


def check_ref(ref: str | None, what: str = "version") -> str:
    """A version reference from a URL or body: vN, N, latest, a tag or a name. PathRefused(400) if malformed."""
    if ref is None or not str(ref).strip():
        raise PathRefused(400, f"the {what!r} parameter is required (vN, N, a tag, a name or latest)")
    ref = str(ref).strip()
    if not _REF.fullmatch(ref):
        raise PathRefused(400, f"malformed {what} id {ref[:40]!r}")
    return ref
