"""Failures: an exception in the middle of a snapshot leaves no partial version and earlier ones intact;
`verify` finds a flipped bit and names the version and variable; `gc` removes only unreferenced blobs."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import jupyter_mv as mv
from mvtest import blob_files, store_bytes
from jupyter_mv import api
from jupyter_mv import store as storemod
from jupyter_mv.errors import StoreError
from jupyter_mv.store import Store
from jupyter_mv.store.blobs import CHUNK, BlobStore

TABLES = ("versions", "variables", "manifests", "version_cells", "params", "metrics", "tags")


class Boom(RuntimeError):
    pass


def _counts(st: Store) -> dict:
    return {t: st.db.conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}


def _fail_after(n: int, real, exc=Boom):
    """A wrapper of `real` that raises on its (n+1)-th call (thread-safe)."""
    calls = {"n": 0}
    lock = threading.Lock()

    def wrapper(*a, **k):
        with lock:
            calls["n"] += 1
            k_ = calls["n"]
        if k_ > n:
            raise exc("injected failure")
        return real(*a, **k)

    wrapper.calls = calls
    return wrapper


@pytest.fixture
def v1(session):
    """A first, good version with a multi-chunk array and a small one."""
    rng = np.random.default_rng(0)
    session.namespace.update(big=rng.random(3 * CHUNK // 8 + 1000), small=np.arange(10), lr=0.1)
    mv.snapshot("big", "small", message="good", tags=["good"], metrics={"acc": 0.5})
    return session.namespace["big"].copy()


def _assert_v1_intact(session, v1_big):
    st = session.store()
    assert [v.label for v in api.versions()] == ["v1"]
    session.namespace.pop("big")
    api.restore("good")
    assert np.array_equal(session.namespace["big"], v1_big)
    assert st.verify() == []


def _inject(kind: str, monkeypatch):
    if kind == "write_chunk":
        monkeypatch.setattr(BlobStore, "_stage", _fail_after(2, BlobStore._stage))
    elif kind == "interrupt":
        monkeypatch.setattr(BlobStore, "_stage", _fail_after(1, BlobStore._stage, KeyboardInterrupt))
    elif kind == "commit":
        monkeypatch.setattr(Store, "commit_version", _fail_after(0, Store.commit_version))
    elif kind == "inside_transaction":
        # after the version and variable rows are inserted, before the transaction commits
        monkeypatch.setattr(storemod, "manifest_key", _fail_after(0, storemod.manifest_key))
    else:  # pragma: no cover
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["write_chunk", "interrupt", "commit", "inside_transaction"])
def test_exception_mid_snapshot(session, v1, kind):
    st = session.store()
    before = _counts(st)
    rng = np.random.default_rng(1)
    session.namespace["big"] = rng.random(4 * CHUNK // 8)  # new content: several new chunks to write
    big2 = session.namespace["big"].copy()
    with pytest.MonkeyPatch.context() as mp:  # undone on exit (the fixtures' chdir stays)
        _inject(kind, mp)
        with pytest.raises((Boom, KeyboardInterrupt, StoreError)):
            mv.snapshot("big", "small", message="doomed", tags=["doomed"], metrics={"acc": 0.9})
    # nothing of the failed version is visible, in any table, through any reader
    assert _counts(st) == before
    with Store(st.root) as other:
        assert [v.message for v in other.versions()] == ["good"]
    with pytest.raises(mv.MVError):
        api.resolve("doomed")
    _assert_v1_intact(session, v1)
    # the next snapshot works and takes the next number
    session.namespace["big"] = big2
    v2 = mv.snapshot("big", message="after")
    assert v2.label == "v2" and v2.parent == 1
    session.namespace.pop("big")
    api.restore("v2", ["big"])
    assert np.array_equal(session.namespace["big"], big2)
    assert st.verify() == []


def test_failed_snapshot_in_shell_is_one_line(shell, run):
    from IPython.core.error import UsageError

    run("import numpy as np; a = np.random.default_rng(0).random(2_000_000)")
    run("%mv_snapshot a")
    run("a = a + 1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BlobStore, "_stage", _fail_after(0, BlobStore._stage, OSError))
        with pytest.raises(UsageError) as e:
            shell.run_line_magic("mv_snapshot", "a")
    assert "\n" not in str(e.value)
    assert [v.label for v in api.versions()] == ["v1"]
    run("%mv_snapshot a")
    assert [v.label for v in api.versions()] == ["v1", "v2"]


# -- verify ---------------------------------------------------------------------------------------
def _blob_of(st: Store, ref: str, name: str) -> str:
    v = st.resolve(api.current_notebook(st), ref)
    (bid, *_) = sorted(st.stored_variable(v, name).blob_ids())
    return bid


def _flip(path, offset_from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_finds_bit_flip(session, store_path, run_cli, tmp_path):
    rng = np.random.default_rng(0)
    session.namespace.update(a=rng.random(100_000), b=rng.random(100_000))
    mv.snapshot("a", "b")
    session.namespace["b"] = rng.random(100_000)
    mv.snapshot("a", "b")
    st = session.store()
    bid = _blob_of(st, "v2", "b")
    (path,) = [f for f in blob_files(store_path) if f.name == bid]
    r = run_cli("verify", cwd=tmp_path)
    assert r.returncode == 0 and "ok: 2 versions" in r.stdout, r.stdout + r.stderr
    _flip(path)

    r = run_cli("verify", cwd=tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    damaged = [ln for ln in r.stdout.splitlines() if ln.startswith("DAMAGED")]
    assert len(damaged) == 1, r.stdout
    assert "v2" in damaged[0] and "'b'" in damaged[0] and bid[:12] in damaged[0]
    assert "does not match its hash" in damaged[0]
    assert r.stderr.strip() == "1 of 2 versions damaged; the others restore normally"

    r = run_cli("verify", "--json", cwd=tmp_path)
    assert r.returncode == 3
    problems = json.loads(r.stdout)
    assert [(p["version"], p["variable"], p["blob"]) for p in problems] == [("v2", "b", bid)]

    # the damaged variable refuses to restore with one line; everything else restores
    with pytest.raises(StoreError) as e:
        api.restore("v2", ["b"])
    assert "v2 variable 'b' is damaged" in str(e.value) and "\n" not in str(e.value)
    api.restore("v1")
    api.restore("v2", ["a"])


def test_verify_finds_missing_and_truncated_blobs(session, store_path, run_cli, tmp_path):
    rng = np.random.default_rng(0)
    session.namespace.update(a=rng.random(100_000), z=np.zeros(100_000))
    mv.snapshot("a", "z")
    st = session.store()
    a_blob, z_blob = _blob_of(st, "v1", "a"), _blob_of(st, "v1", "z")
    files = {f.name: f for f in blob_files(store_path)}
    files[a_blob].unlink()
    files[z_blob].write_bytes(files[z_blob].read_bytes()[:-5])  # truncated zstd frame
    r = run_cli("verify", "--json", cwd=tmp_path)
    assert r.returncode == 3
    got = {p["variable"]: p["problem"] for p in json.loads(r.stdout)}
    assert got["a"] == "file is missing"
    assert set(got) == {"a", "z"}


# -- gc ---------------------------------------------------------------------------------------------
def test_gc_deletes_only_unreferenced(session, store_path, run_cli, tmp_path):
    rng = np.random.default_rng(0)
    session.namespace.update(a=rng.random(100_000), b=rng.random(100_000))
    mv.snapshot("a", "b")
    session.namespace["b"] = rng.random(100_000)
    mv.snapshot("b")
    st = session.store()
    referenced = {f.name for f in blob_files(store_path)}
    assert referenced == st.referenced_blobs()
    # an orphan: blob bytes written but never committed (a crashed snapshot leaves these)
    manifests, _ = st.blobs.put([memoryview(rng.random(50_000).tobytes())])
    (orphan,) = manifests[0]["c"]
    assert orphan not in referenced and (store_path / "blobs" / orphan[:2] / orphan).exists()
    (store_path / "tmp").mkdir(exist_ok=True)
    (store_path / "tmp" / "leftover.123.abcd").write_bytes(b"partial")
    size_before = store_bytes(store_path)

    r = run_cli("gc", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("removed 1 unreferenced blob file ")
    assert {f.name for f in blob_files(store_path)} == referenced
    assert store_bytes(store_path) < size_before
    assert not any((store_path / "tmp").iterdir())
    r = run_cli("verify", cwd=tmp_path)
    assert r.returncode == 0, r.stdout
    a, b2 = session.namespace["a"].copy(), session.namespace["b"].copy()
    api.restore("v1")
    assert np.array_equal(session.namespace["a"], a) and not np.array_equal(session.namespace["b"], b2)
    api.restore("v2")
    assert np.array_equal(session.namespace["b"], b2)
    # a second gc has nothing to do
    r = run_cli("gc", cwd=tmp_path)
    assert r.stdout.startswith("removed 0 unreferenced blob files")


def test_gc_after_deleting_a_version_keeps_shared_blobs(session, store_path):
    rng = np.random.default_rng(0)
    shared = rng.random(100_000)
    session.namespace.update(a=shared, b=rng.random(100_000))
    mv.snapshot("a", "b")
    session.namespace["b"] = rng.random(100_000)
    mv.snapshot("a", "b")
    st = session.store()
    v1 = api.resolve("v1")
    b1 = _blob_of(st, "v1", "b")
    st.delete_versions([v1])
    files, freed = st.gc()
    assert files == 1 and freed > 0
    names = {f.name for f in blob_files(store_path)}
    assert b1 not in names and _blob_of(st, "v2", "a") in names
    session.namespace.pop("a")
    api.restore("v2")
    assert np.array_equal(session.namespace["a"], shared)
    assert st.verify() == []
