"""scikit-learn estimators and pipelines: pickled in the local store (codec "sklearn"), shipped in
the skops format (codec "sklearn.skops") when they leave the machine, with their scalar
hyperparameters recorded as params and summary.

Locally: the local store is the user's own disk, so estimators take the pickle codec's fast path
(cloudpickle protocol 5, fitted arrays out of band, chunked and deduplicated: an unchanged model
writes nothing new). skops' JSON schema costs 0.2-0.9 s for a 100-tree forest where the pickle
costs about 0.01 s, too slow to run after every cell (benchmarks/sklearn_codec.py).

Shared (bundles, see redaction.to_safe_format): `to_skops` re-encodes a model with skops
(https://skops.readthedocs.io, `skops.io`), which writes an object as a zip of `schema.json` (a
tree of typed nodes) plus one `.npy` member per array. We keep the members apart: buffer 0 is the
schema, buffer i the member `meta["files"][i-1]`. skops names members and nodes after `id()` of
the live objects; those are renumbered in order of appearance so the same model always encodes to
the same bytes (a bundle of the same model is the same file). A group of variables that share
objects with a model (`models = {"rf": rf}`, codecs.groups) travels the same way as one skops file
of the dict {name: object} (`group_to_skops`, codec "group.skops").

Loading never unpickles. What it may construct is checked with skops' own audit
(`get_untrusted_types`): loading.py refuses an imported variable holding any type that neither
skops nor `VETTED` trusts. Decision trees (`Tree`, `TreePredictor`) are vetted because their node
arrays are checked after loading (`check_structures`): their compiled predict code follows child
and feature indices without bounds checks.

Estimators skops cannot write, or whose types a fresh kernel could not import (classes and
functions defined in the notebook, `__main__`), stay pickled in a bundle too, and need --trust
there. "sklearn.skops" rows written to local stores by the release that stored skops locally are
still decoded here."""

from __future__ import annotations

import io
import json
import sys
import threading
import zipfile

from ..errors import NotStorable
from . import Encoded, loaded, type_name

# "sklearn" (pickled) is decoded by the pickle codec; "group.skops" is a group of variables that share
# objects (codecs.groups), shipped as one skops file of the dict {name: object} (group_to_skops)
NAMES = ("sklearn.skops", "group.skops")

# Types skops does not trust by default that an imported model may still hold without --trust:
# decision-tree structures, whose node arrays check_structures validates (their compiled predict
# follows those indices unchecked, which is why skops leaves them out), and scikit-learn internals
# written in Python that hold only parameters and arrays, plus the pure functions scikit-learn uses as
# defaults. Not here: KD/ball trees and distance metrics (compiled code over index arrays nobody
# validates), scipy splines, any other function. Those still need --trust, named.
VETTED = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "numpy.dtype",
    "numpy.mean",  # FeatureAgglomeration's default pooling function
    "sklearn._loss.loss.HalfTweedieLoss",
    "sklearn._loss.loss.HalfTweedieLossIdentity",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.cluster._bisect_k_means._BisectingTree",
    "sklearn.cluster._kmeans._kmeans_single_lloyd",
    "sklearn.cluster._kmeans._kmeans_single_elkan",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_regression",
    "sklearn.feature_selection._univariate_selection.chi2",
    "sklearn.feature_selection._univariate_selection.r_regression",
    "sklearn.feature_selection._mutual_info.mutual_info_classif",
    "sklearn.feature_selection._mutual_info.mutual_info_regression",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    *(f"sklearn.gaussian_process.kernels.{k}" for k in (
        "ConstantKernel", "WhiteKernel", "RBF", "Matern", "RationalQuadratic", "ExpSineSquared", "DotProduct",
        "Sum", "Product", "Exponentiation", "CompoundKernel", "Hyperparameter")),
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    # what a fitted search (GridSearchCV, RandomizedSearchCV) keeps: its cross-validation splitter
    # (parameters and, for PredefinedSplit, an index array; used only to split, never to predict) and
    # its scorer objects with the metric functions of scikit-learn's scorer registry
    # (`sklearn.metrics.get_scorer_names()`): pure functions of arrays, like f_classif above
    *(f"sklearn.model_selection._split.{c}" for c in (
        "KFold", "StratifiedKFold", "GroupKFold", "StratifiedGroupKFold", "RepeatedKFold", "RepeatedStratifiedKFold",
        "ShuffleSplit", "StratifiedShuffleSplit", "GroupShuffleSplit", "TimeSeriesSplit", "LeaveOneOut",
        "LeavePOut", "LeaveOneGroupOut", "LeavePGroupsOut", "PredefinedSplit", "_CVIterableWrapper")),
    "sklearn.metrics._scorer._PassthroughScorer", "sklearn.metrics._scorer._Scorer",
    "sklearn.metrics._scorer._MultimetricScorer",
    *(f"sklearn.metrics._classification.{f}" for f in (
        "accuracy_score", "balanced_accuracy_score", "brier_score_loss", "d2_brier_score", "d2_log_loss_score",
        "f1_score", "jaccard_score", "log_loss", "matthews_corrcoef", "precision_score", "recall_score")),
    *(f"sklearn.metrics._ranking.{f}" for f in ("average_precision_score", "roc_auc_score", "top_k_accuracy_score")),
    *(f"sklearn.metrics._regression.{f}" for f in (
        "d2_absolute_error_score", "explained_variance_score", "max_error", "mean_absolute_error",
        "mean_absolute_percentage_error", "mean_gamma_deviance", "mean_poisson_deviance", "mean_squared_error",
        "mean_squared_log_error", "median_absolute_error", "r2_score", "root_mean_squared_error",
        "root_mean_squared_log_error")),
    "sklearn.metrics._scorer.negative_likelihood_ratio", "sklearn.metrics._scorer.positive_likelihood_ratio",
    *(f"sklearn.metrics.cluster._supervised.{f}" for f in (
        "adjusted_mutual_info_score", "adjusted_rand_score", "completeness_score", "fowlkes_mallows_score",
        "homogeneity_score", "mutual_info_score", "normalized_mutual_info_score", "rand_score", "v_measure_score")),
)
_NOT_PORTABLE = ("__main__", "__mp_main__", "<")  # modules a fresh kernel cannot import from
_lock = threading.Lock()
_estimator_list_deferred = False


def _skops():
    """skops.io, imported without the scan skops runs at import to list the scikit-learn estimators
    it trusts by default (`sklearn.utils.all_estimators()` imports every scikit-learn module: ~4 s,
    paid by the first snapshot or restore of every kernel). Writing and loading our own models
    does not need that list; only the audit of an imported model does, and `_audit_ready` fills it
    in then. Until it is filled skops trusts fewer types, never more."""
    global _estimator_list_deferred
    sio = sys.modules.get("skops.io")
    if sio is not None:
        return sio
    with _lock:
        if "skops.io" in sys.modules:
            return sys.modules["skops.io"]
        import sklearn.utils as sk_utils

        real = sk_utils.all_estimators
        sk_utils.all_estimators = lambda *a, **k: []
        try:
            import skops.io as sio
        finally:
            sk_utils.all_estimators = real
        from skops.io import _trusted_types

        _estimator_list_deferred = isinstance(getattr(_trusted_types, "SKLEARN_ESTIMATOR_TYPE_NAMES", None), list)
        return sio


def _audit_ready():
    """skops.io with its default trusted types complete (see _skops)."""
    global _estimator_list_deferred
    sio = _skops()
    with _lock:
        if _estimator_list_deferred:
            from sklearn.utils import all_estimators
            from skops.io import _trusted_types as tt

            names = [n for n in (tt.get_type_name(c) for _, c in all_estimators()) if n.startswith("sklearn.")]
            tt.SKLEARN_ESTIMATOR_TYPE_NAMES[:] = names  # in place: skops' modules hold this same list
            _estimator_list_deferred = False
    return sio


def match(obj) -> bool:
    if not loaded("sklearn"):
        return False
    from sklearn.base import BaseEstimator

    return isinstance(obj, BaseEstimator)


def scalar_params(est) -> dict:
    try:
        params = est.get_params(deep=True)
    except Exception:
        return {}
    return {k: v for k, v in params.items()
            if v is None or isinstance(v, (bool, int, float, str)) and not (isinstance(v, str) and len(v) > 200)}


def _summary(obj) -> tuple[dict, dict]:
    params = scalar_params(obj)
    fitted = any(k.endswith("_") and not k.startswith("_") for k in vars(obj)) if hasattr(obj, "__dict__") else None
    summary = {"class": type(obj).__name__, "fitted": fitted, "params": params}
    fields = vars(obj) if hasattr(obj, "__dict__") else {}
    for attr in ("coef_", "n_features_in_", "classes_", "n_estimators"):
        v = fields.get(attr)  # stored attributes only: properties (a forest's feature_importances_) compute
        if v is not None and hasattr(v, "shape"):
            summary[attr] = list(v.shape)
        elif isinstance(v, int):
            summary[attr] = v
    return summary, params


def _portable(type_names) -> bool:
    return not any(t.startswith(_NOT_PORTABLE) or "<" in t for t in type_names)


def _canonical(schema: dict) -> tuple[dict, dict]:
    """The schema with skops' `id()`-based node ids and member names renumbered in order of
    appearance (ids from 1: skops ignores a falsy id). Returns (schema, {old member: new member})."""
    ids: dict = {}
    files: dict = {}

    def walk(node, depth=0):
        if depth > 500:
            raise NotStorable("too deeply nested for skops")
        if isinstance(node, dict):
            if "__loader__" in node:
                if "__id__" in node:
                    node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
                f = node.get("file")
                if isinstance(f, str):
                    if f not in files:
                        files[f] = f"{len(files)}{f[f.rfind('.'):] if '.' in f else ''}"
                    node["file"] = files[f]
            for v in node.values():
                walk(v, depth + 1)
        elif isinstance(node, list):
            for v in node:
                walk(v, depth + 1)

    walk(schema)
    return schema, files


def encode(obj) -> Encoded:
    """The local store's encoding: the pickle codec under the name "sklearn" (see the module doc)."""
    from . import pickled

    summary, params = _summary(obj)
    enc = pickled.encode_with(obj, "sklearn", summary, params)
    own = reach(obj)
    # what can be shared is what the estimator holds (see reach), not everything the pickle met: a
    # forest's and a boosting model's pickles both meet numpy's node-dtype field table and the loss
    # classes' intervals, which would make every two models one group. A torch module inside (skorch)
    # is looked into as the pickle codec does, so an optimizer of its parameters stays with it.
    # (functions and classes it refers to, FunctionTransformer's func, are code, not shared state)
    if not _holds_torch(own):
        from .groups import shareable

        enc.reach = {k: o for k, o in own.items() if shareable(o)}
    return enc


def _holds_torch(reached: dict) -> bool:
    if not loaded("torch"):
        return False
    import torch

    return any(isinstance(o, (torch.Tensor, torch.nn.Module, torch.optim.Optimizer)) for o in reached.values())


def to_skops(obj) -> Encoded | list | None:
    """The shareable encoding of estimator `obj` (codec "sklearn.skops", deterministic: the same
    model gives the same meta and buffers). Returns the list of type names (`module.qualname`, at
    most all of them) a fresh kernel could not import when `obj` holds classes or functions defined
    in the notebook, and None when skops cannot write it (or a torch module is inside). Raises
    NotStorable when it is nested too deeply; ImportError when skops is not installed."""
    summary, params = _summary(obj)
    return _encode_skops(obj, summary, params)


def group_to_skops(payload: dict) -> Encoded | list | None:
    """The shareable encoding of a group of variables that share objects (codecs.groups):
    `payload` is {name: object}, in the group's order. skops keeps an object reached from several
    names one object (its schema refers to it by id), so `models["rf"] is rf` after loading. Codec
    "group.skops", deterministic like `to_skops` (ids and members renumbered). Returns the list of
    notebook-defined types when the group holds some (it stays pickled), None when skops cannot
    hold it or when loading it back would not give the same structure: every container, scalar
    and estimator of the same type (skops would write a `complex` or a tuple key differently, or
    not at all), the same objects shared (see `_same`). Raises NotStorable when nested too deeply."""
    enc = _encode_skops(payload, {}, {}, codec="group.skops")
    if not isinstance(enc, Encoded):
        return enc
    sio = _skops()
    try:
        data = _zip(enc.meta, enc.buffers)
        back = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    except Exception:
        return None
    seen: dict = {}
    return enc if _same(payload, back, seen, 0) and _views_kept(seen.get(_ARRAYS, [])) else None


_ARRAYS = "arrays"  # `_same`'s seen: besides {id: object}, the (array, array loaded back) pairs met


def _views_kept(pairs: list) -> bool:
    """Do the arrays that share memory in the group (a view and its base, `rows = list(m)`), and the
    read-only ones, load back from skops the same? skops writes each array as its own .npy: a view
    comes back a copy, so such a group stays pickled (restorable with --trust) rather than losing it."""
    import numpy as np

    from .groups import _overlap, array_key

    by_root: dict = {}
    for a, b in pairs:
        if a.flags.writeable != b.flags.writeable:
            return False
        if a.size:
            by_root.setdefault(next(iter(array_key(a))), []).append((a, b))
    for group in by_root.values():
        for i, (a1, b1) in enumerate(group[:200]):
            for a2, b2 in group[i + 1: 200]:
                if a1 is not a2 and _overlap(np, a1, a2) and not np.shares_memory(b1, b2):
                    return False
    return True


def _same(a, b, seen: dict, depth: int) -> bool:
    """Does `b` (loaded back from skops) have `a`'s structure: the same types down through
    containers and estimators' attributes, the same scalars, arrays of the same dtype and shape,
    and an object where `a` reuses one (`seen`: {id in a: object in b})? What skops loads inside
    an array or a compiled structure is its own format's business (the audit covers it)."""
    if depth > 400 or type(a) is not type(b):
        return False
    if isinstance(a, (str, bytes, int, float, bool, type(None))):
        return a == b or (isinstance(a, float) and a != a and b != b)
    if id(a) in seen:
        return seen[id(a)] is b
    seen[id(a)] = b
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, seen, depth + 1) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(type(k) is type(j) for k, j in zip(a, b)) and all(
            _same(a[k], b[k], seen, depth + 1) for k in a)
    if isinstance(a, (set, frozenset, bytearray)):
        return a == b
    if loaded("numpy"):
        import numpy as np

        if isinstance(a, np.ndarray):
            if a.dtype != b.dtype or a.shape != b.shape:
                return False
            seen.setdefault(_ARRAYS, []).append((a, b))
            return a.dtype != object or all(_same(x, y, seen, depth + 1) for x, y in zip(a.flat, b.flat))
        if isinstance(a, np.generic):
            return bool(a == b) or bool(a != a and b != b)
    if isinstance(a, _estimator_type()):
        return _same(vars(a), vars(b), seen, depth + 1)
    return True


def _encode_skops(obj, summary: dict, params: dict, codec: str = "sklearn.skops") -> Encoded | list | None:
    """The skops encoding; None when skops cannot write `obj`; the list of the types that are not
    portable when it holds classes or functions defined in the notebook."""
    reached = reach(obj)
    if _holds_torch(reached):  # a torch module inside (skorch): the pickle codec keeps its tensors out of band
        return None
    sio = _skops()
    try:
        raw = sio.dumps(obj)
        untrusted = sio.get_untrusted_types(data=raw)
    except RecursionError:
        raise NotStorable("too deeply nested for skops") from None
    except Exception:  # skops raises many types for what it does not support
        return None
    if not _portable(untrusted):
        return [t for t in untrusted if not _portable([t])]
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        schema, renamed = _canonical(json.loads(zf.read("schema.json")))
        names = [n for n in zf.namelist() if n != "schema.json"]
        if set(names) != set(renamed):
            return None  # a member the schema does not name (or the reverse): not a layout we understand
        members = {renamed[n]: zf.read(n) for n in names}
    order = sorted(members, key=lambda n: int(n.split(".")[0]))
    head = json.dumps(schema, separators=(",", ":"), sort_keys=False).encode()
    meta = {"format": "skops", "protocol": schema.get("protocol"), "files": order}
    return Encoded(codec, meta, [memoryview(head)] + [memoryview(members[n]) for n in order],
                   type_name(obj), summary, params, reach=reached)


def reach(obj) -> dict:
    """{id: object} of what a user can share with this estimator (see groups.py): the estimator,
    the estimators, arrays and containers it holds, and the other objects among its attributes
    (kept, not looked into). Not what those objects hold: a loss object's class-level intervals or
    a dtype's field table are the library's constants, which every model of that kind reaches."""
    out: dict = {}
    est = _estimator_type()
    stack = [(obj, 0)]
    while stack:
        x, depth = stack.pop()
        if id(x) in out or depth > 100 or isinstance(x, (str, bytes, int, float, complex, bool, type(None), type)):
            continue
        out[id(x)] = x
        if isinstance(x, est):
            stack.extend((v, depth + 1) for v in vars(x).values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            stack.extend((v, depth + 1) for v in x)
        elif isinstance(x, dict):
            stack.extend((v, depth + 1) for v in x.values())
        elif loaded("numpy"):
            import numpy as np

            if isinstance(x, np.ndarray) and x.dtype == object:
                stack.extend((v, depth + 1) for v in x.flat)
    return out


def _estimator_type():
    from sklearn.base import BaseEstimator

    return BaseEstimator


def _zip(meta: dict, buffers: list) -> bytes:
    """The skops file the buffers make up (members stored uncompressed, as skops writes them)."""
    files = meta.get("files") or []
    if not isinstance(files, list) or len(files) != len(buffers) - 1:
        raise NotStorable("its skops member table does not match its buffers")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("schema.json", bytes(buffers[0]))
        for name, buf in zip(files, buffers[1:]):
            zf.writestr(str(name), bytes(buf))
    return out.getvalue()


def untrusted_types(meta: dict, buffers: list) -> list[str]:
    """Type names in a stored skops model that neither skops nor VETTED trusts (the audit run
    before an imported model is loaded). Raises NotStorable when the data is not a skops file."""
    sio = _audit_ready()
    try:
        found = sio.get_untrusted_types(data=_zip(meta, buffers))
    except NotStorable:
        raise
    except Exception as e:
        raise NotStorable(f"not a readable skops model ({type(e).__name__}: {str(e)[:120]})") from None
    return [t for t in found if t not in VETTED]


def decode(codec, meta, buffers, ctx):
    data = _zip(meta, buffers)
    try:
        if getattr(ctx, "trusted", True):  # our own data, or the user trusts it: every type it holds
            sio = _skops()
            try:  # the types its schema names (one JSON pass, not a second skops audit)
                obj = sio.loads(data, trusted=_types_in(bytes(buffers[0])))
            except Exception as e:
                if type(e).__name__ != "UntrustedTypesFoundException":
                    raise
                obj = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
        else:  # loading.py audited it: nothing beyond skops' defaults and VETTED
            obj = _audit_ready().loads(data, trusted=list(VETTED))
    except NotStorable:
        raise
    except (ImportError, AttributeError) as e:
        from .pickled import import_failure

        raise NotStorable(f"cannot be loaded here: {import_failure(e)}") from None
    except Exception as e:
        raise NotStorable(f"skops cannot load it: {type(e).__name__}: {str(e)[:200]}") from None
    check_structures(obj)
    return obj


def _types_in(schema_bytes: bytes) -> list[str]:
    """`module.class` of every node in a skops schema (what a full trust of that file means)."""
    found: set = set()
    stack = [json.loads(schema_bytes)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            m, c = node.get("__module__"), node.get("__class__")
            if isinstance(m, str) and isinstance(c, str):
                found.add(f"{m}.{c}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found)


# -- checks of compiled structures ---------------------------------------------------------------
def check_structures(obj, n_features: int | None = None, depth: int = 0, seen: set | None = None) -> None:
    """Raise NotStorable when a decision tree inside `obj` has node arrays its compiled predict
    code would read out of bounds or loop on: every split's children must come after it and
    before the end, every split's feature below the number of features."""
    seen = set() if seen is None else seen
    if depth > 200 or id(obj) in seen:
        return
    seen.add(id(obj))
    tname = type_name(obj)
    if tname == "sklearn.tree._tree.Tree":
        _check_tree(obj, n_features)
        return
    if tname == "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor":
        _check_predictor(obj, n_features)
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for x in obj:
            check_structures(x, n_features, depth + 1, seen)
        return
    if isinstance(obj, dict):
        for x in obj.values():
            check_structures(x, n_features, depth + 1, seen)
        return
    if loaded("numpy"):
        import numpy as np

        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                for x in obj.ravel():
                    check_structures(x, n_features, depth + 1, seen)
            return
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        nf = d.get("n_features_in_")
        check_structures(d, nf if isinstance(nf, int) else n_features, depth + 1, seen)


def _bad(what: str):
    raise NotStorable(f"its {what}: the model was damaged or crafted; it is not loaded")


def _check_children(left, right, leaf, n: int, what: str) -> None:
    import numpy as np

    idx = np.arange(n)
    split = ~leaf
    if np.any(split & ((left <= idx) | (left >= n) | (right <= idx) | (right >= n))):
        _bad(f"{what} has a child index out of order or out of range")


def _check_tree(tree, n_features: int | None) -> None:
    import numpy as np

    state = tree.__getstate__()
    nodes = state["nodes"]
    n = int(state.get("node_count", len(nodes)))
    if n != len(nodes) or n < 1:
        _bad("decision tree's node count does not match its nodes")
    left, right = nodes["left_child"].astype(np.int64), nodes["right_child"].astype(np.int64)
    leaf = left == -1
    if np.any(leaf != (right == -1)):
        _bad("decision tree has a node with one child")
    _check_children(left, right, leaf, n, "decision tree")
    limit = min(x for x in (tree.n_features, n_features) if x is not None)
    feat = nodes["feature"].astype(np.int64)
    if np.any(~leaf & ((feat < 0) | (feat >= limit))):
        _bad("decision tree splits on a feature that does not exist")


def _check_predictor(pred, n_features: int | None) -> None:
    import numpy as np

    nodes = pred.nodes
    n = len(nodes)
    if n < 1:
        _bad("gradient-boosting tree has no nodes")
    leaf = nodes["is_leaf"].astype(bool)
    _check_children(nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), leaf, n,
                    "gradient-boosting tree")
    feat = nodes["feature_idx"].astype(np.int64)
    if np.any(~leaf & ((feat < 0) | ((feat >= n_features) if n_features is not None else False))):
        _bad("gradient-boosting tree splits on a feature that does not exist")
    cat = ~leaf & nodes["is_categorical"].astype(bool)
    if cat.any():
        sets = min(len(pred.binned_left_cat_bitsets), len(pred.raw_left_cat_bitsets))
        b = nodes["bitset_idx"].astype(np.int64)
        if np.any(cat & ((b < 0) | (b >= sets))):
            _bad("gradient-boosting tree refers to a category set that does not exist")
