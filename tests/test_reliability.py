"""Fault injection: no version is ever lost, no partial version is ever visible, and bad input is
refused with one line. Run with the rest of the suite; `pytest -m faults` runs just these.

Every test records what it injected and what it checked in RELIABILITY (printed at the end of the
run by conftest's terminal summary and written to test-artifacts/reliability.json)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xxhash

from jupyter_mv import api
from jupyter_mv.errors import MVError, NoSpace, StoreError
from jupyter_mv.store import Store

pytestmark = pytest.mark.faults

FIXTURES = Path(__file__).parent / "fixtures"
from mvtest import RELIABILITY, hostile  # noqa: E402


def digest(a) -> str:
    return xxhash.xxh3_128_hexdigest(memoryview(np.ascontiguousarray(a)).cast("B"))


def check_versions(root: Path, expected: dict[str, str], var: str = "arr") -> None:
    """Every version in `expected` (message -> digest) is present and restores bit-identically."""
    st = Store(root)
    try:
        present = {v.message: v for v in st.versions(None)}
        for message, want in expected.items():
            RELIABILITY["versions_checked"] += 1
            v = present.get(message)
            if v is None:
                RELIABILITY["versions_lost"] += 1
                pytest.fail(f"version {message!r} was lost")
            got = api.load(v, var, store=st)
            if digest(got) != want:
                RELIABILITY["versions_lost"] += 1
                pytest.fail(f"version {message!r} restores different bytes")
        for v in st.versions(None):  # nothing partial: every visible version has all its variables
            for name in v.variables:
                assert st.stored_variable(v, name).manifest["buffers"] is not None
    finally:
        st.close()


def verify_clean(root: Path) -> None:
    st = Store(root)
    try:
        assert st.verify() == []
    finally:
        st.close()


# -- SIGKILL of a kernel in the middle of a 500 MB snapshot -----------------------------------------
N_BYTES = 500 * 1000 * 1000
KILLS = int(os.environ.get("JUPYTER_MV_KILLS", 20))


def _seeded(base: np.ndarray, seed: int) -> np.ndarray:
    return base ^ np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)


@pytest.mark.slow
@pytest.mark.kernel
def test_sigkill_during_500mb_snapshots(tmp_path):
    from jupyter_client.manager import KernelManager

    rng = random.Random(20261123)
    base_file = tmp_path / "base.u64"
    base = np.random.default_rng(0).integers(0, 2**63, N_BYTES // 8, dtype=np.uint64)
    base.tofile(base_file)
    root = tmp_path / "store"
    expected: dict[str, str] = {}
    work = tmp_path / "work"
    work.mkdir()
    setup = (
        "%load_ext jupyter_mv\n"
        "import numpy as np\n"
        f"arr = np.fromfile({str(base_file)!r}, dtype=np.uint64)\n"
        "arr ^= np.uint64((SEED * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)\n"
    )
    committed = killed_mid = 0
    duration = None  # of an uninterrupted snapshot, measured first: kills land at random within it
    for i in range(KILLS + 1):
        km = KernelManager(kernel_name="python3")
        km.start_kernel(cwd=str(work), env={**os.environ, "JUPYTER_MV_STORE": str(root),
                                            "JUPYTER_MV_NOTEBOOK": "crash.ipynb"})
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            reply = kc.execute_interactive(setup.replace("SEED", str(i)), timeout=120)
            assert reply["content"]["status"] == "ok", reply["content"]
            if duration is None:
                t = time.monotonic()
                reply = kc.execute_interactive(f'%mv_snapshot arr -m "seed {i}"', timeout=300)
                duration = time.monotonic() - t
                assert reply["content"]["status"] == "ok", reply["content"]
            else:
                kc.execute(f'%mv_snapshot arr -m "seed {i}"')
                time.sleep(rng.uniform(0.0, 1.25 * duration))
                os.kill(km.provisioner.process.pid, signal.SIGKILL)
                RELIABILITY["faults_injected"] += 1
                km.provisioner.process.wait()
        finally:
            kc.stop_channels()
            with contextlib.suppress(Exception):
                km.shutdown_kernel(now=True)
        st = Store(root)
        msgs = {v.message for v in st.versions(None)}
        st.close()
        if f"seed {i}" in msgs:
            expected[f"seed {i}"] = digest(_seeded(base, i))
            committed += i > 0
        else:
            killed_mid += 1
        verify_clean(root)  # after every kill: every committed blob intact...
        if f"seed {i}" in expected:  # ...and a version that just committed restores exactly
            check_versions(root, {f"seed {i}": expected[f"seed {i}"]})
        st = Store(root)
        try:
            assert {v.message for v in st.versions(None)} == set(expected)
        finally:
            st.close()
    check_versions(root, expected)
    st = Store(root)
    try:
        st.gc()  # orphans of killed snapshots go; referenced blobs stay
    finally:
        st.close()
    check_versions(root, expected)
    verify_clean(root)
    assert committed + killed_mid == KILLS
    assert killed_mid > 0, "no kill landed before a commit: the test did not test anything"


# -- SIGKILL while small chunks are appended to pack files (issue 13) ------------------------------
_PACK_WRITER = """
import os, signal, sys
import numpy as np
from jupyter_mv import api
from jupyter_mv.store import Store, blobs

root, seed, phase = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)
if phase == "mid-pack":  # after 300 chunks are appended to a pack being written (of ~500 per pack)
    real = blobs.BlobStore._write_pack
    class Dying(list):
        def __iter__(self):
            for k, item in enumerate(list.__iter__(self)):
                if k == 300:
                    die()
                yield item
    blobs.BlobStore._write_pack = lambda self, items: real(self, Dying(items))
elif phase == "at-rename":  # the first pack fsynced, about to get its name
    real_replace = os.replace
    def replace(src, dst, *a, **k):
        if str(dst).endswith(".pack"):
            die()
        return real_replace(src, dst, *a, **k)
    os.replace = replace
elif phase == "before-commit":  # packs durable and renamed; their index rows and the version not committed
    Store.commit_version = die
rng = np.random.default_rng(seed)
ns = {"d": {f"a{i}": rng.random(2000) for i in range(2000)}}  # 32 MB in 2,000 small chunks
api.set_session(api.Session(namespace=ns))
st = Store(root)
if phase == "random":
    print("ready", flush=True)
api.take_snapshot(["d"], message=f"seed {seed}", store=st)
print("committed", flush=True)
"""


def _pack_digest(seed: int) -> str:
    rng = np.random.default_rng(seed)
    d = {f"a{i}": rng.random(2000) for i in range(2000)}
    return digest(np.concatenate([d[f"a{i}"] for i in range(2000)]))


def _check_pack_versions(root: Path, expected: dict[str, str]) -> None:
    st = Store(root)
    try:
        present = {v.message: v for v in st.versions(None)}
        assert set(present) == set(expected), (set(present), set(expected))
        for message, want in expected.items():
            RELIABILITY["versions_checked"] += 1
            got = api.load(present[message], "d", store=st)
            if digest(np.concatenate([got[f"a{i}"] for i in range(2000)])) != want:
                RELIABILITY["versions_lost"] += 1
                pytest.fail(f"version {message!r} restores different bytes")
        assert st.verify() == []
    finally:
        st.close()


@pytest.mark.slow
def test_sigkill_during_pack_writes(tmp_path):
    """Kills in each phase of a pack write (appending, about to rename, renamed but not committed with
    its index rows) and at random moments: earlier versions stay intact and verify clean, and gc removes the debris."""
    root = tmp_path / "store"
    script = tmp_path / "writer.py"
    script.write_text(_PACK_WRITER)
    expected: dict[str, str] = {}
    rng = random.Random(13)

    def run(seed: int, phase: str) -> bool:
        if phase != "random":
            r = subprocess.run([sys.executable, str(script), str(root), str(seed), phase], capture_output=True,
                               text=True, timeout=300)
            committed = "committed" in r.stdout
            assert committed or r.returncode == -signal.SIGKILL, r.stderr[-2000:]
        else:
            p = subprocess.Popen([sys.executable, str(script), str(root), str(seed), phase], stdout=subprocess.PIPE,
                                 text=True)
            assert p.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 1.5))
            p.kill()
            out, _ = p.communicate(timeout=60)
            committed = "committed" in out
        if phase != "ok":
            RELIABILITY["faults_injected"] += 1
        return committed

    assert run(0, "ok")
    expected["seed 0"] = _pack_digest(0)
    seed = 1
    for phase in ["mid-pack", "at-rename", "before-commit"] + ["random"] * 6:
        committed = run(seed, phase)
        if phase != "random":
            assert not committed, phase
        st = Store(root)
        msgs = {v.message for v in st.versions(None)}
        st.close()
        if f"seed {seed}" in msgs:
            expected[f"seed {seed}"] = _pack_digest(seed)
        _check_pack_versions(root, expected)
        seed += 1
    st = Store(root)
    try:
        st.gc()
        indexed = {r[0] for r in st.db.conn.execute("select distinct pack from packed")}
        assert {p.name for p in st.blobs.pack_files()} == indexed  # no unindexed pack survives gc
        assert not (root / "tmp").exists() or not any((root / "tmp").iterdir())
    finally:
        st.close()
    _check_pack_versions(root, expected)
    assert run(seed, "ok")  # the store still takes snapshots
    expected[f"seed {seed}"] = _pack_digest(seed)
    _check_pack_versions(root, expected)


# -- gc repacking while snapshots run (issue 13) ----------------------------------------------------
def _pack_writer(root: str, wid: int, n: int, q) -> None:
    import numpy as np

    from jupyter_mv import api as a

    ns = {}
    s = a.Session(namespace=ns)
    a.set_session(s)
    st = s.store(root)
    # the same small arrays in every writer (dedup races with repacking) and small arrays of its own;
    # each writer deletes its versions but every 5th, so packs go mostly dead and gc rewrites them
    shared = {f"s{i}": np.arange(300, dtype=np.float64) + i for i in range(40)}
    errors, kept = [], []
    for k in range(n):
        ns["shared"] = shared
        ns["own"] = {f"o{i}": np.full(300, wid * 100_000 + k * 100 + i, dtype=np.float64) for i in range(40)}
        try:
            v = a.take_snapshot(["shared", "own"], message=f"w{wid} k{k}", store=st).version
            if k % 5:
                st.delete_versions([v])
            else:
                kept.append(k)
        except Exception as e:  # reported to the parent, which fails the test
            errors.append(f"{type(e).__name__}: {e}")
    s.close()
    q.put((wid, errors, kept))


def _repacker(root: str, stop, q) -> None:
    from jupyter_mv.store import Store as S

    runs = dropped = 0
    errors = []
    while not stop.is_set():
        st = S(root)
        try:
            files, _ = st.gc()
            dropped += files
            runs += 1
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            st.close()
        time.sleep(0.01)
    q.put(("gc", runs, errors, dropped))


def _writers_and_gc(root, writer, n_writers: int, n: int, collector) -> tuple[list, tuple]:
    """`n_writers` spawned processes running `writer(root, id, n, q)` while one runs
    `collector(root, stop, q)` until they are done; their reports (writers', then the collector's)."""
    Store(root).close()
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    stop = ctx.Event()
    writers = [ctx.Process(target=writer, args=(str(root), w, n, q)) for w in range(n_writers)]
    gc = ctx.Process(target=collector, args=(str(root), stop, q))
    gc.start()
    for p in writers:
        p.start()
    results = [q.get(timeout=600) for _ in writers]
    for p in writers:
        p.join(60)
    stop.set()
    gc_result = q.get(timeout=120)
    gc.join(60)
    return results, gc_result


@pytest.mark.slow
def test_gc_repacks_under_concurrent_snapshots(tmp_path):
    root = tmp_path / ".jupyter_mv"
    n = 40
    results, gc_result = _writers_and_gc(root, _pack_writer, 3, n, _repacker)
    RELIABILITY["faults_injected"] += 3 * n
    for wid, errors, _ in results:
        assert errors == [], f"writer {wid}: {errors[:3]}"
    assert gc_result[2] == [] and gc_result[1] > 0 and gc_result[3] > 0, gc_result
    st = Store(root)
    try:
        st.gc()
        vs = {v.message: v for v in st.versions(None)}
        want = {f"w{wid} k{k}" for wid, _, kept in results for k in kept}
        assert set(vs) == want
        for message, v in vs.items():
            wid, k = (int(x[1:]) for x in message.split())
            RELIABILITY["versions_checked"] += 1
            own, shared = api.load(v, "own", store=st), api.load(v, "shared", store=st)
            if not (all(np.array_equal(own[f"o{i}"], np.full(300, wid * 100_000 + k * 100 + i, dtype=np.float64))
                        for i in range(40))
                    and all(np.array_equal(shared[f"s{i}"], np.arange(300, dtype=np.float64) + i) for i in range(40))):
                RELIABILITY["versions_lost"] += 1
                pytest.fail(f"{v.label} ({message}) does not restore")
        assert st.verify() == []
        live = st.db.conn.execute("select coalesce(sum(length), 0) from packed").fetchone()[0]
        assert st.blobs.packed_bytes() < 3 * live + 64 * len(st.blobs.pack_files())  # dead packs were rewritten
    finally:
        st.close()


# -- the disk filling up -------------------------------------------------------------------------
@contextlib.contextmanager
def small_filesystem(path: Path, size_mb: int):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs here ({r.stderr.strip()}); the file-size-limit test "
                    "below covers the same path")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _mount_works(tmp: Path) -> bool:
    probe = tmp / "probe"
    probe.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                        capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", str(probe)], capture_output=True)
    return ok


def test_disk_full_during_snapshots(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (CI runs as root); test_file_size_limit covers it")
    assert _mount_works(tmp_path), "root cannot mount a tmpfs here"
    mnt = tmp_path / "small"
    with small_filesystem(mnt, 48):
        root = mnt / ".jupyter_mv"
        ns = {}
        s = api.Session(namespace=ns)
        api.set_session(s)
        monkeypatch.chdir(mnt)
        ns["arr"] = np.random.default_rng(1).random(1_000_000)  # 8 MB
        api.take_snapshot(["arr"], message="first", store=s.store(root))
        expected = {"first": digest(ns["arr"])}
        failures = 0
        filler = mnt / "filler"
        # leave less and less room: every attempt either commits whole or fails with NoSpace
        for k, room_mb in enumerate([30, 12, 6, 3, 1, 0.5, 0.2, 0.05, 0.01]):
            with contextlib.suppress(FileNotFoundError):
                filler.unlink()
            free = shutil.disk_usage(mnt).free
            with open(filler, "wb") as f:
                with contextlib.suppress(OSError):
                    f.write(b"\0" * max(0, free - int(room_mb * 1e6)))
            ns["arr"] = np.random.default_rng(100 + k).random(1_000_000)
            RELIABILITY["faults_injected"] += 1
            try:
                api.take_snapshot(["arr"], message=f"attempt {k}", store=s.store(root))
            except NoSpace as e:
                failures += 1
                assert "\n" not in str(e) and "no space" in str(e)
            else:
                expected[f"attempt {k}"] = digest(ns["arr"])
            check_versions(root, expected)
        assert failures >= 3, "the disk never filled up: the test did not test anything"
        filler.unlink()  # space returns: the store is usable again
        ns["arr"] = np.arange(10)
        api.take_snapshot(["arr"], message="after", store=s.store(root))
        expected["after"] = digest(ns["arr"])
        s.close()
        api.set_session(None)
        check_versions(root, expected)
        verify_clean(root)


def _snapshot_with_fsize_limit(root: str, limit: int, q) -> None:
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    from jupyter_mv import api as a

    s = a.Session(namespace={"arr": np.random.default_rng(7).random(2_000_000)})
    a.set_session(s)
    st = s.store(root)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        a.take_snapshot(["arr"], message="too big", store=st)
        q.put("committed")
    except NoSpace as e:
        q.put(f"nospace:{e}")
    except Exception as e:  # pragma: no cover - reported to the parent
        q.put(f"other:{type(e).__name__}:{e}")


def test_file_size_limit_is_no_space(tmp_path):
    """A write refused by the file-size limit (EFBIG) is the same one-line "no space" error."""
    root = tmp_path / ".jupyter_mv"
    s = api.Session(namespace={"arr": np.arange(100_000.0)})
    api.set_session(s)
    api.take_snapshot(["arr"], message="ok", store=s.store(root))
    expected = {"ok": digest(np.arange(100_000.0))}
    s.close()
    api.set_session(None)
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_snapshot_with_fsize_limit, args=(str(root), 1 << 20, q))
    p.start()
    p.join(120)
    RELIABILITY["faults_injected"] += 1
    out = q.get(timeout=5)
    assert out.startswith("nospace:"), out
    assert "\n" not in out
    check_versions(root, expected)
    verify_clean(root)


# -- damaged files -------------------------------------------------------------------------------
@pytest.fixture
def two_versions(tmp_path):
    root = tmp_path / ".jupyter_mv"
    ns = {}
    s = api.Session(namespace=ns)
    api.set_session(s)
    st = s.store(root)
    ns["a"] = np.random.default_rng(1).random(300_000)
    ns["b"] = np.random.default_rng(2).random(300_000)
    api.take_snapshot(["a", "b"], message="one", store=st)
    one = (digest(ns["a"]), digest(ns["b"]))
    ns["b"] = ns["b"] * 3
    api.take_snapshot(["a", "b"], message="two", store=st)
    s.close()
    api.set_session(None)
    return root, {"one": one, "two": (digest(ns["a"]), digest(ns["b"]))}


def _blob_of(root: Path, message: str, name: str) -> Path:
    st = Store(root)
    try:
        v = next(v for v in st.versions(None) if v.message == message)
        bid = st.stored_variable(v, name).manifest["buffers"][0]["c"][0]
        return st.blobs.path(bid)
    finally:
        st.close()


@pytest.mark.parametrize("damage", ["bitflip", "delete", "truncate"])
def test_damaged_blob_is_named_and_contained(two_versions, damage):
    root, want = two_versions
    path = _blob_of(root, "two", "b")  # only v2's b uses this blob
    if damage == "bitflip":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))
    elif damage == "delete":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[: 1000])
    RELIABILITY["faults_injected"] += 1
    st = Store(root)
    try:
        problems = st.verify()
        assert [(p["version"], p["variable"]) for p in problems] == [("v2", "b")]
        v1, v2 = st.versions(None)
        with pytest.raises(StoreError) as e:
            api.load(v2, "b", store=st)
        assert "v2" in str(e.value) and "'b'" in str(e.value) and "\n" not in str(e.value)
        RELIABILITY["versions_checked"] += 3
        assert digest(api.load(v2, "a", store=st)) == want["two"][0]  # the intact variable of v2
        assert digest(api.load(v1, "a", store=st)) == want["one"][0]
        assert digest(api.load(v1, "b", store=st)) == want["one"][1]
    finally:
        st.close()
    r = subprocess.run([sys.executable, "-m", "jupyter_mv.cli", "--store", str(root), "verify"],
                       capture_output=True, text=True)
    assert r.returncode == 3 and "v2" in r.stdout and "'b'" in r.stdout


def test_truncated_wal_keeps_earlier_versions(tmp_path):
    """A WAL cut short (a torn write) loses at most the transactions in the cut part, never more,
    and never leaves a partial version."""
    root = tmp_path / ".jupyter_mv"
    ns = {}
    s = api.Session(namespace=ns)
    api.set_session(s)
    st = s.store(root)
    expected = {}
    for k in range(3):
        ns["arr"] = np.full(1000, k, dtype=np.int64)
        api.take_snapshot(["arr"], message=f"early {k}", store=st)
        expected[f"early {k}"] = digest(ns["arr"])
    st.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the early versions are in the main file
    st.db.conn.execute("PRAGMA wal_autocheckpoint = 0")
    for k in range(5):
        ns["arr"] = np.full(1000, 10 + k, dtype=np.int64)
        api.take_snapshot(["arr"], message=f"late {k}", store=st)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)  # as a crash would leave it: the connection never closed
    s.close()
    api.set_session(None)
    wal = copy / "store.db-wal"
    assert wal.stat().st_size > 0
    with open(wal, "r+b") as f:
        f.truncate(wal.stat().st_size // 2)
    RELIABILITY["faults_injected"] += 1
    check_versions(copy, expected)
    st2 = Store(copy)
    try:
        msgs = [v.message for v in st2.versions(None)]
        assert msgs[:3] == [f"early {k}" for k in range(3)]
        late = [m for m in msgs if m.startswith("late")]
        assert late == [f"late {k}" for k in range(len(late))]  # a prefix of the late ones survives
        assert st2.verify() == []
    finally:
        st2.close()


def test_read_only_store(tmp_path, two_versions):
    root, want = two_versions
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (CI runs as root)")
    assert subprocess.run(["mount", "--bind", str(root), str(ro)], capture_output=True).returncode == 0
    try:
        assert subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True).returncode == 0
        RELIABILITY["faults_injected"] += 1
        st = Store(ro)
        try:
            assert st.readonly
            v1, v2 = st.versions(None)
            assert digest(api.load(v1, "b", store=st)) == want["one"][1]
            assert st.verify() == []
            s = api.Session(namespace={"x": np.arange(5000.0)})
            api.set_session(s)
            with pytest.raises(StoreError) as e:
                api.take_snapshot(["x"], store=st)
            assert "not writable" in str(e.value) and "\n" not in str(e.value)
            with pytest.raises(StoreError):
                st.tag(v1, "best")
        finally:
            st.close()
            api.set_session(None)
        r = subprocess.run([sys.executable, "-m", "jupyter_mv.cli", "--store", str(ro), "gc"],
                           capture_output=True, text=True)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)


# -- many writers and a concurrent gc --------------------------------------------------------------
def _writer(root: str, wid: int, n: int, q) -> None:
    import numpy as np

    from jupyter_mv import api as a

    ns = {}
    s = a.Session(namespace=ns)
    a.set_session(s)
    st = s.store(root)
    shared = np.arange(300_000, dtype=np.float64)  # the same bytes in every writer: dedup races
    errors = []
    for k in range(n):
        ns["shared"] = shared
        ns["own"] = np.full(100_000, wid * 1000 + k, dtype=np.float64)
        try:
            a.take_snapshot(["shared", "own"], message=f"w{wid} k{k}", store=st)
        except Exception as e:  # reported to the parent, which fails the test
            errors.append(f"{type(e).__name__}: {e}")
    s.close()
    q.put((wid, errors))


def _collector(root: str, stop, q) -> None:
    from jupyter_mv.store import Store as S

    runs = 0
    errors = []
    while not stop.is_set():
        st = S(root)
        try:
            st.gc()
            runs += 1
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            st.close()
        time.sleep(0.02)
    q.put(("gc", runs, errors))


@pytest.mark.slow
def test_four_writers_and_gc(tmp_path):
    root = tmp_path / ".jupyter_mv"
    n = 50
    results, gc_result = _writers_and_gc(root, _writer, 4, n, _collector)
    RELIABILITY["faults_injected"] += 4 * n
    for wid, errors in results:
        assert errors == [], f"writer {wid}: {errors[:3]}"
    assert gc_result[0] == "gc" and gc_result[2] == [], gc_result
    assert gc_result[1] > 0
    st = Store(root)
    try:
        vs = st.versions(None)
        assert len(vs) == 4 * n
        assert sorted(v.n for v in vs) == list(range(1, 4 * n + 1))
        shared = np.arange(300_000, dtype=np.float64)
        for v in vs:
            wid, k = (int(x[1:]) for x in v.message.split())
            RELIABILITY["versions_checked"] += 1
            got = api.load(v, "own", store=st)
            if not (np.array_equal(got, np.full(100_000, wid * 1000 + k, dtype=np.float64))
                    and np.array_equal(api.load(v, "shared", store=st), shared)):
                RELIABILITY["versions_lost"] += 1
                pytest.fail(f"{v.label} ({v.message}) does not restore")
        assert st.verify() == []
    finally:
        st.close()


# -- a store from the first release ---------------------------------------------------------------
def test_old_store_migrates(tmp_path):
    root = tmp_path / "old"
    shutil.copytree(FIXTURES / "store-0.1.0", root)
    import sqlite3

    assert sqlite3.connect(root / "store.db").execute("pragma user_version").fetchone()[0] == 1
    st = Store(root)
    try:
        from jupyter_mv.store.migrations import MIGRATIONS

        assert st.db.conn.execute("pragma user_version").fetchone()[0] == len(MIGRATIONS)
        v1, v2 = st.versions("analysis.ipynb")
        assert v1.tags == ("baseline",) and v1.metrics == {"loss": 0.5} and v2.parent == 1
        w = np.arange(1000, dtype=np.float64) / 7.0
        assert np.array_equal(api.load(v1, "weights", store=st), w)
        assert np.array_equal(api.load(v2, "weights", store=st), w * 2)
        assert api.load(v1, "config", store=st) == {"lr": 0.1, "layers": [64, 32], "name": "first"}
        assert api.load(v2, "config", store=st)["lr"] == 0.01
        assert list(api.load(v1, "frame", store=st)["b"]) == ["x", "y", "z"]
        assert st.verify() == []
        RELIABILITY["versions_checked"] += 2
    finally:
        st.close()


# -- bad input: magic arguments, refs and CLI arguments never crash and never write -------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402

_TOKENS = hs.sampled_from(["v1", "v2", "v0", "v-1", "latest", "latest~1", "latest~9", "baseline", "--prefix",
                           "--outputs", "--trust", "-n", "--all", "x", "clf", "'", '"', "$nope", "--", "-",
                           "\\", "{", "}", "v99999999999999999999", "..", "/etc/passwd", "%", "\x00", "🙂"])
_LINES = hs.one_of(hs.text(max_size=40), hs.lists(_TOKENS, max_size=6).map(" ".join))


def _store_state(root: Path):
    st = Store(root)
    try:
        return ([v.to_dict() for v in st.versions(None)], sorted(st.blobs.all_ids()),
                st.db.conn.execute("select notebook_id, tag, version_id from tags order by tag").fetchall())
    finally:
        st.close()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(magic=hs.sampled_from(["mv_restore", "mv_diff", "mv_show", "mv_log", "mv_auto"]), line=_LINES)
def test_fuzz_magic_arguments(fuzz_shell, magic, line):
    from IPython.core.error import UsageError

    ip, root, before = fuzz_shell
    with hostile():
        try:
            ip.run_line_magic(magic, line)
        except UsageError as e:
            assert "\n" not in str(e).strip(), str(e)
        finally:
            api.session().auto_on = False
        # restore may succeed (valid ref) and changes the namespace, never the store
        assert _store_state(root) == before


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(ref=hs.one_of(hs.text(max_size=30), _TOKENS))
def test_fuzz_refs(fuzz_shell, ref):
    from jupyter_mv.errors import UnknownRef

    ip, root, before = fuzz_shell
    with hostile():
        try:
            v = api.resolve(ref)
            assert v.n in (1, 2)
        except UnknownRef as e:
            assert "\n" not in str(e)
        except MVError as e:  # pragma: no cover - any other refusal must still be one line
            assert "\n" not in str(e)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(argv=hs.lists(hs.one_of(_TOKENS, hs.sampled_from(["log", "show", "diff", "verify", "--json", "--notebook",
                                                          "--store", "-n", "0", "-1"])), max_size=5))
def test_fuzz_cli(fuzz_shell, argv, capsys):
    from jupyter_mv import cli

    ip, root, before = fuzz_shell
    if "--store" in argv:
        argv = [a for a in argv if a != "--store"]
    if "\x00" in "".join(argv):
        argv = [a.replace("\x00", "") for a in argv]
    with hostile():
        try:
            code = cli.main(["--store", str(root), *argv])
        except SystemExit as e:  # argparse's own --help / usage errors
            code = e.code
        err = capsys.readouterr().err
        assert code in (0, 1, 2, 3)
        assert "Traceback" not in err
        assert _store_state(root) == before


@pytest.fixture(scope="module")
def fuzz_shell(tmp_path_factory):
    from IPython.core.interactiveshell import InteractiveShell

    d = tmp_path_factory.mktemp("fuzz")
    old = os.getcwd()
    os.chdir(d)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_mv")
    ip.user_ns["clf"] = np.arange(3)
    ip.run_line_magic("mv_snapshot", "clf -t baseline")
    ip.user_ns["clf"] = np.arange(4)
    ip.run_line_magic("mv_snapshot", "clf")
    root = d / ".jupyter_mv"
    before = _store_state(root)
    yield ip, root, before
    ip.run_line_magic("unload_ext", "jupyter_mv")
    os.chdir(old)
