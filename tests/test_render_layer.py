"""The one rendering layer (labextension/src/render) run under node, checked against the Python side:
the formatting rule (format.ts formatValue == jsondata.value_text over tests/fixtures/format_cases.json)
and the diff's side-by-side layout built from the server's unified diff (diff.ts sideBySide), which
must reproduce both sources exactly."""

from __future__ import annotations

import difflib
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from jupyter_mv import jsondata

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "labextension"
ESBUILD = LAB / "node_modules" / ".bin" / "esbuild"
CASES = json.loads((REPO / "tests" / "fixtures" / "format_cases.json").read_text())["cases"]

needs_node = pytest.mark.skipif(shutil.which("node") is None or not ESBUILD.exists(),
                                reason="node and the lab extension's npm packages (npm ci in labextension/) are needed")


@pytest.fixture(scope="module")
def render_js(tmp_path_factory):
    """The rendering layer bundled for node (esbuild, as the widgets' build does)."""
    out = tmp_path_factory.mktemp("render") / "render.cjs"
    r = subprocess.run([str(ESBUILD), str(LAB / "src" / "render" / "index.ts"), "--bundle", "--format=cjs",
                        "--platform=node", f"--outfile={out}", "--log-level=warning"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def run_js(bundle: Path, body: str):
    """Evaluate `body` (JS returning a JSON-able value; `R` is the rendering layer) under node."""
    script = f"const R = require({json.dumps(str(bundle))}); const out = (() => {{ {body} }})(); console.log(JSON.stringify(out));"
    r = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_python_follows_the_rule():
    for value, text in CASES:
        assert jsondata.value_text(value) == text, value


def test_python_reads_the_same_values_as_numbers():
    """What Python holds before JSON (floats, NaN, numpy scalars) shows as the front end shows its JSON."""
    import numpy as np

    for value, text in CASES:
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            assert jsondata.value_text(jsondata.number(value)) == text
        elif isinstance(value, float) and not value.is_integer():
            assert jsondata.value_text(np.float64(value)) == text
    assert jsondata.value_text((1, math.inf)) == "[1, ∞]"  # a tuple arrives as a JSON list
    assert jsondata.value_text(np.int64(7)) == "7" and jsondata.value_text(np.float32(0.1)) == "0.1"


@needs_node
def test_front_end_follows_the_same_rule(render_js):
    got = run_js(render_js, f"return {json.dumps([c[0] for c in CASES])}.map(R.formatValue);")
    assert got == [c[1] for c in CASES]


@needs_node
def test_front_end_formats_missing_as_blank_and_deltas_signed(render_js):
    got = run_js(render_js, "return [R.formatValue(undefined), R.formatDelta(0.25), R.formatDelta(-1e-5), R.formatDelta('NaN'), R.formatDelta(null)];")
    assert got == ["", "+0.25", "-1e-5", "", ""]


def _unified(a: str, b: str) -> list[str]:
    return list(difflib.unified_diff(a.splitlines(), b.splitlines(), "a", "b", lineterm=""))


@needs_node
@pytest.mark.parametrize("a,b", [
    ("a\nb\nc", "a\nB\nc\nd"),
    ("\n".join(map(str, range(20))), "\n".join(map(str, range(20))) + "\nx"),
    ("x = 1\nprint(x)", "import os\nx = 2\nprint(x)\n"),
    ("one\ntwo\nthree", ""),
    ("", "fresh\ncell"),
    ("\n".join(f"l{i}" for i in range(40)), "\n".join(f"l{i}" if i % 13 else f"L{i}" for i in range(40))),
])
def test_side_by_side_from_the_servers_unified_diff(render_js, a, b):
    """The diff tab draws cells from the server's diff (no diff of its own): each side, skipped runs
    aside, is exactly that side's source, line numbers included; changes are marked as the diff says."""
    rows = run_js(render_js, f"return R.sideBySide({json.dumps(a)}, {json.dumps(b)}, {json.dumps(_unified(a, b))}, 1000);")
    la, lb = a.splitlines(), b.splitlines()
    left = [(r[0], r[1]) for r in rows if r[0] is not None]
    right = [(r[2], r[3]) for r in rows if r[2] is not None]
    assert left == [(i + 1, t) for i, t in enumerate(la)]
    assert right == [(i + 1, t) for i, t in enumerate(lb)]
    marked_a = {r[1] for r in rows if r[4] in ("changed", "removed")}
    marked_b = {r[3] for r in rows if r[4] in ("changed", "added")}
    diff = _unified(a, b)[2:]
    assert marked_a == {x[1:] for x in diff if x.startswith("-")}
    assert marked_b == {x[1:] for x in diff if x.startswith("+")}


@needs_node
def test_side_by_side_folds_long_unchanged_runs(render_js):
    long = "\n".join(map(str, range(20)))
    rows = run_js(render_js, f"return R.sideBySide({json.dumps(long)}, {json.dumps(long + chr(10) + 'x')}, {json.dumps(_unified(long, long + chr(10) + 'x'))});")
    assert [r[4] for r in rows].count("skip") == 1 and rows[-1] == [None, "", 21, "x", "added"]
    assert rows[0] == [1, "0", 1, "0", "same"]


def test_widget_modules_are_the_built_bundles_or_say_how_to_build(monkeypatch, tmp_path):
    from jupyter_mv.widgets import assets

    for name in ("history", "diff"):
        js = assets.module(name)
        assert js == (assets.STATIC / f"{name}.js").read_text() and "export" in js
    monkeypatch.setattr(assets, "STATIC", tmp_path)  # a source checkout nobody built
    assets.module.cache_clear()
    assets.css.cache_clear()
    try:
        js = assets.module("history")
        assert "npm run build" in js and "export default" in js and assets.css() == ""
    finally:
        monkeypatch.undo()
        assets.module.cache_clear()
        assets.css.cache_clear()
