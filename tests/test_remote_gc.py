"""remote gc (jupyter_mv/remotes/gc.py) and the push leases it honours (leases.py), against moto,
SeaweedFS and file:// remotes started by the tests. The end-to-end team test with real pushes is
tests/test_remote_team.py; here the protocol itself, including the interleaving that made DVC's
`gc --cloud` lose data (a push relying on an object that exists but nothing references yet)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing as mp
import os
import random
import signal
import threading
import time
import uuid

import pytest

from jupyter_mv.errors import RemoteConflict, RemoteCorrupt, RemoteError, UsageError
from jupyter_mv.remotes import leases
from jupyter_mv.remotes.gc import gc, parse_grace
from jupyter_mv.remotes.objects import open_remote
from remote_servers import any_remote, moto_s3, seaweed_s3  # noqa: F401

TTL = 3.0  # lease time-to-live in these tests (seconds): refreshed every 0.75 s


@pytest.fixture(autouse=True)
def _short_leases(monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_LEASE_TTL", str(TTL))


def _manifest(store, objects):
    gid = uuid.uuid4().hex
    store.put(f"versions/{gid}.json", json.dumps({"objects": sorted(objects)}).encode())
    return gid


def _keys(store, prefix=""):
    return sorted(m.key for m in store.list(prefix))


def _age_past_now():
    """Last-Modified has whole seconds on S3: let a second pass so 'older than the gc' is true."""
    time.sleep(1.1)


def test_parse_grace():
    assert parse_grace("24h") == dt.timedelta(hours=24)
    assert parse_grace("90m") == dt.timedelta(minutes=90)
    assert parse_grace("2d") == dt.timedelta(days=2)
    assert parse_grace("1w") == dt.timedelta(weeks=1)
    assert parse_grace("0") == dt.timedelta(0)
    assert parse_grace(30) == dt.timedelta(seconds=30)
    for bad in ("soon", "-1h", "1y", ""):
        with pytest.raises(UsageError, match="--grace"):
            parse_grace(bad)


def test_grace_without_unit_huge_or_not_finite_is_a_usage_error(tmp_path, run_cli):
    for bad, said in [("24", "give its unit"), ("1.5", "give its unit"), ("99999999999d", "at most a century"),
                      ("9" * 400 + "w", "at most a century"), (float("inf"), "at least 0"),
                      (float("nan"), "at least 0"), (-1, "at least 0")]:
        with pytest.raises(UsageError, match=said):
            parse_grace(bad)
    assert parse_grace("0") == parse_grace(0) == dt.timedelta(0) and parse_grace("24s") == dt.timedelta(seconds=24)
    assert parse_grace(dt.timedelta(days=10**6)) == dt.timedelta(days=36500)  # capped, not an OverflowError
    st = str(tmp_path / "st")
    assert run_cli("--store", st, "remote", "add", "r", str(tmp_path / "remote")).returncode == 0
    for bad in ("99999999999d", "24"):
        r = run_cli("--store", st, "remote", "gc", "--grace", bad, "--dry-run")
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "internal error" not in r.stderr, r.stderr


def test_mark_and_sweep_with_grace(any_remote):
    url, options, _ = any_remote
    st = open_remote(url, **options)
    st.put("chunks/aa/kept", b"k")
    st.put("packs/p1.pack", b"pack")
    st.put("packs/p1.idx", b"idx")
    st.put("files/nb", b"notebook")
    st.put("chunks/aa/orphan", b"orphan!")
    st.put("packs/p2.pack", b"orphan pack")
    st.put("packs/p2.idx", b"its index")
    st.put("tags/x/y.json", b"{}")  # never swept
    _manifest(st, ["chunks/aa/kept", "packs/p1.pack", "packs/p1.idx", "files/nb"])
    _age_past_now()
    # young orphans are kept under a grace period
    rep = gc(st, grace="1h")
    assert rep.deleted == 0 and rep.kept_young == 3 and rep.manifests == 1 and rep.referenced == 4
    # dry run: reports, deletes nothing
    rep = gc(st, grace=0, dry_run=True)
    assert rep.deleted == 3 and rep.deleted_bytes == len(b"orphan!") + len(b"orphan pack") + len(b"its index")
    assert "chunks/aa/orphan" in _keys(st)
    rep = gc(st, grace=0)
    assert rep.deleted == 3 and not rep.missing
    assert "deleted 3 unreferenced objects" in rep.summary()
    left = _keys(st)
    assert not {"chunks/aa/orphan", "packs/p2.pack", "packs/p2.idx"} & set(left)
    for k in ("chunks/aa/kept", "packs/p1.pack", "packs/p1.idx", "files/nb", "tags/x/y.json"):
        assert k in left
    assert not [k for k in _keys(st, "leases/")]  # the lock is gone
    # a referenced object that is missing is reported, not hidden
    st.delete("files/nb")
    rep = gc(st, grace=0)
    assert rep.missing == ["files/nb"] and "missing" in rep.summary()


def test_unreadable_manifest_stops_gc_before_any_delete(moto_s3):
    st = open_remote(moto_s3.bucket("team"), **moto_s3.options)
    st.put("chunks/aa/orphan", b"1")
    st.put("versions/0123.json", b"{not json")
    _age_past_now()
    with pytest.raises(RemoteCorrupt, match="versions/0123.json is not a readable version manifest"):
        gc(st, grace=0)
    assert "chunks/aa/orphan" in _keys(st)
    st.put("versions/0123.json", b'{"objects": "chunks/aa/orphan"}', mode="overwrite")
    with pytest.raises(RemoteCorrupt):
        gc(st, grace=0)
    assert "chunks/aa/orphan" in _keys(st) and _keys(st, "leases/") == []


def test_dvc_interleaving_a_push_relying_on_an_old_orphan(any_remote):
    """The race DVC lost data to (#1300, #3476): an old unreferenced object exists, a push finds it
    (so it does not upload it again) and will reference it; a gc runs meanwhile with grace 0."""
    url, options, _ = any_remote
    st = open_remote(url, **options)
    st.put("chunks/aa/shared", b"data a killed push left behind")
    _age_past_now()
    done = {}
    with leases.push_lease(st) as lease:
        assert st.head("chunks/aa/shared") is not None  # already there: the push skips it
        t = threading.Thread(target=lambda: done.setdefault("report", gc(st, grace=0)))
        t.start()
        time.sleep(1.0)
        assert t.is_alive(), "gc must wait for the push in progress"
        lease.ensure()
        _manifest(st, ["chunks/aa/shared"])
    t.join(30)
    assert done["report"].deleted == 0 and done["report"].waited_seconds >= 0.5
    assert st.get("chunks/aa/shared") == b"data a killed push left behind"
    # without the lease the same interleaving loses the object: what the lease is for
    st.put("chunks/aa/other", b"another orphan")
    _age_past_now()
    assert st.head("chunks/aa/other") is not None
    gc(st, grace=0)
    _manifest(st, ["chunks/aa/other"])
    assert st.head("chunks/aa/other") is None


def test_a_push_waits_for_a_running_gc(any_remote):
    url, options, _ = any_remote
    st = open_remote(url, **options)
    lock = leases.GcLock(st)
    lock.acquire()
    with pytest.raises(RemoteConflict, match="another remote gc is running"):
        gc(st, grace=0)
    said = []
    threading.Timer(1.5, lock.release).start()
    t0 = time.monotonic()
    with leases.push_lease(st, on_wait=said.append):
        waited = time.monotonic() - t0
        assert len(_keys(st, "leases/push/")) == 1
    assert waited >= 1.0 and said and "waiting for remote gc" in said[0]
    assert _keys(st, "leases/") == []


def test_killed_pusher_and_killed_gc_expire(any_remote):
    url, options, _ = any_remote
    st = open_remote(url, **options)
    # a push lease and a gc lock nobody refreshes any more (their processes died)
    dead = leases._Held(st, f"{leases.PUSH_PREFIX}dead.json", {"kind": "push", "ttl": TTL, "who": "x"}, TTL)
    dead.create()
    stale = leases._Held(st, leases.GC_KEY, {"kind": "gc", "ttl": TTL, "who": "y"}, TTL)
    stale.create()
    st.put("chunks/aa/half-pushed", b"1")
    # while they are live: a push waits for the gc, a gc refuses to run beside it
    with pytest.raises(RemoteError, match="held the remote"):
        with leases.push_lease(st, wait=0.5):
            pass
    with pytest.raises(RemoteConflict, match="another remote gc is running"):
        gc(st, grace=0)
    time.sleep(TTL + 1.1)
    # expired: a push goes ahead (and removes the dead gc's lock); gc removes the dead lease and sweeps
    with leases.push_lease(st, wait=10):
        assert st.head(leases.GC_KEY) is None
    t0 = time.monotonic()
    rep = gc(st, grace=0)
    assert rep.expired_leases == 1 and rep.deleted == 1 and time.monotonic() - t0 < TTL
    assert _keys(st, "leases/") == []
    # a new gc also takes over an expired lock by itself
    stale.create()
    time.sleep(TTL + 1.1)
    assert gc(st, grace=0).deleted == 0
    assert _keys(st, "leases/") == []


def test_lapsed_lease_refuses_the_manifest(moto_s3):
    st = open_remote(moto_s3.bucket("team"), **moto_s3.options)
    with leases.push_lease(st) as lease:
        lease.ensure()
        lease._held._last_ok -= TTL  # no successful refresh for a whole ttl (paused, offline)
        with pytest.raises(RemoteConflict, match="lease lapsed"):
            lease.ensure()


def test_stale_multipart_uploads_are_aborted(seaweed_s3):
    # SeaweedFS: moto reports every upload as initiated in 2010, so the grace cannot be seen there
    st = open_remote(seaweed_s3.bucket("team"), **seaweed_s3.options)
    status, _, _ = st._request("POST", "chunks/aa/big", {"uploads": ""})
    assert status == 200 and len(st.multipart_uploads()) == 1
    rep = gc(st, grace="1h")
    assert rep.aborted_uploads == 0 and len(st.multipart_uploads()) == 1
    _age_past_now()
    rep = gc(st, grace=0)
    assert rep.aborted_uploads == 1 and st.multipart_uploads() == []


# -- many processes: pushers (one of them SIGKILLed mid-push), gc in a loop --------------------------

POOL = [hashlib.sha256(str(i).encode()).digest() * (64 * (i % 7 + 1)) for i in range(40)]


def _key(data: bytes) -> str:
    h = hashlib.sha256(data).hexdigest()
    return f"chunks/{h[:2]}/{h}"


def _pusher(url, options, env, seed, versions, out_q, stall=None, pace=0.15):
    os.environ.update(env)
    st = open_remote(url, **options)
    rng = random.Random(seed)
    for _ in range(versions):
        chosen = rng.sample(POOL, 8)
        with leases.push_lease(st) as lease:
            for i, data in enumerate(chosen):
                if st.head(_key(data)) is None:  # what is there already is not sent again
                    try:
                        st.put(_key(data), data)
                    except Exception as exc:  # RemoteExists: someone else just sent it
                        if type(exc).__name__ != "RemoteExists":
                            raise
                time.sleep(pace)  # a push takes a while: long enough for a gc to start in the middle
                if stall is not None and i == 4:
                    out_q.put(("stalled", seed))
                    time.sleep(600)  # killed here, half its data on the remote, no manifest
            lease.ensure()
            gid = _manifest(st, [_key(d) for d in chosen])
        out_q.put(("pushed", gid))
    out_q.put(("done", seed))


def _gc_loop(url, options, env, stop, out_q):
    os.environ.update(env)
    st = open_remote(url, **options)
    runs = deleted = 0
    while not stop.is_set() or not runs:
        try:
            rep = gc(st, grace=0, wait=60)
        except RemoteConflict:
            continue
        runs += 1
        deleted += rep.deleted
        stop.wait(0.5)  # back to back, pushers would rarely get in
    out_q.put(("gc", runs, deleted))


@pytest.mark.parametrize("server", ["moto_s3", "seaweed_s3"])
def test_team_protocol_under_concurrent_gc(server, request):
    """Four pushers (one restarting after a SIGKILL mid-push) and gc with grace 0 in a loop: every
    object any manifest names is on the remote at the end. With gc blind to the leases (push_leases
    patched to []), the same run lost 8 referenced objects in each of two trials."""
    srv = request.getfixturevalue(server)
    url = srv.bucket("team")
    env = dict(srv.env, JUPYTER_MV_LEASE_TTL=str(TTL))
    ctx = mp.get_context("spawn")  # obstore does not survive fork
    q = ctx.Queue()
    # one pusher is killed mid-push, leaving data without a manifest and a lease nobody refreshes
    # (a queue of its own: a process killed right after a put may still hold the queue's lock)
    victim_q = ctx.Queue()
    victim = ctx.Process(target=_pusher, args=(url, srv.options, env, 99, 1, victim_q, True), daemon=True)
    victim.start()
    assert victim_q.get(timeout=60) == ("stalled", 99)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    t0 = time.monotonic()
    procs = [ctx.Process(target=_pusher, args=(url, srv.options, env, seed, 4, q), daemon=True)
             for seed in (1, 2, 3)]
    procs.append(ctx.Process(target=_pusher, args=(url, srv.options, env, 99, 2, q), daemon=True))  # again
    stop = ctx.Event()
    procs.append(ctx.Process(target=_gc_loop, args=(url, srv.options, env, stop, q), daemon=True))
    msgs = []
    try:
        for p in procs:
            p.start()
        while sum(1 for m in msgs if m[0] in ("done", "gc")) < len(procs):
            msgs.append(q.get(timeout=90))
            if sum(1 for m in msgs if m[0] == "done") == len(procs) - 1:
                stop.set()  # the pushers are through: one more gc round at most
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
    pushed = [m[1] for m in msgs if m[0] == "pushed"]
    runs = [m for m in msgs if m[0] == "gc"][0]
    assert len(pushed) == 3 * 4 + 2 and runs[1] >= 1
    st = open_remote(url, **srv.options)
    missing = []
    for gid in pushed:
        for key in json.loads(st.get(f"versions/{gid}.json"))["objects"]:
            if st.head(key) is None:
                missing.append(key)
    assert missing == []
    # a last gc with nobody pushing leaves exactly the referenced objects
    _age_past_now()
    gc(st, grace=0)
    referenced = set()
    for gid in pushed:
        referenced.update(json.loads(st.get(f"versions/{gid}.json"))["objects"])
    assert set(_keys(st, "chunks/")) == referenced
    assert time.monotonic() - t0 < 60


def test_cli_remote_gc(moto_s3, tmp_path):
    from mvtest import cli

    url = moto_s3.bucket("team")
    st = open_remote(url, **moto_s3.options)
    st.put("chunks/aa/kept", b"k")
    st.put("chunks/aa/orphan", b"orphan")
    _manifest(st, ["chunks/aa/kept"])
    _age_past_now()
    env = dict(moto_s3.env, JUPYTER_MV_LEASE_TTL=str(TTL))
    r = cli("remote", "add", "team", url, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    r = cli("remote", "gc", "--grace", "0", "--dry-run", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "would delete 1 unreferenced object (6 B)" in r.stdout, r.stdout + r.stderr
    r = cli("remote", "gc", cwd=tmp_path, env=env)  # default grace 24h: kept
    assert r.returncode == 0 and "deleted 0 unreferenced objects" in r.stdout and "kept 1 younger" in r.stdout
    r = cli("remote", "gc", "--grace", "0", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "deleted 1 unreferenced object (6 B)" in r.stdout, r.stdout + r.stderr
    assert _keys(st, "chunks/") == ["chunks/aa/kept"]
    r = cli("remote", "gc", "--grace", "soon", cwd=tmp_path, env=env)
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "--grace 'soon'" in r.stderr
    # another gc running: one line, naming it
    lock = leases.GcLock(st, who="bob@laptop")
    lock.acquire()
    try:
        r = cli("remote", "gc", cwd=tmp_path, env=env)
    finally:
        lock.release()
    assert r.returncode != 0 and "another remote gc is running (by bob@laptop" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    # a referenced object missing: reported, exit 3 (as verify)
    st.delete("chunks/aa/kept")
    r = cli("remote", "gc", cwd=tmp_path, env=env)
    assert r.returncode == 3 and "1 referenced object is missing (first: chunks/aa/kept)" in r.stdout, r.stdout


def test_a_lease_removed_or_taken_over_is_lost_not_retaken(any_remote):
    url, options, _ = any_remote
    st = open_remote(url, **options)
    with leases.push_lease(st) as lease:
        st.delete(lease.key)  # a gc judged it expired (this process was paused) and removed it
        time.sleep(TTL / 4 + 1.0)  # the next refresh finds it gone
        with pytest.raises(RemoteConflict, match="lease lapsed"):
            lease.ensure()
        assert st.head(lease.key) is None  # not written again behind the gc's back
    # a gc lock taken over by another gc: the first one's release leaves the new holder's lock alone
    first = leases.GcLock(st)
    first.acquire()
    st.delete(leases.GC_KEY)
    second = leases.GcLock(st, who="second")
    second.acquire()
    time.sleep(TTL / 4 + 1.0)
    with pytest.raises(RemoteConflict, match="lost its lock"):
        first.ensure()
    first.release()
    body = json.loads(st.get(leases.GC_KEY))
    assert body["who"] == "second"
    second.release()
    assert st.head(leases.GC_KEY) is None
