"""numpy arrays as raw bytes plus dtype descr and shape (npy-style, never pickled).
Object arrays and ndarray subclasses fall through to the pickle codec."""

from __future__ import annotations

from ..errors import NotStorable
from . import Encoded, loaded, type_name

NAMES = ("numpy",)
STATS_FULL = 32 * 1024 * 1024  # full min/max/mean/std below this many bytes; a sample above
SAMPLE = 1 << 20


def match(obj) -> bool:
    if not loaded("numpy"):
        return False
    import numpy as np

    # a memmap is stored as its data (and noted): it restores as an ordinary array
    return (type(obj) is np.ndarray or type(obj) is np.memmap) and not obj.dtype.hasobject


def raw_view(arr):
    """(uint8 view of the array's bytes, order) without copying when the array is contiguous."""
    import numpy as np

    if arr.flags.c_contiguous:
        a, order = arr, "C"
    elif arr.flags.f_contiguous:
        a, order = arr.T, "F"
    else:
        a, order = np.ascontiguousarray(arr), "C"
    if a.size == 0:
        return memoryview(b""), order
    return memoryview(a.reshape(-1).view(np.uint8)), order


SAMPLE_BLOCKS = 64


def _sample(flat):
    """About SAMPLE elements in SAMPLE_BLOCKS contiguous runs spread over the array: it reads a few MB
    instead of touching every page (a strided sample of a 256 MiB array cost 0.37 s)."""
    import numpy as np

    per = SAMPLE // SAMPLE_BLOCKS
    starts = np.linspace(0, flat.size - per, SAMPLE_BLOCKS).astype(np.int64)
    return np.concatenate([flat[s: s + per] for s in starts])


def stats(arr) -> dict:
    """min/max/mean/std for numeric arrays (over a sample of contiguous runs when large)."""
    import numpy as np

    if arr.size == 0 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or arr.dtype.names:
        return {}
    flat = arr.ravel(order="K")  # a view for C- and F-contiguous arrays
    sampled = arr.nbytes > STATS_FULL and flat.size > SAMPLE
    if sampled:
        flat = _sample(flat)
    if np.iscomplexobj(flat):
        flat = np.abs(flat)
    with np.errstate(all="ignore"):
        f = flat.astype(np.float64, copy=False)
        lo, hi = np.min(f), np.max(f)
        if np.isfinite(lo) and np.isfinite(hi):  # the common case: no NaN/inf, no nan-aware copies
            out = {"min": float(lo), "max": float(hi), "mean": float(np.mean(f)), "std": float(np.std(f))}
            if sampled:
                out["sampled"] = True
            return out
        out = {"min": float(np.nanmin(f)) if np.isfinite(f).any() else float("nan"),
               "max": float(np.nanmax(f)) if np.isfinite(f).any() else float("nan"),
               "mean": float(np.nanmean(f)) if np.isfinite(f).any() else float("nan"),
               "std": float(np.nanstd(f)) if np.isfinite(f).any() else float("nan")}
    if sampled:
        out["sampled"] = True
    return out


def encode(arr) -> Encoded:
    import numpy as np

    try:
        descr = np.lib.format.dtype_to_descr(arr.dtype)
    except Exception as e:  # pragma: no cover - exotic dtypes
        raise NotStorable(f"dtype {arr.dtype} has no npy description ({e})") from None
    buf, order = raw_view(arr)
    summary = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    notes = []
    if type(arr) is np.memmap:
        from .handles import memmap_note

        notes.append(("", memmap_note(arr)))
    meta = {"descr": descr, "shape": list(arr.shape), "order": order}
    if not arr.flags.writeable:  # `a.flags.writeable = False` guards it: a restore keeps the guard
        meta["readonly"] = True
    return Encoded("numpy", meta, [buf], type_name(arr), summary, summarize=lambda: stats(arr), notes=notes)


def decode(codec, meta, buffers, ctx):
    import numpy as np

    dtype = np.lib.format.descr_to_dtype(_tuplify(meta["descr"]))
    shape = tuple(meta["shape"])
    buf = buffers[0]
    if len(buf) == 0:
        out = np.empty(shape, dtype=dtype, order=meta.get("order", "C"))
    else:
        flat = np.frombuffer(buf, dtype=np.uint8).view(dtype)
        out = flat.reshape(shape[::-1]).T if meta.get("order") == "F" else flat.reshape(shape)
    if meta.get("readonly"):
        out.flags.writeable = False
    return out


def _tuplify(descr):
    """JSON turned the descr's tuples into lists; npy wants them back."""
    if not isinstance(descr, list):
        return descr
    out = []
    for field in descr:
        name = tuple(field[0]) if isinstance(field[0], list) else field[0]
        sub = _tuplify(field[1])
        out.append((name, sub, tuple(field[2])) if len(field) > 2 else (name, sub))
    return out
