"""Restores that map page-aligned chunk files (store/mapping.py) instead of copying them: the values,
dtypes and sharing are exact, writes stay private, damage is still named, and every case the mapping
cannot serve (old files, odd chunk sizes, a refused mmap, the setting off) reads as before."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np
import pytest

from jupyter_mv import api
from jupyter_mv.errors import StoreError
from jupyter_mv.store import Store
from jupyter_mv.store import blobs as blobmod
from jupyter_mv.store import mapping

pytestmark = pytest.mark.skipif(not mapping.AVAILABLE, reason="file mappings of 4 KiB pages: Linux only")


def mapped_files() -> set[str]:
    """Paths of the files this process has mapped (/proc/self/maps)."""
    out = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].strip().startswith("/"):
                out.add(parts[5].strip())
    return out


def chunk_files(st: Store, v, name: str) -> list[Path]:
    return [st.blobs.path(c) for m in st.stored_variable(v, name).manifest["buffers"] for c in m.get("c", [])]


@pytest.fixture
def big(session):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1500, 1000)).astype(np.float32)  # 6 MB: two 4 MiB chunks, incompressible
    session.namespace["x"] = x
    v = api.snapshot("x")
    return session, v, x.copy()


def test_large_array_restores_mapped_exact_and_private(big):
    session, v, want = big
    st = session.store()
    files = chunk_files(st, v, "x")
    assert len(files) == 2 and all(f.read_bytes()[:2] == blobmod.ALIGNED for f in files)
    got = api.load(v, "x", store=st)
    assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
    assert got.flags.writeable and got.flags.c_contiguous
    assert {str(f) for f in files} <= mapped_files()  # backed by the chunk files, not a copy
    before = [f.read_bytes() for f in files]
    got[:] = 0  # copy-on-write: the files and the next restore do not see it
    assert [f.read_bytes() for f in files] == before
    again = api.load(v, "x", store=st)
    assert np.array_equal(again, want) and not np.shares_memory(again, got)
    assert st.verify() == []


def test_mapping_goes_when_the_array_does(big):
    session, v, _ = big
    st = session.store()
    files = {str(f) for f in chunk_files(st, v, "x")}
    got = api.load(v, "x", store=st)
    view = got[10:20]
    assert files <= mapped_files()
    del got
    gc.collect()
    assert files <= mapped_files()  # a view still holds the memory
    del view
    gc.collect()
    assert not files & mapped_files()


def test_gc_deleting_the_files_keeps_a_restored_array_intact(big):
    session, v, want = big
    st = session.store()
    got = api.load(v, "x", store=st)
    for f in chunk_files(st, v, "x"):
        f.unlink()  # what gc does to an unreferenced chunk (unlink, never a rewrite)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("where", ["padding", "data", "truncated"])
def test_damaged_aligned_file_is_named(big, where):
    session, v, _ = big
    st = session.store()
    f = chunk_files(st, v, "x")[1]
    raw = bytearray(f.read_bytes())
    if where == "padding":
        raw[1000] = 1
    elif where == "data":
        raw[4096 + len(raw) // 3] ^= 0x10
    else:
        del raw[-100:]
    f.write_bytes(bytes(raw))
    with pytest.raises(StoreError) as e:
        api.load(v, "x", store=st)
    msg = str(e.value)
    assert "'x'" in msg and "damaged" in msg and f.name[:12] in msg and "\n" not in msg
    assert [p["blob"] for p in st.verify()] == [f.name]


def test_old_raw_files_and_setting_off_read_as_before(big, monkeypatch):
    session, v, want = big
    st = session.store()
    files = chunk_files(st, v, "x")
    old = files[0]  # as an older jupyter_mv wrote it: b"Mr" + the bytes
    old.write_bytes(blobmod.RAW + old.read_bytes()[4096:])
    got = api.load(v, "x", store=st)
    assert np.array_equal(got, want)
    maps = mapped_files()
    assert str(old) not in maps and str(files[1]) in maps  # one chunk read, the other mapped
    del got
    gc.collect()
    monkeypatch.setenv("JUPYTER_MV_MAP_RESTORES", "0")
    got = api.load(v, "x", store=st)
    assert np.array_equal(got, want) and not {str(f) for f in files} & mapped_files()


def test_mixed_chunks_mapped_read_and_compressed(session, monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_CHUNK", str(256 * 1024))
    monkeypatch.setenv("JUPYTER_MV_PACK_MAX", str(64 * 1024))
    rng = np.random.default_rng(3)
    a = rng.random(600_000)  # 4.8 MB, 19 chunks of 256 KiB
    a[100_000:200_000] = 0.0  # chunks of zeros: compressed files, read not mapped
    tail = np.arange(7, dtype=np.float64)
    a = np.concatenate([a, tail])  # a last chunk that is not whole pages
    session.namespace["a"] = a
    v = api.snapshot("a")
    st = session.store()
    files = chunk_files(st, v, "a")
    heads = {f.read_bytes()[:2] for f in files}
    assert heads == {blobmod.ALIGNED, blobmod.ZSTD}
    got = api.load(v, "a", store=st)
    assert np.array_equal(got, a) and got.dtype == a.dtype
    aligned = {str(f) for f in files if f.read_bytes()[:2] == blobmod.ALIGNED}
    assert aligned <= mapped_files()


def test_chunk_size_not_whole_pages_reads(session, monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_CHUNK", str(300_001))
    monkeypatch.setenv("JUPYTER_MV_PACK_MAX", "0")
    a = np.random.default_rng(4).random(400_000)
    session.namespace["a"] = a
    v = api.snapshot("a")
    st = session.store()
    got = api.load(v, "a", store=st)
    assert np.array_equal(got, a)
    files = chunk_files(st, v, "a")
    assert len(files) == 11
    # only the first chunk starts on a page and it is not whole pages: nothing can be mapped
    assert not {str(f) for f in files} & mapped_files()


def test_refused_mapping_leaves_ordinary_memory():
    r = mapping.region(3 * mapping.ALIGN + 5)
    assert r is not None and len(r.view) == 3 * mapping.ALIGN + 5
    assert r.map_file(mapping.ALIGN, -1, mapping.ALIGN) is False  # a bad descriptor: the kernel refuses
    r.view[:] = b"\x07" * len(r.view)  # the whole region is still writable memory
    assert bytes(r.view[mapping.ALIGN: mapping.ALIGN + 3]) == b"\x07\x07\x07"
    assert r.map_file(100, -1, 10) is False  # not on a page: never tried


def test_torch_model_restored_mapped_trains_privately(session):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 512))
    session.namespace["model"] = model
    v = api.snapshot("model")
    st = session.store()
    x = torch.randn(4, 512)
    want = model(x).detach()
    got = api.load(v, "model", store=st)
    assert torch.equal(got(x), want)
    assert got[0].weight.data_ptr() % mapping.ALIGN == 0  # 2 MB weight: in a mapped region
    opt = torch.optim.SGD(got.parameters(), lr=0.5)
    got(x).sum().backward()
    opt.step()
    assert not torch.equal(got(x), want)
    assert torch.equal(api.load(v, "model", store=st)(x), want)  # the store never saw the step
    assert st.verify() == []


def test_push_sends_aligned_files_as_plain_entries_and_a_clone_maps_them(big, tmp_path):
    from jupyter_mv.remotes import layout

    session, v, want = big
    st = session.store()
    remote = tmp_path / "remote"
    api.remote_add("team", remote.as_uri(), store=st)
    api.push(store=st)
    names = {c.name for c in chunk_files(st, v, "x")}
    objs = [p for p in remote.rglob("*") if p.is_file() and any(n in p.name for n in names)]
    assert len(objs) == 2 and all(p.read_bytes()[:2] in (layout.RAW, layout.ZSTD) for p in objs)
    assert all(p.stat().st_size < 4 * 1024 * 1024 + 100 for p in objs)  # no page of padding travels
    api.clone(remote.as_uri(), tmp_path / "fresh")
    with Store(tmp_path / "fresh" / ".jupyter_mv") as st2:
        (v2,) = st2.versions()
        got = api.load(v2, "x", store=st2)
        assert np.array_equal(got, want) and got.dtype == want.dtype
        assert {str(f) for f in chunk_files(st2, v2, "x")} <= mapped_files()  # pulled files are aligned too
