"""Bundles: one version of one notebook as a single `.mvz` file (a zip) a colleague can import and
reproduce, and the validating importer that refuses anything hostile before writing a byte.

Layout of a bundle (schema 1, see schemas/bundle.schema.json):

    manifest.json      format, schema, the version (params, metrics, tags, ...), environment,
                       variables with their codec meta and buffer manifests, sha256 + size of
                       every other member
    notebook.ipynb     the version's executed cells as an nbformat 4 notebook (sources, outputs)
    requirements.txt   the exact package versions of the environment it was taken in
    blobs/<blob id>    the raw bytes of every chunk the version's variables reference

Importing trusts nothing in the file: member names, sizes (declared and decompressed), checksums,
the schema version, blob ids (re-hashed) and codec names are all checked first; only then are
blobs written (deduplicated by the BlobStore) and the version committed with origin "imported".
Nothing is ever unpickled here: whether a variable is safe is recomputed from its codec, so
restore refuses pickle-based ones unless the user trusts the bundle.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import codecs, jsondata
from .errors import BundleError, MVError
from .model import Cell, Version
from .store import Store, StoredVariable
from .store.blobs import blob_id, blob_size

__all__ = ["export", "import_", "read", "Bundle", "ImportResult", "notebook_of", "version_hash",
           "SCHEMA", "MAX_BYTES"]

FORMAT = "jupyter_mv.bundle"
SCHEMA = 1
KNOWN_SCHEMAS = (1,)
EXTENSION = ".mvz"

MANIFEST, NOTEBOOK, REQUIREMENTS = "manifest.json", "notebook.ipynb", "requirements.txt"
_BLOB_MEMBER = re.compile(r"blobs/([0-9a-f]{32}-[0-9a-f]{1,15})")

# Bounds against decompression bombs and absurd files. The total can be raised for huge models.
MAX_BYTES = int(os.environ.get("JUPYTER_MV_MAX_BUNDLE_BYTES", 64 * 1024**3))  # everything, decompressed
MAX_MANIFEST = 256 * 1024**2
MAX_NOTEBOOK = 512 * 1024**2
MAX_REQUIREMENTS = 16 * 1024**2
MAX_CHUNK = 1024**3  # one blob member
MAX_MEMBERS = 1_000_000
_READ = 1024 * 1024


# -- shared helpers ------------------------------------------------------------------------------
def version_hash(store: Store, version: Version) -> str:
    """A content hash of a version: its variables' content hashes, params and metrics."""
    body = {
        "variables": sorted((v.name, v.content_hash) for v in store.variables(version)),
        "params": version.params,
        "metrics": version.metrics,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=repr).encode()).hexdigest()


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
    in order, as nbformat 4 JSON."""
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


def requirements_txt(env: dict) -> str:
    lines = [f"# environment of a jupyter_mv bundle: Python {env.get('python', '?')} on {env.get('platform', '?')}"]
    lines += [f"{name}=={ver}" for name, ver in sorted((env.get("packages") or {}).items())]
    return "\n".join(lines) + "\n"


# -- export --------------------------------------------------------------------------------------
def _compressible(data: memoryview) -> bool:
    sample = bytes(data[:65536])
    return len(sample) >= 512 and len(zlib.compress(sample, 1)) < 0.9 * len(sample)


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
    exports to the same bytes."""
    from . import redaction

    path = Path(path).expanduser()
    if path.is_dir():
        raise BundleError(f"{path} is a directory; give a file name such as {path / ('bundle' + EXTENSION)}")
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
            manifest = {
                "format": FORMAT,
                "schema": SCHEMA,
                "jupyter_mv": _package_version(),
                "version": {
                    "label": version.label, "n": version.n, "notebook": version.notebook,
                    "name": version.name, "message": version.message, "created": version.created,
                    "kind": version.kind, "tags": list(version.tags), "params": version.params,
                    "metrics": version.metrics, "content_hash": version_hash(store, original),
                },
                "environment": {
                    "python": env.get("python", ""), "implementation": env.get("implementation", ""),
                    "platform": env.get("platform", ""), "packages": env.get("packages") or {},
                    "git": env.get("git"),
                },
                "variables": [{
                    "name": sv.name, "type_name": sv.type_name, "codec": sv.codec,
                    "content_hash": sv.content_hash, "nbytes": sv.nbytes, "safe": bool(sv.safe),
                    "summary": sv.summary, "manifest": sv.manifest,
                    **({"credential": shared.included[sv.name]} if sv.name in shared.included else {}),
                } for sv in stored],
                "withheld": shared.withheld,
                "members": members,
            }
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


def _package_version() -> str:
    from . import __version__

    return __version__


# -- reading and validating ----------------------------------------------------------------------
@dataclass
class Bundle:
    """A bundle whose manifest and members were checked (`read`)."""

    path: Path
    manifest: dict
    notebook: dict
    requirements: str
    blobs: dict = field(default_factory=dict)  # blob id -> member name

    @property
    def version(self) -> dict:
        return self.manifest["version"]

    @property
    def environment(self) -> dict:
        return self.manifest["environment"]


def _refuse(path, why: str):
    raise BundleError(f"refused bundle {Path(path).name}: {why}; nothing was imported")


def _check_name(path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    if not name or len(name) > 255 or "\x00" in name:
        _refuse(path, f"member with a malformed name {name[:60]!r}")
    if "\\" in name:
        _refuse(path, f"member {name!r} has a backslash in its path")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        _refuse(path, f"member {name!r} has an absolute path")
    if ".." in name.split("/"):
        _refuse(path, f"member {name!r} points outside the bundle (..)")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        _refuse(path, f"member {name!r} is a symbolic link")
    if info.is_dir() or stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        _refuse(path, f"member {name!r} is not a regular file")
    if info.flag_bits & 0x1:
        _refuse(path, f"member {name!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        _refuse(path, f"member {name!r} uses an unsupported compression method")
    if name != MANIFEST and name not in (NOTEBOOK, REQUIREMENTS) and not _BLOB_MEMBER.fullmatch(name):
        _refuse(path, f"unexpected member {name!r}")


def _read_member(path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int,
                 sink: Callable[[bytes], None]) -> int:
    """Stream one member through `sink`, refusing it when it decompresses past `budget` bytes."""
    if info.file_size > budget:
        _refuse(path, f"member {info.filename!r} declares {info.file_size} bytes, more than the "
                      f"{budget} allowed (decompression bomb?)")
    got = 0
    with zf.open(info) as f:
        while True:
            chunk = f.read(min(_READ, budget - got + 1))
            if not chunk:
                break
            got += len(chunk)
            if got > budget:
                _refuse(path, f"member {info.filename!r} decompresses past {budget} bytes (decompression bomb?)")
            sink(chunk)
    return got


def _read_small(path, zf, info, budget: int) -> bytes:
    buf = bytearray()
    _read_member(path, zf, info, budget, buf.extend)
    return bytes(buf)


def _is_str_dict(d) -> bool:
    return isinstance(d, dict) and all(isinstance(k, str) for k in d)


def _known_codecs() -> set:
    return {n for mod in codecs._codecs() for n in mod.NAMES}


def _check_manifest(path, m) -> None:
    """Structure and values of a schema-1 manifest (what schemas/bundle.schema.json states)."""
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        _refuse(path, "it is not a jupyter_mv bundle (manifest.json has no jupyter_mv format marker)")
    schema = m.get("schema")
    if schema not in KNOWN_SCHEMAS or isinstance(schema, bool):
        _refuse(path, f"manifest schema version {schema!r} is unknown to this jupyter_mv (it reads "
                      f"{', '.join(map(str, KNOWN_SCHEMAS))}); upgrade jupyter_mv")
    v = m.get("version")
    if not isinstance(v, dict):
        _refuse(path, "manifest has no version record")
    for key in ("notebook", "created", "label"):
        if not isinstance(v.get(key), str) or not v[key] or len(v[key]) > 4096 or "\x00" in v[key]:
            _refuse(path, f"manifest version.{key} is missing or malformed")
    for key in ("name", "message", "kind"):
        if not isinstance(v.get(key, ""), str):
            _refuse(path, f"manifest version.{key} is not text")
    if not _is_str_dict(v.get("params", {})):
        _refuse(path, "manifest params are not a mapping")
    metrics = v.get("metrics", {})
    if not _is_str_dict(metrics) or not all(isinstance(jsondata.number(x), (int, float)) and not isinstance(x, bool)
                                            for x in metrics.values()):
        _refuse(path, "manifest metrics are not a mapping of numbers")
    tags = v.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        _refuse(path, "manifest tags are not a list of text")
    for t in tags:
        # what no version of jupyter_mv ever accepted is tampering; tags that only today's stricter
        # rules refuse (a ':', a leading '-') are dropped on import, with a note (Store.importable_labels)
        if not t.strip() or len(t) > 100 or any(c.isspace() for c in t) or re.fullmatch(r"[vV]?\d+|latest(~\d+)?", t):
            _refuse(path, f"manifest tag {t[:40]!r} is not a valid tag")
    env = m.get("environment", {})
    if not isinstance(env, dict) or not (_is_str_dict(env.get("packages", {})) and all(
            isinstance(x, str) for x in env.get("packages", {}).values())):
        _refuse(path, "manifest environment is malformed")
    members = m.get("members")
    if not _is_str_dict(members) or len(members) > MAX_MEMBERS:
        _refuse(path, "manifest has no member table")
    for name, d in members.items():
        if not (isinstance(d, dict) and isinstance(d.get("size"), int) and not isinstance(d["size"], bool)
                and d["size"] >= 0 and isinstance(d.get("sha256"), str)
                and re.fullmatch(r"[0-9a-f]{64}", d["sha256"])):
            _refuse(path, f"manifest entry for {name[:60]!r} has no valid size and sha256")
    if NOTEBOOK not in members:
        _refuse(path, "it has no notebook.ipynb")
    variables = m.get("variables")
    if not isinstance(variables, list):
        _refuse(path, "manifest has no variable list")
    withheld = m.get("withheld", [])  # absent in bundles written before credentials were withheld
    if not isinstance(withheld, list) or not all(isinstance(w, dict) and isinstance(w.get("kind"), str)
                                                 for w in withheld):
        _refuse(path, "manifest withheld list is malformed")
    known = _known_codecs()
    names = set()
    for var in variables:
        if not isinstance(var, dict):
            _refuse(path, "a variable record is malformed")
        name = var.get("name")
        if not isinstance(name, str) or not name.isidentifier() or name in names:
            _refuse(path, f"variable name {str(name)[:40]!r} is not a valid, unique Python name")
        names.add(name)
        if var.get("codec") not in known:
            _refuse(path, f"variable {name!r} uses codec {str(var.get('codec'))[:40]!r}, unknown to this jupyter_mv")
        for key in ("type_name", "content_hash"):
            if not isinstance(var.get(key), str):
                _refuse(path, f"variable {name!r} has no {key}")
        if not isinstance(var.get("nbytes"), int) or var["nbytes"] < 0:
            _refuse(path, f"variable {name!r} has a malformed size")
        if not isinstance(var.get("summary", {}), dict):
            _refuse(path, f"variable {name!r} has a malformed summary")
        cred = var.get("credential", [])
        if not isinstance(cred, list) or not all(isinstance(x, str) and len(x) <= 4096 for x in cred):
            _refuse(path, f"variable {name!r} has a malformed credential mark")
        man = var.get("manifest")
        if not isinstance(man, dict) or not isinstance(man.get("meta"), dict) or not isinstance(
                man.get("buffers"), list):
            _refuse(path, f"variable {name!r} has a malformed buffer manifest")
        why = _meta_problem(var["codec"], man["meta"])
        if why:
            _refuse(path, f"variable {name!r}: {why}")
        for b in man["buffers"]:
            if not isinstance(b, dict) or not isinstance(b.get("n"), int) or b["n"] < 0:
                _refuse(path, f"variable {name!r} has a malformed buffer entry")
            if "i" in b:
                if not isinstance(b["i"], str):
                    _refuse(path, f"variable {name!r} has a malformed inline buffer")
                try:
                    data = base64.b64decode(b["i"], validate=True)
                except (ValueError, TypeError):
                    _refuse(path, f"variable {name!r} has an inline buffer that is not base64")
                if len(data) != b["n"]:
                    _refuse(path, f"variable {name!r} has an inline buffer of the wrong size")
                if b.get("c"):
                    _refuse(path, f"variable {name!r} has a buffer both inline and in chunks")
                continue
            chunks = b.get("c")
            if not isinstance(chunks, list) or not all(isinstance(c, str) and _BLOB_MEMBER.fullmatch("blobs/" + c)
                                                       for c in chunks):
                _refuse(path, f"variable {name!r} references a malformed blob id")
            if sum(blob_size(c) for c in chunks) != b["n"]:
                _refuse(path, f"variable {name!r}: its chunks do not add up to its buffer size")
            for c in chunks:
                if f"blobs/{c}" not in members:
                    _refuse(path, f"variable {name!r} needs blob {c[:12]}, which the bundle does not carry")


_TORCH_DTYPE = re.compile(r"bool|u?int(8|16|32|64)|float(16|32|64)|bfloat16|complex(32|64|128)|float8_e\w{1,12}")


def _descr_types(descr, depth: int = 0):
    """The type strings of an npy descr: "<f8", or [[name, descr(, shape)], ...] nested."""
    if isinstance(descr, str):
        yield descr
    elif isinstance(descr, list) and depth < 32:
        for field in descr:
            if isinstance(field, list) and len(field) >= 2:
                yield from _descr_types(field[1], depth + 1)
            else:
                yield "O?"  # malformed: treated as unsafe
    else:
        yield "O?"


_SKOPS_MEMBER = re.compile(r"\d{1,9}\.(npy|npz|bin)")


def _meta_problem(codec: str, meta: dict) -> str | None:
    """Safe codecs must stay safe: no object arrays (numpy would refuse, pickled ones are elsewhere),
    tensor dtypes only from the list of real dtypes (the codec looks the name up on the torch module)."""
    if codec == "numpy":
        if any(t.lstrip("|<>=").startswith("O") for t in _descr_types(meta.get("descr"))):
            return "a numpy array with object dtype would need unpickling"
    if codec == "pandas":  # pickled columns/attrs are stored under "pandas+pickle", never the safe name
        pieces = meta.get("pieces") or []
        if not isinstance(pieces, list) or meta.get("attrs_piece") is not None or any(
                not isinstance(p, dict) or p.get("enc") not in ("cells", "raw") for p in pieces):
            return "a DataFrame under the safe codec name with pickled parts"
    tensors = [meta] if codec == "torch.tensor" else meta.get("tensors") or []
    if not isinstance(tensors, list):
        return "malformed tensor table"
    weights = meta.get("weights") if codec == "torch.module" else None
    if weights is not None and not (isinstance(weights, dict) and all(
            isinstance(k, str) and type(i) is int and 0 <= i < len(tensors) for k, i in weights.items())):
        return "malformed weight table"
    if codec in codecs.estimators.NAMES:
        files = meta.get("files")
        if not isinstance(files, list) or not all(isinstance(f, str) and _SKOPS_MEMBER.fullmatch(f) for f in files) \
                or len(set(files)) != len(files):
            return "malformed skops member table"
    if codec == "group.skops":  # one name of a group shipped as one skops file (codecs.groups)
        names = meta.get("members")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.isidentifier()
                                                                for n in names) or meta.get("key") not in names:
            return "malformed group member table"
    for t in tensors:
        if not isinstance(t, dict) or not isinstance(t.get("dtype"), str) or not _TORCH_DTYPE.fullmatch(t["dtype"]):
            return f"unknown tensor dtype {str(t.get('dtype') if isinstance(t, dict) else t)[:30]!r}"
    return None


def read(path: str | os.PathLike, max_bytes: int | None = None,
         progress: Callable[[int], None] | None = None) -> Bundle:
    """Open and check a bundle completely (names, sizes, checksums, schema, blob hashes);
    BundleError with one line on the first problem. Nothing is written anywhere."""
    import xxhash

    path = Path(path).expanduser()
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    if not path.is_file():
        raise BundleError(f"no bundle at {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS + 1:
                _refuse(path, f"it has {len(infos)} members, more than {MAX_MEMBERS}")
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                _refuse(path, "it has duplicate member names")
            for info in infos:
                _check_name(path, info)
            by_name = {i.filename: i for i in infos}
            if MANIFEST not in by_name:
                _refuse(path, "it has no manifest.json")
            raw = _read_small(path, zf, by_name[MANIFEST], MAX_MANIFEST)
            try:
                manifest = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                _refuse(path, f"manifest.json is not valid JSON ({str(e)[:80]})")
            _check_manifest(path, manifest)
            members = manifest["members"]
            extra = set(by_name) - set(members) - {MANIFEST}
            missing = set(members) - set(by_name)
            if extra:
                _refuse(path, f"member {sorted(extra)[0]!r} is not listed in the manifest")
            if missing:
                _refuse(path, f"member {sorted(missing)[0]!r} listed in the manifest is missing")
            declared = sum(d["size"] for d in members.values()) + len(raw)
            if declared > max_bytes:
                _refuse(path, f"it would unpack to {declared} bytes, more than the {max_bytes} allowed "
                              "(set JUPYTER_MV_MAX_BUNDLE_BYTES to raise the bound)")
            limits = {NOTEBOOK: MAX_NOTEBOOK, REQUIREMENTS: MAX_REQUIREMENTS}
            texts = {}
            blobs = {}
            for name in sorted(members):
                d = members[name]
                info = by_name[name]
                m = _BLOB_MEMBER.fullmatch(name)
                limit = limits.get(name, MAX_CHUNK)
                if d["size"] > limit:
                    _refuse(path, f"member {name!r} declares {d['size']} bytes, more than the {limit} allowed")
                if m and blob_size(m.group(1)) != d["size"]:
                    _refuse(path, f"member {name!r} declares a size its blob id contradicts")
                if info.file_size != d["size"]:
                    _refuse(path, f"member {name!r} is {info.file_size} bytes in the zip but {d['size']} in "
                                  "the manifest")
                sha = hashlib.sha256()
                xx = xxhash.xxh3_128() if m else None
                keep = bytearray() if name in limits else None

                def sink(chunk, sha=sha, xx=xx, keep=keep):
                    sha.update(chunk)
                    if xx is not None:
                        xx.update(chunk)
                    if keep is not None:
                        keep.extend(chunk)

                got = _read_member(path, zf, info, d["size"], sink)
                if got != d["size"]:
                    _refuse(path, f"member {name!r} is truncated ({got} of {d['size']} bytes)")
                if sha.hexdigest() != d["sha256"]:
                    _refuse(path, f"member {name!r} does not match its sha256 checksum")
                if m:
                    if f"{xx.hexdigest()}-{got:x}" != m.group(1):
                        _refuse(path, f"blob {m.group(1)[:12]} does not match its content hash")
                    blobs[m.group(1)] = name
                if keep is not None:
                    texts[name] = bytes(keep)
                if progress:
                    progress(got)
    except BundleError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as e:
        raise BundleError(f"refused bundle {path.name}: it is damaged or truncated ({str(e)[:100]}); "
                          "nothing was imported") from None
    except OSError as e:
        raise BundleError(f"cannot read bundle {path}: {e.strerror or e}") from None
    referenced = {c for var in manifest["variables"] for b in var["manifest"]["buffers"] for c in b.get("c", [])}
    if set(blobs) - referenced:
        _refuse(path, f"blob {sorted(set(blobs) - referenced)[0][:12]} is not used by any variable")
    try:
        notebook = json.loads(texts[NOTEBOOK].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        _refuse(path, "notebook.ipynb is not valid JSON")
    _check_notebook(path, notebook)
    req = texts.get(REQUIREMENTS, b"").decode("utf-8", "replace")
    return Bundle(path, manifest, notebook, req, blobs)


def _check_notebook(path, nb) -> None:
    import nbformat

    if not isinstance(nb, dict) or nb.get("nbformat") != 4:
        _refuse(path, "notebook.ipynb is not an nbformat 4 notebook")
    try:
        nbformat.validate(nbformat.from_dict(nb))
    except nbformat.ValidationError as e:
        _refuse(path, f"notebook.ipynb is not a valid notebook ({str(e).splitlines()[0][:80]})")


def cells_of(notebook: dict) -> list[Cell]:
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


# -- import --------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    """What an import did: the version (new, or already present) and any notes for the user."""

    version: Version
    new_bytes: int = 0
    already: bool = False
    notes: list = field(default_factory=list)

    def summary_line(self) -> str:
        v = self.version
        if self.already and v.is_local:
            return (f"{v.notebook} {v.label} is this bundle's version, made in this store: nothing imported "
                    f"(the bundle is an export of it)")
        if self.already:
            return f"{v.notebook} {v.label} was already imported from this bundle"
        from .model import human_bytes

        line = (f"imported {v.label} of {v.notebook}: {len(v.variables)} variable"
                f"{'s' if len(v.variables) != 1 else ''}, {human_bytes(self.new_bytes)} new")
        return "  ".join([line, *self.notes])


def _same_version(store: Store, b: Bundle) -> Version | None:
    """The bundle's version when this store already holds it: an earlier import of the same bundle, or
    the version it was exported from (same notebook, created time and variable contents). Importing
    one's own export would otherwise add an untrusted duplicate of a version made here."""
    want = sorted((v["name"], v["content_hash"]) for v in b.manifest["variables"])
    for v in store.versions(b.version["notebook"]):
        if v.created == b.version["created"]:
            if sorted((x.name, x.content_hash) for x in store.variables(v)) == want:
                return v
    return None


def import_(store: Store, path: str | os.PathLike, trust: bool = False, max_bytes: int | None = None,
            progress: Callable[[int], None] | None = None) -> ImportResult:
    """Check a bundle completely, then add its version to `store` with origin "imported".

    `trust` is recorded nowhere: importing never unpickles; restore asks for trust separately."""
    b = read(path, max_bytes=max_bytes, progress=progress)
    man, ver = b.manifest, b.version
    prior = _same_version(store, b)
    if prior is not None:
        return ImportResult(prior, 0, True)
    nb = ver["notebook"]
    # local names and tags are never moved or shadowed by an import: clashing ones are dropped, with a note
    name, tags, notes = store.importable_labels(nb, ver.get("name", ""), ver.get("tags", []))
    held = [str(w.get("name")) for w in man.get("withheld", []) if w.get("kind") in ("variable", "param")]
    if held:  # the sender kept credentials home: say what is missing, so nobody looks for it
        notes.append(f"left out by the sender (credentials): {', '.join(held[:10])}"
                     + (f" and {len(held) - 10} more" if len(held) > 10 else ""))
    stored = []
    for var in man["variables"]:
        stored.append(StoredVariable(
            name=var["name"], type_name=var["type_name"], codec=var["codec"], content_hash=var["content_hash"],
            nbytes=var["nbytes"], safe=var["codec"] in codecs.SAFE,  # never the bundle's own claim
            credential=tuple(var.get("credential") or ()),  # shipped on purpose (--include-secrets): stays marked
            summary=var.get("summary") or {},
            manifest={"meta": var["manifest"]["meta"], "buffers": [
                ({"n": x["n"], "c": [], "i": x["i"]} if "i" in x else {"n": x["n"], "c": list(x["c"])})
                for x in var["manifest"]["buffers"]]},
        ))
    env = dict(b.environment)
    env.setdefault("packages", {})
    cells = cells_of(b.notebook)
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
            )
    except (MVError, OSError, zipfile.BadZipFile, zlib.error) as e:
        for bid in written:  # leave the store as it was
            with contextlib.suppress(MVError, OSError):
                store.blobs.delete(bid)
        if isinstance(e, BundleError):
            raise
        if isinstance(e, MVError):
            raise BundleError(f"cannot import {b.path.name}: {e}") from None
        raise BundleError(f"cannot import {b.path.name}: {getattr(e, 'strerror', None) or e}") from None
    return ImportResult(version, new_bytes, False, notes)


def bundle_size(store: Store, version: Version) -> int:
    """Bytes of blob data an export of `version` would carry (for deciding on a progress bar)."""
    ids = set()
    for n in version.variables:
        for m in store.stored_variable(version, n).manifest.get("buffers", []):
            ids.update(m.get("c", []) if "i" not in m else [])
    return sum(blob_size(b) for b in ids)

