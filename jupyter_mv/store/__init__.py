"""The store: SQLite metadata (versions, variables, cells, params, metrics, tags, environments)
plus content-addressed blob files. Every version is committed in one transaction after its blobs
are durable, so it is visible whole or not at all."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from ..errors import StoreError, UnknownRef, UnknownVariable
from ..model import Cell, Version, VariableRef
from . import db as dbmod
from .blobs import BlobStore, blob_size

__all__ = ["Store", "StoredVariable", "default_root", "now"]

DB_NAME = "store.db"


def default_root() -> Path:
    env = os.environ.get("JUPYTER_MV_STORE")
    return Path(env).expanduser() if env else Path.cwd() / ".jupyter_mv"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _json(v) -> str:
    return json.dumps(v, sort_keys=True, default=repr, allow_nan=True)


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

    def blob_ids(self) -> set[str]:
        return {b for m in self.manifest.get("buffers", []) for b in m["c"]}

    def ref(self) -> VariableRef:
        return VariableRef(self.name, self.type_name, self.codec, self.content_hash, self.nbytes,
                           self.summary, self.safe)


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
        self.blobs = BlobStore(self.root)

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
        if self.readonly:
            raise StoreError(f"the store at {self.root} is read-only: snapshots, tags and gc need write access "
                             "(browsing and restoring still work)")
        return dbmod.write(self.db)

    def _q(self, sql: str, params=()) -> list[tuple]:
        try:
            return self.db.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
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
    ) -> Version:
        """Write one version's metadata in a single transaction. `parent` is a per-notebook number."""
        conn = self.db.conn
        tags = [validate_tag(t) for t in tags]
        try:
            with self.write():
                nid = self._notebook_id(notebook, create=True)
                n = self._q("select coalesce(max(n), 0) + 1 from versions where notebook_id = ?", (nid,))[0][0]
                parent_id = None
                if parent is not None:
                    rows = self._q("select id from versions where notebook_id = ? and n = ?", (nid, parent))
                    parent_id = rows[0][0] if rows else None
                env_id = self._environment_id(env or {})
                cur = conn.execute(
                    "insert into versions (notebook_id, n, name, message, created, parent_id, env_id, kind,"
                    " nbytes, new_bytes, origin, execution_count) values (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (nid, n, name or "", message or "", created or now(), parent_id, env_id, kind,
                     sum(v.nbytes for v in variables), new_bytes, origin, execution_count),
                )
                vid = cur.lastrowid
                ts = now()
                for v in variables:
                    conn.execute(
                        "insert into variables (version_id, name, type_name, codec, content_hash, nbytes, safe,"
                        " summary, manifest) values (?,?,?,?,?,?,?,?,?)",
                        (vid, v.name, v.type_name, v.codec, v.content_hash, v.nbytes, int(v.safe),
                         _json(v.summary), json.dumps(v.manifest)),
                    )
                    ids = v.blob_ids()
                    conn.executemany("insert or ignore into variable_blobs (version_id, name, blob_id) values (?,?,?)",
                                     [(vid, v.name, b) for b in ids])
                    conn.executemany("insert or ignore into blobs (id, size, created) values (?,?,?)",
                                     [(b, blob_size(b), ts) for b in ids])
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
                    conn.execute("insert or replace into tags (notebook_id, tag, version_id) values (?,?,?)",
                                 (nid, t, vid))
        except sqlite3.DatabaseError as e:
            if "full" in str(e).lower():
                from ..errors import NoSpace

                raise NoSpace("no space left on the store's disk; free some space and snapshot again "
                              "(earlier versions are intact)") from None
            raise StoreError(f"cannot record the version in {self.root}: {e}") from None
        return self.version_by_id(vid)

    # -- reading versions --------------------------------------------------------------------
    _VCOLS = ("v.id, v.n, nb.path, v.created, v.message, v.name, p.n, v.kind, v.nbytes, v.new_bytes,"
              " v.env_id, v.origin, v.execution_count")

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
                execution_count=r[12],
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

    def is_imported(self, version: Version) -> bool:
        rows = self._q("select origin from versions where id = ?", (version.id,))
        return bool(rows) and rows[0][0] == "imported"

    def resolve(self, notebook: str, ref) -> Version:
        """A version from REF: vN, N, a tag, a version name, or `latest` (also `latest~K`)."""
        if isinstance(ref, Version):
            return ref
        text = str(ref).strip()
        if not text:
            raise UnknownRef("empty version reference; use vN, N, a tag, a name or latest")
        nid = self._notebook_id(notebook)
        if nid is None:
            raise UnknownRef(f"no versions for notebook {notebook!r} in {self.root}; take a snapshot first")
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
        raise UnknownRef(f"no version {text!r} in notebook {notebook!r} (it has {have}{hint})")

    # -- variables and cells -----------------------------------------------------------------
    def variables(self, version: Version) -> list[VariableRef]:
        rows = self._q("select name, type_name, codec, content_hash, nbytes, summary, safe from variables"
                       " where version_id = ? order by name", (version.id,))
        return [VariableRef(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"), bool(r[6])) for r in rows]

    def stored_variable(self, version: Version, name: str) -> StoredVariable:
        rows = self._q("select name, type_name, codec, content_hash, nbytes, safe, summary, manifest from variables"
                       " where version_id = ? and name = ?", (version.id, name))
        if not rows:
            have = ", ".join(version.variables) or "none"
            raise UnknownVariable(f"{version.label} has no variable {name!r} (it has: {have})")
        r = rows[0]
        return StoredVariable(r[0], r[1], r[2], r[3], r[4], bool(r[5]), json.loads(r[6] or "{}"), json.loads(r[7]))

    def cells(self, version: Version) -> list[Cell]:
        rows = self._q("select c.cell_id, c.execution_count, c.source, c.outputs from version_cells vc"
                       " join cells c on c.hash = vc.cell_hash where vc.version_id = ? order by vc.position",
                       (version.id,))
        return [Cell(source=r[2] or "", execution_count=r[1], cell_id=r[0], outputs=tuple(json.loads(r[3] or "[]")))
                for r in rows]

    # -- tags --------------------------------------------------------------------------------
    def tag(self, version: Version, tag: str, remove: bool = False) -> None:
        tag = validate_tag(tag)
        with self.write():
            nid = self._notebook_id(version.notebook)
            if remove:
                self.db.conn.execute("delete from tags where notebook_id = ? and tag = ? and version_id = ?",
                                     (nid, tag, version.id))
            else:
                self.db.conn.execute("insert or replace into tags (notebook_id, tag, version_id) values (?,?,?)",
                                     (nid, tag, version.id))

    # -- maintenance -------------------------------------------------------------------------
    def referenced_blobs(self) -> set[str]:
        return {r[0] for r in self._q("select distinct blob_id from variable_blobs")}

    def verify(self, progress=None) -> list[dict]:
        """Re-hash every referenced blob; one problem dict per damaged (version, variable, blob)."""
        problems = []
        uses: dict[str, list[tuple]] = {}
        for nb, n, name, bid in self._q(
            "select nb.path, v.n, vb.name, vb.blob_id from variable_blobs vb join versions v on v.id = vb.version_id"
            " join notebooks nb on nb.id = v.notebook_id order by nb.path, v.n, vb.name"
        ):
            uses.setdefault(bid, []).append((nb, n, name))
        try:
            integrity = self._q("pragma quick_check")[0][0]
        except StoreError as e:
            integrity = str(e)
        if integrity != "ok":
            problems.append({"notebook": None, "version": None, "variable": None, "blob": None,
                             "problem": f"database check failed: {integrity}"})
        futs = {bid: self.blobs.pool.submit(self.blobs.check, bid) for bid in uses}
        for bid, fut in futs.items():
            reason = fut.result()
            if progress:
                progress(1)
            if reason:
                for nb, n, name in uses[bid]:
                    problems.append({"notebook": nb, "version": f"v{n}", "variable": name, "blob": bid,
                                     "problem": reason})
        return problems

    def gc(self) -> tuple[int, int]:
        """Delete blob files no version references. Returns (files, bytes) removed."""
        with self.blobs.collecting():
            keep = self.referenced_blobs()
            files = freed = 0
            for bid in list(self.blobs.all_ids()):
                if bid not in keep:
                    freed += self.blobs.delete(bid)
                    files += 1
            self.blobs.clean_tmp()
            with self.write():
                self.db.conn.execute("delete from blobs where id not in (select blob_id from variable_blobs)")
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
                for table in ("variables", "variable_blobs", "version_cells", "params", "metrics"):
                    c.execute(f"delete from {table} where version_id = ?", (v.id,))
                c.execute("delete from tags where version_id = ?", (v.id,))
                c.execute("delete from versions where id = ?", (v.id,))
            c.execute("delete from cells where hash not in (select cell_hash from version_cells)")
        return len(versions)

    def total_bytes(self) -> int:
        return sum(self.blobs.stored_size(b) for b in self.blobs.all_ids())


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


def validate_tag(tag: str) -> str:
    tag = str(tag).strip()
    if not tag or len(tag) > 100 or any(c.isspace() for c in tag) or re.fullmatch(r"[vV]?\d+|latest(~\d+)?", tag):
        from ..errors import UsageError

        raise UsageError(f"bad tag {tag!r}: use a non-empty word without spaces that is not vN, N or latest")
    return tag
