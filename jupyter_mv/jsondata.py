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
import numbers
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


_TEXT = {NAN: "NaN", INF: "∞", NINF: "-∞"}


def number_text(v, spec: str | None = None) -> str:
    """A number for people. Without `spec`: the one rule every surface uses (see `value_text`); with
    one (".3g", "+.4g"), that format, NaN and ±inf still shown as "NaN", "∞", "-∞"."""
    if spec is None:
        return _number_rule(v)
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else "∞" if v > 0 else "-∞"
    return format(v, spec)


def _number_rule(v) -> str:
    x = float(v)
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else "∞" if x > 0 else "-∞"
    a = abs(x)
    if isinstance(v, numbers.Integral) and abs(int(v)) < 10**16:
        return str(int(v))
    if x.is_integer() and a < 1e16:
        return str(int(x))  # 1.0 -> "1" (JSON does not tell 1.0 from 1), -0.0 -> "0"
    if 1e-4 <= a < 1e6:
        r = float(f"{x:.6g}")
        return str(int(r)) if r.is_integer() else repr(r)
    mant, exp = f"{x:.5e}".split("e")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    e = int(exp)
    return f"{mant}e{'-' if e < 0 else '+'}{abs(e)}"


def value_text(v, spec: str | None = None) -> str:
    """A param, metric or summary value for people, by the one rule every surface follows (the lab
    sidebar, the diff tab and the widgets' `formatValue` in labextension/src/render/format.ts; the
    shared cases are tests/fixtures/format_cases.json):

    None -> "None"; True/False -> "True"/"False"; NaN and ±inf (or the strings "NaN"/"Infinity"/
    "-Infinity" JSON carries) -> "NaN", "∞", "-∞"; integer-valued numbers below 1e16 -> their digits
    (1.0 -> "1"); 1e-4 <= |x| < 1e6 -> the shortest decimal of x rounded to 6 significant digits
    ("0.0001", "0.333333"); other numbers -> 6 significant digits in exponent form without trailing
    zeros ("1e-5", "1.5e+20"); strings -> themselves; lists, tuples and dicts -> Python-literal style
    ("[1, 'a']", "{'k': None}") with their items by this rule (tuples as lists: JSON has no tuples).
    `spec` (a format spec such as ".3g") formats a top-level number that way instead."""
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, numbers.Real):
        return number_text(v, spec)
    if isinstance(v, str):
        return _TEXT.get(v, v)
    if isinstance(v, (dict, list, tuple)):
        return _nested_text(v)
    return str(v)


def _nested_text(v) -> str:
    if isinstance(v, str):
        return _TEXT.get(v) or repr(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_nested_text(str(k)) if not isinstance(k, str) else repr(k)}: {_nested_text(x)}"
                               for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_nested_text(x) for x in v) + "]"
    return value_text(v)


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
