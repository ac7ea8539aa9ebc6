"""Shared fixtures: a fresh store in tmp_path, a real IPython shell with the extension loaded, and
helpers to run magics and the CLI. Every test gets its own directory; nothing is written into the repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mv import api
from jupyter_mv.store import Store

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's store, notebook name or debug switch."""
    for var in ("JUPYTER_MV_STORE", "JUPYTER_MV_NOTEBOOK", "JPY_SESSION_NAME", "JUPYTER_MV_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    yield
    api.set_session(None)


@pytest.fixture
def store_path(tmp_path) -> Path:
    return tmp_path / ".jupyter_mv"


@pytest.fixture
def store(store_path):
    """A fresh, empty Store in tmp_path."""
    st = Store(store_path)
    yield st
    st.close()


@pytest.fixture
def session(tmp_path, monkeypatch):
    """A plain (no IPython) api.Session over a private namespace, working in tmp_path."""
    monkeypatch.chdir(tmp_path)
    s = api.Session(namespace={})
    api.set_session(s)
    yield s
    api.set_session(None)


@pytest.fixture(scope="session")
def _ipython():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"  # never the developer's ~/.ipython history
    ip = InteractiveShell.instance(config=cfg)
    ip.colors = "nocolor"
    return ip


@pytest.fixture
def shell(_ipython, tmp_path, monkeypatch):
    """A real IPython InteractiveShell with `%load_ext jupyter_mv`, working in tmp_path, with a
    clean namespace; the extension is unloaded and the session dropped afterwards."""
    ip = _ipython
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JUPYTER_MV_STORE", raising=False)
    ip.reset(new_session=True)  # fresh namespace, input history and execution count
    ip.user_ns["__name__"] = "__main__"
    api.set_session(None)
    ip.run_line_magic("load_ext", "jupyter_mv")
    yield ip
    try:
        ip.run_line_magic("unload_ext", "jupyter_mv")
    finally:
        # a test that failed mid-way must not leave hooks or a session behind
        from jupyter_mv import magics

        if getattr(ip, magics._STATE_ATTR, None) is not None:
            magics.unload(ip)
        ip.extension_manager.loaded.discard("jupyter_mv")
        api.set_session(None)
        ip.reset(new_session=False)


def run_cell(ip, source: str):
    """Run a cell and re-raise whatever it raised (IPython only shows it)."""
    result = ip.run_cell(source, store_history=True)
    err = result.error_before_exec or result.error_in_exec
    if err is not None:
        raise err
    return result.result


@pytest.fixture
def run(shell):
    return lambda source: run_cell(shell, source)


def cli(*args, cwd=None, env=None, module: bool = True) -> subprocess.CompletedProcess:
    """Run `jupyter-mv ARGS` in a subprocess (through `python -m jupyter_mv.cli` by default)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MV_", "JPY_SESSION"))}
    e.update(env or {})
    cmd = [sys.executable, "-m", "jupyter_mv.cli", *map(str, args)] if module else list(map(str, args))
    return subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=120)


def cli_in_process(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """`jupyter-mv ARGS` through cli.main() in this process (fast); same result shape as `cli`."""
    import contextlib
    import io

    from jupyter_mv import cli as climod

    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_env = os.getcwd(), dict(os.environ)
    try:
        for k in [k for k in os.environ if k.startswith(("JUPYTER_MV_", "JPY_SESSION"))]:
            del os.environ[k]
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = climod.main([str(a) for a in args])
            except SystemExit as e:  # argparse: --help, --version, bad arguments
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return subprocess.CompletedProcess(["jupyter-mv", *map(str, args)], code, out.getvalue(), err.getvalue())


@pytest.fixture
def run_cli():
    """Run the CLI in-process; use `conftest.cli` for a real subprocess."""
    return cli_in_process


def store_bytes(root: Path) -> int:
    """Bytes of every file under the store's blob directory."""
    blobs = Path(root) / "blobs"
    return sum(f.stat().st_size for f in blobs.rglob("*") if f.is_file()) if blobs.exists() else 0


def blob_files(root: Path) -> list[Path]:
    blobs = Path(root) / "blobs"
    return sorted(f for f in blobs.rglob("*") if f.is_file()) if blobs.exists() else []


def pytest_terminal_summary(terminalreporter):
    """The fault-injection suite's figures (tests/test_reliability.py), when it ran."""
    mod = sys.modules.get("test_reliability") or sys.modules.get("tests.test_reliability")
    figures = getattr(mod, "RELIABILITY", None)
    if not figures or not any(figures.values()):
        return
    import json

    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "reliability.json").write_text(json.dumps(figures, indent=1))
    terminalreporter.section("jupyter_mv reliability")
    terminalreporter.write_line(
        f"faults injected {figures['faults_injected']}, versions checked {figures['versions_checked']}, "
        f"versions lost {figures['versions_lost']}; hostile inputs tried {figures['hostile_inputs_tried']}, "
        f"accepted {figures['hostile_inputs_accepted']}")
