"""The fallback: pickle protocol 5 through cloudpickle (lambdas and notebook-defined classes by
value), large buffers out of band so they are chunked and deduplicated like arrays. torch tensors
inside the object are kept out of the pickle stream and stored in the safe tensor format.

Restoring this codec unpickles, so it is never done for an imported bundle without trust."""

from __future__ import annotations

import io
import pickle

from ..errors import NotStorable
from . import Encoded, loaded, type_name

NAMES = ("pickle", "sklearn", "torch.module", "torch.optimizer")


def match(obj) -> bool:
    return True


def _tensor_types():
    if not loaded("torch"):
        return None
    import torch

    return torch.Tensor


def dumps(obj):
    """(pickle stream, out-of-band buffers, tensor table, tensors)."""
    import cloudpickle

    oob: list = []
    tensors: list = []  # (uid, tensor)
    index: dict[int, int] = {}
    tensor_type = _tensor_types()

    class Pickler(cloudpickle.Pickler):
        def persistent_id(self, o):
            if tensor_type is not None and isinstance(o, tensor_type):
                k = id(o)
                if k not in index:
                    index[k] = len(tensors)
                    tensors.append(o)
                return ("t", index[k])
            return None

    f = io.BytesIO()
    try:
        Pickler(f, protocol=5, buffer_callback=oob.append).dump(obj)
    except RecursionError:
        raise NotStorable("too deeply nested to pickle") from None
    except Exception as e:  # pickling raises many types (TypeError, PicklingError, AttributeError...)
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NotStorable(f"cannot be pickled: {msg}") from None
    buffers = [f.getbuffer()]
    for pb in oob:
        raw = pb.raw()  # contiguous view, no copy
        buffers.append(raw)
    return buffers, len(oob), tensors


def encode_with(obj, codec: str, summary: dict | None = None, params: dict | None = None) -> Encoded:
    from . import tensors as tensor_codec

    buffers, n_oob, tensor_objs = dumps(obj)
    table = []
    for t in tensor_objs:
        meta, buf = tensor_codec.describe(t)
        meta["uid"] = id(t)
        table.append(meta)
        buffers.append(buf)
    meta = {"oob": n_oob, "tensors": table}
    return Encoded(codec, meta, buffers, type_name(obj), summary or {}, params or {})


def encode(obj) -> Encoded:
    enc = encode_with(obj, "pickle")

    def summarize() -> dict:  # repr can be costly (objects holding tensors): only for changed content
        r = repr_short(obj)
        return {"repr": r} if r else {}

    enc.summarize = summarize
    return enc


def decode(codec, meta, buffers, ctx):
    from . import tensors as tensor_codec

    n_oob = meta.get("oob", 0)
    stream, oob = buffers[0], buffers[1: 1 + n_oob]
    tbufs = buffers[1 + n_oob:]
    table = meta.get("tensors", [])

    def tensor(i: int):
        m = table[i]
        uid = m.get("uid")
        if uid is not None and uid in ctx.tensors:
            return ctx.tensors[uid]
        t = tensor_codec.rebuild(m, tbufs[i])
        if uid is not None:
            ctx.tensors[uid] = t
        return t

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == "t":
                return tensor(pid[1])
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")

    try:
        return Unpickler(io.BytesIO(stream), buffers=oob).load()
    except (ImportError, AttributeError) as e:
        raise NotStorable(f"cannot be loaded here: {e} (is the package that defines it installed?)") from None


def repr_short(obj, limit: int = 80) -> str:
    try:
        r = repr(obj)
    except Exception:
        return ""
    r = " ".join(r.split())
    return r if len(r) <= limit else r[: limit - 1] + "…"
