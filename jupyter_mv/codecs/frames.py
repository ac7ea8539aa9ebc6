"""pandas DataFrame and Series as an Arrow IPC stream with pandas metadata (index, categorical,
datetime with time zone, nullable dtypes preserved). Safe: never pickled. Frames Arrow cannot hold
exactly (mixed object columns, non-string column names…) fall through to the pickle codec."""

from __future__ import annotations

from ..errors import NotStorable
from . import Encoded, loaded, type_name

NAMES = ("pandas",)
_PROBE_ROWS = 64


def match(obj) -> bool:
    if not loaded("pandas"):
        return False
    import pandas as pd

    return type(obj) in (pd.DataFrame, pd.Series)


def _to_frame(obj):
    import pandas as pd

    if isinstance(obj, pd.Series):
        return obj.to_frame(name="__series__"), {"series": True, "name": obj.name}
    return obj, {"series": False}


def _write(df) -> memoryview:
    import pyarrow as pa

    # preserve_index=None keeps a RangeIndex as metadata (True would turn it into a plain Index column,
    # and the round-trip probe then rejects every default-indexed frame); other indexes become columns
    table = pa.Table.from_pandas(df, preserve_index=None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return memoryview(sink.getvalue())


def _read(buf, meta: dict):
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.py_buffer(buf)).read_all()
    df = table.to_pandas()
    if meta.get("series"):
        s = df["__series__"]
        s.name = meta.get("name")
        return s
    if meta.get("attrs"):
        df.attrs.update(meta["attrs"])
    return df


def encode(obj) -> Encoded:
    import pandas as pd

    df, meta = _to_frame(obj)
    cols = df.columns
    if isinstance(cols, pd.MultiIndex) or not all(type(c) is str for c in cols) or cols.has_duplicates:
        raise NotStorable("column names are not unique strings")
    if isinstance(obj, pd.Series) and not (obj.name is None or isinstance(obj.name, (str, int, float))):
        raise NotStorable("series name is not plain")
    if obj.attrs:
        meta["attrs"] = obj.attrs
    try:
        probe = _read(_write(df.head(_PROBE_ROWS)), meta)
        def dtypes(x):  # a DataFrame has no .dtype: getattr's default would be evaluated and raise
            return list(x.dtypes) if isinstance(x, pd.DataFrame) else [x.dtype]

        if not probe.equals(obj.head(_PROBE_ROWS)) or dtypes(probe) != dtypes(obj) \
                or not probe.index.equals(obj.index[:_PROBE_ROWS]) or type(probe.index) is not type(obj.index):
            raise NotStorable("Arrow would not round-trip it exactly")
        buf = _write(df)
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
    return Encoded("pandas", meta, [buf], type_name(obj), summary)


def decode(codec, meta, buffers, ctx):
    return _read(buffers[0], meta)
