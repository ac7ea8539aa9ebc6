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


# -- the network goes away partway through a push or a pull, then comes back --------------------------

def _cut_after(monkeypatch, method: str, n: int, key_part: str):
    """The file:// remote's `method` (put / get) fails like a dropped connection after `n` calls on
    keys holding `key_part`; returns a switch that brings the network back."""
    from jupyter_mv.errors import RemoteError
    from jupyter_mv.remotes import objects

    real = getattr(objects._LocalRemote, method)
    state = {"calls": 0, "down": True}

    def flaky(self, key, *a, **kw):
        if state["down"] and key_part in key:
            state["calls"] += 1
            if state["calls"] > n:
                raise RemoteError(f"{method.upper()} {self.url}/{key} failed: connection reset by peer")
        return real(self, key, *a, **kw)

    monkeypatch.setattr(objects._LocalRemote, method, flaky)
    return state


def test_network_drop_mid_push_and_pull_then_retry(tmp_path, alice, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    mine = [_snap(alice, {"big": rng.standard_normal(70_000), "i": i}) for i in range(4)]  # a chunk each
    remote = tmp_path / "team"
    api.remote_add("team", remote.as_uri(), store=alice)
    net = _cut_after(monkeypatch, "put", 2, "chunks/")  # the third version's chunk never arrives
    with pytest.raises(MVError) as e:
        api.push(store=alice)
    msg = str(e.value)
    assert "\n" not in msg and "connection reset" in msg
    assert "pushed 2 of 4 versions before it stopped" in msg and "pushing again sends only what is missing" in msg
    # nothing half-visible: only whole versions' manifests are there, and another store sees exactly them
    on_remote = {p.stem for p in (remote / "versions").glob("*.json")}
    assert on_remote == {v.gid for v in mine[:2]}
    bob = Store(tmp_path / "bob" / ".jupyter_mv")
    try:
        api.remote_add("team", remote.as_uri(), store=bob)
        assert [d["gid"] for d in api.remote_ls(store=bob)] == [v.gid for v in mine[:2]]
        net["down"] = False
        result = api.push(store=alice)  # the retry sends only the two missing versions' objects
        assert [v.gid for v in result.pushed] == [v.gid for v in mine[2:]]
        assert result.objects_sent == 2 * 2 + 2  # a chunk and a manifest each, the 2 notebooks' files
        # the pull is cut after two chunks: two versions imported whole, the others not at all
        net = _cut_after(monkeypatch, "get", 2, "chunks/")
        with pytest.raises(MVError, match=r"pulled 2 of 4 versions before it stopped; pulling again fetches "
                                          r"only what is missing"):
            api.pull(store=bob)
        assert {v.gid for v in bob.versions()} == {v.gid for v in mine[:2]}
        net["down"] = False
        code, out, err = _run(capsys, "--store", bob.root, "pull")
        assert code == 0 and out.count("pulled ") == 2 and err == "", (out, err)
        code, out, err = _run(capsys, "--store", bob.root, "verify")
        assert code == 0, out + err
        assert {v.gid for v in bob.versions()} == {v.gid for v in mine}
    finally:
        bob.close()
