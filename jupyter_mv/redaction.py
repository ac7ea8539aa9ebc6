"""What of a version may leave the machine: its record with credentials withheld, for bundles
(`bundle.export`) and the MLflow bridge (`mlflow_bridge.push`).

Withheld: variables that hold a credential (marked in the store, or plain data found to hold one),
params whose value is one; masked (`sk-…****`): the message, name and tags, cell sources, cell
outputs and variable summaries. `include_secrets=True` is the user's explicit override: nothing is
withheld and the variables that hold credentials are listed so the receiving store marks them.

Safe formats are for what leaves the machine: the local store pickles scikit-learn estimators (the
user's own disk, and fast enough to run after every cell); `to_safe_format` re-encodes one with
skops for a bundle (or a remote), so the receiver can restore it without --trust, and
`group_to_safe_format` does the same for a group of variables pickled together because they share
objects (one skops file for the group, so the sharing survives).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import warnings
from dataclasses import dataclass, field

from . import codecs, credentials
from .errors import CredentialsWithheld
from .model import Cell, Version
from .store import Store, StoredVariable
from .store.blobs import BlobStore, blob_size

__all__ = ["Redacted", "group_to_safe_format", "plan", "to_safe_format", "warn"]


@dataclass
class Redacted:
    """A version as it may be shared."""

    version: Version  # params without credentials; message, name, tags masked
    variables: list  # StoredVariable, withheld ones left out, summaries masked
    cells: list  # Cell, sources and outputs masked
    withheld: list = field(default_factory=list)  # manifest records: {"kind", ...}
    included: dict = field(default_factory=dict)  # include_secrets: {variable: [where]} holding credentials
    # chunks of variables re-encoded in a safe format (to_safe_format) that the store does not hold:
    # {blob id: bytes}; the writer of the bundle takes them from here
    blobs: dict = field(default_factory=dict)

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


def to_safe_format(store: Store, version: Version, sv: StoredVariable) -> tuple[StoredVariable, dict]:
    """`sv` as it should leave the machine: a scikit-learn estimator the local store pickled
    (codec "sklearn") re-encoded with skops (codec "sklearn.skops", codecs.estimators.to_skops),
    so the receiver restores it without --trust after skops' audit. Returns (the variable, {blob id:
    bytes} of the chunks its new buffers are made of, for the caller to write; chunked and named
    as the store would: chunk_size bytes, xxh3-128 ids). Deterministic: the same model gives the
    same manifest and chunks. The content hash stays the stored one (the same model, another format).

    Returned unchanged (with no chunks): every other variable; one of a version made elsewhere
    (decoding it would unpickle data nobody vouched for); a member of a group pickled together
    (codecs.groups: re-encoding one member alone would break the sharing a restore keeps; plan
    re-encodes the group as a whole, group_to_safe_format); one skops
    cannot hold (a torch module inside: it stays pickled, and needs --trust where it arrives); one
    holding classes or functions defined in the notebook, which stays pickled with those types in
    its summary's "pickled_for", so the receiver's --trust message names them; one whose stored
    data is damaged or does not decode here (the writer then meets the damage and names it).
    Raises MemoryError only."""
    if sv.codec != "sklearn" or codecs.groups.is_member(sv.codec, sv.manifest["meta"]) \
            or store.is_imported(version):
        return sv, {}
    link = {k: v for k, v in sv.manifest["meta"].items() if k in ("alias", "group")}
    meta = {k: v for k, v in sv.manifest["meta"].items() if k not in link}
    ctx = codecs.DecodeContext(trusted=True)
    ctx.trial = True  # never touch the live notebook's classes (see codecs.pickled.decode)
    ctx.namespace = {}  # nor define names in the notebook's namespace
    try:
        model = codecs.decode(sv.codec, meta, store.blobs.read_buffers(sv.manifest["buffers"]), ctx)
        enc = codecs.estimators.to_skops(model)
    except MemoryError:
        raise
    except Exception:  # not decodable here, no skops, skops tripped: shipped as stored (needs --trust, named)
        return sv, {}
    if isinstance(enc, list):
        return dataclasses.replace(sv, summary={**sv.summary, "pickled_for": enc[:5]}), {}
    if enc is None:
        return sv, {}
    manifests, chunks = _chunks_of(enc)
    # the content hash stays the variable's: it names the model, not the format it travels in, so
    # the receiver's version lists the same hashes as the sender's and a diff of the two calls it same
    return dataclasses.replace(sv, codec=enc.codec, nbytes=sum(m["n"] for m in manifests), safe=False,
                               manifest={"meta": {**enc.meta, **link}, "buffers": manifests}), chunks


def plan(store: Store, version: Version, include_secrets: bool = False, safe_formats: bool = False) -> Redacted:
    """The shareable form of `version` (read afresh from the store, never a masked copy). With
    `safe_formats`, the variables kept are also re-encoded in safe formats (to_safe_format) and
    the chunks of the new encodings are in the result's `blobs`."""
    version = store.version_by_id(version.id)
    stored = [store.stored_variable(version, n) for n in version.variables]
    cells = store.cells(version)
    if include_secrets:
        included = {}
        for sv in stored:
            where = list(sv.credential) or [f.where for f in _plain_findings(store, version, sv)]
            if where:
                included[sv.name] = list(dict.fromkeys(where))
        return _safe_formats(store, Redacted(version, stored, cells, [], included), safe_formats)
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
    kept = _withhold_mates(kept, withheld)
    params = {}
    for k, v in version.params.items():
        masked = v if isinstance(v, str) else credentials.mask_json(v)
        # `is not` first: a NaN param is returned as itself and NaN != NaN would withhold it;
        # names inside a dict count (`{"conn": {"password": …}}`)
        if isinstance(v, str) and credentials.is_credential(str(k), v) or (
                not isinstance(v, str) and masked is not v and masked != v) or (
                isinstance(v, (dict, list, tuple)) and credentials.scan_object(str(k), v)):
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
    return _safe_formats(store, Redacted(shared, kept, out_cells, withheld, {}), safe_formats)


def _withhold_mates(kept: list, withheld: list) -> list:
    """Variables stored together with a withheld one go too. Members of a group pickled as one unit
    (codecs.groups) share its buffers, which hold every member's state, the withheld object's included;
    an alias or a view has no bytes without the variable it names. Shipping them would ship the
    credential, or a reference to nothing."""
    held = {w["name"] for w in withheld if w["kind"] == "variable"}
    while held:
        more = []
        for sv in kept:
            meta = sv.manifest["meta"]
            mates = set(meta.get("group") or []) & held
            together = codecs.groups.is_member(sv.codec, meta) and mates
            base = codecs.groups.base_of(meta)
            if together or (base is not None and base in held):
                why = sorted(mates) if together else [base]
                more.append({"kind": "variable", "name": sv.name,
                             "where": [f"stored together with {', '.join(why)}, which holds a credential"]})
        if not more:
            break
        withheld.extend(more)
        gone = {w["name"] for w in more}
        kept = [sv for sv in kept if sv.name not in gone]
        held = gone
    return kept


def _chunks_of(enc) -> tuple[list, dict]:
    """(buffer manifests, {blob id: bytes}) of an encoding, chunked and named as the store would."""
    manifests = BlobStore.plan(enc.buffers)
    chunks: dict = {}
    for buf, m in zip(enc.buffers, manifests):
        mv = memoryview(buf).cast("B")
        off = 0
        for bid in m["c"]:  # each id carries its chunk's length: cut as plan cut, whatever chunk_size is now
            n = blob_size(bid)
            chunks[bid] = mv[off: off + n]
            off += n
    return manifests, chunks


def group_to_safe_format(store: Store, version: Version, members: list, leaves: list = ()) -> tuple[list, dict]:
    """`members` (the StoredVariables of one group pickled together, codecs.groups, all of it) and
    `leaves` (those its pickle refers to by name, stored in their own safe codec: an array, a plain
    list) as they should leave the machine: re-encoded as one skops file of the dict
    {name: object}, members then leaves (codec "group.skops", codecs.estimators.group_to_skops), so
    the receiver restores them, still sharing their objects, without --trust after skops' audit.
    Returns (the variables, {blob id: bytes} of the new chunks). Deterministic; content hashes stay
    the stored ones.

    Returned unchanged (no chunks): a group of a version made elsewhere; one that holds tensors
    (the pickle keeps those out of band); one skops cannot hold or would not load back as it is;
    one holding classes or functions defined in the notebook, each member then carrying those
    types in its summary's "pickled_for" (the receiver's --trust message names them); one whose
    stored data does not decode here. Raises MemoryError only."""
    meta0 = members[0].manifest["meta"]
    if store.is_imported(version) or any(meta0.get(k) for k in ("tensors", "weights")):
        return members + list(leaves), {}
    ctx = codecs.DecodeContext(trusted=True)
    ctx.trial = True  # never touch the live notebook's classes (see codecs.pickled.decode)
    ctx.namespace = {}  # nor define names in the notebook's namespace
    try:
        for sv in leaves:  # safe codecs: decoding them unpickles nothing
            if sv.codec not in codecs.SAFE or codecs.groups.base_of(sv.manifest["meta"]) is not None:
                return members + list(leaves), {}
            ctx.objects[sv.name] = codecs.decode(sv.codec, sv.manifest["meta"],
                                                 store.blobs.read_buffers(sv.manifest["buffers"]), ctx)
        payload = codecs.groups.decode_payload(members[0].codec, meta0,
                                               store.blobs.read_buffers(members[0].manifest["buffers"]), ctx)
        payload.update((sv.name, ctx.objects[sv.name]) for sv in leaves)
        enc = codecs.estimators.group_to_skops(payload)
    except MemoryError:
        raise
    except Exception:  # not decodable here, no skops, skops tripped: shipped as stored (needs --trust, named)
        return members, {}
    if isinstance(enc, list):
        return [dataclasses.replace(sv, summary={**sv.summary, "pickled_for": enc[:5]}) for sv in members] \
            + list(leaves), {}
    if enc is None:
        return members + list(leaves), {}
    manifests, chunks = _chunks_of(enc)
    names = list(payload)
    out = []
    for sv in [*members, *leaves]:
        own = {"members": names, "key": sv.name, "group": sv.manifest["meta"].get("group", names)}
        out.append(dataclasses.replace(sv, codec=enc.codec, safe=False,
                                       manifest={"meta": {**enc.meta, **own}, "buffers": manifests}))
    return out, chunks


def _safe_formats(store: Store, r: Redacted, wanted: bool) -> Redacted:
    if not wanted:
        return r
    # groups pickled together (codecs.groups), by their shared buffers: re-encoded whole, or not at all
    groups: dict = {}
    for sv in r.variables:
        if codecs.groups.is_member(sv.codec, sv.manifest["meta"]):
            groups.setdefault(json.dumps(sv.manifest["buffers"]), []).append(sv)
    kept = {sv.name: sv for sv in r.variables}
    done: dict = {}
    for members in groups.values():
        names = members[0].manifest["meta"].get("members")
        refs = members[0].manifest["meta"].get("refs") or []
        # a member withheld (it holds a credential) leaves the group as stored
        if isinstance(names, list) and sorted(names) == sorted(sv.name for sv in members) \
                and isinstance(refs, list) and all(n in kept and n not in names for n in refs):
            new, chunks = group_to_safe_format(store, r.version, members, [kept[n] for n in refs])
            done.update((sv.name, sv) for sv in new)
            r.blobs.update(chunks)
    out = []
    for sv in r.variables:
        if sv.name in done:
            out.append(done[sv.name])
            continue
        sv, chunks = to_safe_format(store, r.version, sv)
        out.append(sv)
        r.blobs.update(chunks)
    r.variables = out
    return r


def warn(r: Redacted, where: str, flag: str = "--include-secrets (include_secrets=True)") -> None:
    """One warning naming every withheld or masked item, when there is any."""
    items = r.describe()
    if items:
        warnings.warn(CredentialsWithheld(
            f"credentials withheld from {where}: {'; '.join(items)}. Pass {flag} to include them on purpose"),
            stacklevel=3)


@contextlib.contextmanager
def reported(emit):
    """Inside the block, each CredentialsWithheld warning (export, MLflow push) goes to `emit(message)`
    once the block ends, so an adapter prints it as one plain line; other warnings are re-issued as
    they were."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CredentialsWithheld)
        yield
    for w in caught:
        if issubclass(w.category, CredentialsWithheld):
            emit(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
