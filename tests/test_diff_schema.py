"""Diff.to_dict() is a contract: real diffs validate against jupyter_mv/schemas/diff.schema.json."""

from __future__ import annotations

import copy
import json
from importlib import resources

import jsonschema
import pytest

import jupyter_mv as mv

PNG_A = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PNG_B = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def schema():
    text = (resources.files("jupyter_mv") / "schemas" / "diff.schema.json").read_text()
    s = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(s)
    return s


def validate(schema, d: dict) -> dict:
    d = json.loads(json.dumps(d))  # what a client receives
    jsonschema.Draft202012Validator(schema).validate(d)
    return d


def test_schema_ships_in_the_package():
    assert (resources.files("jupyter_mv") / "schemas" / "diff.schema.json").is_file()


def test_rich_diff_validates(shell, run, schema):
    import torch
    run("""
import numpy as np, pandas as pd, torch
from IPython.display import display
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = rng.random((60, 3)); y = (X[:, 0] > 0.5).astype(int)
clf = LogisticRegression(C=1.0).fit(X, y)
arr = np.arange(100.0)
df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
net = torch.nn.Linear(3, 2)
gone = [1, 2]
LR = 0.1
""")
    shell.user_ns["png"] = PNG_A
    shell.run_cell("display({'image/png': png, 'text/plain': '<img>'}, raw=True)", cell_id="plot")
    run("print('epoch 1')")
    run("%mv_snapshot clf arr df net gone --metrics \"{'acc': 0.5, 'old_only': 1}\" --params \"{'p': 'x'}\"")
    run("""
clf = LogisticRegression(C=0.01).fit(X, y)
arr[:10] = -1
df = pd.DataFrame({"a": [1, 5, 3, 4], "c": [1.0, 2.0, 3.0, 4.0]})
with torch.no_grad():
    net.weight.add_(0.5)
new_var = {"k": 1}
LR = 0.2
del gone
""")
    shell.user_ns["png"] = PNG_B
    shell.run_cell("display({'image/png': png, 'text/plain': '<img>'}, raw=True)", cell_id="plot")
    run("print('epoch 2')")
    run("%mv_snapshot clf arr df net new_var --metrics \"{'acc': 0.75, 'new_only': 2}\"")
    d = validate(schema, mv.diff("v1", "v2").to_dict())

    assert d["params"]["changed"]["LR"] == [0.1, 0.2]
    assert d["params"]["removed"] == {"p": "x"}
    assert d["metrics"]["changed"]["acc"] == {"old": 0.5, "new": 0.75, "delta": 0.25}
    assert d["metrics"]["added"] == {"new_only": 2.0} and d["metrics"]["removed"] == {"old_only": 1.0}
    assert [v["name"] for v in d["variables"]["added"]] == ["new_var"]
    assert [v["name"] for v in d["variables"]["removed"]] == ["gone"]
    assert sorted(v["name"] for v in d["variables"]["changed"]) == ["arr", "clf", "df", "net"]
    kinds = {v["name"]: v.get("analysis", {}).get("kind") for v in d["variables"]["changed"]}
    assert kinds == {"arr": "array", "clf": "model", "df": "frame", "net": "model"}
    statuses = {c["status"] for c in d["cells"]}
    assert {"same", "changed"} & statuses and "added" in statuses
    assert any("images" in c for c in d["cells"])  # the two PNG outputs, side by side

    # the reverse direction and a diff with itself validate too
    validate(schema, mv.diff("v2", "v1").to_dict())
    same = validate(schema, mv.diff("v1", "v1").to_dict())
    assert all(c["status"] == "same" for c in same["cells"])
    assert not same["variables"]["changed"] and mv.diff("v1", "v1").empty


def test_cli_diff_json_validates(session, run_cli, tmp_path, schema):
    import numpy as np

    session.namespace.update(a=np.arange(5), b=1)
    mv.snapshot(metrics={"m": 1})
    session.namespace.update(a=np.arange(6), b=2)
    mv.snapshot(metrics={"m": float("nan")})
    r = run_cli("diff", "v1", "v2", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = validate(schema, json.loads(r.stdout))
    assert d["variables"]["changed"][0]["analysis"]["shape"] == [[5], [6]]


@pytest.mark.parametrize("breakage", [
    lambda d: d.pop("cells"),
    lambda d: d.update(a="1"),
    lambda d: d["params"].update(changed={"C": [1.0]}),
    lambda d: d["metrics"]["changed"].update(acc={"old": 1, "new": 2}),
    lambda d: d["cells"][0].update(status="moved"),
    lambda d: d["variables"]["changed"][0]["new"].pop("hash"),
    lambda d: d.update(extra=1),
])
def test_schema_rejects_wrong_shapes(session, schema, breakage):
    session.namespace["x"] = 1
    mv.snapshot(metrics={"acc": 1})
    session.namespace["x"] = 2
    mv.snapshot(metrics={"acc": 2}, params={"C": 1.0})
    d = json.loads(json.dumps(mv.diff("v1", "v2").to_dict()))
    d["cells"] = d["cells"] or [{"status": "same", "cell_id": None, "a_index": 0, "b_index": 0, "a_source": "",
                                 "b_source": "", "source_diff": [], "outputs_changed": False, "outputs_diff": []}]
    validate(schema, d)
    broken = copy.deepcopy(d)
    breakage(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)


def test_diff_against_the_current_state_validates(shell, run, schema):
    """mv.diff(A) / %mv_diff A / the widget's Diff compare A with the kernel's state: B is 'current'."""
    run("import numpy as np\narr = np.arange(5.0)\nLR = 0.1")
    run("%mv_snapshot arr")
    run("arr = arr * 2\nLR = 0.2")
    d = validate(schema, mv.diff("v1").to_dict())
    assert d["a"] == "v1" and d["b"] == "current"
    assert d["params"]["changed"] == {"LR": [0.1, 0.2]}
