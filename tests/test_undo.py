"""%mv_undo and mv.undo() in a real IPython shell: the variables before the last executed cell come back
exactly (values, types, objects shared between variables), names the cell created are removed, repeated
undo walks back, the undone state stays reachable as a version."""

from __future__ import annotations

import numpy as np
import pytest
from IPython.core.error import UsageError

from jupyter_mv import api, config
from jupyter_mv.errors import NothingToUndo

SETUP = """
import numpy as np
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
clf = LogisticRegression(C=1.0).fit(X, y)
pipe = {"model": clf, "note": "baseline"}
"""


def _out(capsys):
    return capsys.readouterr()


def test_undo_restores_changed_and_removes_created(shell, run, capsys):
    run(SETUP)
    run("coef_before = clf.coef_.copy(); ident = id(clf)")
    # in place (fit) and rebinding of a co-variable's content, plus a new name
    run("clf.set_params(C=0.01).fit(X * 3, y); tmp = [1, 2, 3]; pipe['note'] = 'changed'")
    ns = shell.user_ns
    assert ns["clf"].C == 0.01 and "tmp" in ns
    _out(capsys)
    run("%mv_undo")
    out = _out(capsys).out
    assert out.startswith("undid In [")
    assert "restored " in out and "clf" in out and "removed tmp" in out
    clf = ns["clf"]
    assert type(clf).__name__ == "LogisticRegression" and clf.C == 1.0
    np.testing.assert_array_equal(clf.coef_, ns["coef_before"])
    assert clf.coef_.dtype == ns["coef_before"].dtype
    assert ns["pipe"]["model"] is clf  # sharing between variables survives
    assert ns["pipe"]["note"] == "baseline"
    assert "tmp" not in ns
    assert ns["X"].shape == (60, 3)


def test_undone_state_is_a_version(shell, run, capsys):
    run(SETUP)
    run("clf.set_params(C=0.5); tmp = 7")
    _out(capsys)
    run("%mv_undo")
    out = _out(capsys).out
    label = out.strip().rsplit("the undone state is ", 1)[1]
    st = api.session().store()
    v = st.resolve(api.current_notebook(), label)
    assert {"clf", "tmp"} <= set(v.variables)
    assert api.load(label, "tmp") == 7 and api.load(label, "clf").C == 0.5
    # and it can be brought back
    run(f"%mv_restore {label}")
    assert shell.user_ns["tmp"] == 7 and shell.user_ns["clf"].C == 0.5


def test_repeated_undo_walks_back_and_then_says_so(shell, run, capsys):
    run("a = 1")
    run("a = 2; b = 'x'")
    run("print('no change')")
    run("a = 3; c = np_missing = None")
    ns = shell.user_ns
    run("%mv_undo")
    assert ns["a"] == 2 and "c" not in ns and "np_missing" not in ns and ns["b"] == "x"
    _out(capsys)
    run("%mv_undo")  # passes over the print cell, which changed nothing
    out = _out(capsys).out
    assert "changed no variable" in out
    assert ns["a"] == 1 and "b" not in ns
    run("%mv_undo")  # the first cell: a did not exist
    assert "a" not in ns
    _out(capsys)
    run("%mv_undo")
    out = _out(capsys).out.strip()
    assert out.startswith("nothing to undo") and "\n" not in out


def test_nothing_to_undo_before_any_cell(shell, run, capsys):
    _out(capsys)
    run("%mv_undo")
    out = _out(capsys)
    assert out.out.strip() == "nothing to undo: no cell has run since jupyter_mv was loaded"
    assert out.err == ""
    with pytest.raises(NothingToUndo, match="nothing to undo"):
        api.undo()


def test_undo_across_a_cell_that_raised(shell, run):
    run("model = {'w': [1.0, 2.0]}; alias = model")
    with pytest.raises(ZeroDivisionError):
        run("model['w'].append(3.0); half = 1; 1 / 0; never = 2")
    ns = shell.user_ns
    assert ns["model"]["w"] == [1.0, 2.0, 3.0] and "half" in ns
    run("%mv_undo")
    assert ns["model"] == {"w": [1.0, 2.0]} and "half" not in ns
    assert ns["alias"] is ns["model"]


def test_undo_of_a_deletion_and_of_a_numpy_view(shell, run):
    run("import numpy as np\nbase = np.arange(12.0)\nview = base[2:6]")
    run("view[:] = -1; del base")
    ns = shell.user_ns
    assert "base" not in ns
    run("%mv_undo")
    np.testing.assert_array_equal(ns["base"], np.arange(12.0))
    assert np.shares_memory(ns["view"], ns["base"])  # the view is a view of the restored array
    np.testing.assert_array_equal(ns["view"], [2.0, 3.0, 4.0, 5.0])


def test_undo_of_a_class_redefinition_or_deletion_brings_the_earlier_class_back(shell, run, capsys):
    """A notebook class restores as the notebook's class of that name: undoing a cell that redefined it
    must put the earlier class object back (not the new one under the old label), still the type of the
    instances made before it; and after `del` too."""
    run("class K:\n    v = 1\n    def f(self):\n        return 'old'\nk = K()\nbox = {'cls': K}")
    run("class K:\n    v = 2\n    def f(self):\n        return 'new'\nk2 = K()")
    _out(capsys)
    run("%mv_undo")
    assert "restored K" in _out(capsys).out
    ns = shell.user_ns
    assert ns["K"].v == 1 and ns["K"]().f() == "old" and "k2" not in ns
    assert type(ns["k"]) is ns["K"] and ns["box"]["cls"] is ns["K"]
    run("del K, k")
    run("%mv_undo")
    assert ns["K"].v == 1 and type(ns["k"]) is ns["K"] and ns["box"]["cls"] is ns["K"]


def test_undo_of_a_class_changed_in_place_sets_its_attributes_back(shell, run, capsys):
    """`K.v = 5`, a registry appended to, a method patched, an attribute added: undo sets the class's
    attributes back (same class object, instances keep it; super() in its methods still works)."""
    run("class B:\n    def f(self):\n        return 'b'\nclass K(B):\n    v = 1\n    seen = []\n"
        "    def f(self):\n        return 'k' + super().f()\nk = K()")
    K = shell.user_ns["K"]
    run("K.v = 5; K.seen.append(1); K.extra = 3\ndef h(self):\n    return 'patched'\nK.f = h")
    _out(capsys)
    run("%mv_undo")
    assert "restored K" in _out(capsys).out
    ns = shell.user_ns
    assert ns["K"] is K and type(ns["k"]) is K
    assert K.v == 1 and K.seen == [] and not hasattr(K, "extra") and "h" not in ns
    assert ns["k"].f() == "kb" and K().f() == "kb"


def test_undo_puts_back_imported_names_a_cell_rebound_or_deleted(shell, run, capsys):
    """Modules and library functions are not stored, only referred to: undoing `np = 5`, `del pd` or
    `sqrt = 'x'` puts the very module / function back (`np` was deleted: the name looked 'created'). An
    import itself is not undone (docs/timetravel.md): a cell that only imports changed no variable."""
    run("import numpy as np\nimport pandas as pd\nfrom math import sqrt\narr = np.arange(3)")
    run("np = 5; sqrt = 'oops'; del pd; arr = arr * 2")
    _out(capsys)
    run("%mv_undo")
    out = _out(capsys).out
    assert "restored" in out and "np" in out and "pd" in out and "sqrt" in out
    ns = shell.user_ns
    assert ns["np"] is np and ns["sqrt"](4) == 2 and ns["pd"].__name__ == "pandas"
    np.testing.assert_array_equal(ns["arr"], [0, 1, 2])
    run("del pd")  # deleting an imported name alone is a change undo takes back
    run("import json")  # an import alone is not
    _out(capsys)
    run("%mv_undo")
    assert "restored pd (In [" in _out(capsys).out and ns["pd"].__name__ == "pandas" and ns["json"].__name__ == "json"


def test_undo_keeps_credentials_and_types(shell, run):
    run("key = 'sk-live-abcdefghijklmnopqrstuvwxyz0123456789'; n = 3; f = 2.5; t = (1, 'a')")
    run("key = 'other'; n = 3.0; f = 2; t = [1, 'a']")
    run("%mv_undo")
    ns = shell.user_ns
    assert ns["key"] == "sk-live-abcdefghijklmnopqrstuvwxyz0123456789"
    assert type(ns["n"]) is int and type(ns["f"]) is float and ns["t"] == (1, "a")


def test_unstorable_names_are_named_not_lost(shell, run, tmp_path, capsys):
    (tmp_path / "data.txt").write_text("x")
    run("fh = open('data.txt'); k = 1")
    run("k = 2; fh.read()")
    _out(capsys)
    run("%mv_undo")
    cap = _out(capsys)
    ns = shell.user_ns
    assert ns["k"] == 1 and not ns["fh"].closed  # the open file is left as it is, and said so
    assert "left 'fh' as it is" in cap.err
    ns["fh"].close()


def test_api_undo_returns_the_result(shell, run):
    run("x = 1")
    run("x = 2; y = 3")
    import jupyter_mv as mv

    res = mv.undo()
    assert res.restored == ("x",) and res.removed == ("y",) and res.cell.startswith("In [")
    assert res.saved is not None and res.summary_line().startswith("undid ")


def test_undo_with_auto_mode_uses_no_extra_version_and_sets_the_head(shell, run):
    run("%mv_auto on")
    run("w = [1]")
    run("w.append(2); z = 0")
    st = api.session().store()
    nb = api.current_notebook()
    before = [v.label for v in st.versions(nb)]
    run("%mv_undo")
    assert shell.user_ns["w"] == [1] and "z" not in shell.user_ns
    assert [v.label for v in st.versions(nb)] == before  # the undone state was the last auto version
    head = api.session().heads[(st.root, nb)]
    assert set(st.resolve(nb, head).variables) == {"w"}  # the next snapshot descends from the state undone to
    run("q = 5")
    latest = st.versions(nb)[-1]
    assert latest.parent == head


def test_undo_off(shell, run, capsys):
    shell.run_line_magic("config", "JupyterMV.undo_depth = 0")
    try:
        run("u = 1")
        run("u = 2")
        _out(capsys)
        run("%mv_undo")
        assert "undo journal is off" in _out(capsys).out
        assert shell.user_ns["u"] == 2
    finally:
        shell.run_line_magic("config", "JupyterMV.undo_depth = 20")


def test_depth_bounds_the_journal(shell, run, capsys):
    shell.run_line_magic("config", "JupyterMV.undo_depth = 2")
    try:
        for i in range(5):
            run(f"d = {i}")
        journal = api.session().journal
        assert len(journal.entries) == 2
        run("%mv_undo")
        run("%mv_undo")
        assert shell.user_ns["d"] == 2
        _out(capsys)
        run("%mv_undo")
        assert "the last 2 cells" in _out(capsys).out
    finally:
        shell.run_line_magic("config", "JupyterMV.undo_depth = 20")
    assert config.current().undo_depth == 20


def test_the_journal_stays_under_its_byte_budget(shell, run, capsys, monkeypatch):
    """A cell that rewrites a large array (a training step over a big model) run again and again: the
    journal drops its oldest cells beyond undo.MAX_BYTES (the last always stays) and frees their disk, and
    the 'nothing to undo' line says why it holds fewer cells than undo_depth."""
    from mvtest import store_bytes

    from jupyter_mv import journal as undo
    monkeypatch.setattr(undo, "MAX_BYTES", 3_500_000)
    run("import numpy as np\nrng = np.random.default_rng(0)\nw = rng.random(125_000)")  # 1 MB, incompressible
    for _ in range(8):
        run("w = rng.random(125_000)")
    journal = api.session().journal
    assert 2 <= len(journal.entries) <= 4 and journal._bytes() <= 3_500_000
    assert store_bytes(journal._dir / "store") < 6_000_000  # freed on disk, not only forgotten
    want = shell.user_ns["w"].copy()
    run("w = rng.random(125_000)")
    run("%mv_undo")
    np.testing.assert_array_equal(shell.user_ns["w"], want)  # the last cell is always undoable
    for _ in range(5):
        run("%mv_undo")
    out = _out(capsys).out.strip().splitlines()[-1]
    assert out.startswith("nothing to undo") and "fewer when their variables would take more than" in out


def test_a_backward_cell_is_the_one_undone_and_its_gradients_go(shell, run, capsys):
    """`loss.backward()` changes only gradients (.grad), which no version stores: the journal still sees
    the cell as a change, so undo takes back that cell (not the one before it) and unsets the gradients it
    made; gradients it cannot put back (set before the cell) are named, never silently dropped."""
    import warnings

    torch = pytest.importorskip("torch")
    run("import torch\ntorch.manual_seed(0)\nm = torch.nn.Linear(3, 2)\nopt = torch.optim.SGD(m.parameters(), lr=0.1)\n"
        "w = torch.ones(3, requires_grad=True)")
    run("loss = (m(torch.ones(1, 3)).sum() + (w * 2).sum())")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "non-leaf .grad accessed" warning for `loss`
        run("loss.backward()")
    ns = shell.user_ns
    assert ns["w"].grad is not None and ns["m"].weight.grad is not None
    _out(capsys)
    run("%mv_undo")
    cap = _out(capsys)
    assert "(loss.backward())" in cap.out and "loss" in ns  # that cell, not the one that made `loss`
    assert ns["w"].grad is None and all(p.grad is None for p in ns["m"].parameters()) and cap.err == ""
    run("loss = (w * 3).sum(); loss.backward()")  # gradients set before the next cell...
    run("loss = (w * 5).sum(); loss.backward()")  # ...which accumulates into them
    _out(capsys)
    run("%mv_undo")
    cap = _out(capsys)
    assert "could not put back 'w'" in cap.err and "gradients (.grad)" in cap.err
    assert ns["loss"].item() == 9.0


def test_undo_takes_no_arguments(shell, run):
    with pytest.raises(UsageError, match="%mv_undo"):
        run("%mv_undo v1")


def test_journal_is_removed_with_the_session(shell, run):
    run("a = 1")
    journal = api.session().journal
    d = journal._dir
    assert d is not None and d.exists()
    api.session().close()
    assert not d.exists()


def test_a_restore_outside_a_cell_can_be_undone(shell, run, capsys):
    """The sidebar's Restore and Resume run %mv_restore silently (no cell, no pre-cell record): the
    restore records the variables before it itself."""
    run("w = [1, 2]; keep = 'k'")
    run("%mv_snapshot w -m base")
    run("w.append(3); extra = 1")
    # as the lab runs it: a silent execution triggers no pre_run_cell/post_run_cell
    shell.run_cell("%mv_restore v1", silent=True)
    ns = shell.user_ns
    assert ns["w"] == [1, 2] and ns["extra"] == 1
    _out(capsys)
    run("%mv_undo")
    assert "undid the restore of v1: restored w" in _out(capsys).out
    assert ns["w"] == [1, 2, 3] and ns["extra"] == 1 and ns["keep"] == "k"


def test_the_journal_is_silent(shell, run, recwarn, capsys):
    """Recording before each cell never prints or warns, even for a variable it cannot hold or whose
    pickling warns."""
    run("import warnings\nclass Noisy:\n    def __reduce__(self):\n        warnings.warn('pickling Noisy')\n"
        "        return (Noisy, ())\nn = Noisy()\ngen = (i for i in range(3))")
    _out(capsys)
    recwarn.clear()
    run("z = 1")
    out = _out(capsys)
    assert out.out == "" and out.err == ""
    assert not [w for w in recwarn if "Noisy" in str(w.message)]


_JOURNAL_CHILD = """
import sys, time
from jupyter_mv import journal as undo
j = undo.Journal()
j.record({"a": 1}, set(), "In [1]", "a = 1")
print(j._dir, flush=True)
time.sleep(600)
"""


def _journal_child(tmp_path):
    import os
    import subprocess
    import sys
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    p = subprocess.Popen([sys.executable, "-c", _JOURNAL_CHILD], env=env, stdout=subprocess.PIPE, text=True)
    from pathlib import Path
    return p, Path(p.stdout.readline().strip())


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_journal_left_by_a_killed_kernel_is_removed_by_the_next_one(tmp_path, how):
    import os
    import signal
    import time

    from jupyter_mv import journal as undo
    dead, dead_dir = _journal_child(tmp_path)
    alive, alive_dir = _journal_child(tmp_path)
    try:
        assert dead_dir.parent == tmp_path and (dead_dir / "store").is_dir() and alive_dir.is_dir()
        assert undo.remove_orphans(tmp_path) == []  # both processes alive: nothing removed
        os.kill(dead.pid, getattr(signal, how))
        dead.wait(10)
        assert dead_dir.exists()  # a killed process runs no cleanup...
        # ...an old folder of a jupyter_mv before the lock (no lock file), and a fresh one being created now
        old, fresh = tmp_path / (undo.DIR_PREFIX + "old"), tmp_path / (undo.DIR_PREFIX + "fresh")
        (old / "store").mkdir(parents=True)
        fresh.mkdir()
        os.utime(old, (time.time() - undo.UNLOCKED_AGE - 5,) * 2)
        # ...so the next journal opened on the machine removes it, and only it and the old one
        assert sorted(undo.remove_orphans(tmp_path)) == sorted([dead_dir, old])
        assert not dead_dir.exists() and not old.exists() and alive_dir.is_dir() and fresh.is_dir()
        j = undo.Journal()
        try:
            j.record({"b": 2}, set(), "In [1]", "b = 2")
            assert alive_dir.is_dir() and j._dir.is_dir()
            assert undo.remove_orphans(j._dir.parent) == []  # its own journal, held by this process
        finally:
            j.close()
    finally:
        alive.kill()
        alive.wait(10)
    assert [p.name for p in undo.remove_orphans(tmp_path)] == [alive_dir.name]
