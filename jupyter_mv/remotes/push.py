"""push: versions of this store onto a remote (layout.py says where everything goes).

Order is what makes an interrupted push harmless: chunks and packs (content-addressed, create-only)
first, then the notebook and requirements files, and only then the version manifest, itself
create-only. A push cut off anywhere leaves at most unreferenced objects (remote gc removes them
after its grace period); pushing again finds what is there (HEAD of the manifest, then of each
chunk, the pack indexes) and sends only the rest. Tags go last, with conditional writes.

What leaves the machine is what a bundle export would carry (redaction.plan with safe formats):
credentials withheld unless include_secrets, scikit-learn models transcoded to skops. Every local
chunk is re-hashed before it is sent: a damaged local chunk must never become an immutable remote
object under its id.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from ..errors import CorruptBlob, MVError, RemoteConflict, RemoteError, RemoteExists, StoreError
from ..model import Version, human_bytes
from ..store import Store, now
from ..store import blobs as blobmod
from . import layout, manifest, registry

Progress = Callable[[int], None]  # progress(bytes just sent)

_HEADS = 8  # HEAD requests in flight (latency-bound, tiny)
_ALREADY_LISTED = 3  # versions of a notebook already on the remote named one per line; more: one line


def person(text) -> str:
    """`text` as a manifest's author / pushed_by may hold it: control characters (a newline or an
    escape sequence in $JUPYTER_MV_AUTHOR or a git user name) become spaces, at most 200 characters.
    Pullers refuse a manifest whose names hold control characters (manifest.validate), and a
    manifest is immutable once written: what would be refused must never be sent."""
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in str(text or "")).strip()[:200]


def identity(settings=None) -> str:
    """Who pushes: the `author` setting (JupyterMV.author; $JUPYTER_MV_AUTHOR overrides it) of `settings`
    (a config.JupyterMV, e.g. the server extension's; None: config.current()), else the git user
    (`git config user.email`, or user.name), else user@host."""
    from .. import config

    given = person(config.view(settings).author)
    if given:
        return given
    for key in ("user.email", "user.name"):
        try:
            out = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True, timeout=5)
            if out.returncode == 0 and person(out.stdout):
                return person(out.stdout)
        except (OSError, subprocess.SubprocessError):
            break
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = "someone"
    return person(f"{user}@{socket.gethostname()}")


@dataclass
class PushResult:
    """What a push did: versions sent, those the remote already held, bytes and objects sent, notes
    (tags not moved, credentials withheld are warned separately)."""

    url: str
    pushed: list = field(default_factory=list)  # Version
    already: list = field(default_factory=list)  # Version
    bytes_sent: int = 0
    objects_sent: int = 0
    notes: list = field(default_factory=list)
    leased: bool = field(default=False, repr=False)  # its lease was taken: the remote is there and writable

    def lines(self) -> list[str]:
        out = []
        for v in self.pushed:
            out.append(f"pushed {v.notebook} {v.label} ({v.gid[:12]}) to {self.url}")
        # one line per notebook once there are more than a few: a second push of 200 versions is one
        # line saying nothing was needed ("Everything up-to-date"), not 200
        by_nb: dict[str, list] = {}
        for v in self.already:
            by_nb.setdefault(v.notebook, []).append(v)
        for nb, vs in by_nb.items():
            if len(vs) <= _ALREADY_LISTED:
                out.extend(f"{v.notebook} {v.label} ({v.gid[:12]}) is already on {self.url}" for v in vs)
            else:
                lo, hi = min(vs, key=lambda v: v.n), max(vs, key=lambda v: v.n)
                out.append(f"{nb}: {len(vs)} versions ({lo.label} … {hi.label}) are already on {self.url}")
        if self.pushed:
            out.append(f"sent {human_bytes(self.bytes_sent)} in {self.objects_sent} object"
                       f"{'s' if self.objects_sent != 1 else ''}")
        elif not self.already:
            out.append("nothing to push")
        return out + list(self.notes)


class _PackIndex:
    """Where the remote's packs hold small chunks: {blob id: [pack key, offset, length]}, read from
    the packs/*.idx objects (each once per push)."""

    def __init__(self, remote):
        self.remote = remote
        self.where: dict[str, list] = {}
        self.read: set[str] = set()

    def refresh(self) -> None:
        listed = [layout.relative(m.key) for m in self.remote.list("packs/")]
        packs = {k for k in listed if k.endswith(".pack")}
        # an index whose pack is gone (a gc cut off between the two deletes) must not be referenced:
        # a manifest pointing into it would name an object the remote does not hold
        keys = [k for k in listed if k.endswith(".idx") and k not in self.read
                and k[: -len(".idx")] + ".pack" in packs]
        with ThreadPoolExecutor(_HEADS) as pool:
            for key, raw in zip(keys, pool.map(self._get, keys)):
                self.read.add(key)
                if raw is not None:
                    self._add(key, raw)

    def _get(self, key):
        try:
            return self.remote.get(key)
        except RemoteError:  # removed by gc meanwhile, or unreadable: its chunks count as absent
            return None

    def _add(self, key: str, raw: bytes) -> None:
        try:
            doc = json.loads(raw)
            pack = doc["pack"]
            if doc.get("format") != layout.PACK_INDEX or layout.index_key(pack) != key:
                return
            for bid, off, length in doc["entries"]:
                # the bounds pull checks (manifest.validate): an entry outside them is not referenced
                if isinstance(bid, str) and layout.BLOB_ID.fullmatch(bid) and type(off) is int \
                        and type(length) is int and off >= len(layout.PACK_MAGIC) \
                        and 2 <= length <= 2 + blobmod.blob_size(bid):
                    self.where.setdefault(bid, [pack, off, length])
        except (ValueError, KeyError, TypeError):
            return  # not ours: ignored (its chunks are sent again)


def _local_entry(store: Store, bid: str, where, fds: dict | None = None) -> bytes:
    """The stored entry (2-byte header + body) of local chunk `bid`: its pack entry or blob file.
    `fds`: pack name -> open descriptor, shared by the reads of one push (3,000 small chunks of a
    few packs: a few opens, not 3,000)."""
    try:
        if where:
            pack, off, length = where
            if fds is None:
                with open(store.blobs.pack_path(pack), "rb") as f:
                    f.seek(off)
                    raw = f.read(length)
            else:
                fd = fds.get(pack)
                if fd is None:
                    fd = fds[pack] = os.open(store.blobs.pack_path(pack), os.O_RDONLY)
                raw = os.pread(fd, length, off)
            if len(raw) != length:
                raise CorruptBlob(bid, f"pack file {pack} is truncated")
            return raw
        with open(store.blobs.path(bid), "rb") as f:
            raw = f.read(blobmod.mapping.ALIGN + blobmod.blob_size(bid) + 1)
        if raw[:2] == blobmod.ALIGNED:  # a page-aligned blob file: sent as the raw entry it holds
            pad = raw[2: blobmod.mapping.ALIGN]
            if len(pad) != blobmod.mapping.ALIGN - 2 or pad.count(0) != len(pad):
                raise CorruptBlob(bid, "damaged file header")
            return blobmod.RAW + raw[blobmod.mapping.ALIGN:]
        return raw
    except FileNotFoundError:
        raise CorruptBlob(bid, "file is missing") from None
    except OSError as e:
        raise CorruptBlob(bid, f"cannot read it ({e.strerror or e})") from None


def _prepare(store: Store, bid: str, where, extra: dict, fds: dict | None = None) -> tuple[bytes, str]:
    """(entry to send, sha256 of the chunk's bytes) for chunk `bid`, checked against its id."""
    if bid in extra:  # re-encoded for sharing (skops): in memory, not in the store
        data = bytes(extra[bid])
        if blobmod.blob_id(data) != bid:
            raise CorruptBlob(bid, "re-encoded chunk does not match its id")
        return layout.encode_entry(data), hashlib.sha256(data).hexdigest()
    entry = _local_entry(store, bid, where, fds)
    data = layout.decode_entry(bid, entry)
    return entry, hashlib.sha256(data).hexdigest()


def _put_new(remote, key: str, data: bytes) -> bool:
    """Create-only write of an immutable object: True when sent, False when it was already there."""
    try:
        remote.put(key, data, mode="create")
        return True
    except RemoteExists:
        return False


def push(store: Store, versions: list[Version], remote, *, include_secrets: bool = False,
         progress: Progress | None = None, conditional: bool | None = None, author: str | None = None,
         force_tags: bool = False) -> PushResult:
    """Send `versions` to `remote` (an objects.ObjectStore); see the module docstring for the order.
    `conditional`: whether the remote honours conditional writes (probed when None); tags are only
    set where it does. Raises RemoteError (one line) when the remote fails, StoreError/CorruptBlob
    when a local chunk is damaged (nothing of that version's manifest is written), RemoteConflict when
    another push moved a tag first. Warns CredentialsWithheld (redaction.warn) for what stayed home.
    `author`: who pushes (default: identity()). `force_tags`: move the remote's existing tags to these
    versions even where the local tag was not set after the team's was last seen (_push_tags)."""
    url = registry.safe_url(remote.url)
    result = PushResult(url)
    index = _PackIndex(remote)
    who = person(author) or identity()
    # remote gc waits while this lease is live, and a push waits while a gc sweeps (leases.py): so
    # nothing this push finds on the remote (and references) or writes is swept under it
    versions = [store.version_by_id(i) for i in dict.fromkeys(v.id for v in versions)]  # each once
    try:
        _push_versions(store, versions, remote, include_secrets, progress, who, url, result, index)
    except RemoteError as e:
        # refused before anything moved (no bucket, no credentials, no such host): a retry alone will
        # not help, so no "push again" advice
        if isinstance(e, (RemoteConflict, RemoteExists)) or not result.leased:
            raise
        # the network or the server went away partway: say what is on the remote now and that a retry
        # is cheap (each version's manifest is written last, so none is half-visible)
        raise type(e)(stopped(e, "pushed", len(result.pushed) + len(result.already), len(versions),
                              "pushing again sends only what is missing")) from None
    # tags of versions already there too: a tag moved here onto one of them is pushed like any other
    for v in result.pushed + [v for v in result.already if v.tags]:
        _push_tags(store, v, remote, conditional, result, who, force_tags)
    return result


def stopped(e: Exception, did: str, done: int, total: int, retry: str) -> str:
    """The one line for a transfer the remote cut off: `e`'s message, how many of `total` versions
    were `did` (pushed / pulled) before it, and what a retry does."""
    if total <= 1 and not done:
        return f"{e}; {retry}"
    return f"{e} ({did} {done} of {total} versions before it stopped; {retry})"


def _push_versions(store: Store, versions: list[Version], remote, include_secrets: bool, progress, who: str,
                   url: str, result: PushResult, index: _PackIndex) -> None:
    """push()'s data and manifests, under its lease; fills `result`."""
    from .. import redaction
    from .leases import push_lease

    indexed = False
    with push_lease(remote, who=who) as lease:
        result.leased = True
        # which manifests are there already: HEADs in parallel (a second push of 100 versions is 100
        # HEADs and nothing else)
        with ThreadPoolExecutor(_HEADS) as pool:
            there = list(pool.map(lambda v: remote.head(layout.version_key(v.gid)) is not None, versions))
        for v, present in zip(versions, there):
            key = layout.version_key(v.gid)
            if not present and store.claimed_gid(v):
                v, present = _check_claim(store, v, remote, url, result)
            if present:
                result.already.append(v)
                registry.mark(store, url, [v.gid])
                continue
            if not indexed:
                index.refresh()
                indexed = True
            shared = redaction.plan(store, v, include_secrets, safe_formats=True)
            try:
                doc = _push_data(store, v, shared, remote, index, result, progress, who)
            except CorruptBlob as e:
                raise StoreError(f"cannot push {v.notebook} {v.label}: {e}; run `jupyter-mv verify` "
                                 "(nothing of it was published)") from None
            raw = manifest.dumps(doc)
            try:  # pullers' own checks first: an immutable manifest they refuse would poison the remote
                manifest.validate(raw, v.gid, url)
            except MVError as e:
                why = re.sub(r"^refused version \S+ from .*?: |; nothing of it was imported$", "", str(e))
                raise StoreError(f"cannot push {v.notebook} {v.label}: pullers would refuse its manifest ({why}); "
                                 "nothing of it was published") from None
            lease.ensure()  # lapsed (paused past its ttl): a gc may have swept; push again instead
            if _put_new(remote, key, raw):
                result.objects_sent += 1
            result.pushed.append(v)
            registry.mark(store, url, [v.gid])
            redaction.warn(shared, f"the push of {v.label} to {url}")


def _check_claim(store: Store, v: Version, remote, url: str, result: PushResult) -> tuple[Version, bool]:
    """`v` came from a bundle that claimed a global id (Store.claimed_gid). (v, True) when the remote
    holds a version under that id with the same content (bundle.identity): `v` takes that id here
    and is not sent again, since it is that version. (v, False) when the remote lacks the id (v goes
    under its own id and keeps its claim) or holds another content under it (the claim is dropped,
    with a note: a second version, not a copy). Never sent under the claimed id: a hostile bundle's
    claim would otherwise take the id of a version its author has not pushed yet."""
    from ..bundle import identity

    claim = store.claimed_gid(v)
    if remote.head(layout.version_key(claim)) is None:
        return v, False
    try:
        doc = manifest.validate(remote.get(layout.version_key(claim)), claim, url)
        same = identity.matches(store, v, manifest.fingerprint(remote, doc, url))
    except (RemoteError, MVError):  # unreadable or refused there: nothing verifies the claim
        return v, False
    if same:
        adopted = store.adopt_gid(v, claim)
        return adopted, adopted.gid == claim
    store.adopt_gid(v, "")
    result.notes.append(f"{v.notebook} {v.label}: its bundle claimed the id {claim[:12]}, which {url} holds with "
                        f"other content; pushed as a separate version with its own id {v.gid[:12]}")
    return v, False


def _push_data(store, v, shared, remote, index: _PackIndex, result: PushResult, progress, who) -> dict:
    """Send every object `v`'s manifest will reference and return that manifest (not yet written)."""
    chunks: list[str] = []
    seen = set()
    for sv in shared.variables:
        for m in sv.manifest.get("buffers", []):
            for bid in (m.get("c", []) if "i" not in m else []):
                if bid not in seen:
                    seen.add(bid)
                    chunks.append(bid)
    where = store.blobs.locate([b for b in chunks if b not in shared.blobs])
    pack_max = blobmod.PACK_MAX
    large = [b for b in chunks if blobmod.blob_size(b) > pack_max]
    small = [b for b in chunks if blobmod.blob_size(b) <= pack_max]
    members: dict[str, dict] = {}
    locations: dict[str, list] = {}

    def send_large(bid):
        entry, sha = _prepare(store, bid, where.get(bid), shared.blobs)
        key = layout.chunk_key(bid)
        sent = 0
        if remote.head(key) is None and _put_new(remote, key, entry):
            sent = len(entry)
        return bid, sha, sent

    from .objects import TRANSFER_CONCURRENCY

    with ThreadPoolExecutor(TRANSFER_CONCURRENCY) as pool:
        for bid, sha, sent in pool.map(send_large, large):
            members[f"blobs/{bid}"] = {"size": blobmod.blob_size(bid), "sha256": sha}
            locations[bid] = [layout.chunk_key(bid)]
            if sent:
                result.bytes_sent += sent
                result.objects_sent += 1
            if progress:
                progress(blobmod.blob_size(bid))
    # small chunks: those a remote pack holds are referenced there, the others go into new packs
    fresh: list[tuple[str, bytes]] = []
    fds: dict = {}
    try:
        for bid in small:
            entry, sha = _prepare(store, bid, where.get(bid), shared.blobs, fds)
            members[f"blobs/{bid}"] = {"size": blobmod.blob_size(bid), "sha256": sha}
            if bid in index.where:
                locations[bid] = list(index.where[bid])
                if progress:
                    progress(blobmod.blob_size(bid))
            else:
                fresh.append((bid, entry))
    finally:
        for fd in fds.values():
            os.close(fd)
    groups, cur, size = [], [], 0
    for bid, entry in fresh:
        if cur and size + len(entry) > layout.PACK_TARGET:
            groups.append(cur)
            cur, size = [], 0
        cur.append((bid, entry))
        size += len(entry)
    if cur:
        groups.append(cur)

    def send_pack(group):
        body = bytearray(layout.PACK_MAGIC)
        entries = []
        for bid, entry in group:
            entries.append([bid, len(body), len(entry)])
            body += entry
        pkey = layout.pack_key(hashlib.sha256(body).hexdigest())
        sent = objs = 0
        if _put_new(remote, pkey, bytes(body)):
            sent, objs = len(body), 1
        idx = json.dumps({"format": layout.PACK_INDEX, "pack": pkey, "entries": entries},
                         separators=(",", ":")).encode()
        if _put_new(remote, layout.index_key(pkey), idx):  # after its pack: an index names a whole pack
            sent, objs = sent + len(idx), objs + 1
        return pkey, entries, sent, objs

    with ThreadPoolExecutor(TRANSFER_CONCURRENCY) as pool:
        for pkey, entries, sent, objs in pool.map(send_pack, groups):
            for bid, off, length in entries:
                locations[bid] = [pkey, off, length]
                index.where[bid] = [pkey, off, length]
            result.bytes_sent += sent
            result.objects_sent += objs
            if progress:
                progress(sum(blobmod.blob_size(e[0]) for e in entries))
    # the notebook and its requirements, content-addressed by sha256
    nb_bytes = json.dumps(manifest.notebook_of(store, shared.version, cells=shared.cells), indent=1,
                          ensure_ascii=False).encode()
    req_bytes = manifest.requirements_txt(store.environment(shared.version)).encode()
    for name, data in ((manifest.NOTEBOOK, nb_bytes), (manifest.REQUIREMENTS, req_bytes)):
        sha = hashlib.sha256(data).hexdigest()
        members[name] = {"size": len(data), "sha256": sha}
        fkey = layout.file_key(sha)
        if remote.head(fkey) is None and _put_new(remote, fkey, data):
            result.bytes_sent += len(data)
            result.objects_sent += 1
    parent = None
    if v.parent is not None:
        with contextlib.suppress(MVError):
            parent = store.resolve(v.notebook, v.parent).gid or None
    doc = {
        "format": layout.VERSION_FORMAT, "schema": layout.SCHEMA, "gid": v.gid,
        "author": person(v.author) or (who if v.is_local else ""), "pushed_by": who, "pushed_at": now(),
        "parent_gid": parent,
        "bundle": manifest.bundle_record(store, v, shared, dict(sorted(members.items())),
                                        author=who if v.is_local else ""),
        "locations": locations,
    }
    doc["objects"] = manifest.objects_of(doc)
    return doc


def _push_tags(store: Store, v: Version, remote, conditional: bool | None, result: PushResult, who: str,
               force_tags: bool = False) -> None:
    """Point the remote's tags of `v` at it: create-only when the tag is new there; an existing one is
    moved (If-Match on the ETag just read) only when this store saw it where it is now (a pull or a
    push recorded that ETag, registry.saw_tag) and the local tag was set after that sighting, i.e.
    the user moved it knowing the team's position; otherwise it is left, with a one-line note saying
    where it is on each side and what to do (git refuses such a non-fast-forward without --force).
    `force_tags` moves it anyway (still If-Match: a concurrent move is not overwritten).
    RemoteConflict when another push moved it between our read and our write."""
    from .. import credentials

    tags = [t for t in v.tags if credentials.mask_json(t) == t]  # a tag holding a credential stays home
    if not tags:
        return
    if conditional is None:
        conditional = remote.conditional_writes()
    if not conditional:
        result.notes.append(f"tags not set on {result.url} ({', '.join(tags)}): it does not honour conditional "
                            "writes, so a tag there could not be moved safely")
        return
    for t in tags:
        key = layout.tag_key(v.notebook, t)
        body = json.dumps({"format": layout.TAG_FORMAT, "notebook": v.notebook, "tag": t, "gid": v.gid,
                           "by": who, "at": now()}, sort_keys=True).encode()
        meta = remote.head(key)
        if meta is None:
            try:
                etag = remote.put(key, body, mode="create")
                _saw(store, remote, result.url, v, t, etag)
                continue
            except RemoteExists:
                meta = remote.head(key)
                if meta is None:
                    raise RemoteConflict(f"tag {t!r} on {result.url} changed while pushing; push again") from None
        try:
            cur = json.loads(remote.get(key))
            cur_gid = cur.get("gid") if isinstance(cur, dict) else None
        except (RemoteError, ValueError):
            cur_gid, cur = None, {}
        if cur_gid == v.gid:
            registry.saw_tag(store, result.url, v.notebook, t, v.gid, meta.etag)
            continue
        there = store.version_by_gid(str(cur_gid)) if cur_gid else None
        where = f"{there.label} ({str(cur_gid)[:12]})" if there is not None else f"{str(cur_gid or '?')[:12]}"
        if not force_tags:
            if cur_gid and there is None:
                by = str(cur.get("by", "someone"))[:80]
                result.notes.append(f"tag {t!r} on {result.url} is on a version you have not pulled ({where}, "
                                    f"by {by}): not moved; pull, then re-tag and push again to move it "
                                    "(or push with --force-tags)")
                continue
            seen = registry.tag_seen(store, result.url, v.notebook, t)
            set_at = registry.tag_set_at(store, v.notebook, t)
            if seen is None or seen[1] != meta.etag or not set_at or set_at <= seen[2]:
                why = ("it was moved there since you last pulled" if seen is not None and seen[1] != meta.etag
                       else "your local tag was not set after you pulled it")
                result.notes.append(f"tag {t!r} not moved on {result.url}: it is on {where} there, on {v.label} "
                                    f"({v.gid[:12]}) here, and {why}; re-tag after pulling "
                                    "(or push with --force-tags) to move the team's tag")
                continue
        try:
            etag = remote.put(key, body, mode="overwrite", if_match=meta.etag)
        except RemoteConflict:
            raise RemoteConflict(f"tag {t!r} on {result.url} was moved by someone else while pushing "
                                 f"{v.label}; the version is pushed, its tag is not: pull and push again") from None
        _saw(store, remote, result.url, v, t, etag)


def _saw(store: Store, remote, url: str, v: Version, tag: str, etag: str) -> None:
    """Record the tag just written (its ETag: put's answer, else a HEAD)."""
    if not etag:
        meta = remote.head(layout.tag_key(v.notebook, tag))
        etag = meta.etag if meta is not None else ""
    registry.saw_tag(store, url, v.notebook, tag, v.gid, etag)
