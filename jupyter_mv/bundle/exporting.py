"""Exporting: one version written as a bundle file, atomically, with credentials withheld and
scikit-learn estimators in the skops format (see layout.py for what the file holds)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Callable

from .. import config, jsondata
from ..errors import BundleError, MVError
from ..model import Version
from ..store import Store
from ..store.blobs import blob_size
from .layout import EXTENSION, MANIFEST, NOTEBOOK, REQUIREMENTS, manifest_record, requirements_txt
from .notebook import notebook_of


def _compressible(data: memoryview) -> bool:
    sample = bytes(data[:65536])
    return len(sample) >= 512 and len(zlib.compress(sample, 1)) < 0.9 * len(sample)


def _check_target(store: Store, path: Path) -> None:
    """Refuse a bundle path whose writing would destroy data: inside the store (`export v1
    .jupyter_mv/store.db` replaced the database, every version lost), or an existing file that is not a
    bundle (a typo such as `%mv_export v1 analysis.ipynb` replaced the notebook). An existing bundle is
    replaced, as a re-export expects."""
    target = path.resolve()
    root = store.root.resolve()
    if target == root or root in target.parents:
        raise BundleError(f"{path} is inside the store {store.root}; writing there would damage it: give a "
                          f"path outside it, such as {store.root.parent / ('bundle' + EXTENSION)}")
    if target.exists():
        try:
            with zipfile.ZipFile(target) as zf:
                is_bundle = MANIFEST in zf.namelist()
        except (OSError, zipfile.BadZipFile, ValueError):
            is_bundle = False
        if not is_bundle:
            other = path.with_suffix(EXTENSION) if path.suffix != EXTENSION else path.with_stem(path.stem + "-2")
            raise BundleError(f"{path} exists and is not a jupyter_mv bundle; nothing was written: choose another "
                              f"file name (such as {other.name}) or remove it first")


def export(store: Store, version: Version, path: str | os.PathLike,
           progress: Callable[[int], None] | None = None, include_secrets: bool = False) -> Path:
    """Write `version` as one bundle at `path` (atomically: a temp file renamed into place).

    Credentials stay home (see redaction.py): variables holding one and params whose value is one
    are left out, texts masked, the manifest's `withheld` lists each item and one
    CredentialsWithheld warning names them. `include_secrets=True` ships them on purpose (the
    manifest then marks the variables holding credentials, so the importing store does too).

    scikit-learn estimators are shipped in the skops format (redaction.to_safe_format), so the
    receiver restores them without --trust, and so are groups of variables sharing objects with
    them (one skops file per group, redaction.group_to_safe_format); those skops cannot hold stay
    pickled. The same version
    exports to the same bytes.

    `progress(n)` is called with the byte count of each chunk written. Returns the path written.
    Raises BundleError (one line) when `path` is a directory or its folder does not exist, when
    the file cannot be written, or when a chunk of the version cannot be read from the store."""
    from .. import redaction

    path = Path(path).expanduser()
    if path.is_dir():
        raise BundleError(f"{path} is a directory; give a file name such as {path / ('bundle' + EXTENSION)}")
    _check_target(store, path)
    original = store.version_by_id(version.id)
    # scikit-learn estimators leave the machine in the skops format (pickled in the local store)
    shared = redaction.plan(store, original, include_secrets, safe_formats=True)
    version, stored = shared.version, shared.variables
    env = store.environment(version)
    nb_bytes = json.dumps(notebook_of(store, version, cells=shared.cells), indent=1, ensure_ascii=False).encode()
    req_bytes = requirements_txt(env).encode()
    chunks: list[str] = []
    for sv in stored:
        for m in sv.manifest.get("buffers", []):
            for bid in m.get("c", []) if "i" not in m else []:
                if bid not in chunks:
                    chunks.append(bid)
    members: dict[str, dict] = {}
    if not path.parent.exists():
        raise BundleError(f"cannot write {path}: the folder {path.parent} does not exist")
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "wb") as raw, zipfile.ZipFile(raw, "w", allowZip64=True) as zf:
            def put(name: str, data, compress: bool) -> None:
                mv = memoryview(data)
                members[name] = {"size": mv.nbytes, "sha256": hashlib.sha256(mv).hexdigest()}
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
                with zf.open(info, "w", force_zip64=mv.nbytes > 2**31) as f:
                    f.write(mv)

            put(NOTEBOOK, nb_bytes, True)
            put(REQUIREMENTS, req_bytes, True)
            for bid in chunks:
                buf = shared.blobs.get(bid)  # a chunk of a re-encoded variable, not in the store
                if buf is None:
                    buf = memoryview(bytearray(blob_size(bid)))
                    try:
                        store.blobs.read_into(bid, buf)
                    except MVError as e:
                        raise BundleError(f"cannot export {version.label}: {e}; run `jupyter-mv verify`") from None
                put(f"blobs/{bid}", buf, _compressible(buf))
                if progress:
                    progress(len(buf))
            # the author of a version made here: the `author` setting, if any (a bundle names who made it)
            manifest = manifest_record(store, original, shared, members, author=config.current().author)
            # RFC 8259: a NaN/±inf metric or param is written "NaN"/"Infinity"/"-Infinity" (jsondata)
            man = jsondata.dumps(manifest, indent=1, sort_keys=True).encode()
            info = zipfile.ZipInfo(MANIFEST, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, man)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise BundleError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    redaction.warn(shared, f"the bundle {path.name}")
    return path


def bundle_size(store: Store, version: Version) -> int:
    """Bytes of blob data an export of `version` would carry (int; chunks stored inline in the
    manifest excluded), for deciding on a progress bar. Reads only manifests, never blob data."""
    ids = set()
    for n in version.variables:
        for m in store.stored_variable(version, n).manifest.get("buffers", []):
            ids.update(m.get("c", []) if "i" not in m else [])
    return sum(blob_size(b) for b in ids)
