"""Several processes snapshotting into one store at once: every version lands, numbers are unique,
nobody sees "database is locked", and a concurrent gc never eats a snapshot's blobs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from jupyter_mv.loading import load
from jupyter_mv.store import Store

pytestmark = pytest.mark.slow  # process start-up dominates: ~10 s

WORKER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from jupyter_mv import api

    who, count, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = api.Session(namespace={})
    api.set_session(s)
    shared = np.random.default_rng(12345).random(300_000)  # the same bytes in every process: racing dedup
    while not os.path.exists(go):
        time.sleep(0.005)
    for k in range(count):
        s.namespace["shared"] = shared
        s.namespace["mine"] = np.random.default_rng([int(who), k]).random(150_000)
        s.namespace["k"] = k
        v = api.snapshot("shared", "mine", "k", message=f"p{who}-{k}", metrics={"k": k})
        print(v.label, flush=True)
    api.set_session(None)
""")

GC_WORKER = textwrap.dedent("""
    import os, sys, time
    from jupyter_mv.store import Store
    go, stop = sys.argv[1], sys.argv[2]
    while not os.path.exists(go):
        time.sleep(0.005)
    runs = 0
    st = Store(os.environ["JUPYTER_MV_STORE"])
    while not os.path.exists(stop) or runs < 3:
        st.gc()
        runs += 1
    st.close()
    print(runs)
""")


def _spawn(script: str, args, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _env(tmp_path, notebook="shared.ipynb"):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MV_", "JPY_SESSION"))}
    env.update(JUPYTER_MV_STORE=str(tmp_path / "store"), JUPYTER_MV_NOTEBOOK=notebook)
    return env


def _check_versions(root, notebook, procs: int, count: int):
    with Store(root) as st:
        vs = st.versions(notebook)
        assert sorted(v.n for v in vs) == list(range(1, procs * count + 1))  # unique, no gaps
        assert sorted(v.message for v in vs) == sorted(f"p{i}-{k}" for i in range(procs) for k in range(count))
        assert st.verify() == []
        shared = np.random.default_rng(12345).random(300_000)
        for v in vs:
            who, k = map(int, v.message[1:].split("-"))
            got = load(st, v)
            assert got["k"] == k and v.metrics == {"k": float(k)}
            assert np.array_equal(got["mine"], np.random.default_rng([who, k]).random(150_000))
            assert np.array_equal(got["shared"], shared)
        return vs


def test_processes_snapshot_into_one_store(tmp_path):
    procs, count = 3, 5
    go = tmp_path / "go"
    env = _env(tmp_path)
    workers = [_spawn(WORKER, [i, count, go], env) for i in range(procs)]
    time.sleep(0.5)  # let them all import and wait at the line
    go.touch()
    outs = [w.communicate(timeout=240) for w in workers]
    for w, (out, err) in zip(workers, outs):
        assert w.returncode == 0, err
        assert "database is locked" not in err and "Traceback" not in err, err
        assert len(out.split()) == count
    labels = [lbl for out, _ in outs for lbl in out.split()]
    assert len(set(labels)) == procs * count  # each process was told a different number
    _check_versions(tmp_path / "store", "shared.ipynb", procs, count)


def test_processes_on_different_notebooks_and_gc(tmp_path):
    """Two notebooks at once plus a gc looping beside them: nothing referenced is ever collected."""
    count = 4
    go, stop = tmp_path / "go", tmp_path / "stop"
    workers = [_spawn(WORKER, [i, count, go], _env(tmp_path, f"nb{i}.ipynb")) for i in range(2)]
    gc = _spawn(GC_WORKER, [go, stop], _env(tmp_path))
    time.sleep(0.5)
    go.touch()
    outs = [w.communicate(timeout=240) for w in workers]
    stop.touch()
    gc_out, gc_err = gc.communicate(timeout=240)
    assert gc.returncode == 0, gc_err
    assert int(gc_out) >= 3
    for w, (out, err) in zip(workers, outs):
        assert w.returncode == 0, err
        assert "database is locked" not in err, err
        assert out.split() == [f"v{k}" for k in range(1, count + 1)]
    with Store(tmp_path / "store") as st:
        assert sorted(st.notebooks()) == ["nb0.ipynb", "nb1.ipynb"]
        assert st.verify() == []
        for i in range(2):
            vs = st.versions(f"nb{i}.ipynb")
            assert [v.message for v in vs] == [f"p{i}-{k}" for k in range(count)]
