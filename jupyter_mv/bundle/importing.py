"""Importing: a bundle checked completely (validation.read), then its version added to a store
with origin "imported". Nothing is ever unpickled here: whether a variable is safe is recomputed
from its codec, so restore refuses pickle-based ones unless the user trusts the bundle."""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Callable

from .. import codecs, jsondata
from ..errors import BundleError, MVError
from ..model import Version
from ..store import Store, StoredVariable
from ..store.blobs import blob_id, blob_size
from . import identity
from .notebook import cells_of
from .validation import Bundle, _read_small, _refuse, read


@dataclass
class ImportResult:
    """What an import did: the version (new, or already present) and any notes for the user."""

    version: Version
    new_bytes: int = 0
    already: bool = False
    notes: list = field(default_factory=list)
    same_id: bool = False  # already: found under the global id the bundle claims, with the same content

    def summary_line(self) -> str:
        v = self.version
        if self.already and v.is_local:
            return (f"{v.notebook} {v.label} is this bundle's version, made in this store: nothing imported "
                    f"(the bundle is an export of it)")
        if self.already and self.same_id:
            return (f"already here as {v.label} of {v.notebook} ({v.gid[:12]}): this bundle carries the same "
                    "version; nothing imported")
        if self.already:
            return f"{v.notebook} {v.label} was already imported from this bundle"
        from ..model import human_bytes

        line = (f"imported {v.label} of {v.notebook}: {len(v.variables)} variable"
                f"{'s' if len(v.variables) != 1 else ''}, {human_bytes(self.new_bytes)} new")
        return "  ".join([line, *self.notes])


def _same_version(store: Store, b: Bundle, cells: list) -> Version | None:
    """The bundle's version when this store already holds it: an earlier import of the same bundle, or
    the version it was exported from (same notebook and created time, and the same content:
    identity.matches, which checks what the bundle carries, not the content hashes it states).
    Importing one's own export would otherwise add an untrusted duplicate of a version made here."""
    fp = None
    for v in store.versions(b.version["notebook"]):
        if v.created == b.version["created"]:
            fp = fp or identity.of_record(b.manifest, cells)
            if identity.matches(store, v, fp):
                return v
    return None


def _claim(store: Store, b: Bundle, cells: list) -> tuple[Version | str | None, str]:
    """What the global id the bundle claims (manifest version.gid) means here: (the version holding
    it, when its content is the bundle's — nothing to import), or (the id to record as the imported
    version's unverified claim, or None, and a one-line note when the claim was refuted).

    The id is checked against the version this store holds under it and against earlier imports
    claiming it (identity.matches). A different content under the same id is another version: it is
    imported with a fresh id and the note names the version the id belongs to, which is never
    replaced nor hidden. An id nothing here holds stays a claim: the imported version gets a fresh
    id, and push or pull adopt the claimed one only after comparing content with the version the
    remote holds under it (identity.py says why)."""
    gid = b.version.get("gid")
    if not gid:  # a bundle written before versions had global ids
        return None, ""
    fp = identity.of_record(b.manifest, cells)
    holder = store.version_by_gid(gid)
    claimers = store.versions_claiming(gid)
    for v in ([holder] if holder is not None else []) + claimers:
        if identity.matches(store, v, fp):
            return v, ""
    if holder is not None:
        return None, (f"this bundle claims the id {gid[:12]} of {holder.notebook} {holder.label} here, but its "
                      f"content differs: imported as a separate version with an id of its own "
                      f"({holder.label} is unchanged)")
    if claimers:
        return gid, (f"{claimers[0].notebook} {claimers[0].label}, imported earlier, claims the same id "
                     f"{gid[:12]} with other content: each keeps an id of its own until a remote shows which "
                     "one it is")
    return gid, ""


def variables_of(manifest: dict) -> list[StoredVariable]:
    """The variables of a checked manifest (validation.check_manifest), ready to commit: whether each
    is safe is recomputed from its codec (never the sender's claim), credential marks kept. Shared by
    bundle import and remote pull (remotes/pull.py)."""
    stored = []
    for var in manifest["variables"]:
        stored.append(StoredVariable(
            name=var["name"], type_name=var["type_name"], codec=var["codec"], content_hash=var["content_hash"],
            nbytes=var["nbytes"], safe=var["codec"] in codecs.SAFE,  # never the bundle's own claim
            credential=tuple(var.get("credential") or ()),  # shipped on purpose (--include-secrets): stays marked
            summary=var.get("summary") or {},
            manifest={"meta": var["manifest"]["meta"], "buffers": [
                ({"n": x["n"], "c": [], "i": x["i"]} if "i" in x else {"n": x["n"], "c": list(x["c"])})
                for x in var["manifest"]["buffers"]]},
        ))
    return stored


def import_(store: Store, path: str | os.PathLike, trust: bool = False, max_bytes: int | None = None,
            progress: Callable[[int], None] | None = None) -> ImportResult:
    """Check a bundle completely, then add its version to `store` with origin "imported".

    `trust` is recorded nowhere: importing never unpickles; restore asks for trust separately.
    Returns an ImportResult; `already=True` (nothing written) when the store holds the version
    already (an earlier import, or the version this bundle was exported from). Raises BundleError
    (one line) when the bundle is refused (see validation.read) or cannot be written; blobs written
    before a failure are deleted again. `max_bytes`, `progress`: as for validation.read."""
    b = read(path, max_bytes=max_bytes, progress=progress)
    man, ver = b.manifest, b.version
    cells = cells_of(b.notebook)
    prior = _same_version(store, b, cells)
    if prior is not None:
        return ImportResult(prior, 0, True, same_id=prior.gid == ver.get("gid"))
    nb = ver["notebook"]
    claimed, clash = _claim(store, b, cells)
    if isinstance(claimed, Version):  # the version under the id the bundle claims, same content
        return ImportResult(claimed, 0, True, same_id=True)
    # local names and tags are never moved or shadowed by an import: clashing ones are dropped, with a note
    name, tags, notes = store.importable_labels(nb, ver.get("name", ""), ver.get("tags", []))
    if clash:
        notes.insert(0, clash)
    held = [str(w.get("name")) for w in man.get("withheld", []) if w.get("kind") in ("variable", "param")]
    if held:  # the sender kept credentials home: say what is missing, so nobody looks for it
        notes.append(f"left out by the sender (credentials): {', '.join(held[:10])}"
                     + (f" and {len(held) - 10} more" if len(held) > 10 else ""))
    stored = variables_of(man)
    env = dict(b.environment)
    env.setdefault("packages", {})
    written: list[str] = []
    new_bytes = 0
    try:
        with store.blobs.writing():
            with zipfile.ZipFile(b.path) as zf:
                for bid, member in sorted(b.blobs.items()):
                    if store.blobs.exists(bid):
                        continue
                    data = _read_small(b.path, zf, zf.getinfo(member), blob_size(bid))
                    if blob_id(data) != bid:  # the file changed since it was checked
                        _refuse(b.path, f"blob {bid[:12]} changed while importing")
                    added = store.blobs.add_chunk(data, bid)
                    if added:
                        written.append(bid)
                        new_bytes += added
            store.blobs.sync_dirs(written)
            version = store.commit_version(
                nb, stored, cells=cells,
                # non-finite numbers were written as "NaN"/"Infinity"/"-Infinity": floats again
                params={k: jsondata.number(x) for k, x in (ver.get("params") or {}).items()},
                metrics={k: jsondata.number(x) for k, x in (ver.get("metrics") or {}).items()},
                tags=tags, message=ver.get("message", ""), name=name, kind=ver.get("kind") if ver.get("kind") in ("manual", "auto") else "manual",
                parent=None, env=env, new_bytes=new_bytes, origin="imported", created=ver["created"],
                # a fresh global id of its own: the claimed one is the sender's word (_claim)
                author=ver.get("author", ""), claimed_gid=claimed or "",
            )
    except (MVError, OSError, zipfile.BadZipFile, zlib.error) as e:
        store.discard_chunks(written)  # leave the store as it was (but for chunks a concurrent import now uses)
        if isinstance(e, BundleError):
            raise
        if isinstance(e, MVError):
            raise BundleError(f"cannot import {b.path.name}: {e}") from None
        raise BundleError(f"cannot import {b.path.name}: {getattr(e, 'strerror', None) or e}") from None
    return ImportResult(version, new_bytes, False, notes)
