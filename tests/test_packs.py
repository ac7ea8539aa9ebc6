"""Pack files for small chunks, content-addressed manifests, gc repacking, and the migration from the
schema-3 store format (one blob file per chunk, manifests inline in `variables`) — issue 13."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import xxhash

from jupyter_mv import api
from jupyter_mv.store import Store
from jupyter_mv.store import blobs as blobmod
from jupyter_mv.store.migrations import MIGRATIONS

FIXTURES = Path(__file__).parent / "fixtures"


def digest(a) -> str:
    return xxhash.xxh3_128_hexdigest(memoryview(np.ascontiguousarray(a)).cast("B"))


@pytest.fixture
def st(tmp_path):
    ns: dict = {}
    s = api.Session(namespace=ns)
    api.set_session(s)
    store = s.store(tmp_path / ".jupyter_mv")
    store.ns = ns
    yield store
    store.close()
    api.set_session(None)


def _db_bytes(store: Store) -> int:
    """Bytes of live database content (pages in use), after folding the WAL in."""
    c = store.db.conn
    c.execute("pragma wal_checkpoint(TRUNCATE)")
    pages, free, size = (c.execute(f"pragma {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size"))
    return (pages - free) * size


def test_small_chunks_go_to_one_pack_and_restore(st):
    d = {f"a{i}": np.random.default_rng(i).random(400) for i in range(500)}
    st.ns["d"] = d
    v = api.take_snapshot(["d"], store=st).version
    packs = st.blobs.pack_files()
    assert len(packs) == 1 and not list((st.root / "blobs").rglob("*-*"))  # no blob file per array
    assert packs[0].read_bytes()[:8] == blobmod.PACK_MAGIC
    n_packed = st.db.conn.execute("select count(*) from packed").fetchone()[0]
    assert n_packed == 501  # the 500 arrays and the dict's pickle stream
    assert v.new_bytes == packs[0].stat().st_size - len(blobmod.PACK_MAGIC)
    assert st.total_bytes() == packs[0].stat().st_size
    got = api.load(v, "d", store=st)
    assert set(got) == set(d) and all(np.array_equal(got[k], d[k]) for k in d)
    assert st.verify() == []


def test_large_chunks_stay_blob_files_and_zeros_compress_in_packs(st):
    st.ns.update(big=np.random.default_rng(0).random(100_000), zeros=np.zeros(20_000))  # 800 kB, 160 kB
    v = api.take_snapshot(["big", "zeros"], store=st).version
    big_id = st.stored_variable(v, "big").manifest["buffers"][0]["c"][0]
    zero_id = st.stored_variable(v, "zeros").manifest["buffers"][0]["c"][0]
    assert st.blobs.path(big_id).exists()
    ((pack, off, length),) = st.blobs.locate([zero_id]).values()
    assert length < 2_000  # stored compressed in the pack
    assert np.array_equal(api.load(v, "zeros", store=st), np.zeros(20_000))


def test_unchanged_variable_costs_one_row_whatever_its_size(st):
    """The chunk list of an unchanged variable is stored once: re-snapshots add no manifest rows, and
    the database grows by well under 1 kB per re-snapshot of a 3,000-chunk variable."""
    st.ns["d"] = {f"a{i}": np.random.default_rng(i).random(400) for i in range(3000)}
    api.take_snapshot(["d"], store=st)
    rows = st.db.conn.execute("select count(*) from manifests").fetchone()[0]
    before, files = _db_bytes(st), st.total_bytes()
    for _ in range(10):
        assert api.take_snapshot(["d"], store=st).version.new_bytes == 0
    assert st.db.conn.execute("select count(*) from manifests").fetchone()[0] == rows
    assert st.total_bytes() == files
    assert (_db_bytes(st) - before) / 10 <= 1024
    vs = st.versions()
    assert len({st.db.conn.execute("select manifest_hash from variables where version_id = ?", (v.id,)).fetchone()[0]
                for v in vs}) == 1


def test_changed_content_new_manifest_and_delete_drops_it(st):
    st.ns["x"] = np.arange(5000.0)
    v1 = api.take_snapshot(["x"], store=st).version
    st.ns["x"] = np.arange(5000.0) * 2
    v2 = api.take_snapshot(["x"], store=st).version
    assert st.db.conn.execute("select count(*) from manifests").fetchone()[0] == 2
    st.delete_versions([v1])
    assert st.db.conn.execute("select count(*) from manifests").fetchone()[0] == 1
    files, freed = st.gc()
    assert files == 1 and freed > 0
    assert np.array_equal(api.load(st.versions()[0], "x", store=st), np.arange(5000.0) * 2)
    assert v2.id == st.versions()[0].id and st.verify() == []


def test_gc_repacks_a_mostly_dead_pack_and_keeps_live_chunks(st):
    keep = {f"k{i}": np.random.default_rng(i).random(400) for i in range(20)}
    drop = {f"d{i}": np.random.default_rng(1000 + i).random(400) for i in range(200)}
    st.ns.update(keep=keep, drop=drop)
    v1 = api.take_snapshot(["keep", "drop"], store=st).version
    st.ns["drop"] = None
    v2 = api.take_snapshot(["keep"], store=st).version
    (old,) = st.blobs.pack_files()
    st.delete_versions([v1])
    size = st.total_bytes()
    files, freed = st.gc()
    assert files == 201  # drop's 200 arrays and its pickle stream
    (new,) = st.blobs.pack_files()
    assert new != old and not old.exists()
    live = st.db.conn.execute("select sum(length) from packed").fetchone()[0]
    assert new.stat().st_size == len(blobmod.PACK_MAGIC) + live < 0.15 * size
    assert freed == size - new.stat().st_size
    got = api.load(v2, "keep", store=st)
    assert all(np.array_equal(got[k], keep[k]) for k in keep)
    assert st.verify() == []
    # a pack still mostly live is left alone; a pack with nothing live goes
    assert st.gc() == (0, 0) and st.blobs.pack_files() == [new]
    st.delete_versions([v2])
    files, freed = st.gc()
    assert files == 20 and st.blobs.pack_files() == [] and st.total_bytes() == 0


def test_gc_removes_unindexed_pack_files_and_temp_packs(st):
    st.ns["d"] = {f"a{i}": np.arange(400.0) + i for i in range(30)}
    v = api.take_snapshot(["d"], store=st).version
    stray = st.blobs.packs / ("0" * 32 + ".pack")  # a writer killed between rename and indexing
    stray.write_bytes(blobmod.PACK_MAGIC + b"Mr" + b"x" * 5000)
    (st.root / "tmp").mkdir(exist_ok=True)
    (st.root / "tmp" / ("1" * 32 + ".pack.999")).write_bytes(b"half a pack")
    files, freed = st.gc()
    assert not stray.exists() and not any((st.root / "tmp").iterdir())
    assert freed >= 5000
    assert api.load(v, "d", store=st)["a3"][0] == 3.0 and st.verify() == []


def _packed_entry(store: Store, v, name: str) -> tuple[Path, int, int]:
    bid = store.stored_variable(v, name).manifest["buffers"][0]["c"][0]
    pack, off, length = store.blobs.locate([bid])[bid]
    return store.blobs.pack_path(pack), off, length


@pytest.mark.parametrize("damage", ["bitflip", "truncate", "delete"])
def test_damaged_pack_names_the_variables(st, damage):
    st.ns.update(a=np.arange(1000.0), b=np.arange(1000.0) + 0.5)
    v1 = api.take_snapshot(["a", "b"], store=st).version
    st.ns["c"] = np.arange(1000.0) + 0.25
    v2 = api.take_snapshot(["a", "c"], store=st).version  # c in a pack of its own
    path, off, length = _packed_entry(st, v2, "c")
    data = bytearray(path.read_bytes())
    if damage == "bitflip":
        data[off + length // 2] ^= 0x10
        path.write_bytes(bytes(data))
        want = "does not match its hash"
    elif damage == "truncate":
        path.write_bytes(bytes(data[: off + 10]))
        want = "truncated"
    else:
        path.unlink()
        want = "missing"
    problems = st.verify()
    assert [(p["version"], p["variable"]) for p in problems] == [("v2", "c")]
    assert want in problems[0]["problem"]
    with pytest.raises(Exception) as e:
        api.load(v2, "c", store=st)
    assert "'c'" in str(e.value) and "\n" not in str(e.value)
    assert np.array_equal(api.load(v2, "a", store=st), np.arange(1000.0))
    assert np.array_equal(api.load(v1, "b", store=st), np.arange(1000.0) + 0.5)


def test_reader_follows_a_chunk_that_gc_moved(st):
    """A restore that looked a chunk up just before gc repacked it reads it from its new pack."""
    st.ns.update(keep=np.arange(1000.0), drop={f"d{i}": np.random.default_rng(i).random(400) for i in range(50)})
    v1 = api.take_snapshot(["keep", "drop"], store=st).version
    v2 = api.take_snapshot(["keep"], store=st).version
    bid = st.stored_variable(v2, "keep").manifest["buffers"][0]["c"][0]
    stale = st.blobs.locate([bid])[bid]
    st.delete_versions([v1])
    st.gc()
    assert st.blobs.locate([bid])[bid] != stale and not st.blobs.pack_path(stale[0]).exists()
    out = memoryview(bytearray(blobmod.blob_size(bid)))
    st.blobs.read_into(bid, out, stale)
    assert bytes(out) == np.arange(1000.0).tobytes()


def test_schema3_store_migrates(tmp_path):
    """A store written before pack files (tests/fixtures/store-schema3, made by
    make_store_schema3.py with the schema-3 code) opens, migrates, restores exactly, verifies clean;
    new snapshots into it pack their small chunks and share its (migrated) manifests."""
    root = tmp_path / "old"
    shutil.copytree(FIXTURES / "store-schema3", root)
    assert sqlite3.connect(root / "store.db").execute("pragma user_version").fetchone()[0] == 3
    st = Store(root)
    try:
        assert st.db.conn.execute("pragma user_version").fetchone()[0] == len(MIGRATIONS)
        assert not st.db.conn.execute("select 1 from sqlite_master where name = 'variable_blobs'").fetchone()
        v1, v2 = st.versions("unnamed notebook")
        assert v1.tags == ("baseline",) and v1.metrics == {"loss": 0.5} and v2.parent == 1
        big = np.arange(300_000, dtype=np.float64) / 3.0
        d = {f"a{i}": np.arange(400, dtype=np.float64) + i for i in range(50)}
        for v in (v1, v2):
            assert np.array_equal(api.load(v, "big", store=st), big)
            got = api.load(v, "d", store=st)
            assert set(got) == set(d)
            for k in d:
                assert np.array_equal(got[k], d[k] * (2 if (k == "a3" and v is v2) else 1))
        assert api.load(v1, "cfg", store=st) == {"lr": 0.1, "name": "first"}
        assert api.load(v2, "cfg", store=st) == {"lr": 0.01, "name": "second"}
        assert np.array_equal(api.load(v2, "small", store=st), np.arange(10))
        # big and small are unchanged between v1 and v2: one manifest each after the migration
        hashes = dict(st.db.conn.execute("select version_id || name, manifest_hash from variables").fetchall())
        assert hashes[f"{v1.id}big"] == hashes[f"{v2.id}big"] and hashes[f"{v1.id}d"] != hashes[f"{v2.id}d"]
        assert st.verify() == []
        # the old blob files stay where they are and still deduplicate
        ns = {"d": {k: x * (2 if k == "a3" else 1) for k, x in d.items()}, "e": np.arange(500.0)}
        api.set_session(api.Session(namespace=ns))
        r = api.take_snapshot(["d", "e"], store=st)
        assert 0 < r.version.new_bytes < 5000  # only e's chunk is new
        assert len(st.blobs.pack_files()) == 1
        st.delete_versions([v1])
        st.gc()
        assert st.verify() == [] and np.array_equal(api.load(v2, "big", store=st), big)
    finally:
        st.close()
        api.set_session(None)


def test_imported_small_chunks_are_packed(st, tmp_path, monkeypatch):
    """An import of a version of many small arrays writes them to packs (a few fsyncs), restores
    exactly with --trust, and a failed import leaves nothing indexed that a later snapshot could
    mistake for present."""
    import os

    from jupyter_mv import bundle

    d = {f"a{i}": np.random.default_rng(i).random(400) for i in range(600)}
    st.ns["d"] = d
    v = api.take_snapshot(["d"], store=st).version
    path = bundle.export(st, v, tmp_path / "many.mvz")
    other = Store(tmp_path / "other")
    try:
        fsyncs = []
        real = os.fsync
        monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real(fd))[1])
        res = bundle.import_(other, path)
        monkeypatch.undo()
        assert len(other.blobs.pack_files()) == 1 and not list((other.root / "blobs").rglob("*-*"))
        assert len(fsyncs) < 10 and res.new_bytes > 600 * 3200
        got = api.load(res.version, "d", trust=True, store=other)
        assert all(np.array_equal(got[k], d[k]) for k in d)
        assert other.verify() == []
        # an import that fails after staging drops what it staged
        third = Store(tmp_path / "third")
        try:
            monkeypatch.setattr(Store, "commit_version", lambda *a, **k: (_ for _ in ()).throw(OSError(5, "boom")))
            with pytest.raises(Exception):
                bundle.import_(third, path)
            monkeypatch.undo()
            assert third.blobs._pending == {}
            third.gc()
            assert third.blobs.pack_files() == [] and third.db.conn.execute("select count(*) from packed").fetchone()[0] == 0
            assert bundle.import_(third, path).version is not None and third.verify() == []
        finally:
            third.close()
    finally:
        other.close()


def test_bit_flip_among_many_small_chunks_is_caught_on_restore(st):
    """A restore reads a pack's many entries in one go (read_buffers' fast path): a flipped bit in one
    entry still refuses that variable with one line, and verify names it."""
    d = {f"a{i}": np.random.default_rng(i).random(400) for i in range(50)}
    st.ns.update(d=d, other=np.arange(1000.0))
    v = api.take_snapshot(["d"], store=st).version
    api.take_snapshot(["other"], store=st)
    bid = st.stored_variable(v, "d").manifest["buffers"][7]["c"][0]
    pack, off, length = st.blobs.locate([bid])[bid]
    path = st.blobs.pack_path(pack)
    data = bytearray(path.read_bytes())
    data[off + 2 + 100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(Exception) as e:
        api.load(v, "d", store=st)
    assert "'d'" in str(e.value) and "damaged" in str(e.value) and "\n" not in str(e.value)
    assert [(p["variable"], p["blob"], p["problem"]) for p in st.verify()] == [
        ("d", bid, "content does not match its hash")]
    assert np.array_equal(api.load(st.versions()[-1], "other", store=st), np.arange(1000.0))


def test_blob_file_chunks_of_many_buffers_read_together(st, monkeypatch):
    """read_buffers hands the blob-file chunks of all the buffers of a variable to the pool at once
    (a model's weights): buffers of one chunk, of several, of packed and blob-file chunks mixed, and
    inline ones all come back exact; a damaged chunk of one buffer still refuses the variable with one
    line, and the variable's other chunks being read meanwhile changes nothing."""
    monkeypatch.setenv("JUPYTER_MV_CHUNK", str(512 * 1024))  # 512 KiB chunks: blob files (> pack_max 256 KiB)
    rng = np.random.default_rng(3)
    d = {"one": rng.random(60_000),  # 480 kB: one blob-file chunk
         "many": rng.random(400_000),  # 3.2 MB: 6 blob-file chunks + a 53 kB tail in a pack
         "mixed": np.concatenate([rng.random(70_000), np.zeros(70_000)]),  # a blob file, then a packed zero chunk
         "small": rng.random(1000), "tiny": np.arange(5.0)}  # a packed chunk; inline in the manifest
    st.ns["d"] = d
    v = api.take_snapshot(["d"], store=st).version
    manifests = st.stored_variable(v, "d").manifest["buffers"]
    chunks = [b for m in manifests for b in m.get("c", [])]
    packed = st.blobs.locate(chunks)
    files = [b for b in chunks if b not in packed]
    assert len(files) >= 9 and len(packed) >= 3 and any("i" in m for m in manifests)
    for _ in range(3):
        got = api.load(v, "d", store=st)
        assert set(got) == set(d) and all(np.array_equal(got[k], d[k]) and got[k].dtype == d[k].dtype for k in d)
    bad = files[len(files) // 2]
    path = st.blobs.path(bad)
    data = bytearray(path.read_bytes())
    data[len(data) - 1000] ^= 0x10  # a byte of the chunk (the file may start with a page of header)
    path.write_bytes(bytes(data))
    with pytest.raises(Exception) as e:
        api.load(v, "d", store=st)
    assert "'d'" in str(e.value) and "damaged" in str(e.value) and bad[:12] in str(e.value) and "\n" not in str(e.value)
    assert [(p["blob"], p["problem"]) for p in st.verify()] == [(bad, "content does not match its hash")]
    path.unlink()  # a missing chunk file: named the same way
    with pytest.raises(Exception, match="damaged.*file is missing"):
        api.load(v, "d", store=st)
