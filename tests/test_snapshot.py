"""The user flow of issue 2 in a real IPython shell: snapshot, history, diff, restore, outputs."""

from __future__ import annotations

import re

import numpy as np
import pytest

import jupyter_mv as mv
from jupyter_mv import api

SETUP = """
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
X, y = make_classification(n_samples=200, n_features=6, random_state=0)
"""

SUMMARY = re.compile(r"^v(\d+)  (.*?)(\d+) variables?  [\d.]+ (B|kB|MB|GB) stored(, [\d.]+ (B|kB|MB|GB) new)?"
                     r"( \([\d.]+ (B|kB|MB|GB) unchanged, shared with earlier versions\))?(  .*)?$")


def _summary(out: str) -> str:
    lines = [ln for ln in out.splitlines() if SUMMARY.match(ln)]
    assert len(lines) == 1, out
    return lines[0]


def test_whole_flow(shell, run, capsys):
    run(SETUP)
    run("clf = LogisticRegression(C=1.0).fit(X, y)")
    run("p1 = clf.predict_proba(X)")
    run("clf.predict(X[:7]).tolist()")  # an execute_result of the v1 era
    capsys.readouterr()
    run('%mv_snapshot clf -m "C=1" -t baseline')
    line = _summary(capsys.readouterr().out)
    assert line.startswith("v1  C=1  1 variable  ")
    assert "tags: baseline" in line

    run("clf = LogisticRegression(C=0.01).fit(X, y)")
    run("acc = float(clf.score(X, y))")
    run('%mv_snapshot clf -m "C=0.01" --metrics "{\'acc\': acc}"')
    line = _summary(capsys.readouterr().out)
    assert line.startswith("v2  C=0.01  1 variable  ")

    # history: oldest first, the contract's columns, v1/v2 labels
    h = mv.history()
    assert list(h["version"]) == ["v1", "v2"]
    assert list(h.columns[:9]) == ["version", "name", "message", "created", "tags", "params", "metrics",
                                   "variables", "bytes"]
    assert list(h["message"]) == ["C=1", "C=0.01"]
    assert h["tags"][0] == ["baseline"] and h["tags"][1] == []
    assert h["metrics"][1]["acc"] == pytest.approx(shell.user_ns["acc"])
    assert h["metrics"][0] == {}
    assert h["params"][0]["C"] == 1.0 and h["params"][1]["C"] == 0.01
    assert list(h["variables"][0]) == ["clf"]
    assert (h["bytes"] > 0).all()
    assert h["created"][0] <= h["created"][1]

    # structured diff
    d = mv.diff("v1", "v2").to_dict()
    assert d["a"] == "v1" and d["b"] == "v2"
    assert d["params"]["changed"]["C"] == [1.0, 0.01]
    assert d["metrics"]["added"] == {"acc": shell.user_ns["acc"]}
    assert [v["name"] for v in d["variables"]["changed"]] == ["clf"]
    assert any(c["status"] != "same" for c in d["cells"])

    # the rendered diff
    run("%mv_diff v1 v2")
    out = capsys.readouterr().out
    assert "diff v1 -> v2" in out
    assert re.search(r"C: 1 -> 0\.01", out), out

    # restore by tag: identical predictions
    run("%mv_restore baseline clf")
    out = capsys.readouterr().out
    assert "restored clf from v1" in out
    np.testing.assert_array_equal(shell.user_ns["clf"].predict_proba(shell.user_ns["X"]), shell.user_ns["p1"])
    assert shell.user_ns["clf"].C == 1.0

    # --prefix: beside the current one
    run("clf = LogisticRegression(C=0.01).fit(X, y)")
    run("%mv_restore v1 clf --prefix old_")
    assert shell.user_ns["old_clf"].C == 1.0 and shell.user_ns["clf"].C == 0.01
    np.testing.assert_array_equal(shell.user_ns["old_clf"].predict_proba(shell.user_ns["X"]), shell.user_ns["p1"])

    # --outputs: the v1-era execute_result comes back, no variable is touched
    capsys.readouterr()
    shell.user_ns.pop("old_clf")
    run("%mv_restore v1 --outputs")
    out = capsys.readouterr().out
    v1_pred = shell.user_ns["clf"].__class__(C=1.0).fit(shell.user_ns["X"], shell.user_ns["y"]).predict(
        shell.user_ns["X"][:7]).tolist()
    assert str(v1_pred) in out
    assert "old_clf" not in shell.user_ns

    # no names: every storable user variable
    run("%mv_snapshot")
    line = _summary(capsys.readouterr().out)
    assert line.startswith("v3  ")
    v3 = api.resolve("v3")
    assert {"X", "y", "clf", "p1", "acc"} <= set(v3.variables)
    assert not any(n.startswith("_") or n in ("In", "Out") for n in v3.variables)
    assert "LogisticRegression" not in v3.variables  # imported classes are code, not state


def test_summary_line_format(shell, run, capsys):
    run("import numpy as np; a = np.random.default_rng(0).random(1000); b = 3")
    capsys.readouterr()
    run('%mv_snapshot a b -m "two vars" -n first -t t1 -t t2')
    line = capsys.readouterr().out.strip()
    assert line.startswith("v1  first  two vars  2 variables  ")
    assert re.search(r"  8\.0 kB stored, 8\.0 kB new  ", line), line  # random floats do not compress
    assert line.endswith("tags: t1, t2")
    run("%mv_snapshot a b")
    line = capsys.readouterr().out.strip()
    # nothing changed: no new bytes
    assert re.fullmatch(r"v2  2 variables  (\d+\.\d kB) stored, 0 B new \(\1 unchanged, shared with earlier "
                        r"versions\)", line), line


def test_branch_parent(shell, run):
    run("a = 1")
    run("%mv_snapshot a")
    run("a = 2")
    run("%mv_snapshot a")
    run("a = 3")
    run("%mv_snapshot a")
    run("%mv_restore v1")
    assert shell.user_ns["a"] == 1
    run("a = 10")
    run("%mv_snapshot a")
    vs = api.versions()
    assert [v.n for v in vs] == [1, 2, 3, 4]
    assert [v.parent for v in vs] == [None, 1, 2, 1]
    parents = mv.history()["parent"]
    assert parents.isna().tolist() == [True, False, False, False]
    assert parents.tolist()[1:] == ["v1", "v2", "v1"]
    # restoring only some variables does not move the head
    run("%mv_restore v2 a")
    run("%mv_snapshot a")
    assert api.resolve("latest").parent == 4


def test_generator_and_open_file_skipped(shell, run, capsys, tmp_path):
    (tmp_path / "data.txt").write_text("hello\n")
    run("import numpy as np; arr = np.arange(10); gen = (i for i in range(3)); fh = open('data.txt')")
    capsys.readouterr()
    try:
        run("%mv_snapshot")
        cap = capsys.readouterr()
        assert cap.out.startswith("v1  ")
        assert "skipped: " in cap.out
        assert "'gen'" in cap.err and "'fh'" in cap.err
        assert "generator" in cap.err and "open file" in cap.err
        v = api.resolve("v1")
        assert "arr" in v.variables and "gen" not in v.variables and "fh" not in v.variables
        # named explicitly: still skipped, still succeeds
        run("%mv_snapshot gen fh arr")
        cap = capsys.readouterr()
        assert cap.out.startswith("v2  1 variable")
        assert "'gen'" in cap.err and "'fh'" in cap.err
        # the API warns instead
        with pytest.warns(UserWarning, match="skipped 'gen'"):
            v3 = mv.snapshot("gen", "arr")
        assert v3.variables == ("arr",)
    finally:
        shell.user_ns["fh"].close()


def test_sklearn_pipeline_restore(shell, run):
    run(SETUP)
    run("""
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)).fit(X, y)
proba = pipe.predict_proba(X)
""")
    run("%mv_snapshot pipe")
    run("pipe = make_pipeline(StandardScaler(), LogisticRegression(C=5.0)).fit(X[:50], y[:50])")
    assert not np.array_equal(shell.user_ns["pipe"].predict_proba(shell.user_ns["X"]), shell.user_ns["proba"])
    run("%mv_restore v1 pipe")
    pipe = shell.user_ns["pipe"]
    np.testing.assert_array_equal(pipe.predict_proba(shell.user_ns["X"]), shell.user_ns["proba"])
    assert [type(s).__name__ for _, s in pipe.steps] == ["StandardScaler", "LogisticRegression"]
    v = api.resolve("v1")
    assert v.params["logisticregression__C"] == 0.5
    assert mv.load("v1", "pipe").get_params()["logisticregression__max_iter"] == 500


def test_torch_model_and_optimizer(shell, run):
    import torch
    run("""
import torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
opt = torch.optim.Adam(model.parameters(), lr=0.01)
xb = torch.randn(16, 5)
for _ in range(3):
    opt.zero_grad(); loss = model(xb).pow(2).mean(); loss.backward(); opt.step()
ref_out = model(xb).detach().clone()
ref_state = {k: v.clone() for k, v in model.state_dict().items()}
""")
    run("%mv_snapshot model opt")
    v1 = api.resolve("v1")
    assert v1.params["lr"] == 0.01 or v1.params.get("opt.lr") == 0.01
    run("""
with torch.no_grad():
    for p in model.parameters(): p.add_(1.0)
opt = torch.optim.SGD(model.parameters(), lr=0.5)
""")
    run("%mv_restore v1 model opt")
    model, opt = shell.user_ns["model"], shell.user_ns["opt"]
    for k, t in model.state_dict().items():
        ref = shell.user_ns["ref_state"][k]
        assert t.dtype == ref.dtype and torch.equal(t, ref), k
    assert torch.equal(model(shell.user_ns["xb"]), shell.user_ns["ref_out"])
    assert isinstance(opt, torch.optim.Adam)
    # restored together: the optimizer steps the restored model's parameters
    opt_params = [p for g in opt.param_groups for p in g["params"]]
    model_params = list(model.parameters())
    assert len(opt_params) == len(model_params)
    assert all(a is b for a, b in zip(opt_params, model_params))
    assert all(isinstance(p, torch.nn.Parameter) and p.requires_grad for p in model_params)
    # its state (Adam moments) is back too, and training continues on the same tensors
    assert len(opt.state) == len(model_params)
    before = model_params[0].detach().clone()
    opt.zero_grad(); model(shell.user_ns["xb"]).pow(2).mean().backward(); opt.step()  # noqa: E702
    assert not torch.equal(before, model_params[0].detach())


def test_dollar_expansion_and_quoting(shell, run, capsys):
    run("a = 1; ref = 'v1'; var = 'a'; msg = 'with spaces'")
    run('%mv_snapshot $var -m "quoted message with spaces" -t first')
    run("a = 2")
    run('%mv_snapshot a -m "$msg"')  # expanded by IPython, then kept as one argument
    capsys.readouterr()
    vs = api.versions()
    assert vs[0].message == "quoted message with spaces"
    assert vs[1].message == "with spaces"
    run("%mv_restore $ref $var")
    assert shell.user_ns["a"] == 1
    run("tagname = 'best'")
    run("%mv_tag v2 $tagname")
    assert api.resolve("best").n == 2
    run("""%mv_snapshot a --metrics "{'x y': 1.5, \\"q\\": 2}" --params "dict(note='a b')" """)
    v = api.resolve("latest")
    assert v.metrics == {"x y": 1.5, "q": 2.0}
    assert v.params["note"] == "a b"


def test_params_auto_and_explicit(shell, run):
    # upper-case module-level constants are params by convention; lower-case scalars are not
    run("LR = 0.1; EPOCHS = 3; LABEL = 'x'; FLAG = True; BIG = 'y' * 500; lr = 0.5; epochs = 9\n"
        "import numpy as np; w = np.ones(3)")
    run("%mv_snapshot w --params \"{'extra': [1, 2], 'lr': lr}\"")
    v = api.resolve("v1")
    assert v.params == {"LR": 0.1, "EPOCHS": 3, "LABEL": "x", "FLAG": True, "extra": [1, 2], "lr": 0.5}


def test_show_and_tag(shell, run, capsys):
    run("a = [1, 2, 3]")
    run("%mv_snapshot a -m first")
    run("%mv_tag v1 good")
    assert "v1  tags: good" in capsys.readouterr().out
    run("%mv_show good")
    out = capsys.readouterr().out
    assert "v1  first" in out and "builtins.list" in out
    run("%mv_tag v1 good --remove")
    assert api.resolve("v1").tags == ()
    run("%mv_log")
    out = capsys.readouterr().out
    assert "v1" in out and "first" in out


def test_restore_all_and_exact_values(shell, run):
    run("import numpy as np, pandas as pd\n"
        "arr = np.arange(12, dtype='>i4').reshape(3, 4)\n"
        "df = pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})\n"
        "d = {'k': (1, 2.5, None), 1: b'\\x00'}")
    run("%mv_snapshot")
    run("del arr, df, d")
    run("%mv_restore v1")
    ns = shell.user_ns
    assert ns["arr"].dtype == np.dtype(">i4") and np.array_equal(ns["arr"], np.arange(12).reshape(3, 4))
    assert ns["df"].equals(__import__("pandas").DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert ns["d"] == {"k": (1, 2.5, None), 1: b"\x00"}


def test_cells_before_loading_are_recorded(shell, run):
    run("%unload_ext jupyter_mv")
    run("x = 40")
    run("x + 2")
    run("%load_ext jupyter_mv")
    run("y = 1")
    run("%mv_snapshot x y")
    cells = mv.outputs("v1")
    sources = [c.source for c in cells]
    assert sources == ["%unload_ext jupyter_mv", "x = 40", "x + 2", "%load_ext jupyter_mv", "y = 1",
                       "%mv_snapshot x y"]
    assert [c.execution_count for c in cells] == [1, 2, 3, 4, 5, 6]
    assert cells[2].outputs[0]["output_type"] == "execute_result"
    assert cells[2].outputs[0]["data"]["text/plain"] == "42"
