"""Round trips through every codec: what comes back is exactly what went in (values, dtypes, shapes,
memory order, index, types). Property tests over numpy dtypes/shapes and DataFrames."""

from __future__ import annotations

import datetime as dt
import json
import math
import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.extra import pandas as hpd

from jupyter_mv import api, codecs
from jupyter_mv.codecs import DecodeContext
from jupyter_mv.store.blobs import _bytes_view

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


def roundtrip(obj, ctx: DecodeContext | None = None):
    """Encode, pass meta and buffers through what the store does (JSON, fresh writable bytes), decode."""
    enc = codecs.encode(obj)
    meta = json.loads(json.dumps(enc.meta))  # the store keeps meta as JSON: it must survive that
    bufs = [memoryview(bytearray(_bytes_view(b))) for b in enc.buffers]
    assert enc.nbytes == sum(len(b) for b in bufs)
    return codecs.decode(enc.codec, meta, bufs, ctx), enc


# -- numpy -------------------------------------------------------------------------------------
def assert_same_array(a, b):
    assert type(b) is np.ndarray
    assert b.dtype == a.dtype, (a.dtype, b.dtype)
    assert b.dtype.str == a.dtype.str  # byte order too
    assert b.shape == a.shape
    # bit for bit (covers NaN payloads, -0.0, NaT, structured fields, padding-free bytes)
    assert np.ascontiguousarray(b).tobytes() == np.ascontiguousarray(a).tobytes()
    if a.dtype.names is None and a.dtype.kind in "biufc":
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    elif a.dtype.names is None:
        assert np.array_equal(a, b) or a.dtype.kind in "mM"  # NaT != NaT; the bytes check above holds
    # memory order: a Fortran array comes back Fortran, a C one C
    if a.ndim > 1 and a.size > 1:
        assert b.flags.f_contiguous == (a.flags.f_contiguous and not a.flags.c_contiguous) or b.flags.c_contiguous
        if a.flags.f_contiguous and not a.flags.c_contiguous:
            assert b.flags.f_contiguous
        if a.flags.c_contiguous:
            assert b.flags.c_contiguous
    assert b.flags.writeable


def _endian(dtypes):
    return st.one_of(dtypes, dtypes.map(lambda d: d.newbyteorder()))


ANY_DTYPE = st.one_of(
    _endian(hnp.integer_dtypes(endianness="=")),
    _endian(hnp.unsigned_integer_dtypes(endianness="=")),
    _endian(hnp.floating_dtypes(endianness="=")),
    _endian(hnp.complex_number_dtypes(endianness="=")),
    hnp.boolean_dtypes(),
    hnp.datetime64_dtypes(endianness="?"),
    hnp.timedelta64_dtypes(endianness="?"),
    hnp.byte_string_dtypes(endianness="?"),
    hnp.unicode_string_dtypes(endianness="?"),
    hnp.array_dtypes(hnp.scalar_dtypes(), min_size=1, max_size=4),
    hnp.nested_dtypes(max_itemsize=64),
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)


@PROPS
@given(hnp.arrays(ANY_DTYPE, SHAPES), st.sampled_from(["C", "F", "strided", "T"]))
def test_numpy_roundtrip(arr, layout):
    if layout == "F":
        arr = np.asfortranarray(arr)
    elif layout == "strided" and arr.ndim:
        arr = arr[::2]
    elif layout == "T":
        arr = arr.T
    back, enc = roundtrip(arr)
    assert enc.codec == "numpy" and enc.safe
    assert_same_array(arr, back)


@pytest.mark.parametrize("arr", [
    np.array(3.5),
    np.array(b"x", dtype="S3"),
    np.zeros((0,), dtype="f8"),
    np.zeros((3, 0, 2), dtype=">i2"),
    np.array([np.nan, -0.0, np.inf, -np.inf], dtype="<f4"),
    np.array([np.datetime64("NaT"), np.datetime64("2024-02-29T12:00:00.123456789")], dtype="M8[ns]"),
    np.array([1, -2], dtype=">m8[s]"),
    np.array([("a", 1, [1.5, 2.5])], dtype=[("s", "U3"), ("i", ">i8"), ("v", "<f4", (2,))]),
    np.asfortranarray(np.arange(24, dtype=np.float16).reshape(2, 3, 4)),
    np.arange(100, dtype=np.complex128).reshape(10, 10)[::3, 1::2],
    np.array([[True, False], [False, True]]),
])
def test_numpy_explicit(arr):
    back, enc = roundtrip(arr)
    assert enc.codec == "numpy"
    assert_same_array(arr, back)


def test_numpy_object_array_falls_back_to_pickle():
    arr = np.array([1, "a", None, {"k": 2}], dtype=object)
    back, enc = roundtrip(arr)
    assert enc.codec == "pickle" and not enc.safe
    assert back.dtype == object and back.tolist() == arr.tolist()


def test_numpy_subclass_roundtrip():
    m = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    back, enc = roundtrip(m)
    assert type(back) is np.ma.MaskedArray
    assert back.mask.tolist() == [False, True, False] and back.data.tolist() == [1.0, 2.0, 3.0]


# -- pandas ------------------------------------------------------------------------------------
def assert_same_frame(a, b):
    assert type(b) is type(a)
    if isinstance(a, pd.Series):
        assert b.name == a.name and b.dtype == a.dtype
        assert b.equals(a)
    else:
        assert list(b.columns) == list(a.columns)
        assert list(b.dtypes) == list(a.dtypes)
        assert b.equals(a)
    assert type(b.index) is type(a.index)
    assert b.index.equals(a.index)
    assert list(b.index.names) == list(a.index.names)
    assert b.index.dtype == a.index.dtype if not isinstance(a.index, pd.MultiIndex) else True
    pd.testing.assert_index_equal(b.index, a.index, exact=True)


FRAME_COLUMNS = [
    hpd.column("i64", dtype=np.int64),
    hpd.column("f32", dtype=np.float32),
    hpd.column("f64", dtype=np.float64),
    hpd.column("u8", dtype=np.uint8),
    hpd.column("b", dtype=bool),
    hpd.column("c128", dtype=np.complex128),
    hpd.column("ts", dtype="datetime64[ns]"),
    hpd.column("td", dtype="timedelta64[ns]"),
]


@PROPS
@given(hpd.data_frames(columns=FRAME_COLUMNS, index=hpd.range_indexes(min_size=0, max_size=40)))
def test_dataframe_roundtrip(df):
    back, enc = roundtrip(df)
    assert_same_frame(df, back)


@PROPS
@given(hpd.data_frames(
    columns=[hpd.column("x", dtype=np.float64), hpd.column("s", elements=st.text(max_size=5), dtype=object)],
    index=hpd.indexes(elements=st.integers(-1000, 1000), min_size=0, max_size=30, unique=True),
))
def test_dataframe_object_and_int_index_roundtrip(df):
    back, enc = roundtrip(df)
    assert_same_frame(df, back)


@PROPS
@given(hpd.series(elements=st.floats(allow_nan=True), dtype=np.float64, name=st.sampled_from([None, "s", 3])))
def test_series_roundtrip(s):
    back, enc = roundtrip(s)
    assert_same_frame(s, back)


def _explicit_frames():
    idx = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["letter", "num"])
    yield "categorical", pd.DataFrame({"c": pd.Categorical(["x", "y", "x"], categories=["y", "x", "z"],
                                                            ordered=True)})
    yield "tz", pd.DataFrame({"t": pd.date_range("2024-03-30", periods=3, freq="h", tz="Europe/Paris")})
    yield "nullable", pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"),
                                    "bb": pd.array([True, None, False], dtype="boolean"),
                                    "ff": pd.array([1.5, None, 2.0], dtype="Float64")})
    yield "string", pd.DataFrame({"s": pd.array(["a", None, "ccc"], dtype="string")})
    yield "str-default", pd.DataFrame({"s": ["a", "b", "é"]})
    yield "multiindex", pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=idx)
    yield "datetime-index", pd.DataFrame({"v": [1, 2]}, index=pd.DatetimeIndex(["2024-01-01", "2024-01-02"],
                                                                                 name="day"))
    yield "named-index", pd.DataFrame({"v": [1, 2]}, index=pd.Index(["p", "q"], name="key"))
    yield "series-named", pd.Series([1.5, 2.5], name="price")
    yield "series-unnamed", pd.Series([1, 2, 3])
    yield "series-int-name", pd.Series(["a", "b"], name=7)
    yield "series-categorical", pd.Series(pd.Categorical(["lo", "hi", "lo"]), name="level")
    yield "series-tz", pd.Series(pd.to_datetime(["2024-01-01T00:00Z", None]), name="when")
    yield "empty", pd.DataFrame({"a": pd.Series([], dtype="int32"), "b": pd.Series([], dtype="float64")})
    yield "wide-mixed", pd.DataFrame({"i": np.arange(200), "f": np.linspace(0, 1, 200),
                                      "s": [f"row{i}" for i in range(200)],
                                      "c": pd.Categorical(np.arange(200) % 3)})


@pytest.mark.parametrize("label,obj", list(_explicit_frames()), ids=[k for k, _ in _explicit_frames()])
def test_pandas_explicit(label, obj):
    back, enc = roundtrip(obj)
    assert enc.codec == "pandas", f"{label} fell back to {enc.codec}"
    assert_same_frame(obj, back)


def test_pandas_unusual_frames_still_exact():
    """Frames Arrow cannot hold exactly fall back (pickle) but still come back equal."""
    frames = [
        pd.DataFrame({1: [1, 2], 2: [3, 4]}),  # non-string column names
        pd.DataFrame([[1, 2]], columns=["a", "a"]),  # duplicate names
        pd.DataFrame({"o": [1, "a", None]}, dtype=object),  # mixed objects
        pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([(1, "x"), (2, "y")])).T,
    ]
    for df in frames:
        back, enc = roundtrip(df)
        assert type(back) is pd.DataFrame
        assert back.equals(df) and list(back.dtypes) == list(df.dtypes)
        assert list(back.columns) == list(df.columns)


# -- plain containers --------------------------------------------------------------------------
def same(a, b) -> bool:
    """Equal, with exact types all the way down; floats compared bit for bit (nan, -0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)  # order too
    if isinstance(a, (set, frozenset)):
        return a == b and {type(x) for x in a} == {type(x) for x in b}
    return a == b


HASHABLE = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.binary(max_size=8),
                     st.floats(allow_nan=False))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**53, max_value=2**200),
    st.integers(max_value=-(2**60)), st.floats(), st.sampled_from([float("nan"), -0.0, float("inf")]),
    st.complex_numbers(), st.text(max_size=10), st.binary(max_size=10),
    st.just("__int"), st.just("__tuple"),
)
PLAIN = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
        st.dictionaries(HASHABLE, inner, max_size=4),
        st.frozensets(HASHABLE, max_size=4),
        st.sets(HASHABLE, max_size=4),
    ),
    max_leaves=20,
)


@PROPS
@given(PLAIN)
def test_plain_roundtrip(obj):
    back, enc = roundtrip(obj)
    assert enc.codec in ("plain", "pickle")
    assert same(obj, back), (obj, back)


@pytest.mark.parametrize("obj", [
    {"a": {"b": ({1, 2}, frozenset({"x"}), b"\x00\xff")}, 3: [None, True, 1.0]},
    2**100, -(2**70), float("nan"), -0.0, [float("inf"), float("-inf")], 1 + 2j,
    {"__int": "5"}, {"__tuple": [1]}, ("__bytes",), "", b"", (), {}, set(), frozenset(),
    [[[[[1]]]]], {(1, 2): "tuple key", None: 0, 1.5: "float key"}, "ünïcode ✓",
])
def test_plain_explicit(obj):
    back, enc = roundtrip(obj)
    assert enc.codec == "plain" and enc.safe
    assert same(obj, back), (obj, back)


# -- pickle fallback ---------------------------------------------------------------------------
def test_pickle_lambda():
    f = lambda x, k=3: x * k  # noqa: E731
    back, enc = roundtrip(f)
    assert enc.codec == "pickle" and not enc.safe
    assert back(2) == 6 and back(2, k=5) == 10


def test_pickle_main_class():
    ns = {"__name__": "__main__"}
    exec(
        "class Point:\n"
        "    def __init__(self, x, y):\n        self.x, self.y = x, y\n"
        "    def norm2(self):\n        return self.x ** 2 + self.y ** 2\n"
        "p = Point(3, 4)\n",
        ns,
    )
    back, enc = roundtrip(ns["p"])
    assert enc.codec == "pickle"
    assert back.norm2() == 25 and (back.x, back.y) == (3, 4)
    assert type(back).__name__ == "Point"
    cls_back, _ = roundtrip(ns["Point"])
    assert cls_back(1, 1).norm2() == 2


def test_pickle_out_of_band_buffers():
    import collections

    big = np.random.default_rng(1).random(50_000)
    obj = collections.OrderedDict(arr=big, tag="x", nested=[big[:10].copy()])
    back, enc = roundtrip(obj)
    assert enc.codec == "pickle"
    assert len(enc.buffers) >= 2  # the array's data is a buffer of its own, not inside the stream
    assert type(back) is collections.OrderedDict
    assert_same_array(big, back["arr"])
    assert back["tag"] == "x"


def test_pickle_dates_and_custom_types():
    import decimal
    import fractions

    obj = [dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), decimal.Decimal("1.10"),
           fractions.Fraction(1, 3), dt.timedelta(days=2)]
    back, enc = roundtrip(obj)
    assert back == obj and [type(x) for x in back] == [type(x) for x in obj]


# -- torch -------------------------------------------------------------------------------------
import torch


def assert_same_tensor(a, b):
    assert type(b) is type(a)
    assert b.dtype == a.dtype and b.shape == a.shape
    assert b.requires_grad == a.requires_grad
    ac, bc = a.detach().contiguous(), b.detach().contiguous()
    if a.numel():
        assert torch.equal(ac.reshape(-1).view(torch.uint8), bc.reshape(-1).view(torch.uint8))
        if a.dtype != torch.bool and not a.is_complex():
            assert torch.equal(ac, bc) or torch.isnan(ac.float()).any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8,
                                   torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool,
                                   torch.complex64])
def test_torch_tensor_dtypes(dtype):
    g = torch.Generator().manual_seed(0)
    t = (torch.randn(4, 3, generator=g) * 10).to(dtype)
    back, enc = roundtrip(t)
    assert enc.codec == "torch.tensor" and enc.safe
    assert_same_tensor(t, back)


def test_torch_tensor_shapes():
    for t in [torch.tensor(2.5), torch.empty(0, 3), torch.arange(24.0).reshape(2, 3, 4).transpose(0, 2),
              torch.arange(10)[::3], torch.tensor([float("nan"), -0.0, float("inf")])]:
        back, _ = roundtrip(t)
        assert_same_tensor(t, back)


def test_torch_parameter():
    p = torch.nn.Parameter(torch.randn(3, 2, dtype=torch.bfloat16))
    back, enc = roundtrip(p)
    assert type(back) is torch.nn.Parameter and back.requires_grad
    assert_same_tensor(p, back)
    frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    back, _ = roundtrip(frozen)
    assert type(back) is torch.nn.Parameter and not back.requires_grad


def test_torch_module_shares_tensors_with_optimizer():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ctx = DecodeContext()
    m2, enc_m = roundtrip(model, ctx)
    o2, enc_o = roundtrip(opt, ctx)
    assert enc_m.codec == "torch.module" and enc_o.codec == "torch.optimizer"
    assert enc_o.params["lr"] == 0.1 and enc_o.params["momentum"] == 0.9
    assert all(a is b for a, b in zip(o2.param_groups[0]["params"], m2.parameters()))
    for k, v in model.state_dict().items():
        assert torch.equal(m2.state_dict()[k], v)


def test_tensor_inside_container():
    obj = {"w": torch.arange(6, dtype=torch.bfloat16).reshape(2, 3), "n": 1}
    back, enc = roundtrip(obj)
    assert enc.codec == "pickle"
    assert_same_tensor(obj["w"], back["w"]) and back["n"] == 1


# -- through the whole store -------------------------------------------------------------------
def test_roundtrip_through_store(session, store_path):
    arr = np.asfortranarray(np.random.default_rng(0).random((300, 700)))  # > one blob chunk worth? no: 1.6 MB
    df = pd.DataFrame({"t": pd.date_range("2024", periods=5, tz="UTC"), "c": pd.Categorical(list("abcab"))})
    session.namespace.update(arr=arr, df=df, plain={"k": (1, b"x")}, t=torch.ones(3, dtype=torch.bfloat16))
    api.snapshot()
    for n in ("arr", "df", "plain", "t"):
        session.namespace.pop(n)
    api.restore("v1")
    ns = session.namespace
    assert_same_array(arr, ns["arr"])
    assert_same_frame(df, ns["df"])
    assert same({"k": (1, b"x")}, ns["plain"])
    assert_same_tensor(torch.ones(3, dtype=torch.bfloat16), ns["t"])
