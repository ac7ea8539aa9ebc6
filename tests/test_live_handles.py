"""Live handles are caught at any depth (issue 11, K6): a variable holding an open file, a socket, a
database connection, a lock, a thread, a queue, a subprocess or a generator anywhere inside it is
skipped with a warning naming the variable and the path to the handle (`loader.fh: an open file`),
never stored with a stand-in (cloudpickle stores an open file as a StringIO of its contents). A numpy
memmap is stored as its data and comes back as an ordinary array, with a note saying so. Same kernel,
fresh kernel and an imported bundle."""

from __future__ import annotations

import asyncio
import io
import json
import mmap
import multiprocessing
import queue
import socket
import sqlite3
import subprocess
import sys
import threading

import nbformat
import numpy as np
import pytest

import jupyter_mv as mv
from jupyter_mv import api
from jupyter_mv.store import Store


class Box:
    """A user object: attributes, nested containers."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class Slotted:
    __slots__ = ("conn", "n")

    def __init__(self, conn):
        self.conn, self.n = conn, 1


_REGISTRY: dict = {}


class Stateful:
    """Keeps the handle outside itself (a registry) and pickles a custom state (a tuple): the handle
    is found in what __reduce_ex__ gives."""

    __slots__ = ("_key",)

    def __init__(self, h):
        self._key = id(h)
        _REGISTRY[self._key] = h

    def __getstate__(self):
        return ("v1", [_REGISTRY[self._key]])

    def __setstate__(self, state):
        self.__init__(state[1][0])


async def _coro():
    return 1


def _handles(tmp_path):
    """(kind, factory returning (handle, cleanup), word expected in the reason)."""
    (tmp_path / "data.txt").write_text("hello\n")

    def file_():
        f = open(tmp_path / "data.txt")
        return f, f.close

    def bfile():
        f = open(tmp_path / "data.txt", "rb")
        return f, f.close

    def sock():
        s = socket.socket()
        return s, s.close

    def db():
        c = sqlite3.connect(tmp_path / "x.db")
        return c, c.close

    def cursor():
        c = sqlite3.connect(":memory:")
        return c.cursor(), c.close

    def engine():
        import sqlalchemy  # installed with mlflow (test extra)

        e = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'y.db'}")
        return e, e.dispose

    def thread():
        t = threading.Thread(target=lambda: None)
        return t, lambda: None

    def proc():
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        return p, lambda: (p.kill(), p.wait())

    def gen():
        return (i for i in range(3)), lambda: None

    def coro():
        c = _coro()
        return c, c.close

    def mp_queue():
        q = multiprocessing.get_context("spawn").Queue()
        return q, q.close

    def mm():
        m = mmap.mmap(-1, 4096)
        return m, m.close

    return [
        ("text file", file_, "an open file"), ("binary file", bfile, "an open file"), ("socket", sock, "socket"),
        ("sqlite connection", db, "database connection"), ("sqlite cursor", cursor, "database"),
        ("sqlalchemy engine", engine, "database connection (SQLAlchemy)"),
        ("lock", lambda: (threading.Lock(), lambda: None), "a lock"),
        ("rlock", lambda: (threading.RLock(), lambda: None), "a lock"),
        ("event", lambda: (threading.Event(), lambda: None), "a lock"),
        ("condition", lambda: (threading.Condition(), lambda: None), "a lock"),
        ("thread", thread, "a thread"), ("queue", lambda: (queue.Queue(), lambda: None), "a queue"),
        ("simple queue", lambda: (queue.SimpleQueue(), lambda: None), "a queue"),
        ("asyncio queue", lambda: (asyncio.Queue(), lambda: None), "a queue"),
        ("multiprocessing queue", mp_queue, "a queue"), ("subprocess", proc, "a subprocess"),
        ("generator", gen, "generator"), ("coroutine", coro, "coroutine"), ("mmap", mm, "memory-mapped"),
    ]


KINDS = [k for k, _, _ in _handles(__import__("pathlib").Path("/tmp"))]


@pytest.mark.parametrize("kind", KINDS)
def test_handle_at_any_depth_is_skipped_with_its_path(session, tmp_path, kind):
    _, make, word = next(h for h in _handles(tmp_path) if h[0] == kind)
    handle, cleanup = make()
    try:
        ns = session.namespace
        ns["loader"] = Box(fh=handle, n=3)
        ns["cfg"] = {"stages": [1, {"conn": handle}]}
        ns["deep"] = Box(inner=Box(items=(0, Slotted(handle))))
        ns["state"] = Stateful(handle)
        ns["bare"] = handle
        ns["arr"] = np.arange(4)
        with pytest.warns(UserWarning) as rec:
            v = mv.snapshot()
        lines = {str(w.message).split("'")[1]: str(w.message) for w in rec}
        assert v.variables == ("arr",)
        expected = {"loader": "loader.fh: ", "cfg": "cfg['stages'][1]['conn']: ", "deep": "deep.inner.items[1].conn: ",
                    "state": "state (pickled state)[1][0]: ", "bare": "bare: "}
        for name, path in expected.items():
            assert f"skipped {name!r}: {path}" in lines[name], lines[name]
            assert word in lines[name], lines[name]
            assert "\n" not in lines[name]
    finally:
        cleanup()


def test_open_file_inside_an_object_is_not_stored_as_stringio(shell, run, capsys, tmp_path):
    """The issue's example: today the object is stored and restored with a StringIO in its place."""
    (tmp_path / "data.txt").write_text("a,b\n1,2\n")
    run("class Loader:\n    def __init__(self, path):\n        self.path = path\n        self.fh = open(path)\n"
        "loader = Loader('data.txt')\nrows = [1, 2]")
    capsys.readouterr()
    try:
        run("%mv_snapshot")
        cap = capsys.readouterr()
        assert "jupyter_mv warning: skipped 'loader': loader.fh: an open file 'data.txt'" in cap.err
        assert cap.err.count("\n") == 1
        v = api.resolve("v1")
        assert "loader" not in v.variables and "rows" in v.variables
        run("%mv_snapshot loader rows")  # named explicitly: the same, the snapshot still succeeds
        assert "loader.fh: an open file" in capsys.readouterr().err
        assert api.resolve("v2").variables == ("rows",)
    finally:
        shell.user_ns["loader"].fh.close()


def test_handles_in_dataframe_cells_and_attrs(session, tmp_path):
    import pandas as pd

    (tmp_path / "data.txt").write_text("x")
    fh = open(tmp_path / "data.txt")
    try:
        ns = session.namespace
        ns["df"] = pd.DataFrame({"a": [1, 2, 3], "f": ["x", Box(fh=fh), "y"]})
        ns["s"] = pd.Series([1.5, fh], name="s")
        meta = pd.DataFrame({"a": [1]})
        meta.attrs["source"] = {"handle": fh}
        ns["meta"] = meta
        ns["ok"] = pd.DataFrame({"a": [1, 2]})
        with pytest.warns(UserWarning) as rec:
            v = mv.snapshot()
        text = "\n".join(str(w.message) for w in rec)
        assert "skipped 'df': df['f'].iloc[1].fh: an open file" in text
        assert "skipped 's': s.iloc[1]: an open file" in text
        assert "skipped 'meta': meta." in text and "attrs['source']['handle']: an open file" in text
        assert v.variables == ("ok",)
    finally:
        fh.close()


class Reopening:
    """Handles its own pickling: the path is state, the handle is reopened on load."""

    def __init__(self, path):
        self.path = path
        self.fh = open(path)

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])


def test_a_class_that_pickles_without_its_handle_is_stored(session, tmp_path):
    (tmp_path / "data.txt").write_text("hello")
    r = Reopening(str(tmp_path / "data.txt"))
    try:
        session.namespace["r"] = r
        v = mv.snapshot("r")
        assert v.variables == ("r",)
        back = mv.load("v1", "r")
        assert back.fh.read() == "hello" and back.fh is not r.fh
        back.fh.close()
    finally:
        r.fh.close()


def test_in_memory_streams_are_data(session):
    """BytesIO/StringIO are not handles: contents and position round-trip exactly."""
    b = io.BytesIO(b"abcdef")
    b.seek(2)
    s = io.StringIO("line1\nline2\n")
    s.readline()
    session.namespace.update(box=Box(b=b, s=s))
    v = mv.snapshot("box")
    assert v.variables == ("box",)
    got = mv.load("v1", "box")
    assert got.b.getvalue() == b"abcdef" and got.b.tell() == 2
    assert got.s.getvalue() == "line1\nline2\n" and got.s.readline() == "line2\n"


def test_handle_in_a_closure_and_in_function_globals(session, tmp_path):
    (tmp_path / "data.txt").write_text("x")
    fh = open(tmp_path / "data.txt")
    try:
        def make():
            def read():
                return fh.read()
            return read

        session.namespace["reader"] = Box(fn=make())
        with pytest.warns(UserWarning, match=r"skipped 'reader': reader\.fn \(closure variable fh\): an open file"):
            v = mv.snapshot("reader")
        assert v is not None and v.variables == ()
    finally:
        fh.close()


def test_other_unpicklable_objects_are_named_with_their_path(session):
    session.namespace["model"] = Box(cache=Box(local=threading.local()), ok=[1, 2])
    with pytest.warns(UserWarning, match=r"skipped 'model'.*cannot pickle '_thread._local' object \(at \.cache\.local\)"):
        mv.snapshot("model")


def test_handle_check_costs_no_extra_pass(session):
    """The check rides on the pickler (reducer_override): `path_to` walks the object only on failure."""
    from jupyter_mv.codecs import handles

    calls = []
    real = handles.path_to
    handles.path_to = lambda *a: calls.append(1) or real(*a)
    try:
        session.namespace["big"] = Box(layers=[Box(w=np.ones(10), name=str(i)) for i in range(2000)])
        mv.snapshot("big")
        assert calls == []
    finally:
        handles.path_to = real


# -- numpy memmap --------------------------------------------------------------------------------------
def test_memmap_is_stored_as_data_with_a_note(shell, run, capsys, tmp_path):
    run("import numpy as np\nmm = np.memmap('m.dat', dtype='float32', mode='w+', shape=(4, 5))\n"
        "mm[:] = np.arange(20, dtype='float32').reshape(4, 5)\nmm.flush()\n"
        "holder = {'m': mm, 'k': 1}\nref = np.asarray(mm).copy()")
    capsys.readouterr()
    run("%mv_snapshot")
    cap = capsys.readouterr()
    notes = [ln for ln in cap.err.splitlines() if ln.startswith("jupyter_mv note: ")]
    assert len(notes) == 2, cap.err
    assert any(n.startswith("jupyter_mv note: mm: a numpy memmap of ") and "m.dat" in n for n in notes)
    assert any(n.startswith("jupyter_mv note: holder['m']: a numpy memmap") for n in notes)
    assert all("ordinary in-memory array" in n for n in notes)
    assert "warning" not in cap.err
    v = api.resolve("v1")
    assert {"mm", "holder"} <= set(v.variables)
    with pytest.warns(UserWarning, match="mm: a numpy memmap"):  # the API warns the note
        mv.snapshot("mm")
    run("mm[0, 0] = 99; mm.flush()")  # the file changes; the version keeps its moment's data
    run("%mv_restore v1 mm holder")
    ns = shell.user_ns
    assert type(ns["mm"]) is np.ndarray and np.array_equal(ns["mm"], ns["ref"]) and ns["mm"].dtype == np.float32
    assert type(ns["holder"]["m"]) is np.ndarray and np.array_equal(ns["holder"]["m"], ns["ref"])


# -- fresh kernel and imported bundle ------------------------------------------------------------------
CELLS = [
    ("load", "%load_ext jupyter_mv"),
    ("make", "import numpy as np, sqlite3, threading\n"
             "open('data.txt', 'w').write('hello')\n"
             "class Loader:\n    def __init__(self):\n        self.fh = open('data.txt')\n"
             "        self.db = {'main': sqlite3.connect('x.db')}\n"
             "loader = Loader()\nworkers = [threading.Lock()]\n"
             "mm = np.memmap('m.dat', dtype='int64', mode='w+', shape=(6,))\nmm[:] = np.arange(6)\n"
             "w = np.ones(3)"),
    ("snap", "%mv_snapshot"),
    ("export", "%mv_export v1 k6.mvz"),
]


@pytest.mark.kernel
@pytest.mark.slow
def test_live_handles_in_a_fresh_kernel_and_after_import(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("PATH", f"{sys.prefix}/bin:" + __import__("os").environ.get("PATH", ""))
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "k6.ipynb")

    def execute(cells):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(src, id=cid) for cid, src in cells]
        NotebookClient(nb, timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
        return {c.id: c for c in nb.cells}

    def stream(cell, name):
        return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)

    cells = execute(CELLS)
    err = stream(cells["snap"], "stderr")
    assert "skipped 'loader': loader.fh: an open file 'data.txt'" in err
    assert "skipped 'workers': workers[0]: a lock" in err
    assert "jupyter_mv note: mm: a numpy memmap of " in err
    with Store(tmp_path / ".jupyter_mv") as st:
        (v,) = st.versions("k6.ipynb")
        assert {"mm", "w"} <= set(v.variables) and not {"loader", "workers"} & set(v.variables)

    cells = execute([("load", "%load_ext jupyter_mv"), ("restore", "%mv_restore v1"),
                     ("check", "import json\nprint(json.dumps([type(mm).__name__, mm.tolist(), w.tolist()]))")])
    assert json.loads(stream(cells["check"], "stdout")) == ["ndarray", [0, 1, 2, 3, 4, 5], [1.0, 1.0, 1.0]]

    s = api.Session(namespace={})
    api.set_session(s)
    try:
        st = s.store(tmp_path / "bob" / ".jupyter_mv")
        v = api.import_bundle(tmp_path / "k6.mvz", store=st).version
        assert set(api.restore(v, ["mm", "w"], store=st)) == {"mm", "w"}  # plain arrays: no trust needed
        assert type(s.namespace["mm"]) is np.ndarray and s.namespace["mm"].tolist() == list(range(6))
    finally:
        api.set_session(None)


def test_snapshot_warnings_stay_warnings_in_a_fresh_interpreter(tmp_path):
    """A dependency (detect-secrets) redirects warnings to logging on import; a snapshot must leave the
    session's warnings as they were, so its own skipped-variable warnings are shown and catchable."""
    code = (
        "import warnings, jupyter_mv as mv\n"
        "from jupyter_mv import api\n"
        "before = warnings.showwarning\n"
        "api.set_session(api.Session(namespace={'fh': open('x.txt', 'w'), 'token_name': 'x' * 40, 'n': 1}))\n"
        "with warnings.catch_warnings(record=True) as rec:\n"
        "    warnings.simplefilter('always')\n"
        "    mv.snapshot()\n"
        "assert warnings.showwarning is before, warnings.showwarning\n"
        "assert any(\"skipped 'fh'\" in str(w.message) for w in rec), [str(w.message) for w in rec]\n"
        "print('ok')\n")
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MV_", "JPY_SESSION"))}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
