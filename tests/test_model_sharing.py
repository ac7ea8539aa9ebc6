"""Standard models travel safely: scikit-learn estimators in the skops format restore from a bundle
without --trust when skops' audit finds only trusted types; torch weights load into a live module
without unpickling; what no safe format holds still needs --trust, named. Same-store restores stay
exact, unchanged models write nothing new, and stores of the pickled format still restore."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mvtest import as_colleague, two_stores_in
from jupyter_mv import api, codecs
from jupyter_mv import loading as restore_mod
from jupyter_mv.compare import compare_values
from jupyter_mv.errors import BundleError, NotStorable, Untrusted, UsageError
from jupyter_mv.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
X, Y = make_classification(n_samples=300, n_features=8, n_informative=5, random_state=0)


class ClippedLogistic(LogisticRegression):
    """An estimator class of the user's own (importable here, but not a scikit-learn type)."""


def _models() -> dict:
    return {
        "forest": RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0).fit(X, Y),
        "boost": GradientBoostingClassifier(n_estimators=12, max_depth=2, random_state=0).fit(X, Y),
        "pipe": Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components=4, random_state=0)),
                          ("lr", LogisticRegression(C=0.5))]).fit(X, Y),
        "hist": HistGradientBoostingClassifier(max_iter=8, random_state=0).fit(X, Y),
    }


@pytest.fixture
def two_stores(tmp_path, monkeypatch):
    """(store A, store B): B is a colleague's store on the same machine."""
    yield from two_stores_in(tmp_path, monkeypatch, "work/models.ipynb")


def _share(ns: dict, a: Store, b: Store, tmp_path: Path, names=()):
    """Snapshot `ns` in A, export, import into B: (version in A, version in B)."""
    api.set_session(api.Session(namespace=ns))
    v = api.take_snapshot(names, message="models", store=a).version
    path = api.export(v, tmp_path / "models.mvz", store=a)
    return v, api.import_bundle(path, store=b).version


def test_standard_models_restore_from_bundle_without_trust(two_stores, tmp_path):
    a, b = two_stores
    ns = _models()
    _, imported = _share(ns, a, b, tmp_path)
    assert {x.name: x.codec for x in b.variables(imported)} == dict.fromkeys(ns, "sklearn.skops")
    got = restore_mod.load(b, imported, None, trust=False)  # the default: no trust
    for name, model in ns.items():
        assert type(got[name]) is type(model)
        assert np.array_equal(got[name].predict_proba(X), model.predict_proba(X)), name
        assert compare_values(model, got[name], rtol=0, atol=0) is None, name
    # through the facade and into a namespace, still without trust
    s = api.Session(namespace={})
    api.set_session(s)
    assert sorted(api.restore(imported, ["pipe", "forest"], store=b)) == ["forest", "pipe"]
    assert np.array_equal(s.namespace["pipe"].predict_proba(X), ns["pipe"].predict_proba(X))


def test_same_store_restore_is_exact_and_unchanged_models_write_nothing(two_stores):
    a, _ = two_stores
    ns = _models()
    api.set_session(api.Session(namespace=ns))
    v1 = api.take_snapshot(message="first", store=a).version
    before = a.variables(v1)
    r2 = api.take_snapshot(message="again", store=a)
    assert {x.name: x.content_hash for x in a.variables(r2.version)} == {x.name: x.content_hash for x in before}
    assert r2.version.new_bytes == 0
    got = restore_mod.load(a, v1)
    for name, model in ns.items():
        assert compare_values(model, got[name], rtol=0, atol=0) is None, name
        assert np.array_equal(got[name].predict_proba(X), model.predict_proba(X))
    # five more trees: the fifteen stored ones are not written again
    forest = ns["forest"]
    forest.set_params(warm_start=True, n_estimators=20).fit(X, Y)
    r3 = api.take_snapshot(["forest"], message="more trees", store=a)
    stored = next(x for x in a.variables(r3.version) if x.name == "forest")
    assert 0 < r3.version.new_bytes < 0.45 * stored.nbytes, (r3.version.new_bytes, stored.nbytes)
    again = restore_mod.load(a, r3.version, ["forest"])["forest"]
    assert len(again.estimators_) == 20 and np.array_equal(again.predict_proba(X), forest.predict_proba(X))


def test_a_store_of_pickled_estimators_still_restores(tmp_path):
    root = tmp_path / ".jupyter_mv"
    shutil.copytree(FIXTURES / "store-sklearn-pickle", root)  # written by jupyter_mv before skops
    with Store(root) as st:
        (v,) = st.versions("models.ipynb")
        assert {x.name: x.codec for x in st.variables(v)} == {"forest": "sklearn", "pipe": "sklearn"}
        got = restore_mod.load(st, v)
    from sklearn.linear_model import LogisticRegression as LR
    from sklearn.pipeline import make_pipeline

    Xo, yo = make_classification(80, 4, random_state=0)  # what the fixture's notebook fitted
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(Xo, yo)
    pipe = make_pipeline(StandardScaler(), LR()).fit(Xo, yo)
    assert compare_values(forest, got["forest"], rtol=0, atol=0) is None
    assert np.array_equal(got["pipe"].predict_proba(Xo), pipe.predict_proba(Xo))


def test_untrusted_types_need_trust_and_are_named(two_stores, tmp_path):
    a, b = two_stores
    own = ClippedLogistic(C=2.0).fit(X, Y)
    odd = LogisticRegression().fit(X, Y)
    odd.postprocess_ = os.system  # a function skops does not trust, inside a scikit-learn model
    _, imported = _share({"own": own, "odd": odd, "ok": LogisticRegression().fit(X, Y)}, a, b, tmp_path)
    assert {x.name: x.codec for x in b.variables(imported)} == dict.fromkeys(("own", "odd", "ok"), "sklearn.skops")
    with pytest.raises(Untrusted) as err:
        restore_mod.load(b, imported, ["own", "odd", "ok"])
    msg = str(err.value)
    assert "\n" not in msg and "--trust" in msg
    assert f"own would load {__name__}.ClippedLogistic" in msg
    assert "odd would load posix.system" in msg and "ok " not in msg
    assert restore_mod.load(b, imported, ["ok"])["ok"].coef_.shape == (1, 8)  # the safe one alone: fine
    got = restore_mod.load(b, imported, ["own", "odd"], trust=True)
    assert type(got["own"]) is ClippedLogistic and got["odd"].postprocess_ is os.system
    assert np.array_equal(got["own"].predict_proba(X), own.predict_proba(X))


def test_notebook_defined_estimator_falls_back_to_pickle_and_needs_trust(shell, run, tmp_path):
    run("from sklearn.preprocessing import StandardScaler\n"
        "import numpy as np\n"
        "class LogScaler(StandardScaler):\n"
        "    def transform(self, X, copy=None):\n"
        "        return super().transform(np.log1p(X), copy=copy)\n"
        "scaler = LogScaler().fit(np.arange(12.0).reshape(6, 2))\n"
        "plain = StandardScaler().fit(np.arange(12.0).reshape(6, 2))\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "def clip(X):\n"
        "    return np.clip(X, 0, 5)\n"
        "clipped = make_pipeline(FunctionTransformer(clip), StandardScaler()).fit(np.arange(12.0).reshape(6, 2))")
    run("%mv_snapshot scaler plain clipped")
    st = api.session().store()
    v = st.versions()[-1]
    # the local store pickles every estimator; the bundle ships skops where skops can hold it
    assert {x.name: x.codec for x in st.variables(v)} == dict.fromkeys(("scaler", "plain", "clipped"), "sklearn")
    run(f"%mv_export v1 {tmp_path / 'scalers.mvz'}")
    with Store(tmp_path / "colleague" / ".jupyter_mv") as other:
        imported = api.import_bundle(tmp_path / "scalers.mvz", store=other).version
        assert {x.name: x.codec for x in other.variables(imported)} == {
            "scaler": "sklearn", "plain": "sklearn.skops", "clipped": "sklearn"}
        with pytest.raises(Untrusted, match=r"scaler would unpickle __main__\.LogScaler; pass --trust"):
            api.load(imported, "scaler", store=other)
        assert api.load(imported, "plain", store=other).mean_.tolist() == [5.0, 6.0]
        with pytest.raises(Untrusted, match=r"clipped would unpickle sklearn\.pipeline\.Pipeline \(it holds "
                                            r"__main__\.clip, defined in the notebook\)"):
            api.load(imported, "clipped", store=other)
        clipped = api.load(imported, "clipped", store=other, trust=True)
        assert clipped.transform(np.array([[9.0, -1.0]])).tolist() == \
            shell.user_ns["clipped"].transform(np.array([[9.0, -1.0]])).tolist()
        assert type(api.load(imported, "scaler", store=other, trust=True)).__name__ == "LogScaler"


# -- skops data is audited and checked ----------------------------------------------------------------
def _tree_buffers(model):
    enc = codecs.estimators.to_skops(model)
    assert enc.codec == "sklearn.skops"
    return enc, [bytes(b) for b in enc.buffers]


def test_damaged_tree_nodes_are_refused():
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, Y)
    enc, bufs = _tree_buffers(tree)
    schema = json.loads(bufs[0])
    assert codecs.untrusted_types(enc.codec, enc.meta, bufs, enc.type_name) == []  # Tree is vetted
    import io

    nodes_dtype = tree.tree_.__getstate__()["nodes"].dtype
    for i, raw in enumerate(bufs[1:], 1):
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
        if arr.dtype == nodes_dtype:
            arr = arr.copy()
            arr["left_child"][0] = 10_000  # past the end: predict would read out of bounds
            out = io.BytesIO()
            np.save(out, arr, allow_pickle=False)
            bufs[i] = out.getvalue()
            break
    else:
        pytest.fail(f"no node array among the skops members ({len(schema)} schema keys)")
    with pytest.raises(NotStorable, match="child index"):
        codecs.decode(enc.codec, enc.meta, bufs, codecs.DecodeContext(trusted=False))


def test_skops_encoding_is_deterministic():
    forest = _models()["forest"]
    e1, e2 = codecs.estimators.to_skops(forest), codecs.estimators.to_skops(forest)
    assert e1.meta == e2.meta and [bytes(b) for b in e1.buffers] == [bytes(b) for b in e2.buffers]
    assert len(e1.buffers) > 15  # the fitted arrays are buffers of their own (chunked, deduplicated)


# -- pickled locally, skops in bundles ------------------------------------------------------------------
def _bundle_manifest(path) -> dict:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def test_forest_is_pickled_locally_and_shipped_as_skops(two_stores, tmp_path):
    """The local store takes the fast pickle path; the bundle carries skops (no --trust needed where it
    arrives); an unchanged re-snapshot writes nothing; the same model exports to the same bytes; an
    alias of the model travels as skops too and is the same object again after the restore."""
    a, b = two_stores
    forest = RandomForestClassifier(n_estimators=40, max_depth=6, random_state=0).fit(X, Y)
    ns = {"forest": forest, "same": forest, "lr": LogisticRegression().fit(X, Y)}
    api.set_session(api.Session(namespace=ns))
    v1 = api.take_snapshot(message="first", store=a).version
    assert {x.name: x.codec for x in a.variables(v1)} == dict.fromkeys(ns, "sklearn")
    r2 = api.take_snapshot(message="unchanged", store=a)
    assert r2.version.new_bytes == 0
    hashes = [{x.name: x.content_hash for x in a.variables(v)} for v in (v1, r2.version)]
    assert hashes[0] == hashes[1]

    p1 = api.export(v1, tmp_path / "one.mvz", store=a)
    p2 = api.export(r2.version, tmp_path / "two.mvz", store=a)
    m1, m2 = _bundle_manifest(p1), _bundle_manifest(p2)
    assert {x["name"]: x["codec"] for x in m1["variables"]} == dict.fromkeys(ns, "sklearn.skops")
    # same model, same bytes: variables' manifests and blob members identical in both bundles
    assert [(x["name"], x["content_hash"], x["manifest"]) for x in m1["variables"]] == \
        [(x["name"], x["content_hash"], x["manifest"]) for x in m2["variables"]]
    assert {k: v for k, v in m1["members"].items() if k.startswith("blobs/")} == \
        {k: v for k, v in m2["members"].items() if k.startswith("blobs/")}
    assert api.export(v1, tmp_path / "again.mvz", store=a).read_bytes() == p1.read_bytes()
    # exporting wrote nothing into the local store: its rows are still the pickled ones
    assert {x.name: x.codec for x in a.variables(v1)} == dict.fromkeys(ns, "sklearn")

    imported = api.import_bundle(p1, store=b).version
    assert {x.name: x.codec for x in b.variables(imported)} == dict.fromkeys(ns, "sklearn.skops")
    got = restore_mod.load(b, imported, None, trust=False)
    assert got["same"] is got["forest"]
    assert compare_values(forest, got["forest"], rtol=0, atol=0) is None
    assert np.array_equal(got["forest"].predict_proba(X), forest.predict_proba(X))
    # re-exported from the receiving store, the skops rows are shipped as they are
    again = _bundle_manifest(api.export(imported, tmp_path / "re.mvz", store=b))
    assert {x["name"]: x["codec"] for x in again["variables"]} == dict.fromkeys(ns, "sklearn.skops")


def test_an_imported_pickled_model_is_not_decoded_to_be_reexported(two_stores, tmp_path, monkeypatch):
    """A pickled estimator that arrived in a bundle (it holds a lambda: skops cannot ship it) is
    shipped on as it is: turning it into skops would mean unpickling what nobody vouched for."""
    a, b = two_stores
    odd = LogisticRegression().fit(X, Y)
    odd.postprocess_ = lambda p: p  # a function a fresh kernel cannot import by name
    _, imported = _share({"odd": odd}, a, b, tmp_path)
    sv = b.stored_variable(imported, "odd")
    assert sv.codec == "sklearn" and any("<lambda>" in t for t in sv.summary["pickled_for"])
    with pytest.raises(Untrusted, match=r"odd would unpickle sklearn\.linear_model\._logistic\.LogisticRegression "
                                        r"\(it holds .*<lambda>"):
        restore_mod.load(b, imported, ["odd"])
    monkeypatch.setattr(codecs, "decode", lambda *a, **k: pytest.fail("decoded an imported pickle"))
    again = _bundle_manifest(api.export(imported, tmp_path / "re.mvz", store=b))
    assert [x["codec"] for x in again["variables"]] == ["sklearn"]


def test_stores_with_skops_rows_still_restore_and_export(two_stores, tmp_path, monkeypatch):
    """Stores written while estimators were stored with skops locally hold "sklearn.skops" rows:
    they restore, and export as they are."""
    a, b = two_stores
    forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, Y)
    with monkeypatch.context() as m:  # the encoder of that release
        m.setattr(codecs.estimators, "encode", codecs.estimators.to_skops)
        api.set_session(api.Session(namespace={"forest": forest}))
        v = api.take_snapshot(message="skops era", store=a).version
    assert a.stored_variable(v, "forest").codec == "sklearn.skops"
    assert compare_values(forest, restore_mod.load(a, v)["forest"], rtol=0, atol=0) is None
    path = api.export(v, tmp_path / "old.mvz", store=a)
    imported = api.import_bundle(path, store=b).version
    assert b.stored_variable(imported, "forest").codec == "sklearn.skops"
    assert np.array_equal(restore_mod.load(b, imported)["forest"].predict_proba(X), forest.predict_proba(X))


# -- torch: weights into a live module -----------------------------------------------------------------
def _net(width: int = 8):
    import torch

    return torch.nn.Sequential(torch.nn.Linear(5, width), torch.nn.BatchNorm1d(width), torch.nn.ReLU(),
                               torch.nn.Linear(width, 2))


def test_torch_weights_load_into_a_fresh_module_without_trust(two_stores, tmp_path):
    import torch

    a, b = two_stores
    torch.manual_seed(0)
    net = _net()
    net(torch.randn(32, 5))  # BatchNorm running statistics move: buffers are weights too
    net.eval()
    _, imported = _share({"net": net}, a, b, tmp_path)
    with pytest.raises(Untrusted, match="--weights-only"):
        api.load(imported, "net", store=b)  # the whole module would unpickle its class
    fresh = _net()
    opt = torch.optim.SGD(fresh.parameters(), lr=0.1)
    params_before = [id(p) for p in fresh.parameters()]
    assert api.load(imported, "net", into=fresh, store=b) is fresh
    fresh.eval()
    x = torch.randn(16, 5)
    assert torch.equal(fresh(x), net(x))
    assert [id(p) for p in fresh.parameters()] == params_before  # in place: the optimizer still holds them
    assert opt.param_groups[0]["params"][0] is fresh[0].weight
    for other, expect in [(_net(9), r"0\.weight is 8x5 in v1, 9x5 here"),
                          (torch.nn.Sequential(torch.nn.Linear(5, 8)), "unexpected keys 1.bias"),
                          (_net().double(), "0.bias is float32 in v1, float64 here")]:
        with pytest.raises(UsageError, match=expect) as err:
            api.load(imported, "net", into=other, store=b)
        assert "\n" not in str(err.value) and "architecture differs" in str(err.value)
    with pytest.raises(UsageError, match="must be a torch.nn.Module, got builtins.int"):
        api.load(imported, "net", into=3, store=b)


def test_weights_of_something_else_are_refused(two_stores, tmp_path):
    a, b = two_stores
    _, imported = _share({"w": np.ones(3), "clf": LogisticRegression().fit(X, Y)}, a, b, tmp_path)
    for name in ("w", "clf"):
        with pytest.raises(UsageError, match=f"variable '{name}' is a .*, not a torch module"):
            api.load(imported, name, into=_net(), store=b)


def test_weights_only_magic(shell, run, tmp_path):
    import torch

    run("import torch\ntorch.manual_seed(1)\n"
        "net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))\n"
        "x = torch.randn(6, 4)\nwant = net(x).detach().clone()")
    run("%mv_snapshot net")
    run(f"%mv_export v1 {tmp_path / 'net.mvz'}")
    colleague = as_colleague(shell, tmp_path)
    run(f"%mv_import {tmp_path / 'net.mvz'}")
    api.set_notebook(api.versions(all=True)[0].notebook)
    run("torch.manual_seed(99)\n"
        "net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))\n"
        "live = net")
    assert not torch.equal(shell.user_ns["net"](shell.user_ns["x"]), shell.user_ns["want"])
    run("%mv_restore v1 net --weights-only")
    assert shell.user_ns["net"] is shell.user_ns["live"]
    assert torch.equal(shell.user_ns["net"](shell.user_ns["x"]), shell.user_ns["want"])
    from IPython.core.error import UsageError as IPyUsageError

    with pytest.raises(IPyUsageError, match="takes no --prefix"):
        shell.run_line_magic("mv_restore", "v1 net --weights-only --prefix p_")
    run("net = torch.nn.Linear(4, 1)")
    with pytest.raises(IPyUsageError, match="architecture differs: missing keys weight, bias; unexpected keys 0.bias"):
        shell.run_line_magic("mv_restore", "v1 net --weights-only")
    run("net = live\nother = torch.nn.Linear(2, 2)")
    with pytest.raises(IPyUsageError, match="loaded the weights of net, not of 'other'"):
        shell.run_line_magic("mv_restore", "v1 net other --weights-only")
    with pytest.raises(IPyUsageError, match="needs the module"):
        shell.run_line_magic("mv_restore", "v1 --weights-only")
    with pytest.raises(IPyUsageError, match="not defined"):
        shell.run_line_magic("mv_restore", "v1 ghost --weights-only")


# -- hostile tables in a bundle --------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["weights_out_of_range", "skops_member_path"])
def test_hostile_model_tables_refused(two_stores, tmp_path, case):
    import torch

    from test_bundle import rewrite

    a, b = two_stores
    api.set_session(api.Session(namespace={"net": torch.nn.Linear(3, 2), "lr": LogisticRegression().fit(X, Y)}))
    v = api.take_snapshot(message="m", store=a).version
    path = api.export(v, tmp_path / "m.mvz", store=a)

    def edit(m):
        for var in m["variables"]:
            meta = var["manifest"]["meta"]
            if case == "weights_out_of_range" and var["codec"] == "torch.module":
                meta["weights"]["weight"] = 99
            if case == "skops_member_path" and var["codec"] == "sklearn.skops":
                meta["files"][0] = "../../etc/passwd"

    bad = rewrite(path, tmp_path / "bad.mvz", manifest=edit)
    with pytest.raises(BundleError, match="weight table|skops member table"):
        api.import_bundle(bad, store=b)
    assert b.versions() == []


def test_weights_load_when_the_module_was_stored_with_its_optimizer(two_stores, tmp_path):
    """Model and optimizer share parameters, so they are stored as one group: the weight table
    still locates each weight, and loading them needs no trust."""
    import torch

    a, b = two_stores
    torch.manual_seed(3)
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(8, 5)).sum().backward()
    opt.step()
    net.eval()
    _, imported = _share({"net": net, "opt": opt}, a, b, tmp_path)
    assert b.stored_variable(imported, "net").manifest["meta"]["group"] == ["net", "opt"]
    fresh = _net().eval()
    api.load(imported, "net", into=fresh, store=b)
    x = torch.randn(4, 5)
    assert torch.equal(fresh(x), net(x))


def test_more_standard_models_and_what_still_needs_trust(two_stores, tmp_path):
    """Python-only scikit-learn internals (an MLP's optimizer, Gaussian-process kernels, calibration,
    univariate score functions) are vetted; KD-trees and distance metrics (compiled code over index
    arrays nobody checks) still need trust, named."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_selection import SelectKBest
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    a, b = two_stores
    with warnings.catch_warnings():  # a 30-iteration MLP warns that it did not converge: not under test
        warnings.simplefilter("ignore")
        ns = {"mlp": MLPClassifier(hidden_layer_sizes=(6,), max_iter=30, random_state=0).fit(X, Y),
              "gp": GaussianProcessClassifier(random_state=0).fit(X[:60], Y[:60]),
              "cal": CalibratedClassifierCV(LogisticRegression(), cv=3).fit(X, Y),
              "kbest": Pipeline([("k", SelectKBest(k=4)), ("lr", LogisticRegression())]).fit(X, Y),
              "knn": KNeighborsClassifier(n_neighbors=3).fit(X, Y)}
    _, imported = _share(ns, a, b, tmp_path)
    assert {x.name: x.codec for x in b.variables(imported)} == dict.fromkeys(ns, "sklearn.skops")
    safe = ["mlp", "gp", "cal", "kbest"]
    got = restore_mod.load(b, imported, safe)
    for n in safe:
        assert np.array_equal(got[n].predict_proba(X), ns[n].predict_proba(X)), n
    with pytest.raises(Untrusted, match=r"knn would load sklearn\.metrics\._dist_metrics\.EuclideanDistance64, "
                                        r"sklearn\.neighbors\._kd_tree\.KDTree, which skops does not trust"):
        restore_mod.load(b, imported, ["knn"])
    knn = restore_mod.load(b, imported, ["knn"], trust=True)["knn"]
    assert np.array_equal(knn.predict_proba(X), ns["knn"].predict_proba(X))



def test_fitted_searches_restore_without_trust(two_stores, tmp_path):
    """A fitted GridSearchCV / RandomizedSearchCV keeps its splitter and scorer objects
    (StratifiedKFold, _PassthroughScorer, _Scorer with accuracy_score, ...): vetted, so the search
    restores from a bundle without --trust, predicting exactly as the original."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, KFold, PredefinedSplit, RandomizedSearchCV

    a, b = two_stores
    yr = X[:, 0] * 2.0 + X[:, 1]
    ns = {"gs": GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3).fit(X, Y),
          "gs_multi": GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3, scoring=["accuracy", "roc_auc", "f1"],
                                   refit="roc_auc").fit(X, Y),
          "gs_reg": GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=KFold(3, shuffle=True, random_state=0),
                                 scoring="neg_mean_squared_error").fit(X, yr),
          "gs_fold": GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=PredefinedSplit(np.arange(len(X)) % 2)).fit(X, yr),
          "rs": RandomizedSearchCV(Pipeline([("s", StandardScaler()), ("lr", LogisticRegression())]),
                                   {"lr__C": [0.1, 1.0, 10.0]}, n_iter=2, cv=[(np.arange(150), np.arange(150, 300))],
                                   random_state=0).fit(X, Y)}
    _, imported = _share(ns, a, b, tmp_path)
    assert {x.name: x.codec for x in b.variables(imported)} == dict.fromkeys(ns, "sklearn.skops")
    got = restore_mod.load(b, imported, list(ns))  # no trust
    for n, model in ns.items():
        assert np.array_equal(got[n].predict(X), model.predict(X)), n
        assert got[n].best_params_ == model.best_params_ and got[n].score(X, Y if n in ("gs", "gs_multi", "rs") else yr) \
            == model.score(X, Y if n in ("gs", "gs_multi", "rs") else yr), n


def test_diff_of_imported_models_measures_weights_without_unpickling(two_stores, tmp_path):
    """The model-aware diff uses the same comparison as reproduce: an imported forest's trees by
    their node arrays (skops, audited), an imported module's weights from its weight table."""
    import torch

    a, b = two_stores
    torch.manual_seed(0)
    ns = {"forest": RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, Y),
          "net": torch.nn.Linear(4, 2)}
    api.set_session(api.Session(namespace=ns))
    v1 = api.take_snapshot(message="one", store=a).version
    ns["forest"] = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=1).fit(X, Y)
    with torch.no_grad():
        ns["net"].weight[0, 0] += 3.0
    v2 = api.take_snapshot(message="two", store=a).version
    for v in (v1, v2):
        api.import_bundle(api.export(v, tmp_path / f"{v.label}.mvz", store=a), store=b)
    d = api.diff("v1", "v2", notebook="work/models.ipynb", store=b).to_dict()
    analysis = {c["name"]: c["analysis"] for c in d["variables"]["changed"]}
    assert "weights_note" not in analysis["net"]
    moved = {w["name"]: w["delta_norm"] for w in analysis["net"]["weights"]}
    assert moved["weight"] == pytest.approx(3.0) and moved["bias"] == 0.0
    names = [w["name"] for w in analysis["forest"]["weights"]]
    assert "estimators_[0].tree_.threshold" in names and "estimators_[2].tree_.value" in names
