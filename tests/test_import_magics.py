"""`import jupyter_mv as mv` inside IPython registers the %mv_* magics (as `%load_ext jupyter_mv`
does); outside IPython it changes nothing. A real terminal IPython in a subprocess, and the shell
fixture for what follows an unload."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError

IPYTHON = Path(sys.executable).with_name("ipython")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MV_", "JPY_SESSION"))}
    env.update(extra)
    return env


def test_import_registers_the_magics_in_terminal_ipython(tmp_path):
    script = tmp_path / "flow.ipy"
    script.write_text(
        "import jupyter_mv as mv\n"
        "a = [1, 2, 3]\n"
        '%mv_snapshot a -m "from the terminal" -t t1  # a comment\n'
        "a = None\n"
        "%mv_restore t1 a\n"
        "print('A =', a)\n"
        "%load_ext jupyter_mv\n"  # after the import: silent, nothing doubled
        "%mv_snapshot a\n"
        "print('versions', mv.history()['version'].tolist())\n")
    r = subprocess.run([str(IPYTHON), "--no-banner", "--quick", "--HistoryManager.hist_file=:memory:", str(script)],
                       cwd=tmp_path, env=_env(JUPYTER_MV_NOTEBOOK="term.ipynb"), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "not found" not in r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("v1  from the terminal  1 variable  ") and lines[0].endswith("tags: t1")
    assert "restored a from v1" in lines and "A = [1, 2, 3]" in lines
    assert "already loaded" not in r.stdout
    assert lines[-1] == "versions ['v1', 'v2']"


def test_import_outside_ipython_registers_nothing(tmp_path):
    r = subprocess.run([sys.executable, "-c", "import jupyter_mv, sys; print('IPython' in sys.modules)"],
                       cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr  # not even IPython is imported
    assert not (tmp_path / ".jupyter_mv").exists()


def test_import_in_a_shell_registers_the_magics(_ipython, tmp_path, monkeypatch):
    """In-process: a shell without the extension gets the magics from (re)running the import hook."""
    import jupyter_mv
    from mvtest import _hide_shell, _show_shell
    from jupyter_mv import api, magics

    ip = _ipython
    main = sys.modules["__main__"]
    _show_shell(ip)
    monkeypatch.chdir(tmp_path)
    try:
        ip.reset(new_session=True)
        api.set_session(None)
        jupyter_mv._register_in_running_shell()  # what `import jupyter_mv` runs at import time
        assert getattr(ip, magics._STATE_ATTR, None) is not None
        ip.run_cell("b = 5")
        ip.run_line_magic("mv_snapshot", "b  # registered by the import")
        assert api.resolve("v1").variables == ("b",)
        # the import does not mark the extension loaded (a later %load_ext stays silent) ...
        assert "jupyter_mv" not in ip.extension_manager.loaded
        ip.run_line_magic("load_ext", "jupyter_mv")
        assert getattr(ip, magics._STATE_ATTR) is api.session()  # ... and loads nothing twice
        ip.run_line_magic("unload_ext", "jupyter_mv")
        # once unloaded, a magic says how to get it back instead of quietly re-installing itself
        with pytest.raises(UsageError, match=r"not loaded in this kernel; run %load_ext jupyter_mv"):
            ip.run_line_magic("mv_log", "")
    finally:
        if getattr(ip, magics._STATE_ATTR, None) is not None:
            magics.unload(ip)
        api.set_session(None)
        ip.reset(new_session=False)
        _hide_shell(ip, main)
