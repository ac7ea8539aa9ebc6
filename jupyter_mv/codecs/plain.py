"""Plain Python values (None, bool, int, float, complex, str, bytes and lists, tuples, dicts, sets
of them) as tagged JSON: safe, readable, exact."""

from __future__ import annotations

import base64
import json
import math

from ..errors import NotStorable
from . import Encoded, type_name

NAMES = ("plain",)
_PLAIN = (type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)
MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 60


def match(obj) -> bool:
    return type(obj) in _PLAIN


class _NotPlain(Exception):
    pass


_CONTAINERS = (list, dict, set, frozenset)


def _enc(o, depth: int, seen: dict):
    if depth > MAX_DEPTH:
        raise _NotPlain("too deeply nested")
    t = type(o)
    if t in _CONTAINERS:
        # JSON has no references: a container met twice (`[[0] * 3] * 3`, a dict holding one list
        # under two keys) would come back as copies, so such values go to the pickle codec
        if id(o) in seen:
            raise _NotPlain("it holds the same object twice")
        seen[id(o)] = o
    if o is None or t is bool or t is str:
        return o
    if t is int:
        return o if abs(o) < 2**53 else {"__int": str(o)}
    if t is float:
        return o if math.isfinite(o) and not (o == 0 and math.copysign(1, o) < 0) else {"__float": repr(o)}
    if t is complex:
        return {"__complex": [_enc(o.real, depth, seen), _enc(o.imag, depth, seen)]}
    if t is bytes:
        return {"__bytes": base64.b64encode(o).decode()}
    if t is list:
        return [_enc(x, depth + 1, seen) for x in o]
    if t is tuple:
        return {"__tuple": [_enc(x, depth + 1, seen) for x in o]}
    if t is set or t is frozenset:
        # sorted by their JSON: a set's iteration order depends on the kernel's string hash seed,
        # and equal sets must give equal bytes (content hashes)
        items = [_enc(x, depth + 1, seen) for x in o]
        items.sort(key=lambda x: json.dumps(x, sort_keys=True))
        return {"__" + t.__name__: items}
    if t is dict:
        if all(type(k) is str and not k.startswith("__") for k in o):
            return {k: _enc(v, depth + 1, seen) for k, v in o.items()}
        return {"__dict": [[_enc(k, depth + 1, seen), _enc(v, depth + 1, seen)] for k, v in o.items()]}
    raise _NotPlain(type_name(o))


def _dec(o):
    if isinstance(o, list):
        return [_dec(x) for x in o]
    if isinstance(o, dict):
        if len(o) == 1:
            (k, v), = o.items()
            if k == "__int":
                return int(v)
            if k == "__float":
                return float(v)
            if k == "__complex":
                return complex(_dec(v[0]), _dec(v[1]))
            if k == "__bytes":
                return base64.b64decode(v)
            if k == "__tuple":
                return tuple(_dec(x) for x in v)
            if k == "__set":
                return {_dec(x) for x in v}
            if k == "__frozenset":
                return frozenset(_dec(x) for x in v)
            if k == "__dict":
                return {_dec(a): _dec(b) for a, b in v}
        return {k: _dec(v) for k, v in o.items()}
    return o


def encode(obj) -> Encoded:
    try:
        seen: dict = {}
        data = json.dumps(_enc(obj, 0, seen), ensure_ascii=False, separators=(",", ":")).encode()
    except (_NotPlain, RecursionError, ValueError) as e:
        raise NotStorable(f"not plain data ({e})") from None
    if len(data) > MAX_BYTES:
        raise NotStorable("too large for plain JSON")
    summary = {}
    if hasattr(obj, "__len__") and not isinstance(obj, (str, bytes)):
        summary["len"] = len(obj)
    return Encoded("plain", {}, [data], type_name(obj), summary, summarize=lambda: {"repr": _short_repr(obj)},
                   reach=seen)


def decode(codec, meta, buffers, ctx):
    return _dec(json.loads(bytes(buffers[0]).decode()))


def _short_repr(obj, limit: int = 80) -> str:
    r = repr(obj)
    return r if len(r) <= limit else r[: limit - 1] + "…"
