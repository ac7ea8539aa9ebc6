"""Incremental snapshots: chunking and change detection are exact (a changed byte anywhere is
always seen; a restore after any sequence of edits equals what was snapshotted), unchanged data
costs no bytes, and automatic per-cell versions with their retention policy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_mv import api
from jupyter_mv.store import Store, blobs
from mvtest import run_cell

SMALL_CHUNK = 4096


@pytest.fixture
def small_chunks(monkeypatch):
    """Tiny chunks, so a few-kB array spans many and edits hit chunk boundaries."""
    monkeypatch.setenv("JUPYTER_MV_CHUNK", str(SMALL_CHUNK))  # the setting config.JupyterMV.chunk_size
    monkeypatch.setattr(blobs, "INLINE", 64)


def _session(tmp_path):
    s = api.Session(namespace={})
    api.set_session(s)
    return s, s.store(tmp_path / ".jupyter_mv")


edits = st.lists(
    st.tuples(st.sampled_from(["byte", "slice", "append", "same"]), st.integers(0, 10**9), st.integers(1, 3000)),
    min_size=1, max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(size=st.integers(1, 40_000), edits=edits)
def test_any_edit_sequence_restores_exactly(tmp_path_factory, small_chunks, size, edits):
    tmp = tmp_path_factory.mktemp("edits")
    s, store = _session(tmp)
    rng = np.random.default_rng(size)
    arr = rng.integers(0, 256, size, dtype=np.uint8)
    s.namespace["arr"] = arr
    history = [(api.take_snapshot(["arr"], store=store).version, arr.copy())]
    for kind, pos, length in edits:
        arr = s.namespace["arr"]
        if kind == "byte":
            arr[pos % arr.size] ^= 0xFF
        elif kind == "slice":
            start = pos % arr.size
            arr[start: start + length] = rng.integers(0, 256, len(arr[start: start + length]), dtype=np.uint8)
        elif kind == "append":
            s.namespace["arr"] = np.concatenate([arr, rng.integers(0, 256, length, dtype=np.uint8)])
        res = api.take_snapshot(["arr"], store=store)
        prev_version, prev = history[-1]
        now = s.namespace["arr"]
        changed = not np.array_equal(prev, now) or prev.shape != now.shape
        old_hash = store.variables(prev_version)[0].content_hash
        new_hash = store.variables(res.version)[0].content_hash
        assert (old_hash != new_hash) == changed  # every change seen, nothing unchanged re-counted
        if not changed:
            assert res.version.new_bytes == 0
        history.append((res.version, now.copy()))
    for version, want in history:
        got = api.load(version, "arr", store=store)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert store.verify() == []
    s.close()
    api.set_session(None)


def test_every_single_byte_change_is_detected(tmp_path, small_chunks):
    s, store = _session(tmp_path)
    base = np.arange(3 * SMALL_CHUNK + 17, dtype=np.uint8)
    s.namespace["arr"] = base.copy()
    first = api.take_snapshot(["arr"], store=store).version
    h0 = store.variables(first)[0].content_hash
    seen = {h0}
    for i in range(0, base.size, 97):  # positions across every chunk, boundaries included
        arr = base.copy()
        arr[i] ^= 1
        s.namespace["arr"] = arr
        v = api.take_snapshot(["arr"], store=store).version
        h = store.variables(v)[0].content_hash
        assert h not in seen
        seen.add(h)
        assert v.new_bytes <= SMALL_CHUNK + 64  # only the chunk holding the byte is new
    s.close()


def test_slice_change_of_large_array_stores_about_the_changed_chunks(tmp_path):
    s, store = _session(tmp_path)
    arr = np.random.default_rng(0).random(6_000_000)  # 48 MB: 12 chunks of 4 MiB
    s.namespace["arr"] = arr
    api.take_snapshot(["arr"], store=store)
    arr[1_000_000:1_050_000] += 1  # 400 kB inside one chunk (maybe two)
    v = api.take_snapshot(["arr"], store=store).version
    assert v.new_bytes <= 2 * (blobs.CHUNK + 4096) + 1024  # each chunk file: a page of header, then the bytes
    assert np.array_equal(api.load(v, "arr", store=store), arr)
    s.close()


def test_unchanged_objects_reuse_their_summary(tmp_path, monkeypatch):
    s, store = _session(tmp_path)
    s.namespace["arr"] = np.arange(1_000_000.0)
    api.take_snapshot(store=store)
    from jupyter_mv.codecs import arrays

    calls = []
    real = arrays.stats
    monkeypatch.setattr(arrays, "stats", lambda a: calls.append(1) or real(a))
    api.take_snapshot(store=store)
    assert calls == []  # unchanged: statistics not recomputed
    s.namespace["arr"][0] = -1
    v = api.take_snapshot(store=store).version
    assert calls == [1] and store.variables(v)[0].summary["min"] == -1
    s.close()


# -- automatic snapshots ---------------------------------------------------------------------------
def test_auto_snapshots_after_cells_that_change_state(shell, tmp_path):
    shell.run_line_magic("mv_auto", "on")
    run_cell(shell, "import numpy as np\na = np.zeros(100_000)")
    run_cell(shell, "print('no state change')")
    run_cell(shell, "a[5] = 1")
    run_cell(shell, "%mv_log")  # a cell that only drives jupyter_mv makes no version
    run_cell(shell, "b = 2")
    vs = api.versions()
    assert [v.kind for v in vs] == ["auto"] * 3
    assert [v.execution_count for v in vs] == [1, 3, 5]
    assert "a[5] = 1" in vs[1].message
    assert vs[1].new_bytes < 100_000  # only the changed chunk of `a`
    assert api.load("v2", "a")[5] == 1 and api.load("v1", "a")[5] == 0
    shell.run_line_magic("mv_auto", "off")
    run_cell(shell, "b = 3")
    assert len(api.versions()) == 3
    assert len(api.versions(auto=False)) == 0


def test_auto_retention_keeps_tagged_and_manual(shell, tmp_path):
    shell.run_line_magic("mv_auto", "on --keep 2")
    for k in range(5):
        run_cell(shell, f"x = {k}")
        if k == 1:
            shell.run_line_magic("mv_tag", "latest keep-me")
    shell.run_line_magic("mv_auto", "off")
    shell.run_line_magic("mv_snapshot", "-m manual")
    vs = api.versions()
    autos = [v for v in vs if v.kind == "auto"]
    assert [api.load(v, "x") for v in autos] == [1, 3, 4]  # the tagged one and the last two
    assert [v.tags for v in autos][0] == ("keep-me",)
    assert vs[-1].kind == "manual"
    # parents still form a chain through the dropped versions
    by_n = {v.n: v for v in vs}
    for v in vs[1:]:
        assert v.parent in by_n


def test_gc_keep_auto_frees_blobs(tmp_path, monkeypatch):
    from mvtest import cli_in_process

    monkeypatch.chdir(tmp_path)
    s, store = _session(tmp_path)
    for k in range(4):
        s.namespace["arr"] = np.full(600_000, k, dtype=np.float64)  # compressible, distinct
        api.take_snapshot(kind="auto", store=store)
    s.close()
    api.set_session(None)
    before = sum(1 for _ in Store(tmp_path / ".jupyter_mv").blobs.all_ids())
    r = cli_in_process("gc", "--keep-auto", "1")
    assert r.returncode == 0, r.stderr
    st2 = Store(tmp_path / ".jupyter_mv")
    try:
        assert len(st2.versions(None)) == 1
        assert sum(1 for _ in st2.blobs.all_ids()) < before
        assert np.array_equal(api.load(st2.versions(None)[0], "arr", store=st2), np.full(600_000, 3.0))
        assert st2.verify() == []
    finally:
        st2.close()
