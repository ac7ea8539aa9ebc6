"""Numbered schema migrations. Append only: a released migration is never edited."""

from __future__ import annotations

from typing import Callable

import sqlite_utils

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []


def migration(fn):
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db["notebooks"].create({"id": int, "path": str, "created": str}, pk="id", not_null={"path"})
    db["notebooks"].create_index(["path"], unique=True)
    db["environments"].create(
        {"id": int, "hash": str, "python": str, "platform": str, "packages": str, "git": str, "created": str},
        pk="id",
    )
    db["environments"].create_index(["hash"], unique=True)
    db["versions"].create(
        {
            "id": int, "notebook_id": int, "n": int, "name": str, "message": str, "created": str,
            "parent_id": int, "env_id": int, "kind": str, "nbytes": int, "new_bytes": int,
            "origin": str,
        },
        pk="id",
        foreign_keys=[("notebook_id", "notebooks", "id"), ("env_id", "environments", "id")],
        not_null={"notebook_id", "n", "created", "kind"},
        defaults={"name": "", "message": "", "kind": "manual", "nbytes": 0, "new_bytes": 0, "origin": "local"},
    )
    db["versions"].create_index(["notebook_id", "n"], unique=True)
    db["variables"].create(
        {
            "version_id": int, "name": str, "type_name": str, "codec": str, "content_hash": str,
            "nbytes": int, "safe": int, "summary": str, "manifest": str,
        },
        pk=("version_id", "name"),
        foreign_keys=[("version_id", "versions", "id")],
    )
    db["variable_blobs"].create(
        {"version_id": int, "name": str, "blob_id": str},
        pk=("version_id", "name", "blob_id"),
    )
    db["variable_blobs"].create_index(["blob_id"])
    db["blobs"].create({"id": str, "size": int, "created": str}, pk="id")
    db["cells"].create(
        {"hash": str, "cell_id": str, "execution_count": int, "source": str, "outputs": str}, pk="hash"
    )
    db["version_cells"].create(
        {"version_id": int, "position": int, "cell_hash": str}, pk=("version_id", "position")
    )
    db["params"].create({"version_id": int, "key": str, "value": str}, pk=("version_id", "key"))
    db["metrics"].create({"version_id": int, "key": str, "value": float}, pk=("version_id", "key"))
    db["tags"].create({"notebook_id": int, "tag": str, "version_id": int}, pk=("notebook_id", "tag"))
    db["tags"].create_index(["version_id"])


@migration
def m002_version_execution(db: sqlite_utils.Database) -> None:
    """Automatic versions are attached to the cell execution that made them."""
    db["versions"].add_column("execution_count", int)


@migration
def m003_variable_credential(db: sqlite_utils.Database) -> None:
    """A variable the user stored although it holds a credential is marked, with where it sits
    (`client.api_key`), so exports and remotes withhold it and every view masks it."""
    db["variables"].add_column("credential", int, not_null_default=0)
    db["variables"].add_column("credential_where", str, not_null_default="")


@migration
def m004_packs_and_shared_manifests(db: sqlite_utils.Database) -> None:
    """Small chunks live in pack files, indexed by `packed` (blob id → pack, offset, length). A
    variable's manifest (its encoding's chunk list) is stored once in `manifests`, keyed by the sha256
    of its canonical JSON, and shared by every version holding the same content: an unchanged variable
    costs one `variables` row whatever its size. The chunks a version references are read from these
    manifests (gc, verify), so `variable_blobs` goes, and so does the unread `blobs` table."""
    import json

    c = db.conn
    c.execute("create table packed (blob_id text primary key, pack text not null, offset integer not null,"
              " length integer not null)")
    c.execute("create index packed_pack on packed (pack)")
    c.execute("create table manifests (hash text primary key, body text not null)")
    c.execute("alter table variables add column manifest_hash text not null default ''")
    rows = c.execute("select version_id, name, manifest from variables").fetchall()
    for vid, name, text in rows:
        body, h = manifest_key(json.loads(text or '{"meta": null, "buffers": []}'))
        c.execute("insert or ignore into manifests (hash, body) values (?, ?)", (h, body))
        c.execute("update variables set manifest = '', manifest_hash = ? where version_id = ? and name = ?",
                  (h, vid, name))
    c.execute("create index variables_manifest on variables (manifest_hash)")
    c.execute("drop table variable_blobs")
    c.execute("drop table blobs")  # sizes are in the ids; nothing read it


@migration
def m005_global_ids_and_remotes(db: sqlite_utils.Database) -> None:
    """Versions get a global identity beside their per-notebook number: `gid`, 32 hex digits (a
    UUID4), unique across stores, so two people's v3 stay two versions on a shared remote and a
    pulled version is recognised when it comes back. `author` names who made a version elsewhere
    (user@host or the git user, from the remote's manifest); "" for versions made here. `remotes`
    is the registry of object-store remotes (name -> URL, never credentials; `is_default` marks
    the one push/pull use without --remote; `conditional`: 1 when the remote honoured create-only
    and If-Match writes when it was added). `remote_versions` records which versions the remote at a URL
    holds (pushed from or pulled into this store)."""
    import uuid

    c = db.conn
    c.execute("alter table versions add column gid text")
    c.execute("alter table versions add column author text not null default ''")
    for (vid,) in c.execute("select id from versions").fetchall():
        c.execute("update versions set gid = ? where id = ?", (uuid.uuid4().hex, vid))
    c.execute("create unique index versions_gid on versions (gid)")
    c.execute("create table remotes (name text primary key, url text not null, is_default integer not null"
              " default 0, conditional integer, added text not null)")
    c.execute("create table remote_versions (url text not null, gid text not null, at text not null,"
              " primary key (url, gid))")


def manifest_key(manifest: dict) -> tuple[str, str]:
    """(compact JSON, sha256 hex of it) of a variable's manifest: its content address."""
    import hashlib
    import json

    # key order kept (not sorted): a codec's meta may rely on it (a state_dict's tensor order)
    body = json.dumps(manifest, separators=(",", ":"))
    return body, hashlib.sha256(body.encode()).hexdigest()


@migration
def m006_tag_times_and_remote_tags(db: sqlite_utils.Database) -> None:
    """`tags.seq`: when the tag was last set here, on a logical clock this table shares with
    `remote_tags.seen` (store.TAG_CLOCK: one more than both columns' largest value; 0 for tags set before
    this migration). A wall clock would not do: a pull and a tag command land in the same millisecond.
    `remote_tags` records where each tag on a remote was last seen by this store (its version's gid
    and the object's ETag, and when): a push moves the team's tag only when the local tag was set
    after that sighting (remotes/push.py), the way git refuses a non-fast-forward without --force."""
    c = db.conn
    c.execute("alter table tags add column seq integer not null default 0")
    c.execute("create table remote_tags (url text not null, notebook text not null, tag text not null,"
              " gid text not null, etag text not null, seen integer not null, primary key (url, notebook, tag))")


@migration
def m007_claimed_global_ids(db: sqlite_utils.Database) -> None:
    """`versions.claimed_gid`: the global id a bundle (or a remote manifest) said a version has,
    while nothing has verified it ("" otherwise). An imported version gets a fresh gid of its own:
    taking a claimed id on the sender's word would let a hostile bundle pass for a version the user
    or the team holds (a pull would skip the real one as already here). The claim is adopted as the
    version's gid only once a version under that id is found with the same content
    (bundle/identity.py); unique gids stay unique (versions_gid)."""
    db.conn.execute("alter table versions add column claimed_gid text not null default ''")


@migration
def m008_aligned_blob_files(db: sqlite_utils.Database) -> None:
    """No table changes: from this schema on, the blob file of a large raw chunk may be page-aligned
    (header b"Ma", zeros up to offset 4096, then the bytes; blobs.ALIGNED) so that a restore can map it
    (store/mapping.py). The number is what tells an older jupyter_mv, which cannot read such files, to
    refuse the store ("written by a newer jupyter_mv") instead of calling those chunks damaged."""
