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


# -- Ctrl-C during a real `jupyter-mv push` / `pull` -------------------------------------------------

class _Gate:
    """A WSGI filter in front of moto: requests for keys holding `part` (with `method`) are held
    `delay` seconds, and `seen` is set at the first one, so the test interrupts mid-transfer without
    guessing at timings."""

    def __init__(self):
        import threading
        self.method, self.part, self.delay = "", "\0", 0.0
        self.seen = threading.Event()

    def arm(self, method: str, part: str, delay: float = 0.4):
        self.seen.clear()
        self.method, self.part, self.delay = method, part, delay

    def __call__(self, app):
        def filtered(environ, start_response):
            if environ["REQUEST_METHOD"] == self.method and self.part in environ.get("PATH_INFO", ""):
                self.seen.set()
                time.sleep(self.delay)
            return app(environ, start_response)
        return filtered


@pytest.fixture(scope="module")
def gated_s3():
    from remote_servers import S3Server, _WsgiServer

    gate = _Gate()
    srv = _WsgiServer(gate)
    try:
        yield S3Server("gated", f"http://127.0.0.1:{srv.port}"), gate
    finally:
        srv.stop()


def _interrupt(argv, env, gate) -> tuple[int, str, str]:
    p = subprocess.Popen(JMV + [str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    assert gate.seen.wait(30), "the transfer never started"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err


def test_ctrl_c_during_push_and_pull(tmp_path, alice, gated_s3):
    s3, gate = gated_s3
    env = dict(os.environ, **s3.env, JUPYTER_MV_AUTHOR="alice@laptop")
    rng = np.random.default_rng(2)
    mine = [_snap(alice, {"big": rng.standard_normal(70_000), "i": i}) for i in range(5)]
    url = s3.bucket("team")
    subprocess.run(JMV + ["--store", str(alice.root), "remote", "add", "team", url], env=env, check=True,
                   capture_output=True)
    bucket = url.split("/")[2]

    def manifests():
        listed = s3.client().list_objects_v2(Bucket=bucket, Prefix="team/versions/").get("Contents", [])
        return {Path(o["Key"]).stem for o in listed}

    gate.arm("PUT", "/chunks/")
    code, out, err = _interrupt(["--store", alice.root, "push"], env, gate)
    assert code == 130 and err == "interrupted\n", (code, out, err)
    assert len(manifests()) < 5  # interrupted for real, and what is there is whole:
    gate.arm("", "\0")
    p = subprocess.run(JMV + ["--store", str(alice.root), "push"], env=env, capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert manifests() == {v.gid for v in mine}
    pushed_again = p.stdout.count("pushed ")
    assert pushed_again == 5 - len([line for line in p.stdout.splitlines() if "is already on" in line])
    # Ctrl-C during a pull: the store keeps only whole versions, and a retry brings the rest
    bob = tmp_path / "bob" / ".jupyter_mv"
    subprocess.run(JMV + ["--store", str(bob), "remote", "add", "team", url], env=env, check=True,
                   capture_output=True)
    gate.arm("GET", "/chunks/", delay=0.5)
    code, out, err = _interrupt(["--store", bob, "pull"], env, gate)
    gate.arm("", "\0")
    assert code == 130 and err == "interrupted\n", (code, out, err)
    p = subprocess.run(JMV + ["--store", str(bob), "verify"], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    with Store(bob) as st:
        before = {v.gid for v in st.versions()}
    assert len(before) < 5
    p = subprocess.run(JMV + ["--store", str(bob), "pull"], env=env, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.count("pulled ") == 5 - len(before), p.stdout + p.stderr
    with Store(bob) as st:
        assert {v.gid for v in st.versions()} == {v.gid for v in mine}


# -- credentials in remote URLs: refused, never stored, never shown -----------------------------------

@pytest.mark.parametrize("url, secret", [
    ("https://ghp_R4nd0mT0kenR4nd0mT0ken0123456789@git.example.com/team", "ghp_R4nd0mT0ken"),  # token as user
    ("http://glpat-abcdefghij0123456789@host.example/remote", "glpat-abcdef"),
    ("webdav+https://TOKEN0123456789abcdef@dav.example.com/x", "TOKEN0123456789"),
    ("https://host.example/remote#access_token=SECRETFRAGMENT99", "SECRETFRAGMENT99"),  # in the fragment
    ("s3://AKIAEXAMPLEKEY:wJalr/XUtnFEMI@bucket/team", "wJalr"),
    ("sftp://me:hunter2hunter2@host.example/data", "hunter2hunter2"),
])
def test_credentials_in_a_remote_url_are_refused_and_never_shown(tmp_path, alice, capsys, url, secret):
    for argv in (["remote", "add", "team", url], ["push", "--remote", url], ["remote", "ls", "--remote", url]):
        code, out, err = _run(capsys, "--store", alice.root, *argv)
        assert code != 0 and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert secret not in out + err, (argv, err)
    with pytest.raises(UsageError) as e:
        api.remote_add("team", url, store=alice)
    assert secret not in str(e.value)
    assert api.remotes(store=alice) == []
    assert secret.encode() not in (alice.root / "store.db").read_bytes()


def test_login_names_and_azure_containers_stay(alice):
    from jupyter_mv.remotes import registry
    from jupyter_mv.remotes.objects import redact_url

    assert registry.normalize_url("sftp://me@host.example/data") == "sftp://me@host.example/data"
    adls = "abfss://models@myacct.dfs.core.windows.net/team"
    assert registry.normalize_url(adls) == adls and redact_url(adls) == adls
    # in messages (errors from fsspec/obstore quote the URL): a token-shaped user becomes ***
    assert redact_url("GET https://ghp_tok@h.example/x failed") == "GET https://***@h.example/x failed"
    assert redact_url("see https://h.example/x#sig=abc now") == "see https://h.example/x now"


# -- removing the default remote: where the next push goes is said, never silently another place ---------

def test_removing_the_default_remote_says_where_push_goes_now(tmp_path, alice, capsys):
    _snap(alice, {"x": 1})
    for name in ("team", "backup", "public"):
        (tmp_path / name).mkdir()
        assert _run(capsys, "--store", alice.root, "remote", "add", name, tmp_path / name)[0] == 0
    # adding the same name and URL twice changes nothing (still the default)
    assert _run(capsys, "--store", alice.root, "remote", "add", "team", tmp_path / "team")[0] == 0
    assert [r.name for r in api.remotes(store=alice) if r.default] == ["team"]
    code, out, err = _run(capsys, "--store", alice.root, "remote", "remove", "team")
    assert code == 0 and "no default remote now" in out and "backup, public" in out, out
    code, out, err = _run(capsys, "--store", alice.root, "push")  # not to backup nor public, unasked
    assert code != 0 and "none is the default" in err and err.count("\n") == 1, err
    assert not any((tmp_path / n / "versions").exists() for n in ("backup", "public"))
    code, out, err = _run(capsys, "--store", alice.root, "remote", "remove", "public")
    assert code == 0 and "the only remote left" not in out  # public was not the default
    assert _run(capsys, "--store", alice.root, "remote", "add", "public", tmp_path / "public", "--default")[0] == 0
    code, out, err = _run(capsys, "--store", alice.root, "remote", "remove", "public")
    assert code == 0 and f"push and pull now use backup ({(tmp_path / 'backup').as_uri()})" in out, out


# -- a store given where a remote goes (`git clone ../repo` habits) -----------------------------------

def test_a_store_folder_is_not_a_remote(tmp_path, alice, capsys):
    _snap(alice, {"x": 1})
    project = alice.root.parent
    for src in (alice.root, project):
        code, out, err = _run(capsys, "clone", src, tmp_path / "bob")
        assert code != 0 and "jupyter_mv store" in err and "push" in err and err.count("\n") == 1, err
        assert not (tmp_path / "bob").exists()  # no empty store left behind, no origin recorded
    with Store(tmp_path / "carol" / ".jupyter_mv") as carol:
        _snap(carol, {"y": 2})
        for src in (alice.root, project):
            for argv in (["remote", "add", "alice", src], ["pull", "--remote", src.as_uri()],
                         ["push", "--remote", src.as_uri()]):
                code, out, err = _run(capsys, "--store", carol.root, *argv)
                assert code != 0 and "jupyter_mv store" in err, (argv, out, err)
        assert api.remotes(store=carol) == []
    assert sorted(p.name for p in project.iterdir()) == [".jupyter_mv"]  # nothing written into alice's folder


def test_a_bucket_gone_after_remote_add_is_one_line_without_retry_advice(alice, gated_s3, monkeypatch, capsys):
    s3, gate = gated_s3
    gate.arm("", "\0")
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    _snap(alice, {"x": np.arange(3)})
    _snap(alice, {"x": np.arange(4)})
    url = s3.bucket("team")
    api.remote_add("team", url, store=alice)
    s3.client().delete_bucket(Bucket=url.split("/")[2])
    for argv in (["push"], ["pull"], ["remote", "ls"]):
        code, out, err = _run(capsys, "--store", alice.root, *argv)
        assert code != 0 and err.count("\n") == 1 and "bucket does not exist" in err, (argv, err)
        assert "again" not in err and s3.secret not in err, (argv, err)  # retrying alone will not help


def test_ctrl_c_just_after_a_clone_finishes_is_no_traceback(tmp_path, alice):
    _snap(alice, {"x": np.arange(5)})
    remote = tmp_path / "team"
    api.remote_add("team", remote.as_uri(), store=alice)
    api.push(store=alice)
    answers = []
    for k in range(3):
        p = subprocess.Popen(JMV + ["clone", str(remote), str(tmp_path / f"c{k}")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        for line in p.stdout:  # the clone is done: Ctrl-C lands in the interpreter's shutdown
            if line.startswith("cloned into"):
                break
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        answers.append((p.returncode, err))
        with Store(tmp_path / f"c{k}" / ".jupyter_mv") as st:  # the clone stands either way
            assert [v.gid for v in st.versions()] == [v.gid for v in alice.versions()]
    assert all(a in ((0, ""), (130, "interrupted\n")) for a in answers), answers
