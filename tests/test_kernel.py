"""The whole flow in a real Jupyter kernel (nbclient executing an nbformat notebook): magics, outputs
recorded kernel-side, restore, and the notebook name taken from the environment."""

from __future__ import annotations

import json
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from jupyter_mv.store import Store

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

FLOW = [
    ("load", "%load_ext jupyter_mv"),
    ("fit1", "from sklearn.datasets import make_classification\n"
             "from sklearn.linear_model import LogisticRegression\n"
             "X, y = make_classification(n_samples=200, n_features=6, random_state=0)\n"
             "clf = LogisticRegression(C=1.0).fit(X, y)\n"
             "p1 = clf.predict_proba(X)"),
    ("out1", "print('training done: C=1')\nclf.predict(X[:5]).tolist()"),
    ("snap1", '%mv_snapshot clf -m "C=1" -t baseline'),
    ("fit2", "clf = LogisticRegression(C=0.01).fit(X, y)\nacc = clf.score(X, y)"),
    ("snap2", '%mv_snapshot clf -m "C=0.01" --metrics "{\'acc\': acc}"'),
    ("hist", "import jupyter_mv as mv\nh = mv.history()\nprint(list(h['version']), list(h['message']))"),
    ("diff", "print(mv.diff('v1', 'v2').to_dict()['params']['changed']['C'])"),
    ("mvdiff", "%mv_diff v1 v2"),
    ("restore", "%mv_restore baseline clf"),
    ("same", "print('identical:', bool((clf.predict_proba(X) == p1).all()))"),
    ("outputs", "%mv_restore v1 --outputs"),
    ("snapall", "%mv_snapshot"),
    ("nb", "from jupyter_mv import api\nprint('notebook:', api.current_notebook())"),
]


def _notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src, id=cid) for cid, src in cells]
    return nb


def _execute(nb, cwd):
    client = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(cwd)}},
                            allow_errors=False)
    return client.execute()


def _text(cell) -> str:
    parts = []
    for o in cell.outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            parts.append(o.data.get("text/plain", ""))
    return "".join(parts)


def _streams(cell, name) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


@pytest.fixture
def kernel_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", f"{sys.prefix}/bin:" + __import__("os").environ.get("PATH", ""))
    return tmp_path


def test_whole_flow_in_a_kernel(kernel_env, monkeypatch):
    tmp_path = kernel_env
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "flow.ipynb"))
    nb = _execute(_notebook(FLOW), tmp_path)
    cells = {c.id: c for c in nb.cells}

    assert _streams(cells["snap1"], "stdout").startswith("v1  C=1  1 variable  ")
    assert "tags: baseline" in _streams(cells["snap1"], "stdout")
    assert _streams(cells["snap2"], "stdout").startswith("v2  C=0.01  1 variable  ")
    assert _streams(cells["hist"], "stdout").strip() == "['v1', 'v2'] ['C=1', 'C=0.01']"
    assert _streams(cells["diff"], "stdout").strip() == "[1.0, 0.01]"
    diff_text = _text(cells["mvdiff"])
    assert "diff v1 -> v2" in diff_text and "C: 1 -> 0.01" in diff_text
    assert any("text/html" in o.get("data", {}) for o in cells["mvdiff"].outputs)
    assert "restored clf from v1" in _text(cells["restore"])
    assert _streams(cells["same"], "stdout").strip() == "identical: True"
    # --outputs re-displays what the v1-era cells produced: the print and the execute_result
    replay = _text(cells["outputs"])
    expected_preds = _text(cells["out1"]).split("C=1\n", 1)[1].strip()
    assert "training done: C=1" in replay and expected_preds in replay
    assert _streams(cells["snapall"], "stdout").startswith("v3  ")
    assert _streams(cells["nb"], "stdout").strip() == "notebook: flow.ipynb"

    # what the kernel recorded, read from the store by another process (this one)
    with Store(tmp_path / ".jupyter_mv") as st:
        assert st.notebooks() == ["flow.ipynb"]
        vs = st.versions("flow.ipynb")
        assert [v.label for v in vs] == ["v1", "v2", "v3"]
        assert [v.parent for v in vs] == [None, 1, 2]  # restoring one variable does not move the head
        v1_cells = st.cells(vs[0])
        # nbclient sends no cell ids (JupyterLab does): cells are told apart by source
        src = dict(FLOW)
        assert [c.source for c in v1_cells] == [src[k] for k in ("load", "fit1", "out1", "snap1")]
        # the loading cell comes from IPython's history (its hooks were installed while it ran)
        assert v1_cells[0].execution_count == 1
        out1 = v1_cells[2]
        kinds = [o["output_type"] for o in out1.outputs]
        assert kinds == ["stream", "execute_result"]
        assert out1.outputs[0]["text"] == "training done: C=1\n"
        assert out1.outputs[1]["data"]["text/plain"] == expected_preds
        assert out1.execution_count == cells["out1"].execution_count == 3
        assert v1_cells[3].execution_count == 4  # the running snapshot cell has its final count already
        assert len(v1_cells[3].outputs) == 0  # a snapshot's summary line is printed after it is taken...
        v2_cells = st.cells(vs[1])
        v2_sources = [c.source for c in v2_cells]
        snap1_in_v2 = v2_cells[v2_sources.index(src["snap1"])]
        assert snap1_in_v2.outputs[0]["text"].startswith("v1  C=1")  # ... so the next version has it
        assert src["fit2"] in v2_sources and src["fit2"] not in [c.source for c in v1_cells]
        assert st.resolve("flow.ipynb", "baseline").n == 1
        assert vs[1].metrics["acc"] > 0.5


def test_notebook_name_from_environment(kernel_env, monkeypatch):
    tmp_path = kernel_env
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "experiments/named.ipynb")
    nb = _notebook([
        ("load", "%load_ext jupyter_mv"),
        ("snap", "a = [1, 2, 3]\n%mv_snapshot a"),
        ("show", "import jupyter_mv as mv, json\nprint(json.dumps(mv.show('latest')))"),
    ])
    nb = _execute(nb, tmp_path)
    info = json.loads(_streams(nb.cells[2], "stdout"))
    assert info["notebook"] == "experiments/named.ipynb"
    assert info["variables"][0]["name"] == "a"
    sources = [c["source"] for c in info["cells"]]
    assert sources[:2] == ["%load_ext jupyter_mv", "a = [1, 2, 3]\n%mv_snapshot a"]
    with Store(tmp_path / ".jupyter_mv") as st:
        assert st.notebooks() == ["experiments/named.ipynb"]
