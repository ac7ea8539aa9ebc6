"""scikit-learn estimators and pipelines: pickled (fitted arrays out of band, so they chunk and
deduplicate), with their scalar hyperparameters recorded as params and summary."""

from __future__ import annotations

from . import Encoded, loaded

NAMES = ()  # decoded by the pickle codec under the name "sklearn"


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


def encode(obj) -> Encoded:
    from . import pickled

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
    return pickled.encode_with(obj, "sklearn", summary, params)
