"""User values as plain JSON data (RFC 8259): what the CLI's --json, the REST API, the widgets' synced
state and the stored params/summaries are made of.

Non-finite numbers have no JSON literal (Python's json writes NaN/Infinity, which JSON.parse and strict
parsers reject), so they are written as the strings "NaN", "Infinity" and "-Infinity" — the convention of
the protobuf JSON mapping for float fields (https://protobuf.dev/programming-guides/json/). The UIs show
them as NaN, ∞ and -∞; `number()` reads them back. Other values become their nearest JSON form: numpy
scalars and arrays their Python numbers and lists, datetimes ISO 8601 text, paths their path string,
tuples and sets lists, dict keys strings, anything else its repr. Stdlib only (layer L0)."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os

NAN, INF, NINF = "NaN", "Infinity", "-Infinity"
_NONFINITE = {NAN: math.nan, INF: math.inf, NINF: -math.inf}
_MAX_DEPTH = 100
MAX_ARRAY = 1000  # elements of a numpy array written out as a list; larger ones as their (elided) repr


def _float(x: float, keep_nonfinite: bool):
    if math.isfinite(x) or keep_nonfinite:
        return x
    return NAN if math.isnan(x) else INF if x > 0 else NINF


def plain(obj, keep_nonfinite: bool = False, _depth: int = 0):
    """`obj` as JSON-ready data (dict/list/str/int/float/bool/None). With `keep_nonfinite` NaN and ±inf
    stay floats (for Python readers of our own stored JSON); without, they become "NaN"/"Infinity"/
    "-Infinity". Never raises."""
    if _depth > _MAX_DEPTH:
        return "…"
    d = _depth + 1
    if obj is None or type(obj) is str:
        return obj
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _float(float(obj), keep_nonfinite)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, dict):
        return {_key(k): plain(v, keep_nonfinite, d) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(x, keep_nonfinite, d) for x in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((plain(x, keep_nonfinite, d) for x in obj), key=repr)
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        try:
            return obj.isoformat()
        except (ValueError, TypeError):  # pandas NaT
            return str(obj)
    if isinstance(obj, _dt.timedelta):
        return str(obj)
    if isinstance(obj, os.PathLike):
        try:
            return os.fspath(obj)
        except TypeError:
            return repr(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "backslashreplace")
    mod = type(obj).__module__ or ""
    if mod.startswith("numpy") and hasattr(obj, "tolist"):  # numpy scalars and (small) arrays
        if getattr(obj, "size", 1) > MAX_ARRAY:
            return repr(obj)  # numpy's repr elides the middle: a param is not the place for data
        try:
            return plain(obj.tolist(), keep_nonfinite, d)
        except Exception:
            return repr(obj)
    if type(obj).__name__ == "Decimal" and mod == "decimal":
        return _float(float(obj), keep_nonfinite)
    if hasattr(obj, "__float__") and hasattr(obj, "__int__") and mod.startswith(("torch", "jax")):
        try:  # 0-d tensors logged as metrics
            return _float(float(obj), keep_nonfinite)
        except Exception:
            pass
    try:
        return repr(obj)
    except Exception:
        return f"<{type(obj).__name__}>"


def _key(k) -> str:
    if isinstance(k, str):
        return str(k)
    v = plain(k)
    return v if isinstance(v, str) else json.dumps(v, allow_nan=False)


def number_text(v, spec: str = ".4g") -> str:
    """A number for people: NaN and ±inf as "NaN", "∞", "-∞" (as every UI shows them), others by `spec`."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else "∞" if v > 0 else "-∞"
    return format(v, spec)


def value_text(v, spec: str = ".4g") -> str:
    """A param or metric value for people: a float by `number_text`; lists, tuples and dicts like
    their repr but with NaN and ±inf inside them shown as "NaN", "∞", "-∞" too (`{'n': NaN}`, not
    `{'n': nan}`); anything else by str()."""
    if isinstance(v, float):
        return number_text(v, spec)
    if isinstance(v, (dict, list, tuple)):
        return _nested_text(v)
    return str(v)


def _nested_text(v) -> str:
    if isinstance(v, float):
        return number_text(v, "r") if not math.isfinite(v) else repr(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {_nested_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_nested_text(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(_nested_text(x) for x in v) + (",)" if len(v) == 1 else ")")
    return repr(v)


def dumps(obj, **kw) -> str:
    """RFC 8259 JSON text of any value (see `plain`); `kw` as for json.dumps (indent, sort_keys…)."""
    return json.dumps(plain(obj), allow_nan=False, **kw)


def number(v):
    """A number written by `dumps` read back: "NaN"/"Infinity"/"-Infinity" become floats; other values
    are returned unchanged."""
    if isinstance(v, str) and v in _NONFINITE:
        return _NONFINITE[v]
    return v


def strict_loads(text: str | bytes):
    """json.loads that rejects NaN/Infinity literals (ValueError), as RFC 8259 parsers do."""
    def refuse(name):
        raise ValueError(f"not RFC 8259 JSON: bare {name}")

    return json.loads(text, parse_constant=refuse)
