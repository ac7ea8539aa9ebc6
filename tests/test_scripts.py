"""The setup scripts stop at the step that failed, with that step's output (scripts/env.sh's
pip_install used to end in `|| true`, so a broken install surfaced much later as something else)."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap

import pytest

from mvtest import REPO

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture
def fake_root(tmp_path):
    """A copy of scripts/env.sh in a tree whose venv python is a stub (no real pip runs) and whose
    lab extension counts as built (no Node.js step)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "env.sh", tmp_path / "scripts" / "env.sh")
    static = tmp_path / "jupyter_mv" / "labextension" / "static"
    static.mkdir(parents=True)
    (static / "style.js").write_text("")
    widgets = tmp_path / "jupyter_mv" / "widgets" / "static"  # and the widgets' bundles
    widgets.mkdir(parents=True)
    (widgets / "history.js").write_text("")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    return tmp_path


def _stub_pip(root, output: str, code: int) -> None:
    py = root / ".venv" / "bin" / "python"
    (root / "pip-output.txt").write_text(output)
    py.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        cat "{root / 'pip-output.txt'}" >&2
        exit {code}
        """))
    py.chmod(0o755)


def _run(root, script: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_MV_VENV", "PYTHON")}
    return subprocess.run(["bash", "-c", f"source scripts/env.sh\n{script}"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=60)


def test_pip_failure_stops_with_its_output(fake_root):
    _stub_pip(fake_root, "WARNING: x 1.0 does not provide the extra 'y' which is ignored\n"
                         "ERROR: No matching distribution found for nosuchpkg\n", 7)
    r = _run(fake_root, 'pip_install nosuchpkg\necho "STEP AFTER"')
    assert r.returncode == 7, (r.stdout, r.stderr)
    assert "STEP AFTER" not in r.stdout  # the next step never ran
    assert "No matching distribution found for nosuchpkg" in r.stdout + r.stderr  # pip's own words
    assert "pip install nosuchpkg failed (exit 7)" in r.stderr
    assert "is ignored" not in r.stdout + r.stderr  # the harmless noise stays filtered


@pytest.mark.parametrize("output", ["", "WARNING: the extra 'z' is ignored\n", "Note: built a wheel\n"])
def test_pip_success_goes_on(fake_root, output):
    _stub_pip(fake_root, output, 0)
    r = _run(fake_root, 'pip_install -e ".[test]"\necho "STEP AFTER"')
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.rstrip().endswith("STEP AFTER")
    assert "is ignored" not in r.stdout
    if "built" in output:
        assert "Note: built a wheel" in r.stdout


def test_scripts_have_no_swallowed_failures():
    """No `|| true` after an install step in the setup scripts (only around output filtering)."""
    for name in ("env.sh", "start.sh", "test.sh"):
        for line in (REPO / "scripts" / name).read_text().splitlines():
            code = line.split("#", 1)[0]
            if "|| true" in code:
                assert code.strip().startswith("grep"), f"{name}: {line.strip()}"
