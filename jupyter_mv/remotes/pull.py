"""remote ls, pull and clone. A pulled version is untrusted exactly like an imported bundle: its
manifest passes the bundle importer's checks (manifest.validate), every byte downloaded is re-hashed
(xxh3-128 against the chunk's id, sha256 against the manifest), nothing is unpickled (restoring its
pickle-based variables needs --trust, store.is_imported), its recorded outputs render untrusted.
A version any of whose objects is missing or damaged is not imported at all: its chunks written so
far are removed, no version row is made, and the error names the object and the chunk.

A pulled version keeps its global id (gid), its author and its notebook path; it takes the next free
number in that notebook here (two people's v3 become, say, v3 and v4), and its origin is the remote's
URL. Local names and tags are never moved by a pull (clashing ones are dropped, with a note). A
version this store holds through an import of its bundle is recognised by its content
(bundle/identity.py), never by what the bundle claims alone, and is not pulled again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import jsondata
from ..errors import CorruptBlob, MVError, RemoteCorrupt, RemoteError, RemoteMissing, UsageError
from ..model import Version, human_bytes
from ..store import Store
from . import layout, manifest, registry

Progress = Callable[[int], None]

_GETS = 8  # small GETs in flight (manifests, tags)


@dataclass
class RemoteVersion:
    """One version on a remote, as its manifest says (validated), or why its manifest was refused
    (`problem`; then only `gid` is known)."""

    gid: str
    doc: dict | None = None
    problem: str = ""
    tags: list = field(default_factory=list)  # the team's tags on the remote pointing at it
    tag_etags: dict = field(default_factory=dict)  # tag -> its object's ETag on the remote
    modified: str = ""  # when the manifest was written (the remote's clock)

    @property
    def record(self) -> dict:
        return self.doc["bundle"]["version"] if self.doc else {}

    @property
    def notebook(self) -> str:
        return self.record.get("notebook", "")

    @property
    def label(self) -> str:
        return self.record.get("label", "")

    @property
    def bytes(self) -> int:
        return sum(v.get("nbytes", 0) for v in self.doc["bundle"]["variables"]) if self.doc else 0

    def to_dict(self) -> dict:
        r = self.record
        return {
            "gid": self.gid, "notebook": self.notebook, "label": self.label, "name": r.get("name", ""),
            "message": r.get("message", ""), "created": r.get("created", ""), "tags": list(r.get("tags", [])),
            "remote_tags": list(self.tags), "author": (self.doc or {}).get("author", ""),
            "pushed_by": (self.doc or {}).get("pushed_by", ""), "pushed_at": (self.doc or {}).get("pushed_at", ""),
            "bytes": self.bytes, "variables": [v["name"] for v in self.doc["bundle"]["variables"]] if self.doc else [],
            "problem": self.problem,
        }


def listing(remote, notebook: str | None = None, strict: bool = False) -> list[RemoteVersion]:
    """The versions on `remote` (of `notebook` only, when given), oldest first by their creation
    time; each manifest read and validated (a refused one is listed with its `problem`), the
    remote's tags attached. `notebook` is a recorded path or a unique trailing part of one
    (`churn.ipynb` for `projects/churn.ipynb`), as locally. UsageError when it is ambiguous, or,
    with `strict`, when it names no notebook of a remote that holds others (a typo must not read as
    "nothing new")."""
    url = registry.safe_url(remote.url)
    metas = [m for m in remote.list("versions/") if layout.gid_of_key(layout.relative(m.key))]

    def one(meta):
        gid = layout.gid_of_key(layout.relative(meta.key))
        try:
            doc = manifest.validate(remote.get(layout.version_key(gid)), gid, url)
            return RemoteVersion(gid, doc, modified=meta.modified.isoformat(timespec="seconds"))
        except RemoteCorrupt as e:
            return RemoteVersion(gid, None, str(e))
        except RemoteMissing:  # removed since the listing
            return None

    with ThreadPoolExecutor(_GETS) as pool:
        found = [rv for rv in pool.map(one, metas) if rv is not None]
    by_gid = {rv.gid: rv for rv in found}
    for tag in remote_tags(remote):
        rv = by_gid.get(tag["gid"])
        if rv is not None and rv.notebook == tag["notebook"]:
            rv.tags.append(tag["tag"])
            rv.tag_etags[tag["tag"]] = tag["etag"]
    if notebook is not None:
        notebook = _remote_notebook(found, str(notebook), url, strict)
        found = [rv for rv in found if rv.doc is None or rv.notebook == notebook]
    return sorted(found, key=lambda rv: (rv.notebook, rv.record.get("created", ""), rv.gid))


def _remote_notebook(found: list[RemoteVersion], text: str, url: str, strict: bool) -> str:
    names = sorted({rv.notebook for rv in found if rv.doc is not None})
    if text in names:
        return text
    tail = text.strip().strip("/")
    hits = [n for n in names if tail and n.endswith("/" + tail)]
    if len(hits) > 1:
        raise UsageError(f"notebook {text!r} is ambiguous on {url}: {', '.join(hits[:5])}; write its whole path")
    if hits:
        return hits[0]
    if strict and names:
        raise UsageError(f"no notebook {text!r} on {url} (notebooks there: {', '.join(names[:5])}"
                         f"{' …' if len(names) > 5 else ''})")
    return text


def remote_tags(remote) -> list[dict]:
    """The team's tags on `remote`: [{"notebook", "tag", "gid", "by", "at", "etag"}] (malformed ones
    are skipped)."""
    metas = [m for m in remote.list("tags/") if m.key.endswith(".json")]

    def one(meta):
        key = layout.relative(meta.key)
        try:
            doc = json.loads(remote.get(key))
        except (RemoteError, ValueError):
            return None
        if not (isinstance(doc, dict) and doc.get("format") == layout.TAG_FORMAT
                and isinstance(doc.get("gid"), str) and layout.GID.fullmatch(doc["gid"])
                and isinstance(doc.get("notebook"), str) and isinstance(doc.get("tag"), str)
                and layout.tag_key(doc["notebook"], doc["tag"]) == key):
            return None
        return {"notebook": doc["notebook"], "tag": doc["tag"], "gid": doc["gid"], "by": str(doc.get("by", "")),
                "at": str(doc.get("at", "")), "etag": meta.etag}

    with ThreadPoolExecutor(_GETS) as pool:
        return [t for t in pool.map(one, metas) if t is not None]


def select(found: list[RemoteVersion], refs: list[str], url: str) -> list[RemoteVersion]:
    """The remote versions REFs name: a global id or a unique prefix of one (at least 6 hex digits),
    a tag on the remote or in the manifest, a version name, or the pusher's label vN when only one
    version of the notebook has it. UsageError naming the candidates otherwise."""
    out: list[RemoteVersion] = []
    good = [rv for rv in found if rv.doc is not None]
    for ref in refs:
        ref = str(ref).strip()
        hits = [rv for rv in found if rv.gid == ref]
        if not hits and len(ref) >= 6 and all(c in "0123456789abcdef" for c in ref):
            hits = [rv for rv in found if rv.gid.startswith(ref)]
        if not hits:
            hits = [rv for rv in good if ref in rv.tags]
        if not hits:
            hits = [rv for rv in good if ref in rv.record.get("tags", []) or ref == rv.record.get("name")]
        if not hits and ref.lstrip("vV").isdigit():
            label = "v" + ref.lstrip("vV")
            hits = [rv for rv in good if rv.label == label]
        if not hits:
            raise UsageError(f"no version {ref!r} on {url} (`jupyter-mv remote ls` lists them; a version is named "
                             "by its id, a tag, its name or, when unique, its vN)")
        if len(hits) > 1:
            which = ", ".join(f"{rv.gid[:12]} ({rv.notebook} {rv.label} by {rv.doc.get('author') if rv.doc else '?'})"
                              for rv in hits[:5])
            raise UsageError(f"{ref!r} names {len(hits)} versions on {url}: {which}; give the id instead")
        if hits[0] not in out:
            out.append(hits[0])
    return out


@dataclass
class PullResult:
    """What a pull did: versions imported (with their new local labels), those already here, those
    refused ({gid: one-line reason}), bytes downloaded, notes."""

    url: str
    pulled: list = field(default_factory=list)  # Version
    already: list = field(default_factory=list)  # Version
    failed: dict = field(default_factory=dict)  # gid -> message
    bytes_received: int = 0
    notes: list = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for v in self.pulled:
            by = f" by {v.author}" if v.author else ""
            out.append(f"pulled {v.notebook} {v.label} ({v.gid[:12]}{by}) from {self.url}")
        if self.pulled:
            out.append(f"received {human_bytes(self.bytes_received)}")
        if not self.pulled and not self.failed:
            out.append(f"nothing new on {self.url}" + (f" ({len(self.already)} version"
                                                        f"{'s' if len(self.already) != 1 else ''} already here)"
                                                        if self.already else ""))
        return out + list(self.notes) + list(self.failed.values())


def pull(store: Store, remote, refs: list[str] = (), notebook: str | None = None,
         progress: Progress | None = None, found: list[RemoteVersion] | None = None) -> PullResult:
    """Import the versions on `remote` this store lacks: all of them, those of `notebook`, or those
    REFs name (select). Each version is imported whole or not at all; refused ones are in
    `failed` (the others are still imported). UsageError for a REF that names nothing."""
    url = registry.safe_url(remote.url)
    result = PullResult(url)
    found = listing(remote, notebook) if found is None else found
    chosen = select(found, list(refs), url) if refs else found
    # the team's tags (tags/ on the remote) are where a tag is now; the tags a manifest recorded are
    # where it was at push time: one the team moved to another version is not brought in with this one
    moved = {(rv.notebook, t): rv.gid for rv in found if rv.doc is not None for t in rv.tags}
    for rv in chosen:
        if rv.doc is None:
            result.failed[rv.gid] = rv.problem
            continue
        try:
            here = store.version_by_gid(rv.gid) or _verified_copy(store, remote, rv, url, result.notes)
        except RemoteCorrupt as e:
            result.failed[rv.gid] = str(e)
            continue
        if here is not None:
            if all(w.id != here.id for w in result.already):  # a version and its twin (pushed from a bundle)
                result.already.append(here)
            continue
        try:
            v, got, notes = _pull_one(store, remote, rv, url, progress, moved)
        except RemoteCorrupt as e:
            result.failed[rv.gid] = str(e)
            continue
        except RemoteError as e:  # the network or the server went away: this version is not imported
            from .push import stopped

            registry.mark(store, url, [w.gid for w in result.pulled + result.already])
            raise type(e)(stopped(e, "pulled", len(result.pulled), len(chosen),
                                  "pulling again fetches only what is missing")) from None
        except MVError:
            here = store.version_by_gid(rv.gid)
            if here is None:
                raise
            result.already.append(here)  # another pull into this store committed it meanwhile
            continue
        result.pulled.append(v)
        result.bytes_received += got
        result.notes.extend(f"{v.label}: {n}" for n in notes)
    registry.mark(store, url, [v.gid for v in result.pulled + result.already])
    # where the team's tags are, as seen now (after the imports set local tags): a later push moves
    # one only if the local tag is set after this (push._push_tags), so a local tag that merely kept
    # its place ("not moved" above) never takes the team's over
    for rv in found:
        for t in (rv.tags if rv.doc is not None else ()):
            if store.version_by_gid(rv.gid) is not None:
                registry.saw_tag(store, url, rv.notebook, t, rv.gid, rv.tag_etags.get(t, ""))
    if result.pulled:
        _link_parents(store, found, {v.gid for v in result.pulled})
    return result


def _verified_copy(store: Store, remote, rv: RemoteVersion, url: str, notes: list) -> Version | None:
    """This store's copy of remote version `rv` that came another way, or None: a version whose
    content is `rv`'s (bundle.identity: variables' codecs, meta and verified blob ids, cells, params,
    metrics, creation time; never the content hashes a bundle merely states) and that is
    - an import whose bundle claimed `rv`'s id: it takes that id now (Store.adopt_gid), verified;
    - the version `rv` itself claims to be (`rv` was pushed from an import of its bundle), or an
      import claiming that id;
    - a version of the same notebook and creation time (a bundle written before bundles carried ids).
    Pulling it would add a duplicate. The remote's notebook is fetched only when there is such a
    candidate. An import whose claim the remote's content refutes drops it, with a line in `notes`.
    RemoteCorrupt when the notebook is missing or damaged."""
    from ..bundle import identity

    claimers = store.versions_claiming(rv.gid)
    claim = rv.record.get("claimed_gid")
    twins = []
    if claim:
        held = store.version_by_gid(claim)
        twins = ([held] if held is not None else []) + store.versions_claiming(claim)
    try:
        same_time = [v for v in store.versions(rv.notebook) if v.created == rv.record.get("created")]
    except MVError:  # no such notebook here
        same_time = []
    if not (claimers or twins or same_time):
        return None
    fp = manifest.fingerprint(remote, rv.doc, url)
    for v in claimers:
        if identity.matches(store, v, fp):
            return store.adopt_gid(v, rv.gid)
    for v in claimers:  # the remote holds other content under the id their bundles claimed: refuted
        store.adopt_gid(v, "")
        notes.append(f"{v.notebook} {v.label}: its bundle claimed the id {rv.gid[:12]}, which {url} holds with "
                     "other content; both are kept, as two versions")
    seen = {v.id for v in claimers}
    for v in twins + same_time:
        if v.id not in seen and identity.matches(store, v, fp):
            return v
        seen.add(v.id)
    return None


def _link_parents(store: Store, found: list[RemoteVersion], new: set[str]) -> None:
    """Give pulled versions whose parent arrived after them (`pull CHILD`, then `pull`) their parent,
    so the history's lineage does not depend on the order of pulls (`new`: the gids just pulled). Only versions without a parent
    here are linked, and only to a parent of the same notebook."""
    links = []
    for rv in found:
        parent_gid = rv.doc.get("parent_gid") if rv.doc else None
        if not parent_gid or not (rv.gid in new or parent_gid in new):  # only links this pull can make
            continue
        child, parent = store.version_by_gid(rv.gid), store.version_by_gid(parent_gid)
        if child is None or parent is None or child.parent is not None or child.notebook != parent.notebook:
            continue
        if not store.is_imported(child):  # this store's own lineage is its own (a deleted parent stays so)
            continue
        links.append((parent.id, child.id))
    if links:
        with store.write():
            store.db.conn.executemany("update versions set parent_id = ? where id = ? and parent_id is null",
                                      links)


def _refused(rv: RemoteVersion, url: str, why: str) -> RemoteCorrupt:
    return RemoteCorrupt(f"refused version {rv.gid} ({rv.notebook} {rv.label}) from {url}: {why}; "
                         "nothing of it was imported")


def _fetch(remote, key: str, rv, url) -> bytes:
    try:
        return remote.get(key)
    except RemoteMissing:
        raise _refused(rv, url, f"object {key} is missing on the remote") from None


def _pull_one(store: Store, remote, rv: RemoteVersion, url: str, progress,
              moved: dict | None = None) -> tuple[Version, int, list]:
    doc = rv.doc
    rec = doc["bundle"]
    ver = rec["version"]
    members = rec["members"]
    received = 0
    nb_member = members[manifest.NOTEBOOK]
    raw = _fetch(remote, layout.file_key(nb_member["sha256"]), rv, url)
    received += len(raw)
    if len(raw) != nb_member["size"] or hashlib.sha256(raw).hexdigest() != nb_member["sha256"]:
        raise _refused(rv, url, f"object {layout.file_key(nb_member['sha256'])} (notebook.ipynb) does not match "
                                "its sha256")
    nb = manifest.check_notebook(raw, rv.gid, url)
    locations = doc["locations"]
    need = [bid for bid in locations if not store.blobs.exists(bid)]
    large = [bid for bid in need if len(locations[bid]) == 1]
    packs: dict[str, list[str]] = {}
    for bid in need:
        if len(locations[bid]) == 3:
            packs.setdefault(locations[bid][0], []).append(bid)

    def checked(bid: str, entry, key: str) -> bytes:
        try:
            data = layout.decode_entry(bid, entry)
        except CorruptBlob as e:
            raise _refused(rv, url, f"object {key} is damaged: chunk {bid[:12]} {e.reason}") from None
        if hashlib.sha256(data).hexdigest() != members[f"blobs/{bid}"]["sha256"]:
            raise _refused(rv, url, f"object {key} is damaged: chunk {bid[:12]} does not match its sha256")
        return data

    def get_large(bid):
        # fetched, checked and written durably in the worker: the fsyncs of 4 MiB chunks overlap
        key = locations[bid][0]
        entry = _fetch(remote, key, rv, url)
        data = checked(bid, entry, key)
        return bid, len(data), len(entry), store.blobs.add_chunk(data, bid)

    def get_pack(pkey):
        body = _fetch(remote, pkey, rv, url)
        out = []
        for bid in packs[pkey]:
            _, off, length = locations[bid]
            entry = memoryview(body)[off: off + length]
            if len(entry) != length:
                raise _refused(rv, url, f"object {pkey} is damaged: chunk {bid[:12]} lies past its end")
            out.append((bid, checked(bid, entry, pkey)))
        return out, len(body)

    from .objects import TRANSFER_CONCURRENCY

    written: list[str] = []
    new_bytes = 0
    stored = manifest.variables_of(rec)
    env = dict(rec.get("environment") or {})
    env.setdefault("packages", {})
    nbpath = ver["notebook"]
    wanted = [t for t in ver.get("tags", []) if (moved or {}).get((nbpath, t), rv.gid) == rv.gid]
    wanted += [t for t in rv.tags if t not in wanted]
    name, tags, notes = store.importable_labels(nbpath, ver.get("name", ""), wanted)
    held = [str(w.get("name")) for w in rec.get("withheld", []) if w.get("kind") in ("variable", "param")]
    if held:
        notes.append(f"left out by the sender (credentials): {', '.join(held[:10])}"
                     + (f" and {len(held) - 10} more" if len(held) > 10 else ""))
    try:
        with store.blobs.writing():
            with ThreadPoolExecutor(TRANSFER_CONCURRENCY) as pool:
                futs = [pool.submit(get_large, bid) for bid in large]
                try:
                    for fut in futs:
                        bid, size, n, added = fut.result()
                        received += n
                        if added:
                            written.append(bid)
                            new_bytes += added
                        if progress:  # in the chunks' own bytes, as the bar's total counts them
                            progress(size)
                except BaseException:
                    for fut in futs:  # what the other workers wrote is removed too
                        fut.cancel()
                    for fut in futs:
                        with contextlib.suppress(BaseException):
                            bid, _, _, added = fut.result()
                            if added:
                                written.append(bid)
                    raise
                for items, n in pool.map(get_pack, sorted(packs)):
                    received += n
                    for bid, data in items:
                        added = store.blobs.add_chunk(data, bid)
                        if added:
                            written.append(bid)
                            new_bytes += added
                    if progress:
                        progress(sum(len(d) for _, d in items))
            store.blobs.sync_dirs(written)
            parent = None
            if doc.get("parent_gid"):
                p = store.version_by_gid(doc["parent_gid"])
                parent = p.n if p is not None and p.notebook == nbpath else None
            version = store.commit_version(
                nbpath, stored, cells=manifest.cells_of(nb),
                params={k: jsondata.number(x) for k, x in (ver.get("params") or {}).items()},
                metrics={k: jsondata.number(x) for k, x in (ver.get("metrics") or {}).items()},
                tags=tags, message=ver.get("message", ""), name=name,
                kind=ver.get("kind") if ver.get("kind") in ("manual", "auto") else "manual",
                parent=parent, env=env, new_bytes=new_bytes, origin=url, created=ver["created"],
                gid=rv.gid, author=doc.get("author", "") or doc.get("pushed_by", ""),
            )
    except BaseException as e:
        store.discard_chunks(written)  # only those no version references (a concurrent writer's)
        if isinstance(e, (RemoteCorrupt, MVError)) or not isinstance(e, Exception):
            raise
        raise RemoteError(f"cannot pull {rv.gid} from {url}: {e}") from None
    return version, received, notes


def clone(url: str, directory, progress: Progress | None = None, probe: bool = True) -> tuple[Store, PullResult]:
    """A new store in DIRECTORY/.jupyter_mv whose default remote "origin" is `url`, holding every
    version on it. UsageError when DIRECTORY already holds a store with versions. The caller closes
    the store."""
    from .objects import open_remote

    url = registry.normalize_url(url)
    registry.check_readable(url)  # a typo must not clone an empty remote (and create its folder)
    if not str(directory).strip():
        raise UsageError("clone needs a folder to clone into (DIR): it gets DIR/.jupyter_mv")
    root = Path(directory).expanduser() / ".jupyter_mv"
    if (root / "store.db").exists():
        with Store(root) as existing:
            if existing.versions():
                raise UsageError(f"{root} already holds a store with versions; clone into a new folder")
    # what this clone creates (the folders and the store) is removed again when it fails, as git
    # clone does: a typo'd or unreachable URL must not leave an empty store behind
    created = next((p for p in reversed([root, *root.parents]) if not p.exists()), None)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        st = Store(root)
    except OSError as e:  # DIR is a file, on a read-only or missing mount...
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise UsageError(f"cannot clone into {directory}: {e.strerror or e} ({e.filename or root}); "
                         "give a folder you can write") from None
    try:
        r = registry.add(st, "origin", url, default=True, probe=probe)
        remote = open_remote(r.url)
        try:
            result = pull(st, remote, progress=progress)
        finally:
            remote.close()
        if not (result.pulled or result.already or result.failed):  # as git's "cloned an empty repository"
            result.notes.append(f"{result.url} holds no versions yet (an empty remote, or a typo in the URL's "
                                "prefix): this store will push there")
    except BaseException:
        st.close()
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    return st, result
