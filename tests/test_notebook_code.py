"""K2: notebook-defined code behaves as notebook code after a restore — functions read and write the
notebook's globals, instances belong to the live class of their name (which a restore never
changes), notebook Enum/IntFlag classes restore equal, and identical state hashes identically
(two kernels, auto mode). Same kernel, fresh kernel, and export -> import into another store."""

from __future__ import annotations

import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from jupyter_mv import api
from jupyter_mv.store import Store

CODE = ("counter = 0\n"
        "def helper():\n"
        "    return 1\n"
        "def bump():\n"
        "    global counter\n"
        "    counter += helper()\n"
        "    return counter")
CLASS = ("class Point:\n"
         "    kind = 'point'\n"
         "    def __init__(self, x, y):\n"
         "        self.x, self.y = x, y\n"
         "    def norm(self):\n"
         "        return abs(self.x) + abs(self.y)")
POINT = "p = Point(1, -2)"
ENUMS = ("from enum import Enum, IntFlag\n"
         "class Perm(IntFlag):\n"
         "    R = 1\n"
         "    W = 2\n"
         "    X = 8\n"
         "    RWX = 11\n"
         "    MASK = 37\n"
         "    WIDE = 389\n"
         "class Color(Enum):\n"
         "    RED = 1\n"
         "    GREEN = 2\n"
         "perm = Perm.R | Perm.W\n"
         "wide = Perm.WIDE\n"
         "odd = Perm(37) | Perm.W\n"
         "col = Color.GREEN\n"
         "by_color = {Color.RED: 'stop', Color.GREEN: 'go'}")
ENUMS_CHECK = ("assert perm == Perm.R | Perm.W and perm == 3\n"
               "assert wide is Perm.WIDE and int(wide) == 389\n"
               "assert odd == Perm(39) and int(odd) == 39\n"
               "assert col is Color.GREEN\n"
               "assert by_color[Color.GREEN] == 'go'")
# the checks for a kernel that has no class of that name: the stored definitions come back
ENUMS_CHECK_STORED = ("assert int(perm) == 3 and type(perm).__name__ == 'Perm'\n"
                      "assert int(wide) == 389 and wide.name == 'WIDE' and wide is type(wide).WIDE\n"
                      "assert int(odd) == 39 and col.name == 'GREEN' and col.value == 2\n"
                      "assert by_color[col] == 'go'")
STATE = ("tags = {'alpha', 'beta', 'gamma', 'delta', 'epsilon'}\n"
         "nested = {'k': frozenset({'x', 'y', 'z'}), 'l': [{'q', 'r'}]}\n"
         "obj = type('Thing', (), {})()\n"
         "square = lambda v: v * v\n"
         "pts = [Point(i, -i) for i in range(3)]\n"
         "import matplotlib\n"
         "matplotlib.use('Agg')\n"
         "import matplotlib.pyplot as plt\n"
         "fig, ax = plt.subplots()\n"
         "line, = ax.plot([0, 1, 2], [2, 0, 1])\n"
         "fig.canvas.draw()\n"
         "from collections import Counter, defaultdict, deque\n"
         "cnt = Counter('hello world')\n"
         "dq = deque([{'a', 'b', 'c'}])\n"
         "dd = defaultdict(set, {'k': {'x', 'y', 'z'}})\n"
         "import numpy as np, pandas as pd\n"
         "rng = np.random.default_rng(0)\n"
         "frame = pd.DataFrame({'s': [{'u', 'v', 'w'}, {'w'}], 'n': [1, 2]})")


def _lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("restored")]


# -- same kernel --------------------------------------------------------------------------------
def test_restored_function_uses_the_notebook_globals(shell, run, capsys):
    run(CODE)
    run("%mv_snapshot")
    run("counter = 5\n"
        "def helper():\n"
        "    return 10")
    run("%mv_restore v1 bump")
    assert _lines(capsys) == ["restored bump from v1"]
    assert run("bump()") == 15
    assert shell.user_ns["counter"] == 15  # the notebook's counter, not a private copy
    assert run("bump.__globals__ is globals()")
    run("%mv_restore v1 bump --prefix old_")
    assert run("old_bump()") == 25 and shell.user_ns["counter"] == 25


def test_instances_belong_to_the_live_class_which_is_never_changed(shell, run, capsys):
    run(CLASS)
    run(POINT)
    run("%mv_snapshot")
    run(CLASS)  # the class cell re-run: a new class object of the same name
    run("Point.kind = 'changed since'\nPoint.norm = lambda self: 100\nlive = Point")
    run("%mv_restore v1 p")
    assert run("type(p) is Point and isinstance(p, Point)")
    assert run("p.norm()") == 100  # the live (patched) class
    run("%mv_restore v1 p --prefix old_")
    assert run("type(old_p) is Point and (old_p.x, old_p.y) == (1, -2)")
    run("%mv_restore v1 Point")  # the class variable itself: the live class of that name, unchanged
    assert run("Point is live and Point.kind == 'changed since' and Point(3, 4).norm() == 100")
    assert "defined" not in " ".join(_lines(capsys))


def test_notebook_enums_and_multi_bit_flags(shell, run):
    run(ENUMS)
    run("%mv_snapshot")
    run("perm = wide = odd = col = by_color = None")
    run("%mv_restore v1 perm wide odd col by_color")
    run(ENUMS_CHECK)
    run(ENUMS)  # the class cell re-run: members of the new classes
    run("%mv_restore v1")
    run(ENUMS_CHECK)


def test_identical_state_hashes_identically_and_auto_mode_skips_no_op_cells(shell, run):
    run(CLASS)
    run(CODE)
    run(ENUMS)
    run(STATE)
    run("%mv_auto on")
    run("x = 1")
    n = len(api.versions())
    for cell in ("pass", "print(p if 'p' in dir() else tags)", "sorted(tags)", "repr(obj); str(pts)",
                 "isinstance(pts[0], Point)", "fig.canvas.draw()", "ax.get_xlim()"):
        run(cell)
    assert len(api.versions()) == n, "a cell that changed nothing made a version"
    run("pts.append(Point(9, 9))")
    assert len(api.versions()) == n + 1


def test_partials_and_generic_classes_are_stored_deterministically(shell, run, capsys):
    """A functools.partial is data (its bound arguments), not imported code: an argument-less
    snapshot keeps it. A notebook TypeVar (a Generic class's parameter) is written without
    cloudpickle's random tracker id, so the same definitions run again hash the same."""
    src = ("import functools\n"
           "from typing import Generic, TypeVar\n"
           "T = TypeVar('T', bound=int)\n"
           "class Box(Generic[T]):\n"
           "    def __init__(self, item):\n"
           "        self.item = item\n"
           "def add(a, b):\n"
           "    return a + b\n"
           "bx = Box[int](4)\n"
           "p3 = functools.partial(add, 3)\n"
           "kw = functools.partial(add, b=10)")
    run(src)
    v1 = api.snapshot()
    assert {"p3", "kw", "T", "Box", "bx"} <= set(v1.variables)
    run(src)  # the same cell run again: new objects, identical state
    v2 = api.snapshot()
    d = api.diff(v1.label, v2.label)
    assert [c["name"] for c in d.variables["changed"]] == []
    run("del T, Box, bx, p3, kw")
    capsys.readouterr()
    run(f"%mv_restore {v1.label}")
    assert run("p3(4) == 7 and kw(1) == 11 and isinstance(bx, Box) and bx.item == 4")
    assert run("Box.__parameters__ == (T,) and Box.__parameters__[0] is T and T.__bound__ is int")


_SETS_PROGRAM = """
import collections, dataclasses, enum, hashlib, json, sys
from jupyter_mv import codecs
class Color(enum.Enum):
    R = 1
    G = 2
    B = 3
NT = collections.namedtuple('NT', 'a b')
@dataclasses.dataclass(frozen=True)
class P:
    s: str
values = {'enums': {Color.R, Color.G, Color.B}, 'namedtuples': {NT('x', 1), NT('y', 2), NT('z', 3)},
          'frozen': {P('a'), P('b'), P('c')}, 'of_sets': {frozenset({'a'}), frozenset({'b'}), frozenset({'c', 'd'})},
          'mixed': {'a', 1, None, 2.5, ('t', 'u')}, 'ints': set(range(50))}
out = {}
for k, v in values.items():
    e = codecs.encode(v)
    out[k] = hashlib.sha256(b''.join(bytes(b) for b in e.buffers) + json.dumps(e.meta, sort_keys=True, default=str).encode()).hexdigest()
print(json.dumps(out))
"""


def test_sets_of_hash_seeded_elements_store_the_same_bytes_in_every_process(tmp_path):
    """A set's iteration order follows its elements' hashes; Enum members, namedtuples and frozen
    dataclasses hash through strings, which PYTHONHASHSEED changes per kernel: such sets (and sets of
    frozensets, which sort by inclusion only) are written in a fixed order."""
    import json
    import subprocess

    runs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([sys.executable, "-c", _SETS_PROGRAM], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=120)
        assert r.returncode == 0, r.stderr
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    assert runs[0] == runs[1] == runs[2]


def test_a_partial_read_by_inspect_keeps_its_hash(shell, run):
    """CPython creates a partial's `__dict__` the first time it is read (functools.wraps, inspect,
    matplotlib's callbacks while a figure is drawn); the partial's pickle must not change with it,
    or auto mode makes a version for a cell that changed nothing."""
    run("import functools, inspect\n"
        "def add(a, b):\n"
        "    return a + b\n"
        "p = functools.partial(add, 1)\n"
        "handlers = {'on_add': functools.partial(add, b=2)}")
    v1 = api.snapshot()
    run("inspect.signature(p); p.__dict__; handlers['on_add'].__dict__")
    v2 = api.snapshot()
    assert [c["name"] for c in api.diff(v1.label, v2.label).variables["changed"]] == []
    run("p.note = 'tagged'")  # a real attribute is state
    v3 = api.snapshot()
    assert [c["name"] for c in api.diff(v2.label, v3.label).variables["changed"]] == ["p"]
    run("del p")
    run(f"%mv_restore {v3.label} p")
    assert run("p(2) == 3 and p.note == 'tagged'")


def test_notebook_code_after_export_and_import(shell, run, tmp_path):
    run(CODE)
    run(CLASS)
    run(POINT)
    run(ENUMS)
    v = api.snapshot()
    path = api.export(v, tmp_path / "code.mvz")
    with Store(tmp_path / "colleague" / ".jupyter_mv") as other:
        got = api.import_bundle(path, store=other).version
        run("counter = 100\n"
            "def helper():\n"
            "    return 2")
        run(CLASS)
        run("Point.kind = 'live'")
        run("perm = wide = odd = col = by_color = p = bump = None")
        api.restore(got, ["bump", "p", "perm", "wide", "odd", "col", "by_color"], trust=True, store=other)
    assert run("bump()") == 102
    assert run("type(p) is Point and Point.kind == 'live'")
    run(ENUMS_CHECK)


# -- fresh kernels ------------------------------------------------------------------------------------
def _nb(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    return nb


def _run_kernel(cells, cwd):
    return NotebookClient(_nb(cells), timeout=240, kernel_name="python3",
                          resources={"metadata": {"path": str(cwd)}}).execute()


def _out(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{sys.prefix}/bin:" + os.environ.get("PATH", ""))
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "code.ipynb")
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)  # each kernel its own string hash seed
    return tmp_path


@pytest.mark.kernel
@pytest.mark.slow
def test_fresh_kernels(kernels):
    first = _run_kernel(["%load_ext jupyter_mv", CODE, CLASS, POINT, ENUMS, STATE, "%mv_snapshot -m first"],
                        kernels)
    assert _out(first.cells[-1]).startswith("v1  first")
    # the same notebook in a second kernel: the same content hashes, so no changed variable
    second = _run_kernel(["%load_ext jupyter_mv", CODE, CLASS, POINT, ENUMS, STATE, "%mv_snapshot -m second",
                          "d = __import__('jupyter_mv').diff('v1', 'v2')\n"
                          "print('changed', [c['name'] for c in d.variables['changed']])"], kernels)
    assert _out(second.cells[-1]).strip() == "changed []"
    # a kernel that ran the class cells: instances and members belong to its classes
    third = _run_kernel(["%load_ext jupyter_mv", CLASS, ENUMS, "counter = 40",
                         "%mv_restore v1 p bump perm wide odd col by_color", ENUMS_CHECK,
                         "assert type(p) is Point and isinstance(p, Point)\nprint('bumped', bump(), counter)"],
                        kernels)
    assert _out(third.cells[4]).strip() == ("restored p, bump, perm, wide, odd, col, by_color from v1; "
                                            "defined helper (used by the restored code, missing here)")
    assert _out(third.cells[-1]).strip() == "bumped 41 41"
    # a kernel with no such classes: the stored definitions come back (and are defined, named)
    fourth = _run_kernel(["%load_ext jupyter_mv", "%mv_restore v1 p perm wide odd col by_color bump",
                          ENUMS_CHECK_STORED,
                          "assert type(p) is Point and p.norm() == 3 and Point.kind == 'point'\n"
                          "print('bumped', bump(), counter)"], kernels)
    line = _out(fourth.cells[1]).strip()
    assert line.startswith("restored p, perm, wide, odd, col, by_color, bump from v1; defined ")
    assert all(n in line.split("defined ")[1] for n in ("Point", "Perm", "Color", "counter", "helper"))
    assert _out(fourth.cells[-1]).strip() == "bumped 1 1"
