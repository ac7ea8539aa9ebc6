"""Variables that share a scikit-learn model (`models = {"rf": rf}`, `results = [("rf", rf, 0.9)]`,
`scaler = pipe.named_steps["scale"]`) are one group, pickled together in the local store; a bundle
ships such a group as one skops file (codec "group.skops"), so the receiver restores it without
--trust, still sharing its objects. What skops cannot hold stays pickled and needs --trust, named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mvtest import two_stores_in
from jupyter_mv import api
from jupyter_mv import loading as restore_mod
from jupyter_mv.errors import BundleError, Untrusted
from jupyter_mv.store import Store

X, Y = make_classification(n_samples=200, n_features=6, n_informative=4, random_state=1)


@pytest.fixture
def two_stores(tmp_path, monkeypatch):
    """(store A, store B): B is a colleague's store on the same machine."""
    yield from two_stores_in(tmp_path, monkeypatch, "work/models.ipynb")


def _share(ns: dict, a: Store, b: Store, tmp_path: Path, file="m.mvz"):
    api.set_session(api.Session(namespace=ns))
    v = api.take_snapshot(message="models", store=a).version
    path = api.export(v, tmp_path / file, store=a)
    return v, path, api.import_bundle(path, store=b).version


def _forest():
    return RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0).fit(X, Y)


def test_model_shared_with_a_dict_restores_without_trust_and_stays_shared(two_stores, tmp_path):
    a, b = two_stores
    rf = _forest()
    lr = LogisticRegression().fit(X, Y)
    ns = {"rf": rf, "models": {"rf": rf, "lr": lr}, "lr": lr, "alone": LogisticRegression(C=3).fit(X, Y)}
    v, _, imported = _share(ns, a, b, tmp_path)
    assert {x.name: x.codec for x in a.variables(v)}["models"] == "pickle"  # the local store pickles the group
    codec = {x.name: x.codec for x in b.variables(imported)}
    assert codec == {"rf": "group.skops", "models": "group.skops", "lr": "group.skops", "alone": "sklearn.skops"}
    got = api.load(imported, "rf", store=b)  # no trust
    assert isinstance(got, RandomForestClassifier)
    assert np.array_equal(got.predict_proba(X), rf.predict_proba(X))
    both = restore_mod.load(b, imported, ["rf"], trust=False)  # the whole group comes back together
    assert sorted(both) == ["lr", "models", "rf"]
    assert both["models"]["rf"] is both["rf"] and both["models"]["lr"] is both["lr"]
    assert list(both["models"]) == ["rf", "lr"] and type(both["models"]) is dict
    assert np.array_equal(both["models"]["lr"].predict(X), lr.predict(X))
    # content hashes name the objects, not the format they travelled in
    assert {x.name: x.content_hash for x in b.variables(imported)} == {x.name: x.content_hash for x in a.variables(v)}


def test_results_list_of_tuples_and_pipeline_step_restore_without_trust(two_stores, tmp_path):
    a, b = two_stores
    rf = _forest()
    pipe = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(C=0.5))]).fit(X, Y)
    ns = {"rf": rf, "results": [("rf", rf, 0.9), ("pipe", pipe, np.float64(0.85))],
          "pipe": pipe, "scaler": pipe.named_steps["scale"]}
    _, _, imported = _share(ns, a, b, tmp_path)
    assert {x.name: x.codec for x in b.variables(imported)} == dict.fromkeys(ns, "group.skops")
    s = api.Session(namespace={})
    api.set_session(s)
    api.restore(imported, ["rf"], store=b)  # no trust, into a namespace
    got = s.namespace
    assert sorted(got) == sorted(ns)
    assert got["results"][0][1] is got["rf"] and got["results"][1][1] is got["pipe"]
    assert got["scaler"] is got["pipe"].named_steps["scale"]
    assert type(got["results"][0]) is tuple and type(got["results"][1][2]) is np.float64
    assert got["results"][0][2] == 0.9 and got["results"][1][2] == np.float64(0.85)
    assert np.array_equal(got["rf"].predict_proba(X), rf.predict_proba(X))
    assert np.array_equal(got["pipe"].predict_proba(X), pipe.predict_proba(X))
    assert np.array_equal(got["scaler"].transform(X), ns["scaler"].transform(X))


def test_group_bundle_is_deterministic(two_stores, tmp_path):
    import zipfile

    a, b = two_stores
    rf = _forest()
    api.set_session(api.Session(namespace={"rf": rf, "models": {"rf": rf}}))
    v = api.take_snapshot(message="m", store=a).version
    one = api.export(v, tmp_path / "one.mvz", store=a).read_bytes()
    two = api.export(v, tmp_path / "two.mvz", store=a).read_bytes()
    assert one == two
    # the same state rebuilt (other objects, other ids) in another store: the same group encoding
    again = _forest()
    api.set_session(api.Session(namespace={"rf": again, "models": {"rf": again}}))
    w = api.take_snapshot(message="m", store=b).version
    api.export(w, tmp_path / "three.mvz", store=b)

    def rows(name):
        m = __import__("json").loads(zipfile.ZipFile(tmp_path / name).read("manifest.json"))
        return {x["name"]: (x["codec"], x["manifest"]) for x in m["variables"]}

    assert rows("one.mvz") == rows("three.mvz")
    assert {c for c, _ in rows("one.mvz").values()} == {"group.skops"}


class Wrapper:
    """A class of the test module: importable, but not one skops or our vetted list trusts."""

    def __init__(self, model):
        self.model = model


def test_group_with_untrusted_types_needs_trust_naming_them(two_stores, tmp_path):
    a, b = two_stores
    rf = _forest()
    ns = {"rf": rf, "wrapped": Wrapper(rf)}
    _, _, imported = _share(ns, a, b, tmp_path)
    assert {x.name: x.codec for x in b.variables(imported)} == dict.fromkeys(ns, "group.skops")
    with pytest.raises(Untrusted) as err:
        api.load(imported, "rf", store=b)
    msg = str(err.value)
    assert "\n" not in msg and "--trust" in msg
    assert f"rf would load {__name__}.Wrapper" in msg and f"wrapped would load {__name__}.Wrapper" in msg
    got = restore_mod.load(b, imported, ["rf"], trust=True)
    assert got["wrapped"].model is got["rf"] and type(got["wrapped"]) is Wrapper


def test_group_holding_a_notebook_class_stays_pickled_and_names_it(shell, run, tmp_path):
    run("from sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.datasets import make_classification\n"
        "X, y = make_classification(n_samples=60, n_features=4, random_state=0)\n"
        "rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)\n"
        "class Report:\n"
        "    def __init__(self, model):\n"
        "        self.model = model\n"
        "report = Report(rf)\n"
        "models = {'rf': rf}")
    run("%mv_snapshot rf report models")
    run(f"%mv_export v1 {tmp_path / 'nb.mvz'}")
    with Store(tmp_path / "colleague" / ".jupyter_mv") as other:
        imported = api.import_bundle(tmp_path / "nb.mvz", store=other).version
        codec = {x.name: x.codec for x in other.variables(imported)}
        assert set(codec.values()) <= {"pickle", "sklearn"} and "group.skops" not in codec.values()
        with pytest.raises(Untrusted, match=r"rf would unpickle sklearn\.ensemble\._forest\.RandomForestClassifier "
                                            r"\(its group holds __main__\.Report, defined in the notebook\)") as err:
            api.load(imported, "rf", store=other)
        assert "report would unpickle __main__.Report" in str(err.value)
        got = restore_mod.load(other, imported, ["rf"], trust=True)
        assert got["report"].model is got["rf"] and got["models"]["rf"] is got["rf"]


def test_what_skops_would_change_stays_pickled(two_stores, tmp_path):
    a, b = two_stores
    rf = _forest()
    # a tuple key skops cannot write; a complex skops cannot hold: shipped as pickle, named
    ns = {"rf": rf, "scores": {("rf", 1): rf, "z": 1 + 2j}}
    _, _, imported = _share(ns, a, b, tmp_path)
    assert "group.skops" not in {x.codec for x in b.variables(imported)}
    with pytest.raises(Untrusted, match="rf would unpickle"):
        api.load(imported, "rf", store=b)
    got = restore_mod.load(b, imported, ["rf"], trust=True)
    assert got["scores"][("rf", 1)] is got["rf"] and got["scores"]["z"] == 1 + 2j


@pytest.mark.parametrize("case", ["key_not_member", "members_not_names", "files"])
def test_hostile_group_tables_refused(two_stores, tmp_path, case):
    from test_bundle import rewrite

    a, b = two_stores
    rf = _forest()
    _, path, _ = _share({"rf": rf, "models": {"rf": rf}}, a, b, tmp_path)

    def edit(m):
        for var in m["variables"]:
            meta = var["manifest"]["meta"]
            assert var["codec"] == "group.skops"
            if case == "key_not_member":
                meta["key"] = "elsewhere"
            elif case == "members_not_names":
                meta["members"] = ["rf", "not a name"]
            else:
                meta["files"] = ["../x.npy"] * len(meta["files"])

    bad = rewrite(path, tmp_path / "bad.mvz", manifest=edit)
    with pytest.raises(BundleError, match="group member table|skops member table"):
        api.import_bundle(bad, store=b)


def test_plain_data_groups_travel_as_skops_too(two_stores, tmp_path):
    a, b = two_stores
    shared = [1, 2.5, "x", None, b"raw", (3, 4)]
    ns = {"shared": shared, "cfg": {"a": shared, "b": shared, 7: {True, 2}}, "grid": np.arange(4.0), "n": 3}
    _, _, imported = _share(ns, a, b, tmp_path)
    codec = {x.name: x.codec for x in b.variables(imported)}
    assert codec["shared"] == codec["cfg"] == "group.skops"
    got = restore_mod.load(b, imported, ["cfg"], trust=False)
    assert got["cfg"]["a"] is got["cfg"]["b"] is got["shared"]
    assert got["shared"] == shared and type(got["shared"][5]) is tuple
    assert list(got["cfg"]) == ["a", "b", 7] and got["cfg"][7] == {True, 2}


def test_group_with_an_array_variable_it_refers_to(two_stores, tmp_path):
    a, b = two_stores
    rf = _forest()
    X_train = X[:150].copy()
    ns = {"rf": rf, "X_train": X_train, "run": {"model": rf, "data": X_train, "score": 0.9},
          "head": X_train[:10]}  # a view of the array: a reference, restored onto the restored array
    v, _, imported = _share(ns, a, b, tmp_path)
    local = {x.name: x.codec for x in a.variables(v)}
    assert local["X_train"] == "numpy" and local["run"] == "pickle"  # the pickle refers to X_train by name
    codec = {x.name: x.codec for x in b.variables(imported)}
    assert codec["rf"] == codec["run"] == codec["X_train"] == "group.skops"
    got = restore_mod.load(b, imported, ["run"], trust=False)
    assert sorted(got) == ["X_train", "head", "rf", "run"]
    assert got["run"]["model"] is got["rf"] and got["run"]["data"] is got["X_train"]
    assert np.array_equal(got["X_train"], X_train) and np.shares_memory(got["head"], got["X_train"])
    assert np.array_equal(got["rf"].predict(got["X_train"]), rf.predict(X_train))
