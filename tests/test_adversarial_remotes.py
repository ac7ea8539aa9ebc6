"""Adversarial remotes: what new users of team remotes (DVC remotes, git-lfs, W&B artifacts) reported
breaking — typo'd or unmounted folders, noisy output with many versions, interrupted transfers — run
against file:// remotes and moto's in-process S3 server with real stores and the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jupyter_mv import api, cli
from jupyter_mv.errors import MVError, UsageError
from jupyter_mv.store import Store

JMV = [sys.executable, "-m", "jupyter_mv.cli"]


def _snap(st: Store, ns: dict, nb: str = "nb.ipynb"):
    api.set_session(api.Session(namespace=ns))
    api.session().told_notebook = str(st.root.parent / nb)
    return api.take_snapshot([], store=st).version


@pytest.fixture
def alice(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_AUTHOR", "alice@laptop")
    st = Store(tmp_path / "alice" / ".jupyter_mv")
    yield st
    st.close()


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- a file:// remote whose folder is missing: a typo, or a drive that is not mounted ------------------

def test_missing_folder_is_an_error_not_a_new_empty_remote(tmp_path, alice, capsys):
    _snap(alice, {"x": np.arange(5)})
    (tmp_path / "team").mkdir()
    # `remote add` / push to a path whose parent is missing: refused, nothing created on the local disk
    deep = tmp_path / "mnt" / "usb" / "team"
    code, out, err = _run(capsys, "--store", alice.root, "remote", "add", "usb", deep.as_uri())
    assert code != 0 and err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "mnt").exists()
    with pytest.raises(MVError, match="does not exist"):
        api.push(store=alice, remote=deep.as_uri())
    assert not (tmp_path / "mnt").exists()
    # a registered remote whose folder went away (unmounted, renamed): ls / pull / gc fail in one line
    # instead of reading a fresh empty folder as "0 versions" / "nothing new"
    gone = tmp_path / "team"
    assert _run(capsys, "--store", alice.root, "remote", "add", "team", gone.as_uri())[0] == 0
    assert _run(capsys, "--store", alice.root, "push")[0] == 0
    gone.rename(tmp_path / "team-unmounted")
    for argv in (["remote", "ls"], ["pull"], ["remote", "gc", "--dry-run"]):
        code, out, err = _run(capsys, "--store", alice.root, *argv)
        assert code != 0, argv
        assert "does not exist" in err and err.count("\n") == 1 and "nothing new" not in out, (argv, out, err)
        assert not gone.exists(), argv  # not re-created empty
    with pytest.raises(UsageError, match="does not exist"):
        api.remote_ls(store=alice)
    # a new folder in an existing one is still created by `remote add` (a new team remote)
    code, out, err = _run(capsys, "--store", alice.root, "remote", "add", "fresh", (tmp_path / "fresh").as_uri())
    assert code == 0 and (tmp_path / "fresh").is_dir(), err


# -- many versions: a second push says so in a line, not one per version ------------------------------

def test_second_push_of_many_versions_is_one_line(tmp_path, alice, capsys):
    for i in range(40):
        _snap(alice, {"x": np.arange(20.0) + i})
    _snap(alice, {"y": 1}, "other.ipynb")
    remote = tmp_path / "team"
    remote.mkdir()
    assert _run(capsys, "--store", alice.root, "remote", "add", "team", remote)[0] == 0
    code, out, err = _run(capsys, "--store", alice.root, "push", "--all")
    assert code == 0 and out.count("pushed ") == 41
    code, out, err = _run(capsys, "--store", alice.root, "push", "--all")
    lines = out.splitlines()
    assert code == 0 and "pushed" not in out
    assert f"nb.ipynb: 40 versions (v1 … v40) are already on {remote.as_uri()}" in lines, out
    assert any(line.startswith("other.ipynb v1 (") and "is already on" in line for line in lines), out
    assert len(lines) == 2, out
