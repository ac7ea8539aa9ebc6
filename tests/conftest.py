"""Shared fixtures: a fresh store in tmp_path, a real IPython shell with the extension loaded, and
helpers to run magics and the CLI. Every test gets its own directory; nothing is written into the repo."""

from __future__ import annotations

import os  # noqa: F401
import sys
from pathlib import Path

import pytest

from jupyter_mv import api
from jupyter_mv.store import Store
from mvtest import _hide_shell, _show_shell, blob_files, cli, cli_in_process, run_cell, store_bytes  # noqa: F401 - re-exported

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
    main = sys.modules["__main__"]
    ip = InteractiveShell.instance(config=cfg)
    ip.colors = "nocolor"
    _hide_shell(ip, main)
    return ip


@pytest.fixture
def shell(_ipython, tmp_path, monkeypatch):
    """A real IPython InteractiveShell with `%load_ext jupyter_mv`, working in tmp_path, with a
    clean namespace; the extension is unloaded and the session dropped afterwards."""
    ip = _ipython
    main = sys.modules["__main__"]
    _show_shell(ip)
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
        _hide_shell(ip, main)


@pytest.fixture
def run(shell):
    return lambda source: run_cell(shell, source)


@pytest.fixture
def run_cli():
    """Run the CLI in-process; use `mvtest.cli` for a real subprocess."""
    return cli_in_process


def pytest_terminal_summary(terminalreporter):
    """The fault-injection suite's figures (tests/test_reliability.py), when it ran."""
    mod = sys.modules.get("mvtest")
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
