"""The store on disk: SQLite in WAL mode with numbered migrations, content-addressed blob files,
compression only when it pays, deduplication, and temp -> fsync -> rename writes."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest

from mvtest import blob_files, store_bytes
from jupyter_mv import api
from jupyter_mv.errors import StoreError
from jupyter_mv.store import Store
from jupyter_mv.store import blobs as blobmod
from jupyter_mv.store.migrations import MIGRATIONS


def _content(path) -> bytes:
    """The bytes a blob file stands for (decompressed)."""
    bid = path.name
    out = memoryview(bytearray(blobmod.blob_size(bid)))
    blobmod.BlobStore(path.parents[2]).read_into(bid, out)
    return bytes(out)


def test_wal_mode(store):
    assert store.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # a second connection (another process would do the same) sees WAL too
    conn = sqlite3.connect(store.root / "store.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_migrations_numbered(store):
    assert len(MIGRATIONS) >= 1
    assert store.db.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    for i, fn in enumerate(MIGRATIONS, start=1):
        assert fn.__name__.startswith(f"m{i:03d}_"), fn.__name__
    tables = set(store.db.table_names())
    assert {"notebooks", "versions", "variables", "cells", "params", "metrics", "tags", "environments",
            "manifests", "packed"} <= tables
    # reopening does not re-run anything
    again = Store(store.root)
    try:
        assert again.db.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        again.close()


def test_newer_schema_refused(store_path):
    Store(store_path).close()
    conn = sqlite3.connect(store_path / "store.db")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer jupyter_mv") as e:
        Store(store_path)
    assert "\n" not in str(e.value)


def test_no_store_without_create(tmp_path):
    with pytest.raises(StoreError, match="no jupyter_mv store"):
        Store(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()


def test_blobs_content_addressed_raw_and_zstd(session, store_path):
    rng = np.random.default_rng(0)
    session.namespace["noise"] = rng.random(200_000)  # 1.6 MB of random doubles: does not compress
    session.namespace["zeros"] = np.zeros(200_000)  # compresses to almost nothing
    v = api.snapshot()
    files = blob_files(store_path)
    assert files
    headers = {}
    for f in files:
        data = _content(f)
        assert blobmod.blob_id(data) == f.name  # the name is the hash of the content (+ its size)
        assert f.parent.name == f.name[:2]
        headers[f.read_bytes()[:2]] = headers.get(f.read_bytes()[:2], 0) + 1
    # a large raw chunk's file is page-aligned: header, zeros to offset 4096, the bytes (mappable)
    assert blobmod.ALIGNED in headers and blobmod.ZSTD in headers
    noise_bytes = session.namespace["noise"].tobytes()
    zero_files = [f for f in files if f.read_bytes()[:2] == blobmod.ZSTD]
    raw_files = [f for f in files if f.read_bytes()[:2] == blobmod.ALIGNED]
    assert sum(f.stat().st_size for f in zero_files) < 0.05 * session.namespace["zeros"].nbytes
    assert any(_content(f) in noise_bytes for f in raw_files)  # a raw file holds the array's bytes
    for f in raw_files:
        raw = f.read_bytes()
        assert raw[2:4096] == bytes(4094) and raw[4096:] == _content(f)  # stored as is, at offset 4096
    # the blobs table knows every referenced blob
    st = session.store()
    assert st.referenced_blobs() == {f.name for f in files}
    assert v.new_bytes == store_bytes(store_path)


def test_identical_content_stored_once(session, store_path):
    a = np.random.default_rng(1).random(300_000)
    session.namespace.update(a=a, b=a.copy())
    v1 = api.snapshot("a", "b")
    size = store_bytes(store_path)
    assert size < 1.2 * a.nbytes  # two equal arrays, one copy on disk
    assert v1.nbytes == 2 * a.nbytes


def test_unchanged_100mb_array_writes_no_new_bytes(session, store_path):
    big = np.random.default_rng(2).random(100 * 1024 * 1024 // 8)  # 100 MiB, incompressible
    session.namespace["big"] = big
    v1 = api.snapshot("big")
    size1 = store_bytes(store_path)
    files1 = {f.name for f in blob_files(store_path)}
    assert size1 >= big.nbytes and v1.new_bytes >= big.nbytes
    v2 = api.snapshot("big", message="again")
    assert v2.new_bytes == 0
    assert store_bytes(store_path) == size1
    assert {f.name for f in blob_files(store_path)} == files1
    # a changed slice costs a chunk, not the whole array
    big[:10] = -1.0
    v3 = api.snapshot("big")
    assert 0 < v3.new_bytes < big.nbytes / 4
    assert store_bytes(store_path) - size1 == v3.new_bytes
    api.restore("v2")
    restored = session.namespace["big"]
    assert restored[0] != -1.0 and np.array_equal(restored[10:], big[10:])


def test_writes_go_through_temp_fsync_rename(session, store_path, monkeypatch):
    renames, fsyncs = [], []
    real_replace, real_fsync = os.replace, os.fsync

    def spy_replace(src, dst, *a, **k):
        renames.append((str(src), str(dst)))
        return real_replace(src, dst, *a, **k)

    def spy_fsync(fd):
        fsyncs.append(fd)
        return real_fsync(fd)

    monkeypatch.setattr(os, "replace", spy_replace)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    session.namespace["x"] = np.random.default_rng(3).random(100_000)
    api.snapshot("x")
    monkeypatch.undo()
    names = {f.name for f in blob_files(store_path)}
    assert names
    renamed_to = {os.path.basename(d) for _, d in renames}
    assert names <= renamed_to  # every blob file arrived by rename
    for src, dst in renames:
        if os.path.basename(dst) in names:
            assert os.path.basename(src) != os.path.basename(dst)  # ... from another (temp) name
    assert len(fsyncs) >= len(names)
    tmp = store_path / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir())  # no temp leftovers
    assert not [f for f in (store_path / "blobs").rglob("*") if f.is_file() and "." in f.name]


def test_store_closes_and_reopens(session, store_path):
    session.namespace["a"] = [1, 2, 3]
    api.snapshot("a", message="one")
    api.set_session(None)
    with Store(store_path) as st:
        (v,) = st.versions()
        assert v.message == "one" and v.variables == ("a",)
        assert v.notebook == "unnamed notebook"
        env = st.environment(v)
        assert env["python"] and env["packages"]


def test_total_bytes_matches_disk(session, store_path):
    session.namespace["a"] = np.random.default_rng(4).random(50_000)
    api.snapshot()
    assert session.store().total_bytes() == store_bytes(store_path)
