"""Plain Python values (None, bool, int, float, complex, str, bytes and lists, tuples, dicts, sets
of them) as tagged JSON: safe, readable, exact."""

from __future__ import annotations

import base64
import json
import math
import struct

from ..errors import NotStorable
from . import Encoded, type_name

NAMES = ("plain",)
_PLAIN = (type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)
MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 60
_NAN = struct.pack("<d", float("nan"))  # the NaN repr() gives back; any other NaN is kept by its bits


def match(obj) -> bool:
    return type(obj) in _PLAIN


class NotPlain(Exception):
    """A value tagged JSON cannot hold exactly (another codec must store it)."""


_CONTAINERS = (list, dict, set, frozenset)


def to_json(o, depth: int = 0, seen: dict | None = None, extra=None):
    """Tagged JSON of `o`, exact by type: int vs float, tuple vs list, set, bytes, complex, non-string
    dict keys, non-finite floats and -0.0 (a NaN of another sign or payload by its bits) as one-key
    `{"__tag": …}` objects (ordinary dict keys never
    start with `__`). `seen` (a dict) refuses a container met twice, since JSON has no references;
    `extra(o)` returns the tagged form of a type this core does not know, or raises NotPlain
    (codecs.frames adds Decimal, datetimes, Paths, numpy scalars). Raises NotPlain."""
    if depth > MAX_DEPTH:
        raise NotPlain("too deeply nested")
    t = type(o)
    if seen is not None and t in _CONTAINERS:
        # JSON has no references: a container met twice (`[[0] * 3] * 3`, a dict holding one list
        # under two keys) would come back as copies, so such values go to the pickle codec
        if id(o) in seen:
            raise NotPlain("it holds the same object twice")
        seen[id(o)] = o
    if o is None or t is bool or t is str:
        return o
    if t is int:
        return o if abs(o) < 2**53 else {"__int": str(o)}
    if t is float:
        if o != o and struct.pack("<d", o) != _NAN:
            # a NaN's sign and payload (x86's 0 * inf is -nan) are not in its repr: its bits are kept
            return {"__float_bits": struct.pack("<d", o).hex()}
        return o if math.isfinite(o) and not (o == 0 and math.copysign(1, o) < 0) else {"__float": repr(o)}
    if t is complex:
        return {"__complex": [to_json(o.real, depth, seen, extra), to_json(o.imag, depth, seen, extra)]}
    if t is bytes:
        return {"__bytes": base64.b64encode(o).decode()}
    if t is list:
        return [to_json(x, depth + 1, seen, extra) for x in o]
    if t is tuple:
        return {"__tuple": [to_json(x, depth + 1, seen, extra) for x in o]}
    if t is set or t is frozenset:
        # sorted by their JSON: a set's iteration order depends on the kernel's string hash seed,
        # and equal sets must give equal bytes (content hashes)
        items = [to_json(x, depth + 1, seen, extra) for x in o]
        items.sort(key=lambda x: json.dumps(x, sort_keys=True))
        return {"__" + t.__name__: items}
    if t is dict:
        if all(type(k) is str and not k.startswith("__") for k in o):
            return {k: to_json(v, depth + 1, seen, extra) for k, v in o.items()}
        return {"__dict": [[to_json(k, depth + 1, seen, extra), to_json(v, depth + 1, seen, extra)]
                           for k, v in o.items()]}
    if extra is not None:
        return extra(o)
    raise NotPlain(type_name(o))


def from_json(o, tags: dict | None = None):
    """The value `to_json` wrote; `tags` maps further `__tag`s to a function of (value, from_json)."""
    if isinstance(o, list):
        return [from_json(x, tags) for x in o]
    if isinstance(o, dict):
        if len(o) == 1:
            (k, v), = o.items()
            if k in _TAGS:
                return _TAGS[k](v, lambda x: from_json(x, tags))
            if tags and k in tags:
                return tags[k](v)
        return {k: from_json(v, tags) for k, v in o.items()}
    return o


_TAGS = {
    "__int": lambda v, back: int(v),
    "__float": lambda v, back: float(v),
    "__float_bits": lambda v, back: _float_bits(v),
    "__complex": lambda v, back: complex(back(v[0]), back(v[1])),
    "__bytes": lambda v, back: base64.b64decode(v),
    "__tuple": lambda v, back: tuple(back(x) for x in v),
    "__set": lambda v, back: {back(x) for x in v},
    "__frozenset": lambda v, back: frozenset(back(x) for x in v),
    "__dict": lambda v, back: {back(a): back(b) for a, b in v},
}


def _float_bits(v) -> float:
    if not isinstance(v, str) or len(v) != 16:
        raise ValueError("malformed float bits")
    return struct.unpack("<d", bytes.fromhex(v))[0]


def encode(obj) -> Encoded:
    try:
        seen: dict = {}
        data = json.dumps(to_json(obj, 0, seen), ensure_ascii=False, separators=(",", ":")).encode()
    except (NotPlain, RecursionError, ValueError) as e:
        raise NotStorable(f"not plain data ({e})") from None
    if len(data) > MAX_BYTES:
        raise NotStorable("too large for plain JSON")
    summary = {}
    if hasattr(obj, "__len__") and not isinstance(obj, (str, bytes)):
        summary["len"] = len(obj)
    return Encoded("plain", {}, [data], type_name(obj), summary, summarize=lambda: {"repr": _short_repr(obj)},
                   reach=seen)


def decode(codec, meta, buffers, ctx):
    return from_json(json.loads(bytes(buffers[0]).decode()))


def _short_repr(obj, limit: int = 80) -> str:
    r = repr(obj)
    return r if len(r) <= limit else r[: limit - 1] + "…"
