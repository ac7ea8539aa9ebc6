"""Comparing values by content: the one comparison `reproduce` (recorded vs re-run values) and the
model-aware diff (weight deltas between two versions) share.

A model is compared through `model_state`: its hyperparameters and fitted state flattened to
{dotted path: leaf} — a scikit-learn estimator's `get_params(deep=False)` and fitted attributes
(public `name_` ones plus the private ones predict reads, `PRIVATE_FITTED`; wall-clock timings
left out, `TIMINGS`), recursing into the
estimators it holds (pipeline steps, an ensemble's `estimators_`); a decision tree by its node
arrays (`Tree.__getstate__()`: one entry per node field, plus `value`); a torch module by its
`state_dict()`. Two models are equal when their paths match and every leaf is equal within the
tolerance; never by identity or `repr` (which holds memory addresses).

Only the standard library is imported here; numpy, pandas, torch and scikit-learn are looked up
in `sys.modules` (a value of theirs can exist only once they are imported)."""

from __future__ import annotations

import math
import sys
import types

__all__ = ["compare_values", "compare_models", "model_state", "named_arrays", "is_model", "close"]

MAX_DEPTH = 25
# private attributes that hold what a fitted estimator predicts with (sklearn keeps these private);
# the others (thread counts, caches, scorers) vary between runs without changing the model
PRIVATE_FITTED = ("_predictors", "_baseline_prediction", "_fit_X", "_y", "_tree",
                  "_dual_coef_", "_intercept_", "_n_support", "_probA", "_probB", "_label_binarizer")
# fitted attributes that are wall-clock timings, volatile like the timings masked in outputs (a search's
# `cv_results_` also loses its `*_time` columns)
TIMINGS = ("refit_time_",)


def close(x: float, y: float, rtol: float, atol: float) -> bool:
    """Equal within rtol/atol (math.isclose), NaN equal to NaN."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return math.isclose(x, y, rel_tol=rtol, abs_tol=atol)


def _tn(x) -> str:
    return f"{type(x).__module__}.{type(x).__qualname__}"


def _short(x, n: int = 60) -> str:
    try:
        r = repr(x)
    except Exception:
        r = f"<{_tn(x)}>"
    r = " ".join(r.split())
    return r if len(r) <= n else r[: n - 1] + "…"


# -- models flattened --------------------------------------------------------------------------
def _is_estimator(x) -> bool:
    if "sklearn" not in sys.modules:
        return False
    from sklearn.base import BaseEstimator

    return isinstance(x, BaseEstimator)


def _is_module(x) -> bool:
    if "torch" not in sys.modules:
        return False
    import torch

    return isinstance(x, (torch.nn.Module, torch.optim.Optimizer))


def _is_tree(x) -> bool:
    return _tn(x) == "sklearn.tree._tree.Tree"


def _is_predictor(x) -> bool:  # one tree of a histogram gradient-boosting model
    return _tn(x) == "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def is_model(x) -> bool:
    """A scikit-learn estimator, a torch module or optimizer, or a decision tree structure."""
    return _is_estimator(x) or _is_module(x) or _is_tree(x) or _is_predictor(x)


def _join(path: str, part: str) -> str:
    if not path:
        return part.lstrip(".")
    return path + part if part.startswith("[") else f"{path}.{part.lstrip('.')}"


def _plain_state(sd):
    """An optimizer's state dict refers to parameters by integer ids; a module's is tensors by name."""
    return {str(k): (_plain_state(v) if isinstance(v, dict) else v) for k, v in sd.items()}


def model_state(obj, path: str = "") -> dict:
    """{dotted path: leaf} for a model (see the module docstring); other values are one leaf.
    Paths read like Python: `steps.scaler.mean_`, `estimators_[3].tree_.threshold`,
    `estimators_[0, 0].tree_.value`, `0.weight` (a torch state_dict key)."""
    out: dict = {}
    _flatten(obj, path, out, 0, set())
    return out


def _flatten(x, path: str, out: dict, depth: int, active: set) -> None:
    if depth > MAX_DEPTH or id(x) in active:
        out[path] = x
        return
    if _is_module(x):
        import torch

        sd = x.state_dict()
        if isinstance(x, torch.optim.Optimizer):  # {"state": {param id: {...}}, "param_groups": [...]}
            sd = _plain_state(sd)
        for k, v in sd.items():
            out[_join(path, str(k))] = v
        if not sd:
            out[path] = type(x).__qualname__
        return
    if _is_tree(x):
        st = x.__getstate__()
        nodes = st.get("nodes")
        for f in getattr(getattr(nodes, "dtype", None), "names", None) or ():
            out[_join(path, f)] = nodes[f]
        out[_join(path, "value")] = st.get("values")
        out[_join(path, "max_depth")] = st.get("max_depth")
        out[_join(path, "n_features")] = x.n_features
        out[_join(path, "n_outputs")] = x.n_outputs
        return
    active.add(id(x))
    try:
        if _is_estimator(x):
            out[_join(path, "__class__")] = _tn(x)
            try:
                params = x.get_params(deep=False)
            except Exception:  # a broken custom get_params: its attributes still say what it is
                params = {}
            steps = params.get("steps") if isinstance(params.get("steps"), list) else None
            for k in sorted(params):
                if k == "steps" and steps is not None and all(
                        isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str) for s in steps):
                    out[_join(path, "steps")] = [s[0] for s in steps]
                    for name, est in steps:  # by step name, as pipelines are read
                        _flatten(est, _join(path, f"steps.{name}"), out, depth + 1, active)
                    continue
                _flatten(params[k], _join(path, k), out, depth + 1, active)
            fields = vars(x) if hasattr(x, "__dict__") else {}
            for k in sorted(fields):
                if k in params or k in TIMINGS:
                    continue
                if (k.endswith("_") and not k.startswith("_")) or k in PRIVATE_FITTED:
                    v = fields[k]
                    if k == "cv_results_" and isinstance(v, dict):  # a search's timings vary run to run
                        v = {c: r for c, r in v.items() if not (isinstance(c, str) and c.endswith("_time"))}
                    _flatten(v, _join(path, k), out, depth + 1, active)
            return
        if isinstance(x, (list, tuple)) and any(is_model(e) or isinstance(e, (list, tuple)) for e in x):
            out[f"len({path})"] = len(x)
            for i, e in enumerate(x):
                _flatten(e, _join(path, f"[{i}]"), out, depth + 1, active)
            return
        if isinstance(x, dict) and any(is_model(e) for e in x.values()):
            out[_join(path, "keys()")] = sorted(map(repr, x))
            for k, e in x.items():
                _flatten(e, _join(path, f"[{k!r}]"), out, depth + 1, active)
            return
        if "numpy" in sys.modules:
            import numpy as np

            if isinstance(x, np.ndarray) and x.dtype == object and any(is_model(e) for e in x.flat):
                out[_join(path, "shape")] = list(x.shape)
                for idx in np.ndindex(*x.shape):
                    _flatten(x[idx], _join(path, f"[{', '.join(map(str, idx))}]"), out, depth + 1, active)
                return
            if isinstance(x, np.ndarray) and x.dtype.names:  # a structured array: one entry a field
                for f in x.dtype.names:
                    out[_join(path, f)] = x[f]
                return
        if _is_predictor(x):
            for k in sorted(vars(x)):
                _flatten(getattr(x, k), _join(path, k), out, depth + 1, active)
            return
        out[path] = x
    finally:
        active.discard(id(x))


def named_arrays(obj) -> dict:
    """The numeric arrays of a model by path (weights, coefficients, tree node fields): what the
    model-aware diff measures deltas on. Tensors are returned as numpy arrays."""
    import numpy as np

    out = {}
    for k, v in model_state(obj).items():
        if "torch" in sys.modules:
            import torch

            if isinstance(v, torch.Tensor):
                v = v.detach().cpu()
                v = (v.float() if v.dtype == torch.bfloat16 else v).numpy()
        if isinstance(v, np.ndarray) and v.dtype.kind in "fiub":
            out[k] = v
    return out


def compare_models(recorded, now, rtol: float = 1e-6, atol: float = 1e-12, where: str = "",
                   depth: int = 0) -> str | None:
    """None when two models have the same hyperparameters and fitted state within tolerance, else
    the first difference, named by its path (one line)."""
    if type(recorded) is not type(now):
        return f"type {_tn(recorded)} recorded, {_tn(now)} now{' at ' + where if where else ''}"
    sa, sb = model_state(recorded, where), model_state(now, where)
    for k in sa:  # hyperparameters come first: `n_estimators 4 recorded, 5 now` says more than extra trees
        if k not in sb:
            continue
        a, b = sa[k], sb[k]
        if is_model(a) or is_model(b):  # cut off by the depth bound: compare by type only
            why = None if type(a) is type(b) else f"type {_tn(a)} recorded, {_tn(b)} now at {k}"
        else:
            why = compare_values(a, b, rtol, atol, k, depth + 1)
        if why:
            return why
    if sa.keys() != sb.keys():
        gone = _heads(k for k in sa if k not in sb)
        new = _heads(k for k in sb if k not in sa)
        return (f"fitted state differs{' at ' + where if where else ''}: recorded only {', '.join(gone[:3]) or '-'}"
                f"{' …' if len(gone) > 3 else ''}; now only {', '.join(new[:3]) or '-'}{' …' if len(new) > 3 else ''}")
    return None


def _heads(keys) -> list:
    """Paths cut after their first index (`estimators_[4, 0].criterion` -> `estimators_[4, 0]`), unique."""
    out: dict = {}
    for k in keys:
        i = k.find("]")
        out.setdefault(k[: i + 1] if i >= 0 else k, None)
    return list(out)


# -- values --------------------------------------------------------------------------------------
def compare_values(recorded, now, rtol: float = 1e-6, atol: float = 1e-12, where: str = "",
                   depth: int = 0) -> str | None:
    """None when `now` equals `recorded` within tolerance, else what differs (one line, naming
    where). Arrays and frames within rtol; models by `compare_models`; functions and classes are
    code, not state, and always equal."""
    if depth > MAX_DEPTH:
        return None
    at = f" at {where}" if where else ""
    if type(recorded) is not type(now):
        return f"type {_tn(recorded)} recorded, {_tn(now)} now{at}"
    if isinstance(recorded, (types.FunctionType, type, types.ModuleType, types.BuiltinFunctionType)):
        return None  # code, not state
    mods = sys.modules
    if is_model(recorded):
        return compare_models(recorded, now, rtol, atol, where, depth)
    if "numpy" in mods:
        import numpy as np

        if isinstance(recorded, np.ndarray):
            return _compare_arrays(recorded, now, rtol, atol, where, depth)
        if isinstance(recorded, np.generic):
            return compare_values(recorded.item(), now.item(), rtol, atol, where, depth + 1)
        if isinstance(recorded, np.random.RandomState):
            return compare_values(recorded.get_state(legacy=False), now.get_state(legacy=False), rtol, atol,
                                  _join(where, "get_state()"), depth + 1)
        if isinstance(recorded, np.random.Generator):
            return compare_values(recorded.bit_generator.state, now.bit_generator.state, rtol, atol,
                                  _join(where, "bit_generator.state"), depth + 1)
        if isinstance(recorded, np.dtype):
            return None if recorded == now else f"dtype {recorded} recorded, {now} now{at}"
    if "pandas" in mods:
        import pandas as pd

        if isinstance(recorded, (pd.DataFrame, pd.Series, pd.Index)):
            return _compare_frames(recorded, now, rtol, atol, at)
    if "torch" in mods:
        import torch

        if isinstance(recorded, torch.Tensor):
            if recorded.shape != now.shape or recorded.dtype != now.dtype:
                return f"tensor shape/dtype {tuple(recorded.shape)} {recorded.dtype} recorded, " \
                       f"{tuple(now.shape)} {now.dtype} now{at}"
            a, b = recorded.detach().cpu(), now.detach().cpu()
            if a.dtype == torch.bfloat16:
                a, b = a.float(), b.float()
            if a.is_floating_point() or a.is_complex():
                return compare_values(a.numpy(), b.numpy(), rtol, atol, where, depth + 1)
            return None if torch.equal(a, b) else f"tensor values differ{at}"
    if isinstance(recorded, bool) or recorded is None or isinstance(recorded, (str, bytes)):
        return None if recorded == now else f"{_short(recorded)} recorded, {_short(now)} now{at}"
    if isinstance(recorded, (int, float, complex)):
        if isinstance(recorded, int):
            return None if recorded == now else f"{recorded} recorded, {now} now{at}"
        ok = all(close(x, y, rtol, atol) for x, y in
                 ((complex(recorded).real, complex(now).real), (complex(recorded).imag, complex(now).imag)))
        return None if ok else f"{recorded!r} recorded, {now!r} now{at}"
    if isinstance(recorded, (list, tuple)):
        if len(recorded) != len(now):
            return f"length {len(recorded)} recorded, {len(now)} now{at}"
        for i, (x, y) in enumerate(zip(recorded, now)):
            why = compare_values(x, y, rtol, atol, f"{where}[{i}]", depth + 1)
            if why:
                return why
        return None
    if isinstance(recorded, dict):
        if set(map(repr, recorded)) != set(map(repr, now)):
            gone = sorted(set(map(repr, recorded)) - set(map(repr, now)))[:3]
            new = sorted(set(map(repr, now)) - set(map(repr, recorded)))[:3]
            return f"keys differ{at}: missing {', '.join(gone) or '-'}; new {', '.join(new) or '-'}"
        for k in recorded:
            why = compare_values(recorded[k], now[k], rtol, atol, f"{where}[{k!r}]", depth + 1)
            if why:
                return why
        return None
    if isinstance(recorded, (set, frozenset)):
        return None if recorded == now else f"set members differ{at}"
    if hasattr(recorded, "__dict__") and not isinstance(recorded, type):
        return compare_values(vars(recorded), vars(now), rtol, atol, where + ".__dict__", depth + 1)
    try:
        same = recorded == now
        if isinstance(same, bool) and same:
            return None
    except Exception:
        pass
    state = _reduced(recorded), _reduced(now)
    if state[0] is not None and state[1] is not None:  # extension types (Cython): by their pickled state
        return compare_values(state[0], state[1], rtol, atol, where, depth + 1)
    return None if repr(recorded) == repr(now) else f"{_short(recorded)} recorded, {_short(now)} now{at}"


def _reduced(x):
    """(constructor arguments, state) from __reduce_ex__, for objects without a __dict__; None
    when there is none to compare. Nothing is called but the object's own reduce."""
    try:
        r = x.__reduce_ex__(4)
    except Exception:
        return None
    if not isinstance(r, tuple) or len(r) < 2:
        return None
    return (r[1], r[2] if len(r) > 2 else None)


def _compare_arrays(recorded, now, rtol, atol, where, depth) -> str | None:
    import numpy as np

    at = f" at {where}" if where else ""
    if recorded.shape != now.shape or recorded.dtype != now.dtype:
        return f"shape/dtype {recorded.shape} {recorded.dtype} recorded, {now.shape} {now.dtype} now{at}"
    if recorded.dtype.names:  # structured (a tree's nodes): field by field, each within tolerance
        for f in recorded.dtype.names:
            why = _compare_arrays(recorded[f], now[f], rtol, atol, _join(where, f), depth + 1)
            if why:
                return why
        return None
    if recorded.dtype.kind in "fc":
        # near-zero entries are judged at the array's own scale, not relative to themselves
        finite = np.abs(recorded[np.isfinite(recorded)]) if recorded.size else recorded
        scale = float(finite.max()) if finite.size else 0.0
        if not np.allclose(recorded, now, rtol=rtol, atol=max(atol, rtol * scale), equal_nan=True):
            diff = np.nanmax(np.abs(recorded - now)) if recorded.size else 0
            return f"values differ{at} (max abs difference {float(diff):.3g})"
        return None
    if recorded.dtype.kind == "M":
        return None  # dates are volatile
    if recorded.dtype.kind == "O":
        for i, (x, y) in enumerate(zip(recorded.ravel().tolist(), now.ravel().tolist())):
            why = compare_values(x, y, rtol, atol, f"{where}[{i}]", depth + 1)
            if why:
                return why
        return None
    return None if np.array_equal(recorded, now) else f"values differ{at}"


def _compare_frames(recorded, now, rtol, atol, at) -> str | None:
    import pandas as pd

    try:
        if isinstance(recorded, pd.DataFrame):
            vol = [c for c in recorded.columns if pd.api.types.is_datetime64_any_dtype(recorded[c])]
            pd.testing.assert_frame_equal(recorded.drop(columns=vol), now.drop(columns=vol, errors="ignore"),
                                          check_exact=False, rtol=rtol, atol=atol)
        elif isinstance(recorded, pd.Series):
            if pd.api.types.is_datetime64_any_dtype(recorded):
                return None
            pd.testing.assert_series_equal(recorded, now, check_exact=False, rtol=rtol, atol=atol)
        else:
            pd.testing.assert_index_equal(recorded, now, exact=True)
    except AssertionError as e:
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        return f"{' / '.join(lines[:3])[:300]}{at}"
    except (KeyError, ValueError, TypeError) as e:
        return f"frames differ{at}: {str(e)[:200]}"
    return None
