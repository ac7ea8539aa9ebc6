"""The store: SQLite metadata (versions, variables, cells, params, metrics, tags, environments)
plus content-addressed blob files. Every version is committed in one transaction after its blobs
are durable, so it is visible whole or not at all."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from .. import config
from ..errors import StoreError, UnknownRef, UnknownVariable, UsageError
from ..jsondata import plain
from ..model import Cell, Version, VariableRef
from . import db as dbmod
from .blobs import BlobStore, blob_size
from .migrations import manifest_key

__all__ = ["Store", "StoredVariable", "default_root", "now", "validate_tag", "validate_name", "label_problem"]

DB_NAME = "store.db"


def default_root() -> Path:
    """The store directory when none is given: config.JupyterMV.store (env JUPYTER_MV_STORE), `~` expanded,
    else `.jupyter_mv` in the working directory."""
    given = config.current().store
    return Path(given).expanduser() if given else Path.cwd() / ".jupyter_mv"


# the logical clock of tags.seq and remote_tags.seen (migration 6): evaluated inside the write, so
# each tag set or remote tag seen is strictly later than every one before it
TAG_CLOCK = "(select coalesce(max(m), 0) + 1 from (select max(seq) m from tags union all select max(seen) from remote_tags))"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _json(v) -> str:
    # numpy scalars, datetimes, Paths... become plain JSON values (jsondata); NaN/±inf stay floats here
    # (our own readers are Python) and are converted at the JSON boundaries (CLI, REST, widgets)
    return json.dumps(plain(v, keep_nonfinite=True), sort_keys=True, allow_nan=True)


@dataclass
class StoredVariable:
    """A variable ready to commit: its blobs are already durable."""

    name: str
    type_name: str
    codec: str
    content_hash: str
    nbytes: int
    safe: bool
    summary: dict
    manifest: dict  # {"meta": codec meta, "buffers": [{"n", "c": [blob ids]}]}
    credential: tuple = ()  # where it holds a credential (`client.api_key`); () when it holds none

    def blob_ids(self) -> set[str]:
        return {b for m in self.manifest.get("buffers", []) for b in m["c"]}

    def ref(self) -> VariableRef:
        return VariableRef(self.name, self.type_name, self.codec, self.content_hash, self.nbytes,
                           self.summary, self.safe, tuple(self.credential))


def _identity(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class Store:
    """One `.jupyter_mv/` directory."""

    def __init__(self, root: str | os.PathLike | None = None, create: bool = True):
        self.root = Path(root) if root is not None else default_root()
        db_path = self.root / DB_NAME
        if not db_path.exists():
            if not create:
                raise StoreError(f"no jupyter_mv store at {self.root}; take a snapshot first "
                                 "or pass --store PATH")
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the store at {self.root}: {e.strerror or e}") from None
        elif not self.root.is_dir():
            raise StoreError(f"{self.root} is not a directory")
        self.db = dbmod.connect(db_path)
        self.blobs = BlobStore(self.root, self.db)
        self._file = _identity(db_path)

    def replaced(self) -> bool:
        """True when store.db is no longer the file this Store opened: removed (`rm -rf .jupyter_mv`, `git
        clean`) or replaced (restored from a backup). Writes through the open connection would then go to
        a file no one can see again, and be lost when the process exits."""
        return _identity(self.root / DB_NAME) != self._file

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self.blobs.close()
        try:
            self.db.conn.close()
        except sqlite3.Error:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def readonly(self) -> bool:
        return getattr(self.db, "readonly", False)

    def write(self):
        if self.readonly and not getattr(self.db, "full", False):  # full: dbmod.write says NoSpace or reopens
            raise StoreError(f"the store at {self.root} is read-only: snapshots, tags and gc need write access "
                             "(browsing and restoring still work)")
        return dbmod.write(self.db)

    def _q(self, sql: str, params=()) -> list[tuple]:
        try:
            return self.db.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
            if dbmod._locked(e):  # held exclusively by another program: damage is not the cause
                raise dbmod.locked_error(self.root / "store.db") from None
            if "malformed" in str(e) or "not a database" in str(e):  # damage, not a passing condition
                raise StoreError(f"the store database {self.root / 'store.db'} is damaged ({e}); restore it from a "
                                 "backup, or recover what SQLite can with `sqlite3 store.db .recover | sqlite3 "
                                 "recovered.db` and use that file as store.db") from None
            raise StoreError(f"the store database at {self.root} cannot be read: {e}; "
                             "run `jupyter-mv verify`") from None

    # -- notebooks ---------------------------------------------------------------------------
    def notebooks(self) -> list[str]:
        return [r[0] for r in self._q("select path from notebooks order by path")]

    def _notebook_id(self, path: str, create: bool = False) -> int | None:
        rows = self._q("select id from notebooks where path = ?", (path,))
        if rows:
            return rows[0][0]
        if not create:
            return None
        self.db.conn.execute("insert into notebooks (path, created) values (?, ?)", (path, now()))
        return self._q("select id from notebooks where path = ?", (path,))[0][0]

    def rename_notebook(self, old: str, new: str) -> None:
        """Keep a notebook's history when it is renamed."""
        with self.write():
            nid = self._notebook_id(old)
            if nid is None:
                return
            if self._notebook_id(new) is not None:
                raise StoreError(f"notebook {new!r} already has a history in this store")
            self.db.conn.execute("update notebooks set path = ? where id = ?", (new, nid))

    # -- environments ------------------------------------------------------------------------
    def _environment_id(self, env: dict) -> int | None:
        if not env:
            return None
        h = hashlib.sha256(_json(env).encode()).hexdigest()
        rows = self._q("select id from environments where hash = ?", (h,))
        if rows:
            return rows[0][0]
        self.db["environments"].insert({
            "hash": h, "python": env.get("python", ""), "platform": env.get("platform", ""),
            "packages": _json(env.get("packages", {})), "git": _json(env.get("git")), "created": now(),
        })
        return self._q("select id from environments where hash = ?", (h,))[0][0]

    def environment(self, version: Version) -> dict:
        if version.env_id is None:
            return {}
        rows = self._q("select python, platform, packages, git from environments where id = ?",
                       (version.env_id,))
        if not rows:
            return {}
        py, plat, pk, git = rows[0]
        return {"python": py, "platform": plat, "packages": json.loads(pk or "{}"),
                "git": json.loads(git) if git else None}

    # -- committing --------------------------------------------------------------------------
    def commit_version(
        self,
        notebook: str,
        variables: list[StoredVariable],
        *,
        cells: Iterable[Cell] = (),
        params: dict | None = None,
        metrics: dict | None = None,
        tags: Iterable[str] = (),
        message: str = "",
        name: str = "",
        kind: str = "manual",
        parent: int | None = None,
        env: dict | None = None,
        new_bytes: int = 0,
        origin: str = "local",
        created: str | None = None,
        execution_count: int | None = None,
        gid: str | None = None,
        author: str = "",
        claimed_gid: str = "",
    ) -> Version:
        """Write one version's metadata in a single transaction. `parent` is a per-notebook number.
        `gid`: the version's global id when it was made elsewhere (a pull); a new UUID4 otherwise.
        `claimed_gid`: the id an import was told the version has, not yet verified (see
        claimed_gid())."""
        tags = [validate_tag(t) for t in tags]
        name = validate_name(name) if name else ""
        try:
            with self.write():
                conn = self.db.conn  # after write(): a store opened on a full disk gets a new connection there
                nid = self._notebook_id(notebook, create=True)
                self._check_labels(nid, name, tags)
                # the packs this snapshot wrote are indexed with it: one transaction, one fsync
                conn.executemany("insert or ignore into packed (blob_id, pack, offset, length) values (?,?,?,?)",
                                 self.blobs.take_unindexed())
                n = self._q("select coalesce(max(n), 0) + 1 from versions where notebook_id = ?", (nid,))[0][0]
                parent_id = None
                if parent is not None:
                    rows = self._q("select id from versions where notebook_id = ? and n = ?", (nid, parent))
                    parent_id = rows[0][0] if rows else None
                env_id = self._environment_id(env or {})
                cur = conn.execute(
                    "insert into versions (notebook_id, n, name, message, created, parent_id, env_id, kind,"
                    " nbytes, new_bytes, origin, execution_count, gid, author, claimed_gid)"
                    " values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (nid, n, name or "", message or "", created or now(), parent_id, env_id, kind,
                     sum(v.nbytes for v in variables), new_bytes, origin, execution_count,
                     gid or uuid.uuid4().hex, author or "", claimed_gid or ""),
                )
                vid = cur.lastrowid
                for v in variables:
                    # the manifest is content-addressed: an unchanged variable adds this one row
                    body, mh = manifest_key(v.manifest)
                    conn.execute(
                        "insert into variables (version_id, name, type_name, codec, content_hash, nbytes, safe,"
                        " summary, manifest, credential, credential_where, manifest_hash)"
                        " values (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (vid, v.name, v.type_name, v.codec, v.content_hash, v.nbytes, int(v.safe),
                         _json(v.summary), "", int(bool(v.credential)),
                         json.dumps(list(v.credential)) if v.credential else "", mh),
                    )
                    conn.execute("insert or ignore into manifests (hash, body) values (?,?)", (mh, body))
                for pos, c in enumerate(cells):
                    h = _cell_hash(c)
                    if not conn.execute("select 1 from cells where hash = ?", (h,)).fetchone():
                        conn.execute(
                            "insert into cells (hash, cell_id, execution_count, source, outputs) values (?,?,?,?,?)",
                            (h, c.cell_id, c.execution_count, c.source, json.dumps(list(c.outputs), default=repr)),
                        )
                    conn.execute("insert into version_cells (version_id, position, cell_hash) values (?,?,?)",
                                 (vid, pos, h))
                conn.executemany("insert into params (version_id, key, value) values (?,?,?)",
                                 [(vid, str(k), _json(v)) for k, v in (params or {}).items()])
                conn.executemany("insert into metrics (version_id, key, value) values (?,?,?)",
                                 [(vid, str(k), float(v)) for k, v in (metrics or {}).items()])
                for t in tags:
                    conn.execute("insert or replace into tags (notebook_id, tag, version_id, seq)"
                                 f" values (?,?,?,{TAG_CLOCK})", (nid, t, vid))
        except sqlite3.DatabaseError as e:
            if "full" in str(e).lower():
                from ..errors import NoSpace

                raise NoSpace("no space left on the store's disk; free some space and snapshot again "
                              "(earlier versions are intact)") from None
            raise StoreError(f"cannot record the version in {self.root}: {e}") from None
        return self.version_by_id(vid)

    # -- reading versions --------------------------------------------------------------------
    _VCOLS = ("v.id, v.n, nb.path, v.created, v.message, v.name, p.n, v.kind, v.nbytes, v.new_bytes,"
              " v.env_id, v.origin, v.execution_count, v.gid, v.author")

    def _versions(self, where: str, params=(), limit: int | None = None) -> list[Version]:
        sql = (f"select {self._VCOLS} from versions v join notebooks nb on nb.id = v.notebook_id"
               f" left join versions p on p.id = v.parent_id where {where}")
        if limit is not None:  # the last `limit`, still returned oldest first
            rows = self._q(sql + " order by nb.path desc, v.n desc limit ?", (*params, limit))[::-1]
        else:
            rows = self._q(sql + " order by nb.path, v.n", params)
        if not rows:
            return []
        ids = [r[0] for r in rows]
        extra = self._extras(ids)
        out = []
        for r in rows:
            vid = r[0]
            tags, params_, metrics, names = extra[vid]
            out.append(Version(
                id=vid, n=r[1], notebook=r[2], created=r[3], message=r[4] or "", name=r[5] or "",
                parent=r[6], kind=r[7], tags=tuple(tags), params=params_, metrics=metrics,
                variables=tuple(names), nbytes=r[8] or 0, new_bytes=r[9] or 0, env_id=r[10],
                execution_count=r[12], origin=r[11] or "local", gid=r[13] or "", author=r[14] or "",
            ))
        return out

    def _extras(self, ids: list[int]) -> dict[int, tuple]:
        extra = {i: ([], {}, {}, []) for i in ids}
        for start in range(0, len(ids), 900):
            part = ids[start: start + 900]
            qs = ",".join("?" * len(part))
            for vid, tag in self._q(f"select version_id, tag from tags where version_id in ({qs}) order by tag", part):
                extra[vid][0].append(tag)
            for vid, k, v in self._q(f"select version_id, key, value from params where version_id in ({qs})"
                                     " order by key", part):
                extra[vid][1][k] = json.loads(v)
            for vid, k, v in self._q(f"select version_id, key, value from metrics where version_id in ({qs})"
                                     " order by key", part):
                extra[vid][2][k] = float("nan") if v is None else v  # SQLite keeps NaN as NULL
            for vid, name in self._q(f"select version_id, name from variables where version_id in ({qs})"
                                     " order by name", part):
                extra[vid][3].append(name)
        return extra

    def versions(self, notebook: str | None = None, limit: int | None = None) -> list[Version]:
        """Versions oldest first; of one notebook, or of every notebook when None."""
        if notebook is None:
            return self._versions("1", limit=limit)
        return self._versions("nb.path = ?", (notebook,), limit=limit)

    def version_by_id(self, vid: int) -> Version:
        got = self._versions("v.id = ?", (vid,))
        if not got:
            raise UnknownRef(f"no version with id {vid} in the store")
        return got[0]

    def version_by_gid(self, gid: str) -> Version | None:
        """The version with global id `gid` (32 hex digits), or None when this store lacks it."""
        rows = self._q("select id from versions where gid = ?", (gid,))
        return self.version_by_id(rows[0][0]) if rows else None

    def claimed_gid(self, version: Version) -> str:
        """The global id a bundle or remote manifest claimed `version` has, while unverified ("" when
        there is none: a version made here, pulled, or whose claim was adopted or refuted). An
        unverified claim never names the version anywhere; bundle/identity.py checks it."""
        rows = self._q("select claimed_gid from versions where id = ?", (version.id,))
        return rows[0][0] if rows else ""

    def versions_claiming(self, gid: str) -> list[Version]:
        """Versions whose unverified claimed global id is `gid` (32 hex digits), oldest first."""
        return [self.version_by_id(r[0]) for r in
                self._q("select id from versions where claimed_gid = ? order by id", (gid,))]

    def adopt_gid(self, version: Version, gid: str) -> Version:
        """Give `version` the global id `gid` its content was verified against (a version under that
        id with the same content, bundle/identity.py), dropping its claim; or, with `gid` "", only
        drop the claim (refuted). No-op when another version here already has `gid` (ids stay
        unique). Returns the version as stored now."""
        with self.write():
            if gid and not self._q("select 1 from versions where gid = ? and id != ?", (gid, version.id)):
                self.db.conn.execute("update versions set gid = ?, claimed_gid = '' where id = ?", (gid, version.id))
            elif not gid:
                self.db.conn.execute("update versions set claimed_gid = '' where id = ?", (version.id,))
        return self.version_by_id(version.id)

    def is_imported(self, version: Version) -> bool:
        """Was `version` made elsewhere (imported from a bundle, pulled from a remote)? Such versions are
        untrusted: their pickles need --trust, their outputs render untrusted. The live state (id < 0) is
        local; an id this store does not hold counts as foreign."""
        if version.id is not None and version.id < 0:
            return False
        rows = self._q("select origin from versions where id = ?", (version.id,))
        return not rows or rows[0][0] != "local"

    def resolve(self, notebook: str | None, ref) -> Version:
        """A version from REF: vN, N, a tag, a version name, or `latest` (also `latest~K`) of
        `notebook`; or NB:REF, the same of notebook NB (see split_ref). `notebook` may be None when
        every REF names its notebook. Raises UnknownRef with the versions, tags and notebooks there."""
        if isinstance(ref, Version):
            return ref
        text = str(ref).strip()
        if not text:
            raise UnknownRef("empty version reference; use vN, N, a tag, a name or latest")
        qualified = self.split_ref(text, notebook)
        if qualified is not None:
            notebook, text = qualified
        if notebook is None:
            nbs = self.notebooks()
            raise UnknownRef(f"which notebook's {text!r}? this store holds {len(nbs)} notebooks "
                             f"({', '.join(nbs[:5])}); write the ref as NB:{text} or choose one with --notebook")
        nid = self._notebook_id(notebook)
        if nid is None:
            others = self.notebooks()
            hint = (f"; versions of other notebooks are named NB:REF, e.g. {others[0]}:{text} "
                    f"(notebooks here: {', '.join(others[:5])})" if others else "")
            raise UnknownRef(f"no versions for notebook {notebook!r} in {self.root}; take a snapshot first{hint}")
        m = re.fullmatch(r"(?:latest|head)(?:~(\d{1,9}))?", text, re.I)
        if m:
            back = int(m.group(1) or 0)
            rows = self._q("select id from versions where notebook_id = ? order by n desc limit 1 offset ?",
                           (nid, back))
            if not rows:
                raise UnknownRef(f"notebook {notebook!r} has fewer than {back + 1} versions")
            return self.version_by_id(rows[0][0])
        m = re.fullmatch(r"[vV]?(\d{1,18})", text)  # longer numbers are no version (and overflow SQLite)
        if m:
            rows = self._q("select id from versions where notebook_id = ? and n = ?", (nid, int(m.group(1))))
            if rows:
                return self.version_by_id(rows[0][0])
        rows = self._q("select version_id from tags where notebook_id = ? and tag = ?", (nid, text))
        if rows:
            return self.version_by_id(rows[0][0])
        rows = self._q("select id from versions where notebook_id = ? and name = ? order by n desc limit 1",
                       (nid, text))
        if rows:
            return self.version_by_id(rows[0][0])
        last = self._q("select max(n) from versions where notebook_id = ?", (nid,))[0][0]
        tags = [r[0] for r in self._q("select tag from tags where notebook_id = ? order by tag", (nid,))]
        have = f"v1..v{last}" if last else "no versions"
        hint = f"; tags: {', '.join(tags[:8])}" if tags else ""
        elsewhere = [r[0] for r in self._q(
            "select distinct nb.path from notebooks nb join versions v on v.notebook_id = nb.id"
            " left join tags t on t.version_id = v.id where nb.id != ? and (t.tag = ? or v.name = ?)"
            " order by nb.path", (nid, text, text))]
        there = f"; {text!r} is in {', '.join(elsewhere[:3])}: use {elsewhere[0]}:{text}" if elsewhere else ""
        raise UnknownRef(f"no version {text!r} in notebook {notebook!r} (it has {have}{hint}){there}")

    def find_notebook(self, text: str) -> str | None:
        """The notebook path recorded in this store that `text` names: the path itself, or a unique
        trailing part of it (`churn.ipynb` for `projects/churn.ipynb`). None when none matches;
        UnknownRef when several do."""
        nbs = self.notebooks()
        if text in nbs:
            return text
        tail = text.strip("/")
        hits = [p for p in nbs if tail and p.endswith("/" + tail)]
        if len(hits) > 1:
            raise UnknownRef(f"notebook {text!r} is ambiguous: {', '.join(hits[:5])}; write its whole path")
        return hits[0] if hits else None

    def split_ref(self, text: str, notebook: str | None = None) -> tuple[str, str] | None:
        """(notebook, ref) when `text` is NB:REF naming a notebook of this store, else None.

        REF never holds a ':' (tags and names refuse it), so the last ':' separates; a notebook path
        may hold ':' itself. An older tag or name with a ':' in `notebook` still resolves as itself.
        Raises UnknownRef when the NB part matches no notebook and the text is no such older label."""
        if ":" not in text:
            return None
        nb_text, inner = text.rsplit(":", 1)
        found = self.find_notebook(nb_text) if nb_text else None
        if found is not None:
            if not inner.strip():
                raise UnknownRef(f"{text!r} names notebook {found!r} but no version; write {found}:vN, "
                                 f"{found}:latest or {found}:TAG")
            return found, inner.strip()
        nid = self._notebook_id(notebook) if notebook is not None else None
        if nid is not None and self._q(
                "select 1 from tags where notebook_id = ? and tag = ? union all"
                " select 1 from versions where notebook_id = ? and name = ?", (nid, text, nid, text)):
            return None
        nbs = self.notebooks()
        raise UnknownRef(f"no notebook {nb_text!r} in the store at {self.root} (NB:REF names a version of "
                         f"notebook NB; notebooks here: {', '.join(nbs[:5]) or 'none'})")

    def _check_labels(self, nid: int, name: str, tags: list[str], version_id: int | None = None) -> None:
        """Refuse a name or tag that would pick a different version than the one it is given to:
        a name already used in the notebook, a name equal to a tag, a tag equal to another version's
        name. (Moving a tag to another version stays allowed: that is what tagging again means.)"""
        if name:
            for (n,) in self._q("select n from versions where notebook_id = ? and name = ? and id != ?",
                                (nid, name, version_id or -1)):
                raise UsageError(f"version name {name!r} is already v{n}'s in this notebook; choose another "
                                 "(a name picks one version)")
            for (n,) in self._q("select v.n from tags t join versions v on v.id = t.version_id"
                                " where t.notebook_id = ? and t.tag = ? and v.id != ?", (nid, name, version_id or -1)):
                raise UsageError(f"version name {name!r} is already a tag (of v{n}) in this notebook; choose another "
                                 "name, or remove the tag first")
        for t in tags:
            for (n,) in self._q("select n from versions where notebook_id = ? and name = ? and id != ?",
                                (nid, t, version_id or -1)):
                raise UsageError(f"tag {t!r} is already the name of v{n} in this notebook; choose another tag "
                                 "(a tag and a name must not pick different versions)")

    def check_new_labels(self, notebook: str, name: str = "", tags: Iterable[str] = ()) -> None:
        """Raise UsageError now if a snapshot with this name and tags would be refused at commit
        (so a large snapshot fails before writing its data)."""
        tags = [validate_tag(t) for t in tags]
        name = validate_name(name) if name else ""
        nid = self._notebook_id(notebook)
        if nid is not None:
            self._check_labels(nid, name, tags)

    def importable_labels(self, notebook: str, name: str, tags: Iterable[str]) -> tuple[str, list[str], list[str]]:
        """The name and tags an imported version can keep in `notebook` here, and notes on those it
        cannot: invalid ones, a name or tag already used here (local labels are never moved)."""
        nid = self._notebook_id(notebook)
        used_tags = {r[0] for r in self._q("select tag from tags where notebook_id = ?", (nid,))} if nid else set()
        used_names = ({r[0] for r in self._q("select name from versions where notebook_id = ? and name != ''", (nid,))}
                      if nid else set())
        notes = []
        if name and (label_problem(name, "name") or name in used_names or name in used_tags):
            why = label_problem(name, "name") or "already used here"
            notes.append(f"name {name!r} not kept ({why})")
            name = ""
        kept, dropped = [], []
        for t in tags:
            why = label_problem(t, "tag") or ("already used here, not moved" if t in used_tags else None) or (
                "already a version name here" if t in used_names or t == name else None)
            (dropped.append(f"{t} ({why})") if why else kept.append(t))
        if dropped:
            notes.append(f"tag{'s' if len(dropped) > 1 else ''} not kept: {'; '.join(dropped)}")
        return name, kept, notes

    # -- variables and cells -----------------------------------------------------------------
    def variables(self, version: Version) -> list[VariableRef]:
        rows = self._q("select name, type_name, codec, content_hash, nbytes, summary, safe, credential,"
                       " credential_where from variables where version_id = ? order by name", (version.id,))
        return [VariableRef(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"), bool(r[6]),
                            _where(r[7], r[8], r[0])) for r in rows]

    def variable_across(self, notebook: str, name: str) -> dict[int, VariableRef]:
        """Variable `name` in every version of `notebook` that stores it: {version id: VariableRef}
        (content hash, type, summary), in one query; versions without it are absent."""
        rows = self._q("select v.version_id, v.name, v.type_name, v.codec, v.content_hash, v.nbytes, v.summary,"
                       " v.safe, v.credential, v.credential_where from variables v"
                       " join versions ver on ver.id = v.version_id join notebooks nb on nb.id = ver.notebook_id"
                       " where nb.path = ? and v.name = ?", (notebook, name))
        return {r[0]: VariableRef(r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}"), bool(r[7]),
                                  _where(r[8], r[9], r[1])) for r in rows}

    def stored_variable(self, version: Version, name: str) -> StoredVariable:
        rows = self._q("select v.name, v.type_name, v.codec, v.content_hash, v.nbytes, v.safe, v.summary,"
                       " coalesce(m.body, v.manifest), v.credential, v.credential_where from variables v"
                       " left join manifests m on m.hash = v.manifest_hash where v.version_id = ? and v.name = ?",
                       (version.id, name))
        if not rows:
            have = ", ".join(version.variables) or "none"
            raise UnknownVariable(f"{version.label} has no variable {name!r} (it has: {have})")
        r = rows[0]
        return StoredVariable(r[0], r[1], r[2], r[3], r[4], bool(r[5]), json.loads(r[6] or "{}"), json.loads(r[7]),
                              _where(r[8], r[9], r[0]))

    def cells(self, version: Version) -> list[Cell]:
        rows = self._q("select c.cell_id, c.execution_count, c.source, c.outputs from version_cells vc"
                       " join cells c on c.hash = vc.cell_hash where vc.version_id = ? order by vc.position",
                       (version.id,))
        return [Cell(source=r[2] or "", execution_count=r[1], cell_id=r[0], outputs=tuple(json.loads(r[3] or "[]")))
                for r in rows]

    # -- tags --------------------------------------------------------------------------------
    def tag(self, version: Version, tag: str, remove: bool = False) -> None:
        tag = str(tag).strip() if remove else validate_tag(tag)
        with self.write():
            nid = self._notebook_id(version.notebook)
            if not remove:
                self._check_labels(nid, "", [tag], version.id)
            if remove:
                self.db.conn.execute("delete from tags where notebook_id = ? and tag = ? and version_id = ?",
                                     (nid, tag, version.id))
            else:
                # `seq`: a push moves the team's tag only when it was set here after the team's was seen
                self.db.conn.execute("insert or replace into tags (notebook_id, tag, version_id, seq)"
                                     f" values (?,?,?,{TAG_CLOCK})", (nid, tag, version.id))

    # -- maintenance -------------------------------------------------------------------------
    def _manifest_chunks(self) -> dict[str, list[str]]:
        """{manifest hash: its chunk ids} of every manifest a variable holds (each parsed once)."""
        out = {}
        for h, body in self._q("select hash, body from manifests where hash in (select manifest_hash from variables)"):
            ids = {b for m in json.loads(body).get("buffers", []) for b in m.get("c", [])}
            out[h] = sorted(ids)
        return out

    def referenced_blobs(self) -> set[str]:
        return {b for ids in self._manifest_chunks().values() for b in ids}

    def verify(self, progress=None) -> list[dict]:
        """Re-hash every referenced blob; one problem dict per damaged (version, variable, blob)."""
        problems = []
        uses: dict[str, list[tuple]] = {}
        chunks = self._manifest_chunks()
        for nb, n, name, mh in self._q(
            "select nb.path, v.n, var.name, var.manifest_hash from variables var join versions v on v.id = var.version_id"
            " join notebooks nb on nb.id = v.notebook_id order by nb.path, v.n, var.name"
        ):
            for bid in chunks.get(mh, ()):
                uses.setdefault(bid, []).append((nb, n, name))
        try:
            # every line of the check, joined: the problem is one line however many pages are bad
            integrity = "; ".join(r[0] for r in self._q("pragma quick_check") if r[0]).replace("\n", "; ")
        except StoreError as e:
            integrity = str(e)
        if integrity != "ok":
            problems.append({"notebook": None, "version": None, "variable": None, "blob": None,
                             "problem": f"database check failed: {integrity}"})
        where = self.blobs.locate(uses)  # looked up here: the pool threads do not touch the database
        futs = {bid: self.blobs.pool.submit(self.blobs.check, bid, where.get(bid, ())) for bid in uses}
        for bid, fut in futs.items():
            reason = fut.result()
            if progress:
                progress(1)
            if reason:
                for nb, n, name in uses[bid]:
                    problems.append({"notebook": nb, "version": f"v{n}", "variable": name, "blob": bid,
                                     "problem": reason})
        return problems

    def discard_chunks(self, ids) -> None:
        """Remove chunk files a failed import or pull wrote, but only those no version references:
        another writer may have found one of them present (and skipped writing it) and committed a
        version using it meanwhile. Holds gc's exclusive lock, so no writer is between its existence
        checks and its commit. Errors are swallowed: what stays behind is unreferenced, for gc."""
        ids = list(ids)
        if not ids:
            return
        try:
            with self.blobs.collecting():
                keep = self.referenced_blobs()
                for bid in ids:
                    if bid not in keep:
                        try:
                            self.blobs.delete(bid)
                        except (StoreError, OSError):
                            pass
        except (StoreError, OSError):
            pass

    def gc(self) -> tuple[int, int]:
        """Delete blob files and pack entries no version references; rewrite packs that are mostly
        dead (blobs.collect_packs). Returns (chunks, bytes) removed. Holds the exclusive lock: no
        snapshot is between writing chunks and committing them meanwhile."""
        if self.readonly:
            self.write()  # raises the read-only error
        with self.blobs.collecting():
            keep = self.referenced_blobs()
            files = freed = 0
            for bid in list(self.blobs.all_ids()):
                if bid not in keep:
                    freed += self.blobs.delete(bid)
                    files += 1
            dropped, pack_freed = self.blobs.collect_packs(keep)
            files, freed = files + dropped, freed + pack_freed
            self.blobs.clean_tmp()
        return files, freed

    def delete_versions(self, versions: list[Version]) -> int:
        """Drop versions' metadata (their blobs go at the next gc). Children are re-parented."""
        if not versions:
            return 0
        with self.write():
            c = self.db.conn
            for v in versions:
                row = c.execute("select parent_id from versions where id = ?", (v.id,)).fetchone()
                if row is None:
                    continue
                c.execute("update versions set parent_id = ? where parent_id = ?", (row[0], v.id))
                for table in ("variables", "version_cells", "params", "metrics"):
                    c.execute(f"delete from {table} where version_id = ?", (v.id,))
                c.execute("delete from tags where version_id = ?", (v.id,))
                c.execute("delete from versions where id = ?", (v.id,))
            c.execute("delete from cells where hash not in (select cell_hash from version_cells)")
            # manifests no version holds any more (their chunks go at the next gc)
            c.execute("delete from manifests where hash not in (select manifest_hash from variables)")
        return len(versions)

    def total_bytes(self) -> int:
        """Bytes of chunk data on disk: blob files and pack files."""
        return sum(self.blobs.stored_size(b) for b in self.blobs.all_ids()) + self.blobs.packed_bytes()


def _where(flag, where: str | None, name: str) -> tuple:
    """The credential paths of a variable row (schema 3): () when it holds none."""
    if not flag:
        return ()
    try:
        paths = json.loads(where) if where else []
    except ValueError:
        paths = []
    return tuple(str(p) for p in paths) or (name,)


_CELL_HASHES: dict[int, tuple[Cell, str]] = {}


def _cell_hash(c: Cell) -> str:
    """Content hash of a cell record. The cell log hands out the same Cell object while a cell is
    unchanged, so a snapshot after every cell serialises only the cells that changed."""
    hit = _CELL_HASHES.get(id(c))
    if hit is not None and hit[0] is c:
        return hit[1]
    h = hashlib.sha256(_json([c.cell_id, c.execution_count, c.source, list(c.outputs)]).encode()).hexdigest()
    if len(_CELL_HASHES) > 20000:
        _CELL_HASHES.clear()
    _CELL_HASHES[id(c)] = (c, h)
    return h


# what REF parsing reads before tags and names (Store.resolve): a label spelled like this is unreachable
_REF_WORDS = re.compile(r"[vV]?\d+|(?:latest|head)(?:~\d*)?", re.I)


def label_problem(text: str, what: str = "tag") -> str | None:
    """Why `text` cannot be a new tag (`what="tag"`) or version name (`"name"`), or None.

    A label must be reachable as a REF exactly: not empty, at most 100 characters, not vN / N /
    latest / latest~K / head (REF reads those first), no ':' (NB:REF separates a notebook with it),
    not starting with '-' (it would read as an option); a tag is also one word (no spaces)."""
    if not text:
        return "it is empty"
    if len(text) > 100:
        return "it is longer than 100 characters"
    if what == "tag" and any(c.isspace() for c in text):
        return "it has spaces"
    if _REF_WORDS.fullmatch(text):
        return "it reads as a version number or latest"
    if ":" in text:
        return "':' separates a notebook from a version in NB:REF"
    if text.startswith("-"):
        return "it would read as an option"
    return None


def validate_tag(tag: str) -> str:
    """`tag` stripped, or UsageError with the reason (see label_problem)."""
    tag = str(tag).strip()
    why = label_problem(tag, "tag")
    if why:
        raise UsageError(f"bad tag {tag!r}: {why}; use a non-empty word without spaces that is not vN, N or latest")
    return tag


def validate_name(name: str) -> str:
    """A version name stripped, or UsageError with the reason (see label_problem)."""
    name = str(name).strip()
    why = label_problem(name, "name")
    if why:
        raise UsageError(f"bad version name {name!r}: {why}; names are usable as REF, so they cannot look "
                         "like vN, N or latest")
    return name
