"""Codecs turn a Python object into (meta, buffers) and back. One module per format.

Frameworks (numpy, pandas, torch, scikit-learn) are imported only when an object of theirs shows
up, so `import jupyter_mv` stays cheap. The first codec whose `match` accepts an object wins; the
pickle codec (protocol 5, out-of-band buffers, cloudpickle) is the fallback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

from ..errors import NotStorable

SAFE = ("plain", "numpy", "pandas", "torch.tensor")  # restoring these never unpickles


@dataclass
class Encoded:
    codec: str
    meta: dict
    buffers: list
    type_name: str
    summary: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)  # hyperparameters worth showing as version params
    # costly summary parts (array statistics), computed only when the content changed
    summarize: Callable[[], dict] | None = None

    @property
    def safe(self) -> bool:
        return self.codec in SAFE

    @property
    def nbytes(self) -> int:
        return sum(memoryview(b).nbytes for b in self.buffers)


class DecodeContext:
    """Shared by all variables restored together, so objects shared between them stay shared
    (an optimizer keeps pointing at its model's parameters)."""

    def __init__(self):
        self.tensors: dict = {}


def type_name(obj) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def loaded(module: str) -> bool:
    return module in sys.modules


def _codecs():
    return _ORDER


def encode(obj) -> Encoded:
    """Encode with the first codec that accepts `obj`; NotStorable when none can."""
    errors = []
    for codec in _codecs():
        if codec.match(obj):
            try:
                return codec.encode(obj)
            except NotStorable as e:
                errors.append(str(e))
            except RecursionError:
                errors.append("too deeply nested")
    raise NotStorable(errors[-1] if errors else f"no codec for {type_name(obj)}")


def decode(codec: str, meta: dict, buffers: list, ctx: DecodeContext | None = None):
    ctx = ctx or DecodeContext()
    for mod in _codecs():
        if codec in mod.NAMES:
            return mod.decode(codec, meta, buffers, ctx)
    raise NotStorable(f"unknown codec {codec!r}: this store was written by a newer jupyter_mv")


# The codec modules import their frameworks lazily, so importing them here is cheap, and a restore in
# a fresh kernel does not pay for it.
from . import arrays, estimators, frames, pickled, plain, tensors  # noqa: E402

_ORDER = [plain, arrays, frames, tensors, estimators, pickled]
