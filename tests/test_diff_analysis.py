"""Model-aware variable diffs (arrays, DataFrames, scikit-learn and torch models) and the cost of
large diffs: big arrays are compared by chunk ids, never loaded."""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pandas as pd
import pytest

from jupyter_mv import api
from jupyter_mv import diffing as diffmod
from jupyter_mv.model import Cell
from jupyter_mv.store import StoredVariable


def changed(d, name):
    return next(v for v in d.to_dict()["variables"]["changed"] if v["name"] == name)


def test_array_fraction_changed_exact_when_small(session):
    session.namespace["w"] = np.arange(1000, dtype=np.float64)
    api.snapshot("w")
    w = session.namespace["w"].copy()
    w[:25] = -1
    w[10] = np.nan
    session.namespace["w"] = w
    api.snapshot("w")
    a = changed(api.diff("v1", "v2"), "w")["analysis"]
    assert a["kind"] == "array" and a["estimated"] is False
    assert a["fraction_changed"] == pytest.approx(0.025) and a["elements_changed"] == 25
    assert a["stats"]["min"] == [0.0, -1.0]


def test_array_shape_change_is_not_elementwise(session):
    session.namespace["w"] = np.zeros((2, 3))
    api.snapshot("w")
    session.namespace["w"] = np.zeros((3, 3))
    api.snapshot("w")
    a = changed(api.diff("v1", "v2"), "w")["analysis"]
    assert a["shape"] == [[2, 3], [3, 3]] and a["fraction_changed"] is None


def test_big_arrays_are_estimated_from_chunks_without_loading(session, monkeypatch):
    from jupyter_mv.store import blobs

    n = 4 * blobs.CHUNK // 8  # four chunks of float64
    session.namespace["w"] = np.zeros(n)
    api.snapshot("w")
    w = np.zeros(n)
    w[-5:] = 1.0  # only the last chunk changes
    session.namespace["w"] = w
    api.snapshot("w")
    monkeypatch.setattr(diffmod, "LOAD_LIMIT", 1024)
    st = session.store()
    reads = []
    real = st.blobs.read_buffer
    monkeypatch.setattr(st.blobs, "read_buffer", lambda *a, **k: reads.append(a) or real(*a, **k))
    a = changed(api.diff("v1", "v2"), "w")["analysis"]
    assert reads == []
    assert a["estimated"] is True and a["fraction_changed"] == pytest.approx(0.25)


def _fake_big_array(name: str, chunks: list[str], value: float) -> StoredVariable:
    """A 1 GiB array variable by its metadata only (its blob files are never written: loading it
    would fail loudly, so the diff must not try)."""
    n = sum(int(c.rsplit("-", 1)[1], 16) for c in chunks)
    return StoredVariable(name=name, type_name="numpy.ndarray", codec="numpy", content_hash=chunks[-1][:32],
                          nbytes=n, safe=True,
                          summary={"shape": [n // 4], "dtype": "float32", "min": 0.0, "max": value,
                                   "mean": value / 1e4, "std": 0.1, "sampled": True},
                          manifest={"meta": {"descr": "<f4", "shape": [n // 4], "order": "C"},
                                    "buffers": [{"n": n, "c": chunks}]})


def test_two_1gib_arrays_diff_fast_and_unloaded(store, monkeypatch):
    size = 4 * 1024 * 1024
    chunks = [f"{i:032x}-{size:x}" for i in range(256)]  # 256 x 4 MiB = 1 GiB
    other = chunks[:-1] + [f"{999:032x}-{size:x}"]
    store.commit_version("big.ipynb", [_fake_big_array("w", chunks, 1.0)])
    store.commit_version("big.ipynb", [_fake_big_array("w", other, 2.0)], parent=1)
    reads = []
    monkeypatch.setattr(store.blobs, "read_buffer", lambda *a, **k: reads.append(a))
    t0 = time.perf_counter()
    d = api.diff("v1", "v2", notebook="big.ipynb", store=store)
    took = time.perf_counter() - t0
    a = changed(d, "w")["analysis"]
    assert reads == [] and took < 2.0
    assert a["estimated"] is True and a["fraction_changed"] == pytest.approx(1 / 256)
    assert a["stats"]["max"] == [1.0, 2.0]


def test_dataframe_schema_rows_and_sample(session):
    session.namespace["df"] = pd.DataFrame({"a": range(10), "b": list("abcdefghij")})
    api.snapshot("df")
    df = session.namespace["df"].copy()
    df.loc[3, "a"] = 99
    df["a"] = df["a"].astype(float)
    df["c"] = 1.0
    df = df.drop(columns="b").drop(index=9)
    session.namespace["df"] = df
    api.snapshot("df")
    ch = changed(api.diff("v1", "v2"), "df")
    assert ch["old"]["codec"] == "pandas"
    a = ch["analysis"]
    assert a["kind"] == "frame" and a["rows"] == [10, 9]
    assert a["columns_added"] == {"c": "float64"} and list(a["columns_removed"]) == ["b"]
    assert a["columns_retyped"] == {"a": ["int64", "float64"]}
    assert a["rows_changed"] == 1 and a["rows_removed"] == 1 and a["rows_added"] == 0
    assert a["sample"] == [{"index": 3, "old": {"a": 3}, "new": {"a": 99.0}}]


def test_sklearn_hyperparameters_and_coefficient_deltas(session):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    session.namespace["clf"] = LogisticRegression(C=1.0).fit(X, y)
    api.snapshot("clf")
    session.namespace["clf"] = LogisticRegression(C=0.01).fit(X, y)
    api.snapshot("clf")
    a = changed(api.diff("v1", "v2"), "clf")["analysis"]
    assert a["kind"] == "model" and a["hyperparameters"]["changed"] == {"C": [1.0, 0.01]}
    w = {x["name"]: x for x in a["weights"]}
    assert w["coef_"]["shape"] == [1, 3] and w["coef_"]["delta_norm"] > 0
    assert w["intercept_"]["shape"] == [1]
    # only learned parameters are weights: labels and iteration counts are fitted attributes, not weights
    assert "classes_" not in w and "n_iter_" not in w and set(w) == {"coef_", "intercept_"}


def test_torch_per_layer_delta_norms(session):
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    session.namespace["net"] = net
    api.snapshot("net")
    with torch.no_grad():
        net[2].weight.add_(1.0)
    api.snapshot("net")
    a = changed(api.diff("v1", "v2"), "net")["analysis"]
    w = {x["name"]: x for x in a["weights"]}
    assert set(w) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert w["0.weight"]["delta_norm"] == 0 and w["2.weight"]["delta_norm"] == pytest.approx(3 ** 0.5, rel=1e-5)
    assert a["parameters"] == [19, 19]


def test_hundred_cell_notebook_with_images_diffs_fast(store):
    png = base64.b64encode(bytes(range(256)) * 200).decode()  # ~68 kB of base64 per image

    def cells(changed_every: int | None):
        out = []
        for i in range(100):
            edit = changed_every and i % changed_every == 0
            src = f"x{i} = {i}\nplot(x{i})" + ("  # tuned" if edit else "")
            img = png if not edit else png[::-1]
            out.append(Cell(source=src, execution_count=i + 1, cell_id=f"c{i}", outputs=(
                {"output_type": "display_data", "data": {"image/png": img, "text/plain": "<Figure>"}, "metadata": {}},
                {"output_type": "stream", "name": "stdout", "text": f"step {i}\n"})))
        return out

    store.commit_version("nb.ipynb", [], cells=cells(None))
    store.commit_version("nb.ipynb", [], cells=cells(10), parent=1)
    t0 = time.perf_counter()
    d = api.diff("v1", "v2", notebook="nb.ipynb", store=store)
    took = time.perf_counter() - t0
    ch = [c for c in d.cells if c["status"] != "same"]
    assert len(ch) == 10 and all(c["images"]["a"][0]["data"] == png for c in ch)
    assert took < 2.0, took
    json.dumps(d.to_dict())


def test_to_dict_stays_json(session):
    session.namespace["w"] = np.arange(5.0)
    session.namespace["df"] = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    api.snapshot()
    session.namespace["w"] = np.arange(5.0) * 2
    session.namespace["df"] = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2024-02-02"])})
    api.snapshot()
    d = api.diff("v1", "v2").to_dict()
    json.dumps(d, allow_nan=False)
    frame = next(v for v in d["variables"]["changed"] if v["name"] == "df")["analysis"]
    assert frame["rows_changed"] == 1 and frame["sample"][0]["new"]["t"].startswith("2024-02-02")


def test_type_shown_once_and_only_learned_weights_in_a_pipeline(session):
    """Issue 16: a changed model's type once (not per side), and a pipeline's weights are its learned
    parameters only (the scaler's statistics, the classifier's coefficients), not labels or counts."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from jupyter_mv.diffview import render_html, render_text

    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    y = (X[:, 1] > 0).astype(int)
    session.namespace["clf"] = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(X, y)
    api.snapshot("clf")
    session.namespace["clf"] = make_pipeline(StandardScaler(), LogisticRegression(C=0.1)).fit(X, y)
    api.snapshot("clf")
    d = api.diff("v1", "v2")
    a = changed(d, "clf")["analysis"]
    names = {w["name"] for w in a["weights"]}
    assert {"steps.logisticregression.coef_", "steps.logisticregression.intercept_"} <= names
    assert not [n for n in names if n.endswith(("classes_", "n_iter_", "n_features_in_", "n_samples_seen_"))], names
    line = next(ln for ln in render_text(d).splitlines() if ln.startswith("  ~ clf"))
    assert line.startswith("  ~ clf (Pipeline): ") and line.count("Pipeline") == 1, line
    assert render_html(d).count("Pipeline") == 1
