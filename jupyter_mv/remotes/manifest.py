"""A version's manifest on a remote (layout.py: versions/<gid>.json): built on push from the same
records a bundle carries, validated on pull by the bundle importer's own checks (bundle.py), so a
pulled version is held to exactly the rules of an imported bundle. Everything this package borrows
from bundle.py goes through this module."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .. import bundle as _bundle
from .. import jsondata
from ..errors import BundleError, RemoteCorrupt
from ..store.blobs import blob_size
from . import layout

FORMAT, SCHEMA = _bundle.FORMAT, _bundle.SCHEMA
NOTEBOOK, REQUIREMENTS = _bundle.NOTEBOOK, _bundle.REQUIREMENTS
MAX_NOTEBOOK, MAX_REQUIREMENTS, MAX_CHUNK = _bundle.MAX_NOTEBOOK, _bundle.MAX_REQUIREMENTS, _bundle.MAX_CHUNK
notebook_of, requirements_txt, version_hash, cells_of = (_bundle.notebook_of, _bundle.requirements_txt,
                                                         _bundle.version_hash, _bundle.cells_of)
from ..bundle.importing import variables_of  # noqa: E402,F401 - the importer's own StoredVariable builder

_MEMBER_NAME = "manifest"  # what the bundle checks call the file they refuse (reworded below)


def bundle_record(store, original, shared, members: dict, author: str = "") -> dict:
    """The `bundle` part of a version manifest: exactly the manifest.json bundle.export writes
    (bundle.layout.manifest_record), so a pulled version passes the importer's own checks."""
    return _bundle.manifest_record(store, original, shared, members, author=author)


def dumps(doc: dict) -> bytes:
    """RFC 8259 JSON (NaN/±inf metrics as "NaN"/"Infinity", jsondata), keys sorted: deterministic."""
    try:  # the common case, plain values only: json's C encoder (a manifest of 3,000 chunks: 10 ms, not 130)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    except (ValueError, TypeError):  # a non-finite number or a numpy scalar somewhere: jsondata's walk
        return jsondata.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _refused(gid: str, where: str, why: str) -> RemoteCorrupt:
    return RemoteCorrupt(f"refused version {gid} from {where}: {why}; nothing of it was imported")


def validate(raw: bytes, gid: str, where: str) -> dict:
    """Parse and check the manifest `raw` of version `gid` read from remote `where` (a URL without
    credentials): the wrapper (format, gid, texts), the bundle record by the
    importer's own checks (bundle.check_manifest: schema, labels, codecs and their metadata, blob ids,
    sizes, sha256 entries),
    and the chunk locations (exactly the chunks the record lists, at keys of the layout). Returns the
    manifest. RemoteCorrupt with one line naming the version and the problem otherwise."""
    if len(raw) > layout.MAX_MANIFEST:
        raise _refused(gid, where, f"its manifest is {len(raw)} bytes, more than {layout.MAX_MANIFEST}")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _refused(gid, where, f"its manifest is not valid JSON ({str(e)[:80]})") from None
    if not isinstance(doc, dict) or doc.get("format") != layout.VERSION_FORMAT:
        raise _refused(gid, where, "its manifest is not a jupyter_mv version manifest")
    if doc.get("schema") != layout.SCHEMA or isinstance(doc.get("schema"), bool):
        raise _refused(gid, where, f"manifest schema {doc.get('schema')!r} is unknown to this jupyter_mv; "
                                   "upgrade jupyter_mv")
    if doc.get("gid") != gid:
        raise _refused(gid, where, "its manifest names another version")
    parent = doc.get("parent_gid")
    if parent is not None and not (isinstance(parent, str) and layout.GID.fullmatch(parent)):
        raise _refused(gid, where, "its parent id is malformed")
    for key in ("author", "pushed_by", "pushed_at"):
        v = doc.get(key, "")
        if not isinstance(v, str) or len(v) > 512 or any(ord(c) < 32 for c in v):
            raise _refused(gid, where, f"its {key} is malformed")
    rec = doc.get("bundle")
    try:
        _bundle.check_manifest(Path(_MEMBER_NAME), rec)
    except BundleError as e:
        why = str(e)
        why = re.sub(rf"^refused bundle {_MEMBER_NAME}: ", "", why)
        why = re.sub(r"; nothing was imported$", "", why)
        why = why.replace("the bundle does not carry", "the manifest does not list")
        raise _refused(gid, where, why) from None
    if rec["version"].get("gid", gid) != gid:  # push writes the version's own id in both places
        raise _refused(gid, where, "its version record names another version")
    members = rec["members"]
    blobs = {name[len("blobs/"):] for name in members if name.startswith("blobs/")}
    for name, d in members.items():
        if name in (NOTEBOOK, REQUIREMENTS):
            limit = MAX_NOTEBOOK if name == NOTEBOOK else MAX_REQUIREMENTS
            if d["size"] > limit:
                raise _refused(gid, where, f"its {name} declares {d['size']} bytes, more than {limit}")
        elif not (name.startswith("blobs/") and layout.BLOB_ID.fullmatch(name[6:])):
            raise _refused(gid, where, f"unexpected member {name[:60]!r}")
        elif blob_size(name[6:]) != d["size"] or d["size"] > MAX_CHUNK:
            raise _refused(gid, where, f"member {name[:60]!r} declares a size its blob id contradicts")
    referenced = {c for var in rec["variables"] for b in var["manifest"]["buffers"] for c in b.get("c", [])}
    if blobs - referenced:
        raise _refused(gid, where, f"blob {sorted(blobs - referenced)[0][:12]} is not used by any variable")
    locs = doc.get("locations")
    if not isinstance(locs, dict) or set(locs) != blobs:
        raise _refused(gid, where, "its chunk locations do not match its chunks")
    for bid, loc in locs.items():
        if not isinstance(loc, list) or not loc or not isinstance(loc[0], str):
            raise _refused(gid, where, f"chunk {bid[:12]} has a malformed location")
        if len(loc) == 1:
            if loc[0] != layout.chunk_key(bid):
                raise _refused(gid, where, f"chunk {bid[:12]} is placed at an unexpected key")
        elif len(loc) == 3 and layout.PACK_KEY.fullmatch(loc[0]) and all(
                type(x) is int for x in loc[1:]) and loc[1] >= len(layout.PACK_MAGIC) \
                and 2 <= loc[2] <= 2 + blob_size(bid):  # stored compressed only when smaller
            pass
        else:
            raise _refused(gid, where, f"chunk {bid[:12]} has a malformed location")
    return doc


def check_notebook(raw: bytes, gid: str, where: str) -> dict:
    """notebook.ipynb of a pulled version: valid JSON and a valid nbformat 4 notebook (bundle checks)."""
    try:
        nb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _refused(gid, where, "its notebook.ipynb is not valid JSON") from None
    try:
        _bundle.check_notebook(Path(_MEMBER_NAME), nb)
    except BundleError as e:
        why = re.sub(rf"^refused bundle {_MEMBER_NAME}: ", "", str(e))
        raise _refused(gid, where, re.sub(r"; nothing was imported$", "", why)) from None
    return nb


def fingerprint(remote, doc: dict, where: str) -> str:
    """The content fingerprint (bundle.identity.of_record) of validated version manifest `doc` on
    `remote` (its notebook fetched, re-hashed and checked), to compare with a version here before
    an id claimed for it is believed. RemoteCorrupt when its notebook is missing or damaged."""
    from ..bundle import identity
    from ..errors import RemoteMissing

    gid = doc["gid"]
    member = doc["bundle"]["members"][NOTEBOOK]
    key = layout.file_key(member["sha256"])
    try:
        raw = remote.get(key)
    except RemoteMissing:
        raise _refused(gid, where, f"object {key} is missing on the remote") from None
    if len(raw) != member["size"] or hashlib.sha256(raw).hexdigest() != member["sha256"]:
        raise _refused(gid, where, f"object {key} (notebook.ipynb) does not match its sha256")
    return identity.of_record(doc["bundle"], cells_of(check_notebook(raw, gid, where)))


def objects_of(doc: dict) -> list[str]:
    """Every remote key a version manifest references (chunks, packs and their indexes, files)."""
    keys = set()
    for loc in doc["locations"].values():
        keys.add(loc[0])
        if len(loc) == 3:
            keys.add(layout.index_key(loc[0]))
    for name in (NOTEBOOK, REQUIREMENTS):
        d = doc["bundle"]["members"].get(name)
        if d:
            keys.add(layout.file_key(d["sha256"]))
    return sorted(keys)
