"""Restore is per variable (issue 11, K5): a variable that cannot be decoded (its module renamed or
removed, its class gone, its blob damaged) never stops the others; `%mv_restore` names each failure
on a line of its own, `mv.restore` raises PartialRestore after restoring the rest. A variable that
pickles but can never be unpickled is found by a trial load when it is snapshotted and skipped with
a warning. Same kernel (a real IPython shell), fresh kernel (nbclient), and an imported bundle."""

from __future__ import annotations

import importlib
import json
import pickle
import sys
import textwrap
import tracemalloc
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest

import jupyter_mv as mv
from jupyter_mv import api
from jupyter_mv.codecs import trial
from jupyter_mv.errors import DecodeError, MVError, PartialRestore, StoreError
from jupyter_mv.store import Store

MODULE = """
class Thing:
    def __init__(self, n):
        self.n = n
    def __eq__(self, other):
        return type(other).__name__ == "Thing" and other.n == self.n
"""


@pytest.fixture
def module(tmp_path, monkeypatch):
    """A module of the user's own (a .py beside the notebook), importable under a unique name."""
    name = f"k5mod_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield name
    sys.modules.pop(name, None)


def _forget(tmp_path: Path, name: str, how: str) -> None:
    """Make the module's class unavailable the way users do: rename the file, or the class."""
    src = tmp_path / f"{name}.py"
    if how == "module renamed":
        src.rename(tmp_path / f"{name}_v2.py")
    else:
        src.write_text(MODULE.replace("class Thing", "class Widget"))
    sys.modules.pop(name, None)
    importlib.invalidate_caches()


SETUP = "import numpy as np\nimport {mod}\na = np.arange(6.0)\nb = {{'k': [1, 2]}}\nt = {mod}.Thing(3)\n"


@pytest.mark.parametrize("how", ["module renamed", "class renamed"])
def test_restore_all_continues_past_an_undecodable_variable(shell, run, capsys, tmp_path, module, how):
    run(SETUP.format(mod=module))
    run("%mv_snapshot")
    assert set(api.resolve("v1").variables) >= {"a", "b", "t"}
    run("a = None; b = None; t = None")
    _forget(tmp_path, module, how)
    capsys.readouterr()

    run("%mv_restore v1")  # no error: the others come back, the failure is named on its own line
    cap = capsys.readouterr()
    assert cap.out.startswith("restored ") and cap.out.strip().endswith(" from v1")
    back = cap.out.strip().removeprefix("restored ").removesuffix(" from v1").split(", ")
    assert {"a", "b"} <= set(back) and "t" not in back
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(lines) == 1, cap.err
    assert lines[0].startswith("jupyter_mv warning: could not restore 't': ")
    assert "internal error" not in cap.err and "please report" not in cap.err
    if how == "module renamed":
        assert f"module {module!r}" in lines[0] and "is the package that defines it installed?" in lines[0]
    else:  # the module is there; only the class is gone: no install hint
        assert "'Thing' is no longer defined" in lines[0] and "installed" not in lines[0]
    ns = shell.user_ns
    assert np.array_equal(ns["a"], np.arange(6.0)) and ns["b"] == {"k": [1, 2]} and ns["t"] is None

    # the API: the rest is restored, then a named error listing what failed
    run("a = None; b = None")
    with pytest.raises(PartialRestore) as e:
        mv.restore("v1")
    assert sorted(e.value.restored) == sorted(n for n in api.resolve("v1").variables if n != "t")
    assert list(e.value.failed) == ["t"] and "\n" not in str(e.value)
    assert isinstance(e.value, MVError) and "'t'" in str(e.value)
    assert np.array_equal(ns["a"], np.arange(6.0)) and ns["b"] == {"k": [1, 2]}

    # asked for alone: its own named error, one line, through the magic too
    with pytest.raises(DecodeError) as e:
        mv.restore("v1", ["t"])
    assert "v1 variable 't' cannot be restored" in str(e.value) and "\n" not in str(e.value)
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as e:
        run("%mv_restore v1 t")
    assert "cannot be restored" in str(e.value) and "internal error" not in str(e.value)


def test_restore_with_a_damaged_blob_restores_the_rest(shell, run, capsys, tmp_path):
    run("import numpy as np\nx = np.random.default_rng(0).random(50_000)\ny = np.arange(10)\nz = 'text'")
    run("%mv_snapshot")
    st = api.session().store()
    v = api.resolve("v1")
    bid = st.stored_variable(v, "x").manifest["buffers"][0]["c"][0]
    path = st.blobs.path(bid)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    run("x = y = z = None")
    capsys.readouterr()
    run("%mv_restore v1")
    cap = capsys.readouterr()
    assert cap.out.strip() == "restored y, z from v1"
    (line,) = cap.err.strip().splitlines()
    assert line.startswith("jupyter_mv warning: could not restore 'x': is damaged") and "verify" in line
    assert shell.user_ns["z"] == "text" and shell.user_ns["x"] is None
    with pytest.raises(PartialRestore) as e:
        mv.restore("v1")
    assert e.value.restored == ["y", "z"] and list(e.value.failed) == ["x"]
    with pytest.raises(StoreError):  # alone: the damage itself, as before
        mv.restore("v1", ["x"])


@pytest.mark.parametrize("change", ["dependency removed", "module raises on import", "state changed"])
def test_install_hint_only_when_a_module_is_missing(session, tmp_path, monkeypatch, change):
    """The module exists but fails: the reason says how, with the install hint only when the module
    that is missing (importlib.util.find_spec) is really missing."""
    mod, dep = f"k5m_{uuid.uuid4().hex[:8]}", f"k5dep_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{dep}.py").write_text("X = 1\n")
    (tmp_path / f"{mod}.py").write_text(f"import {dep}\n" + MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        m = importlib.import_module(mod)
        session.namespace.update(t=m.Thing(1), n=5)
        mv.snapshot("t", "n")
        for name in (mod, dep):
            sys.modules.pop(name, None)
        if change == "dependency removed":
            (tmp_path / f"{dep}.py").unlink()
        elif change == "module raises on import":
            (tmp_path / f"{mod}.py").write_text("raise RuntimeError('config file missing')\n" + MODULE)
        else:  # a new version of the class whose __setstate__ rejects the old state
            (tmp_path / f"{mod}.py").write_text(MODULE + "    def __setstate__(self, state):\n"
                                                "        raise ValueError('state of version 1 is not supported')\n")
        importlib.invalidate_caches()
        with pytest.raises(PartialRestore) as e:
            mv.restore("v1")
        assert e.value.restored == ["n"]
        why = e.value.failed["t"]
        if change == "dependency removed":
            assert f"module {mod!r} needs module {dep!r}, which is not installed here" in why
            assert "is the package that defines it installed?" in why
        elif change == "module raises on import":
            assert why == f"importing {mod}.Thing failed: RuntimeError: config file missing"
        else:
            assert why == "its stored state does not load: ValueError: state of version 1 is not supported"
    finally:
        for name in (mod, dep):
            sys.modules.pop(name, None)


def test_decode_failures_are_named(session):
    """A codec's own failure on bad data, and a class whose state no longer loads, are DecodeErrors
    with a reason, never an unnamed exception."""
    from jupyter_mv import codecs

    with pytest.raises(DecodeError, match="numpy data does not load"):
        codecs.decode("numpy", {"descr": "<f8", "shape": [3], "order": "C"}, [memoryview(b"12345")])
    with pytest.raises(DecodeError, match="does not load"):
        codecs.decode("pickle", {"oob": 0, "tensors": []}, [memoryview(b"\x80\x05garbage")])


# -- trial load at snapshot time ----------------------------------------------------------------------
BROKEN = '''
class Broken:
    """Pickles fine; unpickling fails the way a bokeh figure does."""
    def __init__(self):
        self.items = [1, 2, 3]
    def __setstate__(self, state):
        raise AttributeError("'PropertyValueList' object has no attribute '_owners'")

class BadReduce:
    def __reduce__(self):
        return (int, ("not a number",))

ok = [1, 2, 3]
'''


def test_unloadable_object_is_skipped_at_snapshot(shell, run, capsys):
    run(BROKEN + "bro = Broken()\nbad = BadReduce()\nnested = {'inner': [Broken()]}")
    capsys.readouterr()
    run("%mv_snapshot")
    cap = capsys.readouterr()
    v = api.resolve("v1")
    assert "ok" in v.variables
    assert not {"bro", "bad", "nested"} & set(v.variables)
    err = cap.err
    assert "skipped 'bro'" in err and "does not load back" in err and "_owners" in err
    assert "skipped 'bad'" in err and "invalid literal" in err
    assert "skipped 'nested'" in err
    assert "skipped: " in cap.out and "bro" in cap.out
    # the API warns
    with pytest.warns(UserWarning, match="skipped 'bro'.*does not load back"):
        mv.snapshot("bro", "ok")
    # what was stored restores: no failure can be found later
    assert mv.restore("v1") == list(v.variables)


def test_trial_load_skipped_when_content_unchanged(session, monkeypatch):
    calls = []
    real = trial.check
    monkeypatch.setattr(trial, "check", lambda e: calls.append(e.type_name) or real(e))

    class Model:  # pickle codec (a class of this test module, by reference)
        pass

    m = Model()
    m.w = np.arange(1000.0)
    session.namespace.update(m=m, arr=np.ones(10))
    mv.snapshot()
    assert len(calls) == 1 and calls[0].endswith("<locals>.Model")
    mv.snapshot()  # unchanged: no trial load
    assert len(calls) == 1
    m.w[3] = 7.0
    mv.snapshot()  # changed: tried again
    assert len(calls) == 2
    assert calls == [calls[0]] * 2  # never for the numpy array (a safe format)


def test_unloadable_is_not_tried_again_every_cell(session, monkeypatch):
    ns = session.namespace
    ns["__name__"] = "__main__"
    exec(BROKEN, ns)
    ns["bro"] = ns["Broken"]()
    ns["ok"] = [1]
    calls = []
    real = trial.check
    monkeypatch.setattr(trial, "check", lambda e: calls.append(1) or real(e))
    with pytest.warns(UserWarning, match="skipped 'bro'.*does not load back"):
        mv.snapshot("bro", "ok")
    assert len(calls) == 1  # bro only: a list of ints is plain data, it never unpickles
    with pytest.warns(UserWarning, match="skipped 'bro'.*does not load back"):
        mv.snapshot("bro", "ok")
    assert len(calls) == 1  # the failure is remembered by content hash


def test_trial_load_leaves_live_state_alone(shell, run):
    """Unpickling must not change the notebook: its classes and functions stay as they are, and a
    pyplot figure does not register a second figure."""
    run("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "counter = 0\n"
        "class Point:\n"
        "    def __init__(self, x): self.x = x\n"
        "    def bump(self):\n"
        "        global counter\n"
        "        counter += 1\n"
        "p = Point(2)\n"
        "fig, ax = plt.subplots()\nline, = ax.plot([1, 2], [3, 4])\n"
        "before = (Point.bump, Point.__dict__['__init__'], plt.get_fignums(), plt.gcf())")
    run("%mv_snapshot p fig")
    ns = shell.user_ns
    assert ns["Point"].bump is ns["before"][0] and ns["Point"].__dict__["__init__"] is ns["before"][1]
    run("p.bump()")
    assert ns["counter"] == 1  # still the notebook's global
    assert run("plt.get_fignums()") == ns["before"][2] and run("plt.gcf()") is ns["before"][3]
    run("plt.close('all')")


def test_trial_load_is_cheap_for_large_buffers(session):
    """The trial unpickles with the out-of-band buffers still in memory: no copy of the data."""
    from jupyter_mv import capture

    class Holder:
        pass

    h = Holder()
    h.big = np.random.default_rng(0).random(5_000_000)  # 40 MB
    h.labels = ["a", "b"]
    (_, enc), = capture.encode_all([("h", h)]).items
    assert enc.codec == "pickle"
    tracemalloc.start()
    try:
        assert capture.trial_load(enc) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak  # far below the 40 MB array


@pytest.mark.slow
def test_bokeh_figure_is_skipped_with_its_reason(shell, run, capsys):
    run("from bokeh.plotting import figure\np = figure(title='t')\nr = p.line([1, 2, 3], [4, 5, 6])\nx = 1.5")
    capsys.readouterr()
    run("%mv_snapshot")
    cap = capsys.readouterr()
    v = api.resolve("v1")
    assert "x" in v.variables and "p" not in v.variables
    assert "skipped 'p'" in cap.err and "_owners" in cap.err
    assert mv.restore("v1") == list(v.variables)  # and everything stored restores


# -- fresh kernel and imported bundle -----------------------------------------------------------------
def _nb(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src, id=cid) for cid, src in cells]
    return nb


def _run_nb(cells, cwd):
    from nbclient import NotebookClient

    nb = _nb(cells)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return {c.id: c for c in nb.cells}


def _stream(cell, name):
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


@pytest.mark.kernel
@pytest.mark.slow
def test_partial_restore_in_a_fresh_kernel_and_after_import(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{sys.prefix}/bin:" + __import__("os").environ.get("PATH", ""))
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "k5.ipynb")
    name = f"k5mod_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    _run_nb([("load", "%load_ext jupyter_mv"),
             ("make", SETUP.format(mod=name) + "exec(" + repr(textwrap.dedent(BROKEN)) + ")\nbro = Broken()"),
             ("snap", "%mv_snapshot"),
             ("export", "%mv_export v1 k5.mvz")], tmp_path)
    (tmp_path / f"{name}.py").rename(tmp_path / f"{name}_renamed.py")

    cells = _run_nb([
        ("load", "%load_ext jupyter_mv"),
        ("restore", "%mv_restore v1"),
        ("check", "print(a.tolist(), b, 't' in dir())"),
        ("api", "import jupyter_mv as mv\ntry:\n    mv.restore('v1')\nexcept mv.PartialRestore as e:\n"
                "    import json; print(json.dumps({'restored': e.restored, 'failed': e.failed}))"),
    ], tmp_path)
    out, err = _stream(cells["restore"], "stdout"), _stream(cells["restore"], "stderr")
    assert out.startswith("restored ") and "from v1" in out
    (line,) = err.strip().splitlines()
    assert line.startswith("jupyter_mv warning: could not restore 't': ") and "installed?" in line
    assert _stream(cells["check"], "stdout").strip() == "[0.0, 1.0, 2.0, 3.0, 4.0, 5.0] {'k': [1, 2]} False"
    got = json.loads(_stream(cells["api"], "stdout"))
    assert list(got["failed"]) == ["t"] and {"a", "b"} <= set(got["restored"])
    with Store(tmp_path / ".jupyter_mv") as st:
        assert "bro" not in st.versions("k5.ipynb")[0].variables  # skipped when snapshotted

    # imported into another store: the same per-variable restore (with trust: it holds pickles)
    other = tmp_path / "other"
    other.mkdir()
    s = api.Session(namespace={})
    api.set_session(s)
    try:
        st = s.store(other / ".jupyter_mv")
        v = api.import_bundle(tmp_path / "k5.mvz", store=st).version
        with pytest.raises(PartialRestore) as e:
            api.restore(v, trust=True, store=st)
        assert list(e.value.failed) == ["t"] and "installed?" in e.value.failed["t"]
        assert np.array_equal(s.namespace["a"], np.arange(6.0)) and s.namespace["b"] == {"k": [1, 2]}
    finally:
        api.set_session(None)


def test_history_widget_restore_names_what_failed(shell, run, tmp_path, module):
    import time

    from jupyter_mv.widgets import HistoryWidget

    run(SETUP.format(mod=module))
    run("%mv_snapshot")
    _forget(tmp_path, module, "module renamed")
    run("a = None")
    w = HistoryWidget()
    try:
        w.selected = [w.rows[0]["id"]]
        w.request = {"action": "restore", "seq": time.monotonic(), "names": [], "prefix": ""}
        msg = w.message
        assert msg["kind"] == "warning", msg
        assert msg["text"].startswith("restored ") and "from v1; could not restore 't': " in msg["text"]
        assert "installed?" in msg["text"] and "\n" not in msg["text"]
        assert np.array_equal(shell.user_ns["a"], np.arange(6.0))
    finally:
        w.close()


def test_auto_mode_warns_once_and_keeps_versioning(shell, run, capsys):
    run("%mv_auto on")
    run(BROKEN)
    capsys.readouterr()
    run("bro = Broken()\nx = 1")
    first = capsys.readouterr().err
    assert "auto-snapshots skip 'bro'" in first and "does not load back" in first
    assert "auto-snapshot failed" not in first
    run("x = 2")
    again = capsys.readouterr().err
    assert "bro" not in again and "auto-snapshot failed" not in again
    latest = api.resolve("latest")
    assert "x" in latest.variables and "bro" not in latest.variables
    assert mv.load("latest", "x") == 2
    run("%mv_auto off")


def test_running_out_of_memory_is_not_a_data_error(session, monkeypatch):
    """A MemoryError says nothing about the data: the trial load keeps the variable, and a restore names
    the shortage for that variable alone and restores the others."""
    from jupyter_mv.codecs import arrays, pickled

    class Model:
        pass

    m = Model()
    m.w = np.arange(10.0)
    session.namespace.update(m=m, arr=np.arange(5), n=3)
    def no_room(*a, **k):
        raise MemoryError

    class Unpickler(pickle.Unpickler):  # unpickling itself runs out of memory
        def load(self):
            raise MemoryError

    with monkeypatch.context() as mp:
        mp.setattr(pickled.pickle, "Unpickler", Unpickler)
        v = mv.snapshot()
    assert {"m", "arr", "n"} <= set(v.variables)  # kept: the trial could not tell
    monkeypatch.setattr(arrays, "decode", no_room)
    with pytest.raises(PartialRestore) as e:
        mv.restore("v1")
    assert list(e.value.failed) == ["arr"] and "not enough memory to load it here" in e.value.failed["arr"]
    assert "m" in e.value.restored and session.namespace["m"].w.tolist() == list(np.arange(10.0))
