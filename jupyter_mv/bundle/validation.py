"""Reading a bundle: the validating reader that trusts nothing in the file. Member names, sizes
(declared and decompressed), checksums, the schema version, blob ids (re-hashed), codec names and
codec meta are all checked before anything is used; nothing is written and nothing is unpickled."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import codecs, config, jsondata
from ..errors import BundleError
from ..store.blobs import blob_size
from .layout import BLOB_MEMBER, FORMAT, KNOWN_SCHEMAS, MANIFEST, NOTEBOOK, REQUIREMENTS

# Bounds against decompression bombs and absurd files. The total can be raised for huge models: it is the
# setting config.JupyterMV.max_bundle_bytes (env JUPYTER_MV_MAX_BUNDLE_BYTES), read at each `read`.
MAX_BYTES = 64 * 1024**3  # the setting's default: everything, decompressed
MAX_MANIFEST = 256 * 1024**2
MAX_NOTEBOOK = 512 * 1024**2
MAX_REQUIREMENTS = 16 * 1024**2
MAX_CHUNK = 1024**3  # one blob member
MAX_MEMBERS = 1_000_000
_READ = 1024 * 1024


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
    if name != MANIFEST and name not in (NOTEBOOK, REQUIREMENTS) and not BLOB_MEMBER.fullmatch(name):
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


def check_manifest(path, m) -> None:
    """Check the structure and values of a schema-1 manifest `m` (parsed JSON; what
    schemas/bundle.schema.json states, plus each codec's meta, base64 inline buffers and that chunk
    sizes add up). Raises BundleError ("refused bundle NAME: why; nothing was imported", NAME from
    `path`) on the first problem; returns None when the manifest is sound."""
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
    # identity (absent in bundles written before it was recorded): claims, checked against content on
    # import, push and pull (bundle/identity.py), so only their shape is checked here
    for key in ("gid", "claimed_gid"):
        if key in v and not (isinstance(v[key], str) and re.fullmatch(r"[0-9a-f]{32}", v[key])):
            _refuse(path, f"manifest version.{key} is not a global id (32 hex digits)")
    author = v.get("author", "")
    if not isinstance(author, str) or len(author) > 512 or any(ord(c) < 32 or ord(c) == 127 for c in author):
        _refuse(path, "manifest version.author is malformed")
    if v.get("origin", "local") not in ("local", "imported", "remote"):
        _refuse(path, "manifest version.origin is not one of local, imported, remote")
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
            if not isinstance(chunks, list) or not all(isinstance(c, str) and BLOB_MEMBER.fullmatch("blobs/" + c)
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
        for item in descr:
            if isinstance(item, list) and len(item) >= 2:
                yield from _descr_types(item[1], depth + 1)
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
    if codec in codecs.hf.NAMES:  # transformers models, PEFT adapters, configs, tokenizers (codecs.transformers)
        why = codecs.hf.meta_problem(codec, meta)
        if why:
            return why
    part = meta.get("part")  # a part of a model variable (codecs.groups part links): a path of public names
    if part is not None and not (isinstance(part, dict) and isinstance(part.get("of"), str) and part["of"].isidentifier()
                                 and isinstance(part.get("path"), str) and all(
                                     (x.isdigit() or x.isidentifier()) and not x.startswith("_")
                                     for x in part["path"].split("."))):
        return "malformed part reference"
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
    BundleError with one line on the first problem (also for a damaged, truncated or unreadable
    file). Nothing is written anywhere. `max_bytes` bounds the total decompressed size (default
    config.JupyterMV.max_bundle_bytes: 64 GiB, env JUPYTER_MV_MAX_BUNDLE_BYTES); each member is bounded too (MAX_CHUNK a
    blob). `progress(n)` is called with each member's byte count. Returns the checked Bundle."""
    import xxhash

    path = Path(path).expanduser()
    max_bytes = config.current().max_bundle_bytes if max_bytes is None else max_bytes
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
            check_manifest(path, manifest)
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
                              "(set JupyterMV.max_bundle_bytes or JUPYTER_MV_MAX_BUNDLE_BYTES to raise the bound)")
            limits = {NOTEBOOK: MAX_NOTEBOOK, REQUIREMENTS: MAX_REQUIREMENTS}
            texts = {}
            blobs = {}
            for name in sorted(members):
                d = members[name]
                info = by_name[name]
                m = BLOB_MEMBER.fullmatch(name)
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
    check_notebook(path, notebook)
    req = texts.get(REQUIREMENTS, b"").decode("utf-8", "replace")
    return Bundle(path, manifest, notebook, req, blobs)


def check_notebook(path, nb) -> None:
    """Check that `nb` (parsed JSON) is a valid nbformat 4 notebook (nbformat.validate); raises
    BundleError (one line, as check_manifest) when it is not."""
    import nbformat

    if not isinstance(nb, dict) or nb.get("nbformat") != 4:
        _refuse(path, "notebook.ipynb is not an nbformat 4 notebook")
    try:
        nbformat.validate(nbformat.from_dict(nb))
    except nbformat.ValidationError as e:
        _refuse(path, f"notebook.ipynb is not a valid notebook ({str(e).splitlines()[0][:80]})")
