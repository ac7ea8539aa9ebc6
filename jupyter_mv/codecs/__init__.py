"""Codecs turn a Python object into (meta, buffers) and back. One module per format.

Frameworks (numpy, pandas, torch, scikit-learn) are imported only when an object of theirs shows
up, so `import jupyter_mv` stays cheap. The first codec whose `match` accepts an object wins; the
pickle codec (protocol 5, out-of-band buffers, cloudpickle) is the fallback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

from ..errors import DecodeError, LiveHandle, MVError, NotStorable

SAFE = ("plain", "numpy", "pandas", "torch.tensor",  # restoring these never unpickles
        # Hugging Face models, adapters, generation configs, tokenizers in their own formats (codecs.transformers)
        "transformers.model", "peft.model", "transformers.config", "transformers.generation_config",
        "transformers.tokenizer", "tokenizers.tokenizer")


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
    # (path inside the object, text): what the encoding changed and the user should know, e.g. a
    # numpy memmap stored as its data
    notes: list = field(default_factory=list)
    # {id: object} of what the encoding reached that can be shared with other variables (see
    # groups.py); None when the codec did not say (groups.py then finds out itself)
    reach: dict | None = None
    size: int | None = None  # logical bytes when the buffers are a group's, shared with other variables

    @property
    def safe(self) -> bool:
        return self.codec in SAFE

    @property
    def nbytes(self) -> int:
        if self.size is not None:
            return self.size
        return sum(memoryview(b).nbytes for b in self.buffers)


class DecodeContext:
    """Shared by all variables restored together, so objects shared between them stay shared
    (an optimizer keeps pointing at its model's parameters)."""

    def __init__(self, trusted: bool = True):
        self.tensors: dict = {}
        # False when restoring an imported version the user did not trust: loading.py has audited
        # its skops models, and decoding allows nothing beyond what that audit accepted
        self.trusted = trusted
        # notebook functions restored get this namespace as their globals and notebook classes are
        # looked up in it by name (codecs.notebook); None: the interpreter's __main__, nothing defined
        self.namespace: dict | None = None
        self.defined: list[str] = []  # names the restored code needed and that had to be defined
        self.objects: dict = {}  # name -> object decoded so far (views and aliases resolve their base)
        self.groups: dict = {}  # decoded group payloads, so a group restored together is decoded once
        # notebook classes rebuilt from their stored definition (codecs.notebook): one class object
        # per definition for all the variables restored together
        self.classes: dict = {}


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
    declined = None  # why a codec that names its fallback (codecs.transformers: FALLBACK) did not take it
    for codec in _codecs():
        if codec.match(obj):
            try:
                enc = codec.encode(obj)
                _check_meta(enc)
                if declined:
                    enc.notes.append(("", declined))
                return enc
            except LiveHandle:  # a property of the object, not of the codec: no other codec may store it
                raise
            except NotStorable as e:
                errors.append(str(e))
                if getattr(codec, "FALLBACK", None) and declined is None:
                    declined = codec.FALLBACK.format(reason=e)
            except RecursionError:
                errors.append("too deeply nested")
            except Exception as e:  # a codec tripped on an unusual object: the next one (pickle) may
                # still store it, and if none can, the variable is named as skipped; the snapshot goes on
                msg = str(e).splitlines()[0] if str(e) else ""
                errors.append(f"{type(e).__name__}: {msg}".rstrip(": "))
    raise NotStorable(errors[-1] if errors else f"no codec for {type_name(obj)}")


def _check_meta(enc: Encoded) -> None:
    """A codec's meta is stored as RFC 8259 JSON: a value it cannot hold (a datetime, NaN) would abort
    the whole snapshot at commit time, so it fails here and the next codec gets the object."""
    import json

    try:
        json.dumps(enc.meta, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise NotStorable(f"{enc.codec} metadata is not plain JSON ({e})") from None


def decode(codec: str, meta: dict, buffers: list, ctx: DecodeContext | None = None):
    """The object an encoding stands for. Raises DecodeError (a named reason) when it cannot be
    built here, NotStorable for an unknown codec."""
    ctx = ctx or DecodeContext()
    for mod in _codecs():
        if codec in mod.NAMES:
            try:
                return _decode_one(mod, codec, meta, buffers, ctx)
            except (MVError, MemoryError):  # memory is the machine's state, not the data's: told apart
                raise
            except RecursionError:
                raise DecodeError("its stored data is too deeply nested to load") from None
            except Exception as e:  # a codec's own failure (a dtype this numpy lacks...) is still named
                msg = str(e).splitlines()[0] if str(e) else ""
                raise DecodeError(f"{codec} data does not load: {type(e).__name__}: {msg}".rstrip(": ")) from None
    raise NotStorable(f"unknown codec {codec!r}: this store was written by a newer jupyter_mv")


def _decode_one(mod, codec: str, meta: dict, buffers: list, ctx: DecodeContext):
    if groups.is_member(codec, meta):  # one name of a group pickled together (groups.py)
        return groups.decode_payload(codec, meta, buffers, ctx)[meta["key"]]
    if groups.base_of(meta) is not None:  # another variable under a new name, or a view into an array
        return groups.decode_link(meta, ctx)
    return mod.decode(codec, meta, buffers, ctx)


def untrusted_types(codec: str, meta: dict, buffers: list, type_name: str) -> list[str]:
    """The types that restoring this stored value would load without a safe format vouching for
    them: [] for safe codecs, the skops audit's findings for skops models, else the value's type
    (pickle-based codecs unpickle code). Raises NotStorable for a malformed skops model."""
    if codec in SAFE:
        return []
    if codec in estimators.NAMES:
        return estimators.untrusted_types(meta, buffers)
    return [type_name]


# The codec modules import their frameworks lazily, so importing them here is cheap, and a restore in
# a fresh kernel does not pay for it.
from . import arrays, estimators, frames, groups, notebook, pickled, plain, tensors  # noqa: E402
from . import transformers as hf  # noqa: E402

_ORDER = [plain, arrays, frames, hf, tensors, estimators, pickled]  # hf before tensors: its models are torch modules
