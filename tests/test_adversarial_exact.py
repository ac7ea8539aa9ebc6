"""Exact or named, attacked the way users of dill session dumps, Kishu, %store and joblib reported
faults: a restore (or undo) must give back the same values, the same types and the same sharing
between objects, or say what it could not keep. Real IPython shells, real SQLite stores in tmp_path."""

from __future__ import annotations


def test_notebook_class_is_one_object_when_its_name_holds_something_else(run):
    # the class name rebound (`K = 3`) before the restore: each variable decoded on its own rebuilt
    # the stored definition, so `type(k) is K` and `type(k1) is type(k2)` were false
    run("class K:\n    def hello(self):\n        return 'hi'\nk1 = K(); k2 = K(); pair = [k1]")
    run("%mv_snapshot")
    run("K = 3; k1 = k2 = pair = None")
    run("%mv_restore v1")
    assert run("type(k1) is K and type(k2) is K and type(pair[0]) is K and isinstance(k2, type(k1))")
    assert run("pair[0] is k1 and k1.hello() == 'hi'")


def test_notebook_enum_and_dataclass_keep_identity_after_their_names_moved(run):
    run("import enum, dataclasses\n"
        "class Color(enum.Enum):\n    RED = 1\n"
        "@dataclasses.dataclass(frozen=True)\nclass P:\n    x: int\n"
        "c = Color.RED; favourite = {'c': Color.RED}; p = P(1); ps = [P(2)]")
    run("%mv_snapshot")
    run("Color = P = None; c = favourite = p = ps = 0")
    run("%mv_restore v1")
    assert run("c is Color.RED and favourite['c'] is c")
    assert run("type(p) is P and type(ps[0]) is P and p == P(1)")


def test_numpy_views_of_a_view_stay_views_and_readonly_stays_readonly(run):
    # numpy points `t = a.T` at the memory's owner (x), not at `a`: neither was in the other's base
    # chain, so both were stored as copies and writing through one no longer showed in the other
    run("import numpy as np\nx = np.arange(12.)\na = x.reshape(3, 4)\nt = a.T\nrow = a[1]\ndel x\n"
        "frozen = np.arange(4); frozen.flags.writeable = False")
    run("%mv_snapshot")
    run("a = t = row = frozen = None")
    run("%mv_restore v1")
    assert run("np.shares_memory(a, t) and np.shares_memory(a, row) and t.flags.f_contiguous")
    run("t[1, 0] = -5.0")
    assert run("a[0, 1] == -5.0 and (t.T == a).all()")
    assert run("not frozen.flags.writeable and frozen.tolist() == [0, 1, 2, 3]")
    # undo goes through the same encoding
    run("t[2, 2] = 99.0")
    run("%mv_undo")
    assert run("np.shares_memory(a, t) and a[2, 2] == 10.0")


def test_views_no_variable_links_are_named(run, capsys):
    run("import numpy as np\nx = np.arange(10.)\nv1 = x[:6]\nv2 = x[4:]\ndel x")
    capsys.readouterr()
    run("%mv_snapshot v1 v2")
    err = capsys.readouterr().err
    assert "v1: shares memory with v2" in err and "no longer share memory" in err
    # interleaved views share no element: nothing to name
    run("y = np.arange(10.)\nev = y[::2]\nod = y[1::2]\ndel y")
    run("%mv_snapshot ev od")
    assert "shares memory" not in capsys.readouterr().err


def test_object_columns_of_strings_and_missing_keep_none_and_dtype(run):
    # pandas 3 infers its str dtype when an object array of str and None is inserted: None became
    # NaN and the column's dtype object became str
    run("import pandas as pd, numpy as np\n"
        "s = pd.Series(['a', None, np.nan], dtype=object)\n"
        "df = pd.DataFrame({'n': [1, 2, 3]}, index=['r', 'r', 'q'])\n"
        "df.insert(0, 'name', pd.Series(['x', None, 'z'], dtype=object, index=df.index))")
    assert run("df['name'].iloc[1] is None")
    run("%mv_snapshot")
    run("s = df = None")
    run("%mv_restore v1")
    assert run("s.dtype == object and s[0] == 'a' and s[1] is None and s[2] != s[2]")
    assert run("df['name'].dtype == object and df['name'].iloc[1] is None and list(df.index) == ['r', 'r', 'q']")
    assert run("df.dtypes.tolist() == [np.dtype(object), np.dtype('int64')]")


def test_memoryview_restores_as_memoryview_and_a_lost_view_is_named(run, capsys):
    # cloudpickle writes a memoryview as bytes: it came back a bytes object, silently
    run("import array\nro = memoryview(b'abcd')\n"
        "grid = memoryview(array.array('d', [1.0, 2.0, 3.0, 4.0])).cast('B').cast('d', [2, 2])\n"
        "buf = bytearray(b'xyz')\nmv_buf = memoryview(buf)")
    capsys.readouterr()
    run("%mv_snapshot ro grid mv_buf")
    err = capsys.readouterr().err
    assert "mv_buf: a memoryview over bytearray data" in err and "ro:" not in err
    run("ro = grid = mv_buf = None")
    run("%mv_restore v1")
    assert run("type(ro) is memoryview and ro.readonly and ro.tobytes() == b'abcd'")
    assert run("type(grid) is memoryview and grid.format == 'd' and grid.shape == (2, 2) "
               "and grid.tolist() == [[1.0, 2.0], [3.0, 4.0]] and not grid.readonly")
    assert run("type(mv_buf) is memoryview and bytes(mv_buf) == b'xyz' and not mv_buf.readonly")


SAME_STORAGE = "{0}.untyped_storage().data_ptr() == {1}.untyped_storage().data_ptr()"


def test_torch_views_keep_sharing_storage(run):
    # each tensor variable (and each tensor in a pickle) was stored as its own contiguous copy: after
    # a restore an in-place update of `w` no longer reached `row`, `wt` or the dict's view
    run("import torch\nw = torch.arange(12.).reshape(3, 4)\nrow = w[1]\nwt = w.t()\n"
        "d = {'col': w[:, 2], 'w': w}\nlate = {'head': w[0, :2]}\n"
        "inner = torch.arange(6.)\nboth = {'part': inner[2:4], 'whole': inner}\n"
        "g = torch.ones(4, requires_grad=True)\nplain = g.detach()[1:3]")
    run("%mv_snapshot")
    run("w = row = wt = d = late = inner = both = g = plain = None")
    run("%mv_restore v1")
    for a, b in [("row", "w"), ("wt", "w"), ("d['col']", "w"), ("late['head']", "w"),
                 ("both['part']", "both['whole']"), ("plain", "g")]:
        assert run(SAME_STORAGE.format(a, b)), (a, b)
    assert run("d['w'] is w and wt.stride() == (1, 4) and wt.shape == (4, 3)")
    run("with torch.no_grad():\n    w[1, 2] = -1.0\n    both['whole'][3] = 50.0")
    assert run("row[2].item() == -1.0 and wt[2, 1].item() == -1.0 and d['col'][1].item() == -1.0")
    assert run("both['part'].tolist() == [2.0, 50.0]")
    assert run("g.requires_grad and g.is_leaf and not plain.requires_grad")


def test_torch_gradients_are_named_not_silently_dropped(run, capsys):
    run("import torch\nt = torch.ones(3, requires_grad=True)\nm = torch.nn.Linear(2, 1)\n"
        "(t * 2).sum().backward()\nm(torch.ones(1, 2)).sum().backward()\nfresh = torch.ones(2, requires_grad=True)")
    capsys.readouterr()
    run("%mv_snapshot t m fresh")
    err = capsys.readouterr().err
    assert "t.grad: gradients are not stored" in err
    assert "m: the gradients of 2 parameters are not stored" in err and "fresh" not in err


def test_ipython_history_and_shell_objects_are_named_not_stored(shell, run, capsys):
    # a restore of a stored `Out` replaced the shell's own output history with a copy: later
    # results went to the shell's dict, no longer to the notebook's `Out`
    run("x = [1, 2]")
    run("x")
    capsys.readouterr()
    run("%mv_snapshot In Out _oh exit x _ _i1")
    err = capsys.readouterr().err
    assert "skipped 'Out': IPython's output history" in err and "skipped 'In': IPython's input history" in err
    assert "skipped 'exit': IPython's exit: part of the shell" in err
    run("x = None")
    run("%mv_restore v1")
    assert shell.user_ns["Out"] is shell.history_manager.output_hist
    assert shell.user_ns["In"] is shell.history_manager.input_hist_parsed
    assert run("x == [1, 2] and _ is x and _i1 == 'x = [1, 2]'")
    run("41 + 1")
    assert 42 in shell.user_ns["Out"].values()


def test_numpy_views_inside_pickled_objects_keep_sharing(run):
    # numpy pickles a view as a copy of its data: a dict of rows of `m`, an object holding `a[::2]`
    # came back detached from the array variable (and from an array of the same dict)
    run("import numpy as np\nclass Holder:\n    pass\n"
        "m = np.arange(6.).reshape(3, 2)\nrows = list(m)\n"
        "a = np.arange(8.)\nh = Holder(); h.even = a[::2]\n"
        "d = {'whole': np.arange(5.)}\nd['part'] = d['whole'][1:3]\n"
        "ro = a[1:3]; ro.flags.writeable = False; keep = {'ro': ro}")
    run("%mv_snapshot")
    run("m = rows = a = h = d = ro = keep = None")
    run("%mv_restore v1")
    run("m[1, 0] = -1.0\na[2] = -2.0\nd['whole'][2] = -3.0")
    assert run("rows[1][0] == -1.0 and h.even[1] == -2.0 and d['part'][1] == -3.0")
    assert run("not keep['ro'].flags.writeable and np.shares_memory(keep['ro'], a)")
    assert run("type(h) is Holder and len(rows) == 3 and rows[2].tolist() == [4.0, 5.0]")
    # the array variables keep their own safe codec: the pickles refer to them
    import jupyter_mv as mv

    codecs = {v.name: v.codec for v in mv.open_store().variables(mv.versions()[-1])}
    assert codecs["m"] == "numpy" and codecs["a"] == "numpy"


def test_bundle_keeps_views_and_class_identity_through_trust(shell, run, tmp_path, capsys):
    # an export turns a group into one skops file, which writes each array as its own .npy: the
    # group of `m` and its rows came back as copies, silently. Such a group stays pickled (--trust).
    from mvtest import as_colleague

    from jupyter_mv import api

    run("import numpy as np\nclass K:\n    pass\nk1 = K(); k2 = K()\n"
        "m = np.arange(6.).reshape(3, 2)\nrows = list(m)\nsafe = {'a': np.zeros(2), 'b': np.ones(2)}")
    run("%mv_snapshot")
    shell.run_line_magic("mv_export", f"v1 {tmp_path / 'b.mvz'}")
    other = as_colleague(shell, tmp_path)
    for n in ("m", "rows", "k1", "k2", "safe"):
        shell.user_ns.pop(n)
    shell.user_ns["K"] = "not a class any more"
    shell.run_line_magic("mv_import", str(tmp_path / "b.mvz"))
    api.set_notebook(api.versions(all=True)[0].notebook)
    capsys.readouterr()
    shell.run_line_magic("mv_restore", "v1 --trust")
    assert run("np.shares_memory(rows[0], m) and np.shares_memory(rows[2], m)")
    assert run("type(k1) is K and type(k2) is K")
    assert run("safe['a'].tolist() == [0.0, 0.0]")


def test_fresh_kernel_restore_keeps_types_and_sharing(tmp_path, monkeypatch):
    """The state of one kernel restored in another (nbclient, real kernels): notebook classes, views
    of arrays and tensors, memoryviews and object columns come back with their types and sharing."""
    import os
    import sys

    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PATH", f"{sys.prefix}/bin:" + os.environ.get("PATH", ""))
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "exact.ipynb"))

    def execute(*sources):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
        NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}},
                       allow_errors=False).execute()
        return "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")

    execute("%load_ext jupyter_mv",
            "import numpy as np, pandas as pd, torch\n"
            "class Point:\n    def __init__(self, x):\n        self.x = x\n"
            "p = Point(1); pts = [Point(2), p]\n"
            "x = np.arange(12.); a = x.reshape(3, 4); t = a.T; del x\n"
            "w = torch.arange(6.); head = {'h': w[:2]}\n"
            "mvw = memoryview(b'abc')\n"
            "s = pd.Series(['a', None], dtype=object)",
            "%mv_snapshot")
    out = execute("%load_ext jupyter_mv",
                  "%mv_restore v1",
                  "import numpy as np\n"
                  "print('class', type(p) is Point and type(pts[0]) is Point and pts[1] is p)\n"
                  "print('view', np.shares_memory(a, t))\n"
                  "print('tensor', head['h'].untyped_storage().data_ptr() == w.untyped_storage().data_ptr())\n"
                  "print('memoryview', type(mvw) is memoryview)\n"
                  "print('none', s[1] is None and s.dtype == object)")
    assert out.split() == ["class", "True", "view", "True", "tensor", "True", "memoryview", "True", "none", "True"], out


def test_nan_sign_and_payload_survive_in_plain_values(run):
    # plain JSON wrote every NaN as repr 'nan': x86's 0 * inf (-nan) came back positive, payloads lost
    run("import struct, math\n"
        "neg = -float('nan')\npayload = struct.unpack('<d', bytes.fromhex('010000000000f87f'))[0]\n"
        "vals = [neg, -0.0, float('nan'), complex(neg, 1.0)]")
    run("%mv_snapshot")
    run("neg = payload = vals = None")
    run("%mv_restore v1")
    assert run("math.copysign(1, neg) < 0 and struct.pack('<d', payload).hex() == '010000000000f87f'")
    assert run("struct.pack('<d', vals[0]) == struct.pack('<d', -float('nan')) and math.copysign(1, vals[1]) < 0")
    assert run("struct.pack('<d', vals[2]) == struct.pack('<d', float('nan')) and math.copysign(1, vals[3].real) < 0")


def test_instance_of_a_redefined_class_is_named(run, capsys):
    # restore resolves notebook classes by name (README): an instance made before its class cell ran
    # again comes back as an instance of the class of that name; the snapshot now says so
    run("class A:\n    v = 1\nold = A()\nclass A:\n    v = 2\nnew = A()\nkeep = [new]")
    capsys.readouterr()
    run("%mv_snapshot")
    err = capsys.readouterr().err
    assert "old: holds an instance of an earlier definition of class A" in err
    assert "new:" not in err and "keep:" not in err


def test_restore_names_variables_left_pointing_at_replaced_objects(run, capsys):
    # Kishu-style: an optimizer made after the version kept stepping the parameters of the model the
    # restore had just replaced; nothing said so
    run("import torch\nmodel = torch.nn.Linear(2, 2)\nn = 5\ncfg = {'lr': 0.1}")
    run("%mv_snapshot")
    run("opt = torch.optim.SGD(model.parameters(), lr=0.1)\nalias = model\nk = n\nholder = [cfg]")
    capsys.readouterr()
    run("%mv_restore v1")
    err = capsys.readouterr().err
    assert "opt still refers to the model this restore replaced" in err
    assert "alias still refers to the model" in err and "holder still refers to the cfg" in err
    assert "k still" not in err  # an int is a value, not a shared object
    run("%mv_restore v1 n")
    assert "still refers" not in capsys.readouterr().err
    # the Python API warns (StaleReference) with the same text
    import warnings

    import jupyter_mv as mv
    from jupyter_mv.errors import StaleReference

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run("opt = torch.optim.SGD(model.parameters(), lr=0.1)")
        mv.restore("v1", ["model"])
    assert [str(w.message) for w in caught if w.category is StaleReference] == [
        "jupyter_mv: opt still refers to the model this restore replaced, not to the restored one; "
        "restore opt too (if v1 has it) or recreate it"]


def test_closures_of_one_call_keep_sharing_their_cell(run):
    # each function's closure was stored as values: `inc` and `get` (one `nonlocal n`) came back with
    # a cell each, so inc() no longer changed what get() returns
    run("def make():\n    n = 0\n    def inc():\n        nonlocal n\n        n += 1\n        return n\n"
        "    def get():\n        return n\n    return inc, get\n"
        "inc, get = make()\ninc()\npair = make()\n"
        "def outer():\n    def rec(k):\n        return 0 if k == 0 else 1 + rec(k - 1)\n    return rec\nr = outer()")
    run("%mv_snapshot")
    run("inc = get = pair = r = None")
    run("%mv_restore v1")
    assert run("inc() == 2 and get() == 2 and pair[0]() == 1 and pair[1]() == 1 and get() == 2")
    assert run("r(4) == 4")


def test_frame_float_columns_keep_nan_sign_and_payload(run):
    # Arrow reads NaN as null and writes the default NaN back: `inf - inf` (x86's negative NaN) in a
    # column came back positive, np.signbit changed
    run("import numpy as np, pandas as pd\n"
        "with np.errstate(invalid='ignore'):\n    neg = np.array([np.inf, 1.0]) - np.inf\n"
        "odd = np.array([0x7ff8000000000123, 0], dtype=np.uint64).view(np.float64)\n"
        "df = pd.DataFrame({'neg': neg, 'odd': odd, 'plain': [np.nan, 2.0], 'n': [1, 2]})\n"
        "s = pd.Series(neg, name='s')")
    run("%mv_snapshot")
    run("df = s = None")
    run("%mv_restore v1")
    assert run("np.signbit(df['neg'].to_numpy()).tolist() == [True, True] and np.signbit(s.to_numpy())[0]")
    assert run("df['odd'].to_numpy().view(np.uint64)[0] == 0x7ff8000000000123")
    assert run("df.dtypes.tolist() == [np.dtype('float64')] * 3 + [np.dtype('int64')] and list(df.columns) == "
               "['neg', 'odd', 'plain', 'n'] and s.name == 's'")


def test_torch_memory_layout_survives(run):
    # tensors were stored made contiguous: a channels_last image batch or a transposed weight came
    # back row-major (is_contiguous() and strides changed; channels_last kernels no longer chosen)
    run("import torch\nimgs = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)\n"
        "wt = torch.randn(3, 2).t()\nconv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)\n"
        "ref = (imgs.clone(), wt.clone(), conv.weight.detach().clone())")
    run("%mv_snapshot imgs wt conv ref")
    run("imgs = wt = conv = None")
    run("%mv_restore v1")
    assert run("imgs.is_contiguous(memory_format=torch.channels_last) and imgs.stride() == (60, 1, 15, 3)")
    assert run("wt.stride() == (1, 2) and conv.weight.is_contiguous(memory_format=torch.channels_last)")
    assert run("torch.equal(imgs, ref[0]) and torch.equal(wt, ref[1]) and torch.equal(conv.weight.detach(), ref[2])")
    assert run("type(conv.weight) is torch.nn.Parameter and conv.weight.requires_grad")
