"""pandas DataFrame and Series, restored identical (values, types cell by cell, dtypes, index with its
names and freq, attrs) — the encoding is chosen per column:

- Arrow IPC (one stream for the frame, pandas metadata kept) for the columns whose Arrow round trip is
  exact by construction: numeric, bool, datetime/timedelta (any unit, with time zone), categorical,
  period, interval, nullable masked and string dtypes, and object columns that hold only `str`.
  Large numeric frames take this path only (no per-cell work).
- "cells": tagged JSON, one entry a cell, for object columns of plain Python values (mixed int/str, None
  vs NaN, lists, dicts with differing keys, tuples, sets, bytes, Decimal, datetimes, Paths, numpy scalars):
  exact by type, still safe.
- "raw": the column's numpy bytes (complex, fixed-width bytes/unicode, void).
- "pickle": anything else (objects of other types in an object column, a MultiIndex of objects, attrs
  holding arbitrary objects), with large buffers out of band. A frame with such a part is stored under the
  codec name "pandas+pickle", which is not in codecs.SAFE, so restoring it from an imported bundle needs
  trust like any pickle.

A frame whose column labels are not unique strings falls through to the pickle codec whole."""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import pathlib
import warnings

from ..errors import LiveHandle, NotStorable
from . import Encoded, loaded, type_name
from .plain import NotPlain, from_json, to_json

NAMES = ("pandas", "pandas+pickle")
_PROBE_ROWS = 64  # Arrow columns are exact by dtype; the probe only confirms dtypes and labels come back


def match(obj) -> bool:
    if not loaded("pandas"):
        return False
    import pandas as pd

    return type(obj) in (pd.DataFrame, pd.Series)


# -- tagged JSON for cells and attrs ------------------------------------------------------------
_NotCell = NotPlain
_PATHS = {c.__name__: c for c in (pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath)}


def _cell(o, depth: int = 0):
    """JSON-ready form of `o`, exact by type (float vs numpy float64, None vs NaN, tuple vs list): the
    plain codec's tagged JSON plus the types cells of a frame hold (_cell_extra); _NotCell otherwise."""
    return to_json(o, depth, None, _cell_extra)


def _cell_extra(o):
    t = type(o)
    if t is decimal.Decimal:
        return {"__decimal": str(o)}  # str keeps the exponent: Decimal('1.10') stays 1.10
    if t is _dt.datetime or t is _dt.time:
        # only fixed offsets survive isoformat(); a zoneinfo zone would come back as an offset
        if (o.tzinfo is not None and type(o.tzinfo) is not _dt.timezone) or o.fold:
            raise _NotCell(f"{t.__name__} with tzinfo {type(o.tzinfo).__name__}")
        return {"__" + t.__name__: o.isoformat()}
    if t is _dt.date:
        return {"__date": o.isoformat()}
    if t is _dt.timedelta:
        return {"__timedelta": [o.days, o.seconds, o.microseconds]}
    if t.__name__ in _PATHS and _PATHS[t.__name__] is t:
        return {"__path": [t.__name__, str(o)]}
    if loaded("numpy"):
        import numpy as np

        if isinstance(o, np.generic) and o.dtype.kind in "biufcmM":
            return {"__np": [o.dtype.str, base64.b64encode(o.tobytes()).decode()]}
    if loaded("pandas"):
        import pandas as pd

        if o is pd.NA:
            return {"__pd": "NA"}
        if o is pd.NaT:
            return {"__pd": "NaT"}
    raise _NotCell(type_name(o))


def _np_scalar(v):
    import numpy as np

    dtype = np.dtype(v[0])
    if dtype.kind not in "biufcmM":  # never an object dtype (that would mean unpickling)
        raise ValueError(f"numpy scalar of dtype {v[0]!r}")
    return np.frombuffer(base64.b64decode(v[1]), dtype=dtype)[0]


def _pd_missing(v):
    import pandas as pd

    return pd.NA if v == "NA" else pd.NaT


_TAGS = {
    "__decimal": decimal.Decimal,
    "__datetime": _dt.datetime.fromisoformat,
    "__time": _dt.time.fromisoformat,
    "__date": _dt.date.fromisoformat,
    "__timedelta": lambda v: _dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "__path": lambda v: _PATHS[v[0]](v[1]),
    "__np": _np_scalar,
    "__pd": _pd_missing,
}


def _uncell(o):
    return from_json(o, _TAGS)


# -- choosing an encoding ---------------------------------------------------------------------------
def _route(values, dtype=None) -> str:
    """How one column (or index level) is stored: "arrow", "cells", "raw" or "pickle". `values` is
    only read for object columns (a callable giving them, so wide numeric frames cost no lookups)."""
    import pandas as pd

    dtype = values.dtype if dtype is None else dtype
    if dtype == object:
        if callable(values):
            values = values()
        if all(type(v) is str for v in values):
            return "arrow"
        return "cells"
    from pandas.api.extensions import ExtensionDtype

    if isinstance(dtype, ExtensionDtype):
        if isinstance(dtype, pd.CategoricalDtype):
            cats = dtype.categories
            return "arrow" if cats.dtype != object or all(type(v) is str for v in cats) else "pickle"
        if isinstance(dtype, (pd.DatetimeTZDtype, pd.PeriodDtype, pd.StringDtype, pd.ArrowDtype)) \
                or _masked(dtype):
            return "arrow"
        if isinstance(dtype, pd.IntervalDtype):
            return "arrow" if dtype.subtype is not None and dtype.subtype != object else "pickle"
        return "pickle"  # sparse and third-party extension types
    if dtype.kind == "f" and _odd_nans(values):
        return "raw"  # Arrow reads a NaN as null and writes the default NaN back
    if dtype.kind in "biufMm":
        return "arrow"
    if dtype.kind in "cSUV" and not dtype.hasobject:
        return "raw"
    return "pickle"


def _odd_nans(values) -> bool:
    """Does a float column hold a NaN other than numpy's default one: a negative NaN (`inf - inf` on
    x86 gives one) or one with a payload? Arrow would give those back as the default NaN."""
    import numpy as np

    arr = np.asarray(values() if callable(values) else values)
    if arr.dtype.kind != "f" or arr.dtype.itemsize not in (2, 4, 8):
        return False
    nan = np.isnan(arr)
    if not nan.any():
        return False
    uint = np.dtype(f"u{arr.dtype.itemsize}")
    return bool((arr[nan].view(uint) != np.array(np.nan, dtype=arr.dtype).view(uint)).any())


def _masked(dtype) -> bool:
    """Nullable Int*/UInt*/Float*/boolean (pandas' masked arrays, which Arrow holds with a validity map)."""
    try:
        from pandas.core.dtypes.dtypes import BaseMaskedDtype
    except ImportError:  # pragma: no cover - older pandas
        return type(dtype).__name__ in ("BooleanDtype",) or type(dtype).__name__[:-5] in (
            "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64")
    return isinstance(dtype, BaseMaskedDtype)


def _index_route(index) -> str:
    import pandas as pd

    if type(index) is pd.RangeIndex:
        return "arrow"
    if isinstance(index, pd.MultiIndex):
        ok = all(_route(index.get_level_values(i)) == "arrow" for i in range(index.nlevels))
        return "arrow" if ok else "pickle"
    return _route(index)


def _plain_label(x) -> bool:
    try:
        _cell(x)
        return True
    except _NotCell:
        return False


# -- pieces ---------------------------------------------------------------------------------------
def _handle_in_column(h: LiveHandle, label: str, values) -> LiveHandle:
    from .handles import path_to

    for k, v in enumerate(values):
        sub = path_to(v, h.obj) if h.obj is not None else None
        if sub is not None:
            return LiveHandle(h.what, f"{label}.iloc[{k}]{sub}", h.obj)
    return h


def _encode_piece(values, how: str, buffers: list) -> dict:
    """Append the buffers of one non-Arrow piece; its meta. Pickle is the lossless last resort."""
    import numpy as np

    if how == "cells":
        try:
            data = [_cell(v) for v in values]
        except (_NotCell, RecursionError):
            how = "pickle"
        else:
            import json

            buffers.append(json.dumps(data, ensure_ascii=False, separators=(",", ":"),
                                      allow_nan=False).encode())
            return {"enc": "cells"}
    if how == "raw":
        arr = np.ascontiguousarray(np.asarray(values))
        buffers.append(memoryview(arr).cast("B") if arr.size else b"")
        return {"enc": "raw", "dtype": arr.dtype.str, "descr": arr.dtype.descr if arr.dtype.kind == "V" else None}
    from . import pickled

    bufs, n_oob, tensors = pickled.dumps(values)
    if tensors:
        raise NotStorable("a column holds torch tensors")
    buffers.extend(bufs)
    return {"enc": "pickle", "oob": n_oob, "n": len(bufs)}


def _decode_piece(p: dict, bufs: list, ctx):
    import numpy as np

    if p["enc"] == "cells":
        import json

        try:
            data = json.loads(bytes(bufs[0]).decode())
            if not isinstance(data, list):
                raise TypeError("not a list")
            arr = np.empty(len(data), dtype=object)
            for i, v in enumerate(data):  # element by element: lists of equal length must not become 2-D
                arr[i] = _uncell(v)
        except (ValueError, TypeError, KeyError, IndexError, decimal.InvalidOperation) as e:
            raise NotStorable(f"a column's stored cells are malformed ({type(e).__name__})") from None
        return arr
    if p["enc"] == "raw":
        dtype = np.dtype([tuple(f) for f in p["descr"]]) if p.get("descr") else np.dtype(p["dtype"])
        if dtype.hasobject:
            raise NotStorable("a raw column with object dtype would need unpickling")
        return np.frombuffer(bytearray(bufs[0]), dtype=dtype)
    from . import pickled

    return pickled.decode("pickle", {"oob": p["oob"], "tensors": []}, bufs, ctx)


def _nbufs(p: dict) -> int:
    return p.get("n", 1)


# -- Arrow --------------------------------------------------------------------------------------------
def _write(df) -> memoryview:
    import pyarrow as pa

    if df.attrs:  # attrs travel in our meta (pyarrow would JSON them and drop what JSON cannot hold)
        df = df.copy(deep=False)
        df.attrs = {}
    # preserve_index=None keeps a RangeIndex as metadata (True would turn it into a plain Index column);
    # other indexes become columns
    with warnings.catch_warnings():  # pyarrow's own use of deprecated pandas API is not the user's concern
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        table = pa.Table.from_pandas(df, preserve_index=None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return memoryview(sink.getvalue())


def _read_arrow(buf, casts: dict | None = None):
    import pyarrow as pa

    df = pa.ipc.open_stream(pa.py_buffer(buf)).read_all().to_pandas()
    casts = casts or {}
    for name, spec in (casts.get("columns") or {}).items():
        df[name] = _cast(df[name], spec)
    specs = casts.get("index")
    if specs and any(specs):
        idx = df.index
        if idx.nlevels > 1:
            df.index = idx.set_levels([_cast(lv, sp) if sp else lv for lv, sp in zip(idx.levels, specs)])
        else:
            df.index = _cast(idx, specs[0])
    return df


def _cast_spec(dtype) -> dict | None:
    """What a dtype Arrow reads back differently needs: Arrow holds an object column of `str` and a
    python-storage string column exactly, but pandas reads both back as its default string dtype."""
    import pandas as pd

    if dtype == object:
        return {"to": "object"}
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "python":
        return {"to": "string", "storage": "python", "na": "NA" if dtype.na_value is pd.NA else "nan"}
    return None


def _cast(values, spec: dict):
    import numpy as np
    import pandas as pd

    if spec["to"] == "object":
        return values.astype(object)
    return values.astype(pd.StringDtype(spec["storage"], na_value=pd.NA if spec["na"] == "NA" else np.nan))


def _casts(sub) -> dict:
    import pandas as pd

    out: dict = {}
    cols = {name: sp for name, sp in ((n, _cast_spec(dt)) for n, dt in sub.dtypes.items()) if sp}
    if cols:
        out["columns"] = cols
    idx = sub.index
    if type(idx) is not pd.RangeIndex:
        levels = idx.levels if isinstance(idx, pd.MultiIndex) else [idx]
        specs = [_cast_spec(lv.dtype) for lv in levels]
        if any(specs):
            out["index"] = specs
    return out


def _labels(cols) -> dict:
    """Column labels as meta; NotStorable unless they come back identical (type, dtype, names)."""
    import pandas as pd

    try:
        names = [_cell(n) for n in cols.names]
        if type(cols) is pd.RangeIndex:
            m = {"range": [cols.start, cols.stop, cols.step], "names": names}
        elif isinstance(cols, pd.MultiIndex):
            m = {"multi": [_cell(t) for t in cols], "names": names,
                 "dtypes": [str(cols.levels[i].dtype) for i in range(cols.nlevels)]}
        elif type(cols) is pd.Index:
            values = list(cols) if cols.dtype == object else cols.tolist()
            m = {"values": [_cell(v) for v in values], "dtype": str(cols.dtype), "names": names}
        else:
            raise NotStorable(f"column labels are a {type(cols).__name__}")
        back = _unlabels(m)
    except (_NotCell, RecursionError, TypeError, ValueError):
        raise NotStorable("column labels are not plain values") from None
    if not _same_labels(back, cols) or (cols.dtype == object and not all(
            type(a) is type(b) for a, b in zip(back, cols))):
        raise NotStorable("column labels would not come back identical")
    return m


def _unlabels(m: dict):
    import numpy as np
    import pandas as pd

    names = [_uncell(n) for n in m.get("names") or [None]]
    if "range" in m:
        return pd.RangeIndex(*m["range"], name=names[0])
    if "multi" in m:
        mi = pd.MultiIndex.from_tuples([_uncell(t) for t in m["multi"]], names=names)
        if len(mi) == 0:
            return mi
        levels = [lv.astype(dt) if str(lv.dtype) != dt else lv for lv, dt in zip(mi.levels, m["dtypes"])]
        return mi.set_levels(levels)
    values = [_uncell(v) for v in m["values"]]
    if m["dtype"] == "object":
        arr = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            arr[i] = v
        return pd.Index(arr, dtype=object, name=names[0], tupleize_cols=False)
    return pd.Index(values, dtype=m["dtype"], name=names[0])


def _dtypes(x) -> list:
    return list(x.dtypes)


def _same_labels(a, b) -> bool:
    return type(a) is type(b) and a.dtype == b.dtype and list(a.names) == list(b.names) and a.equals(b)


# -- the codec --------------------------------------------------------------------------------------
def encode(obj) -> Encoded:
    import pandas as pd

    series = isinstance(obj, pd.Series)
    df = obj.to_frame(name="__series__") if series else obj
    meta: dict = {"series": series}
    if series:
        if not _plain_label(obj.name):
            raise NotStorable("series name is not plain")
        meta["name"] = _cell(obj.name)
    else:
        # the labels live in meta (any plain labels: ints, tuples, duplicates, a MultiIndex); Arrow
        # sees positional names c0, c1, … so it never has to hold them
        meta["columns"] = _labels(df.columns)
        df = df.copy(deep=False)
        df.columns = [f"c{i}" for i in range(df.shape[1])]
    cols = df.columns
    if not all(_plain_label(n) for n in df.index.names):
        raise NotStorable("index names are not plain")
    buffers: list = [None]
    unsafe = False

    # attrs: exact tagged JSON when it can, else pickled (the frame is then not a safe codec)
    if obj.attrs:
        try:
            meta["attrs"] = _cell(dict(obj.attrs))
        except (_NotCell, RecursionError):
            try:
                meta["attrs_piece"] = _encode_piece(dict(obj.attrs), "pickle", buffers)
            except LiveHandle as h:
                raise LiveHandle(h.what, ".attrs" + h.path, h.obj) from None
            unsafe = True

    if not obj.flags.allows_duplicate_labels:
        meta["flags"] = {"allows_duplicate_labels": False}
    freq = getattr(df.index, "freq", None)
    if freq is not None and isinstance(df.index, (pd.DatetimeIndex, pd.TimedeltaIndex)):
        meta["freq"] = df.index.freqstr

    routes = [_route(lambda i=i: df.iloc[:, i], dt) for i, dt in enumerate(df.dtypes)]
    index_route = _index_route(df.index)
    arrow_pos = [i for i, r in enumerate(routes) if r == "arrow"]
    pieces = []
    if len(arrow_pos) == len(routes) and index_route == "arrow":
        sub = df
    else:
        sub = df.iloc[:, arrow_pos] if len(arrow_pos) < len(routes) else df
        for i, r in enumerate(routes):
            if r != "arrow":
                col = df.iloc[:, i]
                values = col.to_numpy(dtype=object) if r == "cells" else col.to_numpy() if r == "raw" \
                    else col.array  # pickle the array itself: it keeps its dtype
                try:
                    p = _encode_piece(values, r, buffers)
                except LiveHandle as h:  # the path from the frame (`df['f'].iloc[2].fh`), not the array
                    raise _handle_in_column(h, "" if series else f"[{obj.columns[i]!r}]", values) from None
                p["pos"], p["name"] = i, cols[i]
                pieces.append(p)
        if index_route != "arrow":
            idx = df.index
            how = "cells" if type(idx) is pd.Index and idx.dtype == object else "pickle"
            p = _encode_piece(idx.to_numpy() if how == "cells" else idx, how, buffers)
            p["index"] = True
            p["names"] = [_cell(n) for n in idx.names]
            pieces.append(p)
            sub = sub.copy(deep=False)
            sub.index = pd.RangeIndex(len(df))
    unsafe = unsafe or any(p["enc"] == "pickle" for p in pieces)
    meta["pieces"] = pieces
    try:
        meta["casts"] = _casts(sub)
        head = sub.head(_PROBE_ROWS)
        probe = _read_arrow(_write(head), meta["casts"])
        if _dtypes(probe) != _dtypes(head) or list(probe.columns) != list(head.columns) \
                or not _same_labels(probe.index, head.index) or not probe.equals(head):
            raise NotStorable("Arrow would not round-trip it exactly")
        buffers[0] = _write(sub)
    except NotStorable:
        raise
    except Exception as e:  # pyarrow raises ArrowTypeError, ArrowInvalid, NotImplementedError, ...
        raise NotStorable(f"Arrow cannot hold it ({type(e).__name__})") from None
    summary = {"shape": list(obj.shape)}
    if isinstance(obj, pd.DataFrame):
        summary["columns"] = {str(c): str(t) for c, t in list(obj.dtypes.items())[:200]}
    else:
        summary["dtype"] = str(obj.dtype)
        summary["name"] = None if obj.name is None else str(obj.name)
    return Encoded("pandas+pickle" if unsafe else "pandas", meta, buffers, type_name(obj), summary)


def decode(codec, meta, buffers, ctx):
    import pandas as pd

    pieces = meta.get("pieces") or []
    if codec == "pandas" and (meta.get("attrs_piece") or any(p.get("enc") == "pickle" for p in pieces)):
        # a safe codec never unpickles, whatever its meta says (it may come from an untrusted bundle)
        raise NotStorable("a 'pandas' value claims pickled parts; refusing to unpickle it")
    df = _read_arrow(buffers[0], meta.get("casts"))
    at = 1
    attrs = None
    if meta.get("attrs_piece"):
        p = meta["attrs_piece"]
        attrs = _decode_piece(p, buffers[at: at + _nbufs(p)], ctx)
        at += _nbufs(p)
    elif "attrs" in meta:
        attrs = _uncell(meta["attrs"])
    for p in pieces:
        values = _decode_piece(p, buffers[at: at + _nbufs(p)], ctx)
        at += _nbufs(p)
        if p.get("index"):
            names = [_uncell(n) for n in p.get("names") or [None]]
            if p["enc"] == "cells":
                idx = pd.Index(values, dtype=object, tupleize_cols=False, name=names[0])
            else:
                idx = values
            df.index = idx
        else:
            if p["enc"] == "cells":
                # an object column by construction: pandas >= 3 infers its `str` dtype from an object
                # array of str and None, which turns None into NaN and changes the column's dtype
                values = pd.Series(values, dtype=object, index=df.index, copy=False)
            df.insert(p["pos"], p["name"], values)
    if "columns" in meta:
        df.columns = _unlabels(meta["columns"])
    if meta.get("freq"):
        idx = df.index
        df.index = type(idx)(idx, freq=meta["freq"])
    out = df.iloc[:, 0] if meta.get("series") else df
    if meta.get("series"):
        out.name = _uncell(meta.get("name"))
    if meta.get("flags"):
        out = out.set_flags(**meta["flags"])
    out.attrs = attrs or {}
    return out

