"""Every user value is stored and served as valid data (issue 11, K4): NaN, ±inf, numpy scalars,
datetimes and Paths in params, metrics, attrs, tags and messages never abort a snapshot, and every JSON
the product writes (CLI --json, REST, widget state) is RFC 8259 JSON: non-finite numbers are the strings
"NaN" / "Infinity" / "-Infinity", shown as NaN / ∞ by the UIs."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_mv import api, jsondata
from jupyter_mv.jsondata import strict_loads
from mvtest import REPO, cli_in_process

WEIRD_PARAMS = {"path": Path("/data/train.csv"), "when": dt.datetime(2024, 5, 1, 12, 0), "day": dt.date(2024, 5, 1),
                "f32": np.float32("nan"), "i64": np.int64(7), "b": np.bool_(True), "arr": np.arange(3),
                "inf": float("inf"), "ninf": -math.inf, "t": (1, 2), 3: "int key", "s": {2, 1}}


def strict(text):
    """The parse a JSON.parse / RFC 8259 parser does: bare NaN/Infinity raise."""
    return strict_loads(text)


def test_plain_converts_and_dumps_is_strict():
    got = jsondata.plain({"nan": math.nan, "inf": np.float64("inf"), "n": np.int32(3), "p": Path("a/b"),
                          "d": dt.datetime(2024, 1, 2, 3, 4, 5), 1: (np.float16(0.5),), "x": object})
    assert got["nan"] == "NaN" and got["inf"] == "Infinity" and got["n"] == 3 and type(got["n"]) is int
    assert got["p"] == "a/b" and got["d"] == "2024-01-02T03:04:05" and got["1"] == [0.5]
    assert strict(jsondata.dumps({"a": [math.nan, -math.inf]})) == {"a": ["NaN", "-Infinity"]}
    assert [jsondata.number(x) for x in ("Infinity", "-Infinity", 1.5)] == [math.inf, -math.inf, 1.5]
    assert math.isnan(jsondata.number("NaN"))
    with pytest.raises(ValueError):
        strict('{"a": NaN}')


def _weird_version(session):
    df = pd.DataFrame({"x": [1.0]})
    df.attrs = {"when": dt.datetime(2024, 1, 1), "path": Path("/x"), "t": (1, 2), 1: "int"}
    session.namespace.update({"df": df, "arr": np.array([np.nan, np.inf, 1.0]), "f": float("nan")})
    v1 = api.snapshot(message="first", params=dict(WEIRD_PARAMS),
                      metrics={"loss": 0.5, "best_loss": 1.0})
    v2 = api.snapshot(message="nan run", params={**WEIRD_PARAMS, "lr": np.float64(0.1)},
                      metrics={"loss": float("nan"), "best_loss": float("inf"), "worst": np.float32("-inf"),
                               "steps": np.int64(10)}, tags=["t1"])
    return v1, v2


def test_weird_values_never_abort_a_snapshot_and_read_back(session):
    v1, v2 = _weird_version(session)
    assert math.isnan(v2.metrics["loss"]) and v2.metrics["best_loss"] == math.inf
    assert v2.metrics["worst"] == -math.inf and v2.metrics["steps"] == 10.0
    p = api.resolve("v2").params
    assert p["path"] == "/data/train.csv" and p["when"] == "2024-05-01T12:00:00" and p["i64"] == 7
    assert math.isnan(p["f32"]) and p["inf"] == math.inf and p["arr"] == [0, 1, 2] and p["3"] == "int key"
    assert p["t"] == [1, 2]  # a tuple is no credential (the credential check once compared it with a list)
    assert api.load("v2", "df").attrs[1] == "int"
    h = api.history()
    assert math.isnan(h["metrics"].iloc[-1]["loss"])  # the Python API keeps floats


def test_a_metric_beyond_float_range_is_one_clear_error(session):
    session.namespace["x"] = 1
    with pytest.raises(api.UsageError, match="metric 'big' is too large to store as a float"):
        api.snapshot(metrics={"big": 10 ** 400})
    with pytest.raises(api.UsageError, match="metric 'huge' is too large"):
        api.snapshot(metrics={"huge": 10 ** 5000})  # beyond int-to-str's digit limit too
    assert api.versions() == []


def test_magic_params_and_metrics_with_nan_inf(shell, run, capsys):
    run("import numpy as np, pathlib, datetime")
    run("loss = float('nan'); best_loss = float('inf')")
    shell.run_line_magic("mv_snapshot", "loss best_loss --metrics \"{'loss': loss, 'best_loss': best_loss, "
                                        "'n': np.int64(3)}\" --params \"{'p': pathlib.Path('x'), "
                                        "'d': datetime.date(2024, 1, 1), 'g': np.float32('nan')}\"")
    out = capsys.readouterr()
    assert out.out.startswith("v1") and "Traceback" not in out.err
    v = api.versions()[-1]
    assert math.isnan(v.metrics["loss"]) and v.metrics["best_loss"] == math.inf


def test_cli_json_is_strict(session, tmp_path):
    _weird_version(session)
    for args in (["log", "--json"], ["show", "v2", "--json"], ["diff", "v1", "v2", "--json"],
                 ["log", "--json", "--all"]):
        r = cli_in_process(*args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        data = strict(r.stdout)
        assert data
    log = strict(cli_in_process("log", "--json", cwd=tmp_path).stdout)
    assert log[-1]["metrics"] == {"best_loss": "Infinity", "loss": "NaN", "steps": 10.0, "worst": "-Infinity"}
    assert log[-1]["params"]["f32"] == "NaN" and log[-1]["params"]["ninf"] == "-Infinity"
    d = strict(cli_in_process("diff", "v1", "v2", "--json", cwd=tmp_path).stdout)
    assert d["metrics"]["changed"]["loss"]["new"] == "NaN"
    assert d["metrics"]["changed"]["best_loss"]["new"] == "Infinity"
    show = strict(cli_in_process("show", "v2", "--json", cwd=tmp_path).stdout)
    assert show["metrics"]["loss"] == "NaN"
    arr = next(v for v in show["variables"] if v["name"] == "arr")
    json.dumps(arr, allow_nan=False)


def test_widget_state_is_strict_json(session):
    from jupyter_mv.widgets import DiffWidget, HistoryWidget

    _weird_version(session)
    w = HistoryWidget()
    w.selected = [w.rows[0]["id"]]  # newest first: v2, with the non-finite metrics
    state = w.get_state()
    text = json.dumps(state, allow_nan=False)  # raises on a bare NaN
    back = strict(text)
    row = next(r for r in back["rows"] if r["label"] == "v2")
    assert row["metrics"]["loss"] == "NaN" and row["metrics"]["best_loss"] == "Infinity"
    assert "NaN" in back["chart"]["series"]["loss"]
    assert back["details"]["metrics"]["best_loss"] == "Infinity"
    assert math.isnan(w.rows[0]["metrics"]["loss"])  # Python side keeps the numbers
    d = DiffWidget(api.diff("v1", "v2"))
    back = strict(json.dumps(d.get_state(), allow_nan=False))
    assert back["diff"]["metrics"]["changed"]["loss"]["new"] == "NaN"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed to run the widget's JavaScript")
def test_widget_front_end_shows_nan_and_infinity():
    """The widgets' bundled ES module formats with the rendering layer's formatValue (format.ts, run here
    as the lab build emits it)."""
    src = _lab_module("render/format") + "\n;this.fmt = formatValue;"
    script = ("const vm = require('vm'); const ctx = {};"
              "vm.createContext(ctx); vm.runInContext(require('fs').readFileSync(0, 'utf8'), ctx);"
              "console.log(JSON.stringify(['NaN', 'Infinity', '-Infinity', NaN, Infinity, -Infinity, 0.25, 'x']"
              ".map(ctx.fmt)));")
    r = subprocess.run(["node", "-e", script], input=src, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == ["NaN", "∞", "-∞", "NaN", "∞", "-∞", "0.25", "x"]
    static = REPO / "jupyter_mv" / "widgets" / "static"
    for name in ("history.js", "diff.js"):  # the bundles carry that same function
        assert "function formatValue(" in (static / name).read_text()


def _lab_module(name: str) -> str:
    """labextension/lib/NAME.js with its imports and `export` keywords removed, so node runs its pure
    functions without JupyterLab (the functions tested here use no import)."""
    lib = REPO / "labextension" / "lib" / f"{name}.js"
    assert lib.exists(), "labextension/lib is not built: run `cd labextension && npm run build`"
    src = lib.read_text()
    src = re.sub(r"^import [^;]*;\s*$", "", src, flags=re.M)
    return re.sub(r"^export (default )?", "", src, flags=re.M)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed to run the lab extension's code")
def test_lab_panel_reads_and_formats_nan_and_infinity():
    """The lab extension's built toNumber (api.js: metrics read back as numbers) and formatValue
    (render.js: what the panel and the diff tab print)."""
    src = _lab_module("api") + "\n" + _lab_module("render/format") + "\n;this.toNumber = toNumber; this.formatValue = formatValue;"
    script = ("const vm = require('vm'); const ctx = {}; vm.createContext(ctx);"
              "vm.runInContext(require('fs').readFileSync(0, 'utf8'), ctx);"
              "const vals = ['NaN', 'Infinity', '-Infinity', 0.5, 'text'];"
              "console.log(JSON.stringify([vals.map(ctx.formatValue), vals.map(ctx.toNumber).map(ctx.formatValue),"
              " vals.map(ctx.toNumber).map((x) => typeof x)]));")
    r = subprocess.run(["node", "-e", script], input=src, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    shown, via_number, types = json.loads(r.stdout)
    assert shown == via_number == ["NaN", "∞", "-∞", "0.5", "text"]
    assert types == ["number", "number", "number", "number", "string"]


# -- REST (a real jupyter_server with the extension) --------------------------------------------------
pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mv": True}}}


async def test_rest_responses_are_strict(jp_fetch, jp_root_dir):
    (jp_root_dir / "nb.ipynb").write_text("{}")
    s = api.Session(namespace={})
    s.told_notebook = str(jp_root_dir / "nb.ipynb")
    api.set_session(s)
    st = api.open_store(jp_root_dir / ".jupyter_mv")
    try:
        s.namespace.update({"arr": np.array([np.nan, np.inf]), "f": float("nan")})
        api.take_snapshot(message="a", params=dict(WEIRD_PARAMS), metrics={"loss": 0.5}, store=st)
        api.take_snapshot(message="b", params={"lr": np.float64("nan")},
                          metrics={"loss": float("nan"), "best_loss": float("inf")}, store=st)
    finally:
        st.close()
        api.set_session(None)
    q = {"notebook": "nb.ipynb"}

    async def get(*parts, **kw):
        r = await jp_fetch("jupyter-mv", "api", *parts, **kw)
        return strict(r.body.decode())

    versions = (await get("versions", params=q))["versions"]
    assert versions[-1]["metrics"] == {"best_loss": "Infinity", "loss": "NaN"}
    assert versions[0]["params"]["inf"] == "Infinity" and versions[0]["params"]["path"] == "/data/train.csv"
    details = await get("versions", "v2", params=q)
    assert details["metrics"]["loss"] == "NaN" and details["params"]["lr"] == "NaN"
    d = await get("diff", params={**q, "a": "v1", "b": "v2"})
    assert d["metrics"]["changed"]["loss"]["new"] == "NaN" and d["metrics"]["added"]["best_loss"] == "Infinity"
    tagged = await get("tags", method="POST", body=json.dumps({"notebook": "nb.ipynb", "version": "v2", "tag": "nan"}))
    assert tagged["version"]["metrics"]["loss"] == "NaN"
    assert (await get("version"))["name"] == "jupyter_mv"


def test_cli_diff_json_validates_against_the_schema(session, tmp_path):
    import importlib.resources as resources

    import jsonschema

    _weird_version(session)
    schema = json.loads((resources.files("jupyter_mv") / "schemas" / "diff.schema.json").read_text())
    d = strict(cli_in_process("diff", "v1", "v2", "--json", cwd=tmp_path).stdout)
    jsonschema.Draft202012Validator(schema).validate(d)


def test_bundle_manifest_is_strict_and_import_restores_the_floats(session, tmp_path):
    import zipfile

    from jupyter_mv.store import Store

    _, v2 = _weird_version(session)
    path = api.export("v2", tmp_path / "nan.mvz")
    with zipfile.ZipFile(path) as zf:
        man = strict(zf.read("manifest.json").decode())
    assert man["version"]["metrics"]["loss"] == "NaN" and man["version"]["metrics"]["best_loss"] == "Infinity"
    other = Store(tmp_path / "other" / ".jupyter_mv")
    try:
        api.import_bundle(path, store=other)
        (iv,) = other.versions()
        assert math.isnan(iv.metrics["loss"]) and iv.metrics["best_loss"] == math.inf
        assert iv.metrics["worst"] == -math.inf and math.isnan(iv.params["f32"]) and iv.params["inf"] == math.inf
    finally:
        other.close()


@pytest.mark.parametrize("message", [Path("runs/1"), 123, np.float64("nan"), dt.date(2024, 1, 1), None])
def test_any_message_is_text(session, message):
    v = api.snapshot(message=message)
    assert v.message == ("" if message is None else str(message))


def test_text_views_show_nan_and_infinity(session, tmp_path):
    from jupyter_mv.render import HistoryTable

    _weird_version(session)
    log = cli_in_process("log", cwd=tmp_path).stdout
    assert "loss=NaN" in log and "best_loss=∞" in log and "worst=-∞" in log
    diff = cli_in_process("diff", "v1", "v2", cwd=tmp_path).stdout
    assert "loss: 0.5 -> NaN" in diff and "best_loss: 1 -> ∞" in diff
    assert "loss: 0.5 -> NaN\n" in diff  # a change to NaN is neither up nor down: no arrow
    assert "best_loss: 1 -> ∞ (↑ ∞)" in diff
    show = cli_in_process("show", "v2", cwd=tmp_path).stdout
    assert "loss=NaN" in show and "∞" in show
    table = str(HistoryTable(api.versions()))
    assert "loss=NaN" in table and "∞" in table


def test_nan_and_infinity_inside_params_show_as_nan_and_infinity(session, tmp_path):
    """A param holding a dict or list shows the non-finite numbers inside it as NaN / ∞ too."""
    from jupyter_mv.render import HistoryTable
    from jupyter_mv.widgets import history

    session.namespace["x"] = 1
    api.snapshot(params={"grid": {"lr": [0.1, float("nan")]}, "bounds": (float("-inf"), 1.0)})
    api.snapshot(params={"grid": {"lr": [0.1, float("inf")]}, "bounds": (0.0, 1.0)})
    show = cli_in_process("show", "v1", cwd=tmp_path).stdout
    assert "grid={'lr': [0.1, NaN]}" in show and "bounds=[-∞, 1]" in show  # one rule: 1.0 shows as 1 (issue 16)
    diff = cli_in_process("diff", "v1", "v2", cwd=tmp_path).stdout
    assert "grid: {'lr': [0.1, NaN]} -> {'lr': [0.1, ∞]}" in diff
    table = str(HistoryTable(api.versions()))
    assert "NaN" in table and "inf" not in table
    assert history._short({"lr": [float("nan")]}) == "{'lr': [NaN]}"
