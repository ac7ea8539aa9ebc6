"""reproduce: re-run a bundle's notebook in a fresh kernel and compare outputs, metrics, variables."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_mv import bundle, reproduce
from jupyter_mv.reproduce import compare_outputs, compare_values, mask, texts_match
from jupyter_mv.store import Store

from mvtest import cli

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"


# -- masking and comparing, no kernel --------------------------------------------------------------
@pytest.mark.parametrize("a, b", [
    ("<Foo object at 0x7f3a2b1c9d10>", "<Foo object at 0x7f00deadbeef>"),
    ("CPU times: user 1.2 s, sys: 3 ms", "CPU times: user 9.9 s, sys: 1 ms"),
    ("done in 12.5 ms", "done in 3.1 ms"),
    ("taken 2026-11-23T14:26:09.615+00:00", "taken 2027-01-01T00:00:00.000+00:00"),
    ("/tmp/jupyter_mv-reproduce-abc/work/x.py:3: UserWarning: hm", "/home/me/x.py:3: UserWarning: hm"),
    (" 40%|████      | 4/10 [00:01<00:02,  2.50it/s]", "100%|██████████| 10/10 [00:03<00:00,  3.33it/s]"),
    ("step 1\r step 2\r step 3\n", " step 3\n"),
    ("v3  whole session  11 variables  2.1 MB (12 kB new)", "v1  whole session  11 variables  2.1 MB (2.1 MB new)"),
])
def test_volatile_text_is_masked(a, b):
    assert mask(a) == mask(b)
    assert texts_match(a, b, 1e-9)


def test_numbers_within_tolerance():
    assert texts_match("loss 0.30000000000000004, acc 0.93", "loss 0.3, acc 0.93", 1e-9)
    assert texts_match("acc 0.9300001", "acc 0.93", 1e-6)
    assert not texts_match("acc 0.931", "acc 0.93", 1e-6)
    assert texts_match("acc 0.931", "acc 0.93", 1e-2)
    assert not texts_match("acc 0.93 (3 folds)", "acc 0.93 (4 folds)", 1e-6)
    assert not texts_match("accuracy high", "accuracy low", 1e-6)
    assert texts_match("[nan, 1.0]", "[nan, 1.0]", 0)


def test_compare_outputs_streams_rich_images_errors():
    rec = [{"output_type": "stream", "name": "stdout", "text": "acc 0.93\n"},
           {"output_type": "display_data", "data": {"image/png": "aGVsbG8=", "text/plain": "<Figure>"},
            "metadata": {}}]
    same = json.loads(json.dumps(rec))
    assert compare_outputs(rec, same, 1e-6) == ([], [])
    other_img = json.loads(json.dumps(rec))
    other_img[1]["data"]["image/png"] = "d29ybGQ="
    diffs, _ = compare_outputs(rec, other_img, 1e-6)
    assert diffs and "image/png image differs" in diffs[0]
    err = rec[:1] + [{"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []}]
    diffs, _ = compare_outputs(rec, err, 1e-6)
    assert any("ValueError" in d for d in diffs)
    warn = rec + [{"output_type": "stream", "name": "stderr", "text": "FutureWarning: something\n"}]
    diffs, warns = compare_outputs(rec, warn, 1e-6)
    assert diffs == [] and warns  # stderr alone warns, does not fail
    widget = [{"output_type": "display_data", "metadata": {}, "data": {
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2}, "text/plain": "W"}}]
    widget2 = json.loads(json.dumps(widget))
    widget2[0]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] = "def"
    assert compare_outputs(widget, widget2, 1e-6) == ([], [])


def test_partial_last_cell():
    rec = [{"output_type": "stream", "name": "stdout", "text": "training\n"}]
    now = [{"output_type": "stream", "name": "stdout", "text": "training\nv1  1 variable  1 kB (1 kB new)\n"}]
    assert compare_outputs(rec, now, 1e-6, partial=True) == ([], [])
    assert compare_outputs(rec, now, 1e-6)[0]


def test_compare_values():
    a = np.linspace(0, 1, 1000)
    assert compare_values(a, a + 1e-9) is None
    assert "max abs difference" in compare_values(a, a + 1e-3)
    assert "shape" in compare_values(a, a[:10])
    assert compare_values(np.arange(5), np.arange(5)) is None
    assert compare_values(np.arange(5), np.arange(1, 6))
    df = pd.DataFrame({"x": [1.0, 2.0], "t": pd.to_datetime(["2020-01-01", "2020-01-02"]), "s": ["a", "b"]})
    df2 = df.copy()
    df2["t"] = pd.to_datetime(["2030-01-01", "2030-01-02"])  # dates are volatile
    assert compare_values(df, df2) is None
    df2.loc[0, "x"] = 1.5
    assert "x" in compare_values(df, df2)
    assert compare_values({"a": [1, 2.0, "s"]}, {"a": [1, 2.0 + 1e-12, "s"]}) is None
    assert "['a'][2]" in compare_values({"a": [1, 2.0, "s"]}, {"a": [1, 2.0, "t"]})
    assert "type" in compare_values(1, "1")


def test_compare_models():
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(100, 3))
    y = (X[:, 0] > 0).astype(int)
    m1 = LogisticRegression(C=1.0).fit(X, y)
    m2 = LogisticRegression(C=1.0).fit(X, y)
    assert compare_values(m1, m2) is None
    m3 = LogisticRegression(C=0.1).fit(X, y)
    assert "C" in compare_values(m1, m3)
    m4 = LogisticRegression(C=1.0).fit(X[:50], y[:50])
    assert "coef_" in compare_values(m1, m4) or "intercept_" in compare_values(m1, m4)
    import torch
    torch.manual_seed(0)
    n1 = torch.nn.Linear(3, 2)
    n2 = torch.nn.Linear(3, 2)
    n2.load_state_dict(n1.state_dict())
    assert compare_values(n1, n2) is None
    with torch.no_grad():
        n2.weight[0, 0] += 1
    assert "weight" in compare_values(n1, n2)


# -- real kernels ----------------------------------------------------------------------------------
def execute_notebook(nb_path: Path, workdir: Path, notebook_key: str) -> Store:
    """Run a notebook top to bottom in a fresh kernel with jupyter_mv recording into workdir's store."""
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(nb_path, as_version=4)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MV_", "JPY_SESSION"))}
    env.update({"JUPYTER_MV_STORE": str(workdir / ".jupyter_mv"), "JUPYTER_MV_NOTEBOOK": notebook_key})
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute(
        env=env, cwd=str(workdir))
    return Store(workdir / ".jupyter_mv", create=False)


@pytest.fixture(scope="module")
def quickstart_bundles(tmp_path_factory):
    assert QUICKSTART.exists()
    work = tmp_path_factory.mktemp("quickstart")
    st = execute_notebook(QUICKSTART, work, "notebooks/quickstart.ipynb")
    try:
        out = {}
        for ref in ("baseline", "latest"):
            v = st.resolve("notebooks/quickstart.ipynb", ref)
            out[ref] = bundle.export(st, v, work / f"{ref}.mvz")
        return out
    finally:
        st.close()


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("ref", ["baseline", "latest"])
def test_quickstart_bundle_reproduces(quickstart_bundles, ref):
    result = reproduce.reproduce(quickstart_bundles[ref], progress=False)
    assert result.ok, result.text()
    assert result.version == ("v1" if ref == "baseline" else "v3")
    assert all(v["status"] == "same" for v in result.variables), result.text()
    assert any(v["name"] == "clf" for v in result.variables)
    if ref == "baseline":
        assert [m["name"] for m in result.metrics] == ["acc"]
    assert result.text().splitlines()[-1].startswith("OK")


def _alter_notebook(src: Path, dst: Path, edit) -> Path:
    """A copy of the bundle whose recorded notebook was edited (checksums recomputed, so it imports)."""
    with zipfile.ZipFile(src) as zf:
        data = {n: zf.read(n) for n in zf.namelist()}
    nb = json.loads(data["notebook.ipynb"])
    edit(nb)
    data["notebook.ipynb"] = json.dumps(nb).encode()
    man = json.loads(data["manifest.json"])
    man["members"]["notebook.ipynb"] = {"size": len(data["notebook.ipynb"]),
                                        "sha256": hashlib.sha256(data["notebook.ipynb"]).hexdigest()}
    data["manifest.json"] = json.dumps(man).encode()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in data.items():
            zf.writestr(n, b)
    return dst


@pytest.mark.kernel
@pytest.mark.slow
def test_altered_output_fails_naming_the_cell(quickstart_bundles, tmp_path):
    def edit(nb):
        for c in nb["cells"]:
            for o in c["outputs"]:
                if o.get("output_type") == "stream" and "accuracy" in "".join(o["text"]):
                    o["text"] = "accuracy 0.123\n"
                    return
        raise AssertionError("no accuracy output in the quickstart bundle")

    bad = _alter_notebook(quickstart_bundles["baseline"], tmp_path / "altered.mvz", edit)
    report = tmp_path / "report.html"
    r = cli("reproduce", bad, "--report", report, "--rtol", "1e-6", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert "DIFFERS  cell 3" in out and "clf = make_pipeline" in out
    assert "recorded: accuracy 0.123" in out and "now:      accuracy 0.9" in out
    assert out.strip().splitlines()[-2].startswith("FAILED: 1 cell differ")
    page = report.read_text()
    assert "not reproduced" in page and "accuracy 0.123" in page


SMALL = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
         "source": "%load_ext jupyter_mv"},
        {"cell_type": "code", "execution_count": None, "id": "c2", "metadata": {}, "outputs": [],
         "source": "import numpy as np\nrng = np.random.default_rng(7)\nw = rng.normal(size=(50, 4))\n"
                   "lr = 0.05\nprint('norm', float(np.linalg.norm(w)))\nobj = object()\nprint(obj)"},
        {"cell_type": "code", "execution_count": None, "id": "c3", "metadata": {}, "outputs": [],
         "source": "score = float(w.mean())\nscore"},
        {"cell_type": "code", "execution_count": None, "id": "c4", "metadata": {}, "outputs": [],
         "source": "%mv_snapshot w lr score -m first --metrics \"{'score': score}\""},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    work = tmp_path_factory.mktemp("small")
    (work / "small.ipynb").write_text(json.dumps(SMALL))
    st = execute_notebook(work / "small.ipynb", work, "small.ipynb")
    try:
        return bundle.export(st, st.resolve("small.ipynb", "latest"), work / "small.mvz")
    finally:
        st.close()


@pytest.mark.kernel
@pytest.mark.slow
def test_small_notebook_reproduces_then_catches_changed_metric_and_variable(small_bundle, tmp_path):
    ok = reproduce.reproduce(small_bundle, progress=False)
    assert ok.ok, ok.text()
    assert {v["name"] for v in ok.variables} == {"w", "lr", "score"}
    printed = [c for c in ok.cells if "print('norm'" in c.source]
    assert printed and printed[0].status == "same"  # the object's address was masked

    def tamper(man):
        man["version"]["metrics"]["score"] += 1.0
        for var in man["variables"]:
            if var["name"] == "lr":  # an inline plain value
                import base64

                var["manifest"]["buffers"][0]["i"] = base64.b64encode(b"0.5").decode()
                var["manifest"]["buffers"][0]["n"] = 3

    with zipfile.ZipFile(small_bundle) as zf:
        data = {n: zf.read(n) for n in zf.namelist()}
    man = json.loads(data.pop("manifest.json"))
    tamper(man)
    bad = tmp_path / "tampered.mvz"
    with zipfile.ZipFile(bad, "w") as zf:
        for n, b in data.items():
            zf.writestr(n, b)
        zf.writestr("manifest.json", json.dumps(man))
    result = reproduce.reproduce(bad, progress=False)
    assert not result.ok
    text = result.text()
    assert "DIFFERS  metric score" in text
    assert "DIFFERS  variable lr: 0.5 recorded, 0.05 now" in text
    assert "FAILED: 1 metric, 1 variable differ" in text


def test_reproduce_refuses_hostile_bundle_before_running(tmp_path):
    bad = tmp_path / "bad.mvz"
    bad.write_bytes(b"PK\x03\x04 not really")
    r = cli("reproduce", bad)
    assert r.returncode == 1 and "refused bundle" in r.stderr and r.stderr.count("\n") == 1


# -- models compared by content (trees by their node arrays) ------------------------------------------
MODELS = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "id": "m1", "metadata": {}, "outputs": [],
         "source": "%load_ext jupyter_mv"},
        {"cell_type": "code", "execution_count": None, "id": "m2", "metadata": {}, "outputs": [],
         "source": "from sklearn.datasets import make_classification\n"
                   "from sklearn.decomposition import PCA\n"
                   "from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier\n"
                   "from sklearn.linear_model import LogisticRegression\n"
                   "from sklearn.pipeline import Pipeline\n"
                   "from sklearn.preprocessing import StandardScaler\n"
                   "X, y = make_classification(n_samples=200, n_features=6, n_informative=4, random_state=0)"},
        {"cell_type": "code", "execution_count": None, "id": "m3", "metadata": {}, "outputs": [],
         "source": "rf = RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0).fit(X, y)\n"
                   "print('forest', rf.score(X, y))"},
        {"cell_type": "code", "execution_count": None, "id": "m4", "metadata": {}, "outputs": [],
         "source": "gb = GradientBoostingClassifier(n_estimators=8, max_depth=2, random_state=0).fit(X, y)"},
        {"cell_type": "code", "execution_count": None, "id": "m5", "metadata": {}, "outputs": [],
         "source": "pipe = Pipeline([('scale', StandardScaler()), ('pca', PCA(n_components=3)), "
                   "('lr', LogisticRegression())]).fit(X, y)"},
        {"cell_type": "code", "execution_count": None, "id": "m6", "metadata": {}, "outputs": [],
         "source": "%mv_snapshot rf gb pipe -m honest"},
        {"cell_type": "code", "execution_count": None, "id": "m7", "metadata": {}, "outputs": [],
         "source": "pipe[-1].coef_[0, 0] += 0.25  # a hand edit the bundle's notebook will not show"},
        {"cell_type": "code", "execution_count": None, "id": "m8", "metadata": {}, "outputs": [],
         "source": "%mv_snapshot rf gb pipe -m edited"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def model_bundles(tmp_path_factory):
    """(honest bundle of v1, bundle of v2 whose notebook hides the edit of a fitted coefficient)."""
    work = tmp_path_factory.mktemp("models")
    (work / "models.ipynb").write_text(json.dumps(MODELS))
    st = execute_notebook(work / "models.ipynb", work, "models.ipynb")
    try:
        # pickled in the notebook's store, shipped as skops
        assert {x.name: x.codec for x in st.variables(st.resolve("models.ipynb", "v1"))} == dict.fromkeys(
            ("rf", "gb", "pipe"), "sklearn")
        honest = bundle.export(st, st.resolve("models.ipynb", "v1"), work / "honest.mvz")
        edited = bundle.export(st, st.resolve("models.ipynb", "v2"), work / "edited.mvz")
    finally:
        st.close()
    for b in (honest, edited):
        assert {x["name"]: x["codec"] for x in bundle.read(b).manifest["variables"]} == dict.fromkeys(
            ("rf", "gb", "pipe"), "sklearn.skops")

    def hide_edit(nb):
        for c in nb["cells"]:
            if "coef_[0, 0] += 0.25" in "".join(c["source"]):
                c["source"] = "pass"
                return
        raise AssertionError("the edit cell is not in the bundle's notebook")

    return honest, _alter_notebook(edited, work / "tampered.mvz", hide_edit)


@pytest.mark.kernel
@pytest.mark.slow
def test_bundle_of_forest_boosting_and_pipeline_reproduces(model_bundles):
    result = reproduce.reproduce(model_bundles[0], progress=False)
    assert result.ok, result.text()
    assert {v["name"]: v["status"] for v in result.variables} == {"rf": "same", "gb": "same", "pipe": "same"}


@pytest.mark.kernel
@pytest.mark.slow
def test_tampered_model_fails_naming_the_variable(model_bundles, tmp_path):
    r = cli("reproduce", model_bundles[1], "--rtol", "1e-6", cwd=tmp_path)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "DIFFERS  variable pipe: values differ at steps.lr.coef_ (max abs difference 0.25)" in r.stdout, r.stdout
    assert "variable rf" not in r.stdout and "variable gb" not in r.stdout  # the trees compare equal
    assert "FAILED: 1 variable differ" in r.stdout


def test_models_compare_by_content():
    """Trees by their node arrays, within rtol; never by identity or address."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    X = np.random.default_rng(1).normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    make = [lambda: RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0).fit(X, y),
            lambda: GradientBoostingClassifier(n_estimators=4, random_state=0).fit(X, y)]
    for mk in make:
        a, b = mk(), mk()
        assert compare_values(a, b) is None
    rf, rf2 = make[0](), make[0]()
    rf2.estimators_[1].tree_.threshold[0] += 1e-3
    assert compare_values(rf, rf2) == "values differ at estimators_[1].tree_.threshold (max abs difference 0.001)"
    assert compare_values(rf, rf2, rtol=1e-2) is None  # within --rtol
    gb, gb2 = make[1](), make[1]()
    gb2.estimators_[2, 0].tree_.value[0] *= 2
    assert "estimators_[2, 0].tree_.value" in compare_values(gb, gb2)
    gb3 = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y)
    assert "n_estimators" in compare_values(gb, gb3)
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    def search(cs):  # its cv_results_ holds fit and score times, which differ run to run
        return GridSearchCV(LogisticRegression(), {"C": cs}, cv=3).fit(X, y)

    assert compare_values(search([0.1, 1.0]), search([0.1, 1.0])) is None
    assert compare_values(search([0.1, 1.0]), search([0.1, 2.0])) == "1.0 recorded, 2.0 now at param_grid['C'][1]"
