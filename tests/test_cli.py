"""`jupyter-mv` (and `jupyter mv`): log, show, diff, verify, gc against the current directory's store,
`--store PATH` and JUPYTER_MV_STORE; --json outputs parse."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import jupyter_mv as mv
from mvtest import cli as subprocess_cli

BIN = Path(sys.executable).parent


@pytest.fixture
def populated(session, tmp_path, monkeypatch):
    """Two versions of notebook 'work/analysis.ipynb' in tmp_path/.jupyter_mv."""
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "work/analysis.ipynb")
    session.namespace.update(arr=np.arange(10.0), LR=0.1)
    mv.snapshot("arr", message="first", tags=["base"], metrics={"acc": 0.5})
    session.namespace.update(arr=np.arange(12.0), LR=0.2)
    mv.snapshot("arr", message="second", name="bigger", metrics={"acc": 0.75})
    monkeypatch.delenv("JUPYTER_MV_NOTEBOOK")
    mv._api.set_session(None)
    return tmp_path / ".jupyter_mv"


def _ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == "", r.stderr
    return r.stdout


def test_log(populated, run_cli, tmp_path):
    out = _ok(run_cli("log", cwd=tmp_path))
    lines = out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == ["v2", "v1"]  # newest first
    assert "[base]" in lines[1] and "first" in lines[1] and "acc=0.5" in lines[1]
    assert "bigger" in lines[0] and "second" in lines[0] and "acc=0.75" in lines[0]
    out = _ok(run_cli("log", "-n", "1", cwd=tmp_path))
    assert [ln.split()[0] for ln in out.strip().splitlines()] == ["v2"]


def test_log_json(populated, run_cli, tmp_path):
    data = json.loads(_ok(run_cli("log", "--json", cwd=tmp_path)))
    assert [v["id"] for v in data] == ["v1", "v2"]  # oldest first, like mv.history()
    assert data[0]["tags"] == ["base"] and data[0]["metrics"] == {"acc": 0.5}
    assert data[1]["name"] == "bigger" and data[1]["parent"] == "v1"
    assert data[1]["params"]["LR"] == 0.2
    assert all(v["notebook"] == "work/analysis.ipynb" for v in data)
    assert data[0]["variables"] == ["arr"]


def test_show(populated, run_cli, tmp_path):
    out = _ok(run_cli("show", "base", cwd=tmp_path))
    assert out.startswith("v1  first")
    assert "arr" in out and "numpy.ndarray" in out
    info = json.loads(_ok(run_cli("show", "latest", "--json", cwd=tmp_path)))
    assert info["id"] == "v2" and info["name"] == "bigger"
    (var,) = info["variables"]
    assert var["name"] == "arr" and var["summary"]["shape"] == [12] and var["codec"] == "numpy"
    assert info["environment"]["python"] == sys.version.split()[0]
    assert "numpy" in info["environment"]["packages"]
    assert isinstance(info["cells"], list)


def test_diff(populated, run_cli, tmp_path):
    out = _ok(run_cli("diff", "v1", "v2", cwd=tmp_path))
    assert out.startswith("diff v1 -> v2")
    assert "LR: 0.1 -> 0.2" in out and "acc: 0.5 -> 0.75" in out
    d = json.loads(_ok(run_cli("diff", "base", "bigger", "--json", cwd=tmp_path)))
    assert d["a"] == "v1" and d["b"] == "v2"
    assert d["metrics"]["changed"]["acc"]["delta"] == 0.25
    assert d["variables"]["changed"][0]["name"] == "arr"
    d1 = json.loads(_ok(run_cli("diff", "v1", "--json", cwd=tmp_path)))  # B defaults to latest
    assert d1["b"] == "v2"


def test_verify_and_gc_ok(populated, run_cli, tmp_path):
    assert _ok(run_cli("verify", cwd=tmp_path)).strip() == "ok: 2 versions, every blob intact"
    assert json.loads(_ok(run_cli("verify", "--json", cwd=tmp_path))) == []
    assert _ok(run_cli("gc", cwd=tmp_path)).startswith("removed 0 unreferenced blob files")


@pytest.mark.parametrize("where", ["top", "sub", "env"])
def test_store_elsewhere(populated, run_cli, tmp_path, where):
    moved = tmp_path / "elsewhere" / "mystore"
    moved.parent.mkdir()
    shutil.move(populated, moved)
    cwd = tmp_path / "elsewhere"
    # nothing in the working directory: a plain call fails with one line
    r = run_cli("log", cwd=cwd)
    assert r.returncode == 1 and "no jupyter_mv store" in r.stderr
    if where == "top":
        r = run_cli("--store", moved, "log", "--json", cwd=cwd)
    elif where == "sub":
        r = run_cli("log", "--json", "--store", moved, cwd=cwd)
    else:
        r = run_cli("log", "--json", cwd=cwd, env={"JUPYTER_MV_STORE": str(moved)})
    assert [v["id"] for v in json.loads(_ok(r))] == ["v1", "v2"]
    if where == "env":
        r = run_cli("show", "v1", "--json", cwd=cwd, env={"JUPYTER_MV_STORE": str(moved)})
        assert json.loads(_ok(r))["message"] == "first"
        assert _ok(run_cli("verify", cwd=cwd, env={"JUPYTER_MV_STORE": str(moved)})).startswith("ok: 2")
    assert not (cwd / ".jupyter_mv").exists()


def test_several_notebooks_need_choice(populated, run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "other.ipynb")
    s = mv._api.Session(namespace={"x": 1})
    mv._api.set_session(s)
    mv.snapshot("x")
    mv._api.set_session(None)
    r = run_cli("log", cwd=tmp_path)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "--notebook" in r.stderr
    out = _ok(run_cli("log", "--notebook", "other.ipynb", "--json", cwd=tmp_path))
    assert [v["id"] for v in json.loads(out)] == ["v1"]
    out = _ok(run_cli("log", "--all", "--json", cwd=tmp_path))
    assert sorted((v["notebook"], v["id"]) for v in json.loads(out)) == [
        ("other.ipynb", "v1"), ("work/analysis.ipynb", "v1"), ("work/analysis.ipynb", "v2")]
    d = json.loads(_ok(run_cli("diff", "v1", "v2", "--notebook", "work/analysis.ipynb", "--json", cwd=tmp_path)))
    assert d["notebook"] == "work/analysis.ipynb"


def test_console_script_and_jupyter_subcommand(populated, tmp_path):
    script = BIN / "jupyter-mv"
    assert script.exists(), "the jupyter-mv console script is not installed"
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess_cli(script, "log", "--json", cwd=tmp_path, env=env, module=False)
    assert [v["id"] for v in json.loads(_ok(r))] == ["v1", "v2"]
    jupyter = BIN / "jupyter"
    if not jupyter.exists():
        pytest.fail("jupyter (jupyter_core) is not installed in the test environment")
    r = subprocess_cli(jupyter, "mv", "log", "--json", cwd=tmp_path, env=env, module=False)
    assert [v["id"] for v in json.loads(_ok(r))] == ["v1", "v2"]
    r = subprocess_cli(jupyter, "mv", "--version", cwd=tmp_path, env=env, module=False)
    assert r.returncode == 0 and r.stdout.strip() == f"jupyter_mv {mv.__version__}"


def test_main_in_process(populated, tmp_path, monkeypatch, capsys):
    """cli.main() returns exit codes instead of exiting (what the console script wraps)."""
    from jupyter_mv import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["log"]) == 0
    assert cli.main(["show", "v9"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no version 'v9'" in err
    assert cli.main([]) == 2
