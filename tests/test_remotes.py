"""Remotes (issue 14): push, pull, clone, remote ls against a file:// remote and an S3 server (moto),
with real stores and a real IPython shell. The remote's layout: jupyter_mv/remotes/layout.py."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest

from jupyter_mv import api
from jupyter_mv.errors import CredentialsWithheld, RemoteConflict, RemoteCorrupt, Untrusted, UsageError
from jupyter_mv.remotes import layout, registry
from jupyter_mv.remotes import push as push_mod
from jupyter_mv.remotes.objects import open_remote
from jupyter_mv.store import Store
from jupyter_mv.store.migrations import MIGRATIONS
from remote_servers import azurite, moto_s3, noconditional_s3  # noqa: F401 - fixtures

FIXTURES = Path(__file__).parent / "fixtures"


class Box:  # a notebook-defined class: restoring it unpickles
    def __init__(self, v):
        self.v = v


def _snap(st: Store, ns: dict, nb: str = "nb.ipynb", **kw):
    """A version of notebook `nb` holding `ns`, through the API (no kernel)."""
    api.set_session(api.Session(namespace=ns))
    api.session().told_notebook = str(st.root.parent / nb)
    return api.take_snapshot([], store=st, **kw).version


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def remote_dir(tmp_path) -> Path:
    return tmp_path / "remote"


@pytest.fixture
def url(remote_dir) -> str:
    return remote_dir.as_uri()


@pytest.fixture
def alice(tmp_path, url, monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_AUTHOR", "alice@laptop")
    st = Store(tmp_path / "alice" / ".jupyter_mv")
    api.remote_add("team", url, store=st)
    yield st
    st.close()


@pytest.fixture
def bob(tmp_path, url):
    st = Store(tmp_path / "bob" / ".jupyter_mv")
    api.remote_add("team", url, store=st)
    yield st
    st.close()


def _data():
    rng = np.random.default_rng(0)
    return {
        "big": rng.standard_normal(1_500_000),  # 12 MB: several large chunks, incompressible
        "zeros": np.zeros((300, 300), dtype=np.float32),
        "arrays": {f"a{i}": np.arange(400.0) * i for i in range(300)},  # many small chunks: packs
        "cfg": {"lr": 0.1, "layers": [64, 32], "name": "run"},
    }


# -- round trip ------------------------------------------------------------------------------------
def test_push_clone_restores_bit_identically_in_a_fresh_store(alice, tmp_path, url):
    data = _data()
    v1 = _snap(alice, dict(data), message="first", tags=["best"], metrics={"acc": 0.9})
    result = api.push(store=alice)
    assert [v.gid for v in result.pushed] == [v1.gid] and result.bytes_sent > 12_000_000
    got = api.clone(url, tmp_path / "fresh")
    assert [v.gid for v in got.pulled] == [v1.gid]
    with Store(tmp_path / "fresh" / ".jupyter_mv") as st:
        (v,) = st.versions()
        assert (v.gid, v.n, v.notebook, v.message, v.tags, v.metrics) == (v1.gid, 1, "nb.ipynb", "first",
                                                                        ("best",), {"acc": 0.9})
        assert v.origin == url and st.is_imported(v) and v.author == "alice@laptop"
        for name in data:
            back = api.load(v, name, store=st, trust=name == "arrays")  # a dict of arrays is pickled
            if isinstance(data[name], np.ndarray):
                assert back.dtype == data[name].dtype and back.tobytes() == data[name].tobytes()
            elif name == "arrays":
                assert all(back[k].tobytes() == data[name][k].tobytes() for k in data[name])
            else:
                assert back == data[name]
        assert st.verify() == []
        # the clone remembers the remote as its default
        assert [(r.name, r.url, r.default) for r in api.remotes(store=st)] == [("origin", url, True)]


def test_pushing_again_sends_nothing_and_a_new_version_only_its_new_chunks(alice, remote_dir):
    data = _data()
    _snap(alice, dict(data))
    first = api.push(store=alice)
    assert first.objects_sent > 3
    before = _files(remote_dir)
    again = api.push(store=alice)
    assert again.pushed == [] and len(again.already) == 1 and again.bytes_sent == 0
    # nothing but lease objects came and went
    assert {k: v for k, v in _files(remote_dir).items() if not k.startswith("leases/")} == \
        {k: v for k, v in before.items() if not k.startswith("leases/")}
    data["cfg"] = {"lr": 0.2}
    data["arrays"]["a7"] = data["arrays"]["a7"] + 1
    _snap(alice, data)
    third = api.push(store=alice)
    assert len(third.pushed) == 1 and len(third.already) == 1
    assert third.bytes_sent < 50_000  # one small pack (a7's chunk), the notebook files: not the 12 MB again
    # a pack index whose pack is gone (a gc cut off between its two deletes) is not referenced
    for idx in remote_dir.glob("packs/*.idx"):
        idx.unlink()  # (and the chunks only it indexed count as absent: sent again)
    stale = layout.pack_key("0" * 64)
    (remote_dir / layout.index_key(stale)).write_text(json.dumps(
        {"format": layout.PACK_INDEX, "pack": stale, "entries": [[bid, 8, 100] for bid in alice.blobs.locate(
            [r[0] for r in alice.db.conn.execute("select blob_id from packed")])]}))
    data["cfg"] = {"lr": 0.3}
    _snap(alice, data)
    fourth = api.push(store=alice)
    assert fourth.bytes_sent < 400_000  # the small chunks again (their index is gone), not the 12 MB
    doc = json.loads((remote_dir / layout.version_key(fourth.pushed[0].gid)).read_text())
    assert stale not in doc["objects"] and all((remote_dir / k).is_file() for k in doc["objects"])


def test_interrupted_push_leaves_no_manifest_and_the_retry_completes(alice, tmp_path, url, monkeypatch):
    data = _data()
    _snap(alice, data)
    calls = {"n": 0}
    real_put = type(open_remote(url)).put

    def flaky(self, key, data, **kw):
        if not key.startswith("leases/"):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("connection reset (simulated)")
        return real_put(self, key, data, **kw)

    monkeypatch.setattr(type(open_remote(url)), "put", flaky)
    with pytest.raises(OSError):
        api.push(store=alice)
    remote = open_remote(url)
    assert not list(remote.list("versions/"))  # no version manifest: nothing half-pushed is visible
    assert list(remote.list("chunks/"))  # some data made it
    monkeypatch.setattr(type(remote), "put", real_put)
    retry = api.push(store=alice)
    assert len(retry.pushed) == 1
    assert 0 < retry.bytes_sent < sum(x.nbytes for x in [alice.versions()[0]])  # only the rest
    with Store(tmp_path / "c" / ".jupyter_mv") as c:
        api.remote_add("team", url, store=c)
        api.pull(store=c)
        (v,) = c.versions()
        assert api.load(v, "big", store=c).tobytes() == data["big"].tobytes()


def test_two_peoples_v3_are_two_versions(alice, bob, tmp_path, url, monkeypatch):
    for i in range(3):
        _snap(alice, {"x": np.arange(10.0) + i}, message=f"alice {i}")
    monkeypatch.setenv("JUPYTER_MV_AUTHOR", "bob@desk")
    for i in range(3):
        _snap(bob, {"x": np.arange(10.0) - i}, message=f"bob {i}")
    api.push(store=bob, all=True)
    monkeypatch.setenv("JUPYTER_MV_AUTHOR", "alice@laptop")
    api.push(store=alice, all=True)
    a3, b3 = alice.versions()[2], bob.versions()[2]
    assert a3.label == b3.label == "v3" and a3.gid != b3.gid
    ls = api.remote_ls(store=alice)
    assert len(ls) == 6 and {d["author"] for d in ls} == {"alice@laptop", "bob@desk"}
    assert sorted(d["here"] for d in ls if d["author"] == "alice@laptop") == ["v1", "v2", "v3"]
    # alice pulls bob's three: v4..v6 of the same notebook, his author and the remote as origin
    got = api.pull(store=alice)
    assert len(got.pulled) == 3 and len(got.already) == 3
    vs = alice.versions("nb.ipynb")
    assert [v.label for v in vs] == ["v1", "v2", "v3", "v4", "v5", "v6"]
    theirs = [v for v in vs if v.author == "bob@desk"]
    assert [v.message for v in theirs] == ["bob 0", "bob 1", "bob 2"]
    assert {v.origin for v in theirs} == {url} and all(alice.is_imported(v) for v in theirs)
    assert api.load(theirs[2], "x", store=alice).tobytes() == (np.arange(10.0) - 2).tobytes()
    assert theirs[2].parent == theirs[1].n  # the parent came along: bob's v2 is alice's v5
    # a fourth store sees six distinct versions; "v3" alone is ambiguous there
    with Store(tmp_path / "d" / ".jupyter_mv") as d:
        api.remote_add("team", url, store=d)
        with pytest.raises(UsageError, match="names 2 versions"):
            api.pull("v3", store=d)
        api.pull(b3.gid[:8], store=d)
        (only,) = d.versions()
        assert only.gid == b3.gid and only.label == "v1"
        assert len(api.pull(store=d).pulled) == 5
    assert api.pull(store=alice).pulled == []  # nothing new


# -- trust -------------------------------------------------------------------------------------------
def test_pulled_version_is_untrusted_until_the_user_says_so(alice, bob):
    _snap(alice, {"box": Box(3), "arr": np.arange(5)})
    api.push(store=alice)
    api.pull(store=bob)
    (v,) = bob.versions()
    assert bob.is_imported(v)
    assert api.load(v, "arr", store=bob).tolist() == [0, 1, 2, 3, 4]  # safe codec: no trust needed
    with pytest.raises(Untrusted, match=f"v1 was pulled from {v.origin}: restoring box would unpickle"):
        api.load(v, "box", store=bob)
    assert api.load(v, "box", store=bob, trust=True).v == 3


def test_sklearn_model_travels_as_skops_and_restores_without_trust(alice, bob):
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(1).standard_normal((60, 3))
    clf = LogisticRegression().fit(X, X[:, 0] > 0)
    _snap(alice, {"clf": clf})
    api.push(store=alice)
    api.pull(store=bob)
    (v,) = bob.versions()
    (ref,) = bob.variables(v)
    assert ref.codec == "sklearn.skops"
    back = api.load(v, "clf", store=bob)  # after skops' audit, no --trust
    assert back.coef_.tobytes() == clf.coef_.tobytes()


# -- damage ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("what", ["chunk", "pack", "missing"])
def test_corrupted_object_is_named_and_nothing_of_the_version_is_imported(alice, bob, remote_dir, what):
    data = _data()
    good = _snap(alice, {"other": np.arange(3.0)}, nb="other.ipynb")
    v = _snap(alice, data)
    api.push(store=alice, all=True)
    if what == "pack":
        target = next(remote_dir.glob("packs/*.pack"))
    else:
        target = next(remote_dir.glob("chunks/*/*"))
    if what == "missing":
        target.unlink()
    else:
        raw = bytearray(target.read_bytes())
        raw[len(raw) // 2] ^= 0x40
        target.write_bytes(bytes(raw))
    key = str(target.relative_to(remote_dir))
    with pytest.raises(RemoteCorrupt) as e:
        api.pull(store=bob)
    msg = str(e.value)
    assert v.gid in msg and key in msg and "nothing of it was imported" in msg and "1 other version pulled" in msg
    assert "missing" in msg if what == "missing" else "damaged" in msg
    assert [x.gid for x in bob.versions()] == [good.gid]  # the intact one is there, the damaged one not at all
    # nothing of the refused version stayed behind
    assert not any(Path(bob.root / "blobs").rglob("*-*")) if (bob.root / "blobs").exists() else True
    assert bob.db.conn.execute("select count(*) from packed").fetchone()[0] <= 1


def test_tampered_manifest_is_refused_by_the_bundle_checks(alice, bob, remote_dir):
    v = _snap(alice, {"arr": np.arange(4000.0)})
    api.push(store=alice)
    path = remote_dir / layout.version_key(v.gid)
    doc = json.loads(path.read_text())
    doc["bundle"]["variables"][0]["manifest"]["meta"]["descr"] = "|O"  # an object array would unpickle
    path.write_text(json.dumps(doc))
    with pytest.raises(RemoteCorrupt, match=f"refused version {v.gid} .*object dtype"):
        api.pull(store=bob)
    assert bob.versions() == []
    ls = api.remote_ls(store=bob)
    assert len(ls) == 1 and "object dtype" in ls[0]["problem"]


# -- credentials -------------------------------------------------------------------------------------
def test_credentials_are_withheld_on_push(alice, bob, remote_dir):
    secret = "sk-proj-" + "Zq8" * 16
    cfg = {"api_key": secret, "model": "gpt"}
    api.set_session(api.Session(namespace={"cfg": cfg, "arr": np.arange(10)}))
    api.session().told_notebook = str(alice.root.parent / "nb.ipynb")
    api.take_snapshot(["cfg", "arr"], store=alice)
    with pytest.warns(CredentialsWithheld, match="variable cfg"):
        api.push(store=alice)
    assert not any(secret.encode() in b for b in _files(remote_dir).values())
    api.pull(store=bob)
    (v,) = bob.versions()
    assert v.variables == ("arr",)
    # on purpose: shipped, and the receiving store marks it
    other = remote_dir.parent / "remote2"
    api.remote_add("private", other.as_uri(), store=alice)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CredentialsWithheld)
        api.push(store=alice, remote="private", include_secrets=True)
    with Store(remote_dir.parent / "c" / ".jupyter_mv") as c:
        api.remote_add("private", other.as_uri(), store=c)
        api.pull(store=c)
        (w,) = c.versions()
        assert w.variables == ("arr", "cfg") and api.load(w, "cfg", store=c) == cfg
        assert {x.name: x.credential for x in c.variables(w)}["cfg"] != ()


def test_urls_with_credentials_are_refused_and_never_shown(store, tmp_path):
    with pytest.raises(UsageError, match="credentials are never stored") as e:
        api.remote_add("x", "s3://AKIAXX:verysecret@bucket/p", store=store)
    assert "verysecret" not in str(e.value)
    with pytest.raises(UsageError) as e:
        api.remote_add("x", "s3://bucket/p?X-Amz-Signature=deadbeef", store=store)
    assert "deadbeef" not in str(e.value)
    with pytest.raises(UsageError, match="no remote yet"):
        api.push(store=store)
    with pytest.raises(UsageError, match="bad remote name"):
        api.remote_add("a b", (tmp_path / "r").as_uri(), store=store)
    r = api.remote_add("local", str(tmp_path / "plain-path"), store=store)
    assert r.url == (tmp_path / "plain-path").as_uri() and r.default and r.conditional is True
    assert store.db.conn.execute("select url from remotes").fetchall() == [(r.url,)]


# -- tags --------------------------------------------------------------------------------------------
def test_remote_tags_move_only_with_conditional_writes(alice, bob, url):
    a1 = _snap(alice, {"x": np.arange(3)}, tags=["best"])
    api.push(store=alice)
    b1 = _snap(bob, {"x": np.arange(4)}, tags=["best"])
    res = api.push(store=bob)  # bob has not seen alice's version: the team's tag stays on it
    assert any("not moved" in n for n in res.notes)
    remote = open_remote(url)
    assert json.loads(remote.get(layout.tag_key("nb.ipynb", "best")))["gid"] == a1.gid
    api.pull(store=bob)
    bob.tag(b1, "best")
    b2 = _snap(bob, {"x": np.arange(5)}, tags=["best"])
    api.push(store=bob)  # now he has: moved (If-Match on the tag's ETag)
    assert json.loads(remote.get(layout.tag_key("nb.ipynb", "best")))["gid"] == b2.gid
    # a race lost between reading the tag and moving it: one line, never a silent overwrite
    b3 = _snap(bob, {"x": np.arange(6)}, tags=["best"])
    real_get = type(remote).get

    def sneaky(self, key):
        body = real_get(self, key)
        if key.startswith("tags/"):
            self.put(key, body.replace(b'"by"', b'"by" ', 1), mode="overwrite")  # someone moves it meanwhile
        return body

    res = push_mod.PushResult(url)
    type(remote).get = sneaky
    try:
        with pytest.raises(RemoteConflict, match="moved by someone else"):
            push_mod._push_tags(bob, b3, remote, True, res, "bob")
    finally:
        type(remote).get = real_get
    # a remote without conditional writes: no tag is written at all
    res = push_mod.PushResult(url)
    push_mod._push_tags(bob, b3, remote, False, res, "bob")
    assert "does not honour conditional writes" in res.notes[0]
    assert json.loads(remote.get(layout.tag_key("nb.ipynb", "best")))["gid"] != b3.gid


def _team_tag(url, tag="best"):
    return json.loads(open_remote(url).get(layout.tag_key("nb.ipynb", tag)))["gid"]


def test_a_local_tag_that_only_kept_its_place_never_takes_the_teams_over(alice, bob, url, run_cli):
    a1 = _snap(alice, {"x": np.arange(3)}, tags=["best"])
    api.push(notebook="nb.ipynb", store=alice)
    b1 = _snap(bob, {"x": np.arange(4)}, tags=["best"])  # bob's own "best", before seeing the team's
    pulled = api.pull(store=bob)
    assert any("best" in n and "not moved" in n for n in pulled.notes)  # the pull kept bob's tag
    res = api.push(notebook="nb.ipynb", store=bob)  # the If-Match ETag is the one bob saw: still refused
    assert [v.gid for v in res.pushed] == [b1.gid]  # the version goes up all the same
    assert _team_tag(url) == a1.gid
    [note] = [n for n in res.notes if "'best'" in n]
    assert "not moved" in note and "v1 (" in note and b1.label in note and "--force-tags" in note
    assert "\n" not in note
    # a second push (the version now already there) refuses it the same way, via the CLI too
    r = run_cli("--store", str(bob.root), "push", "--notebook", "nb.ipynb")
    assert r.returncode == 0 and "tag 'best' not moved" in r.stdout
    assert _team_tag(url) == a1.gid
    # not pulled: left, saying so
    a2 = _snap(alice, {"x": np.arange(7)}, tags=["best"])
    api.push(notebook="nb.ipynb", store=alice)
    assert _team_tag(url) == a2.gid
    res = api.push(notebook="nb.ipynb", store=bob, force_tags=False)
    assert _team_tag(url) == a2.gid and any("you have not pulled" in n for n in res.notes), res.lines()
    # alice moves the team's tag after bob's pull (back onto a1, which bob holds): bob re-tagging on
    # what he saw then is refused too, since the ETag he saw is not the one there now
    api.pull(store=bob)
    alice.tag(a1, "best")
    api.push(notebook="nb.ipynb", store=alice)
    assert _team_tag(url) == a1.gid
    bob.tag(b1, "best")
    res = api.push(notebook="nb.ipynb", store=bob)
    assert _team_tag(url) == a1.gid and any("since you last pulled" in n for n in res.notes)


def test_a_tag_moved_after_pulling_moves_on_push(alice, bob, url):
    a1 = _snap(alice, {"x": np.arange(3)}, tags=["best"])
    api.push(notebook="nb.ipynb", store=alice)
    b1 = _snap(bob, {"x": np.arange(4)}, tags=["best"])
    api.pull(store=bob)
    api.push(notebook="nb.ipynb", store=bob)
    assert _team_tag(url) == a1.gid
    bob.tag(b1, "best")  # deliberately, after seeing the team's position: b1 is already on the remote
    res = api.push(notebook="nb.ipynb", store=bob)
    assert _team_tag(url) == b1.gid and not any("not moved" in n for n in res.notes)
    # and back onto alice's version (pulled): a tag moved onto a pulled version moves too
    [a1_here] = [v for v in bob.versions() if v.gid == a1.gid]
    bob.tag(a1_here, "best")
    api.push(notebook="nb.ipynb", store=bob)
    assert _team_tag(url) == a1.gid
    # alice, who has not pulled since, does not take it back silently either
    a2 = _snap(alice, {"x": np.arange(5)}, tags=["best"])
    res = api.push(notebook="nb.ipynb", store=alice)
    assert [v.gid for v in res.pushed] == [a2.gid] and _team_tag(url) == a1.gid
    assert any("'best' not moved" in n for n in res.notes)


def test_force_tags_moves_the_teams_tag(alice, bob, url, run_cli):
    a1 = _snap(alice, {"x": np.arange(3)}, tags=["best"])
    api.push(notebook="nb.ipynb", store=alice)
    b1 = _snap(bob, {"x": np.arange(4)}, tags=["best"])
    api.push(notebook="nb.ipynb", store=bob)  # not pulled: not moved
    assert _team_tag(url) == a1.gid
    r = run_cli("--store", str(bob.root), "push", "--notebook", "nb.ipynb", "--force-tags")
    assert r.returncode == 0, r.stderr
    assert _team_tag(url) == b1.gid
    # the API's force_tags=, after alice re-took it
    api.pull(store=alice)
    [a1] = [v for v in alice.versions() if v.gid == a1.gid]
    alice.tag(a1, "best")
    res = api.push(notebook="nb.ipynb", store=alice)
    assert _team_tag(url) == a1.gid, res.lines()
    api.push(notebook="nb.ipynb", store=bob, force_tags=True)
    assert _team_tag(url) == b1.gid
    assert "--force-tags" in run_cli("push", "--help").stdout


def test_a_new_tag_is_created_on_push(alice, bob, url):
    a1 = _snap(alice, {"x": np.arange(3)}, tags=["best"])
    api.push(notebook="nb.ipynb", store=alice)
    api.pull(store=bob)
    b1 = _snap(bob, {"x": np.arange(4)}, tags=["candidate"])
    api.push(notebook="nb.ipynb", store=bob)
    assert _team_tag(url, "candidate") == b1.gid and _team_tag(url) == a1.gid
    [a1_here] = [v for v in bob.versions() if v.gid == a1.gid]
    bob.tag(a1_here, "reviewed")  # a new tag on a version already on the remote
    api.push(notebook="nb.ipynb", store=bob)
    assert _team_tag(url, "reviewed") == a1.gid


# -- identity ----------------------------------------------------------------------------------------
def test_migration_5_gives_every_version_a_global_id(tmp_path):
    root = tmp_path / "old"
    shutil.copytree(FIXTURES / "store-schema3", root)
    assert sqlite3.connect(root / "store.db").execute("pragma user_version").fetchone()[0] == 3
    with Store(root) as st:
        assert st.db.conn.execute("pragma user_version").fetchone()[0] == len(MIGRATIONS) >= 5
        vs = st.versions()
        assert len(vs) == 2 and len({v.gid for v in vs}) == 2
        assert all(layout.GID.fullmatch(v.gid) and v.author == "" for v in vs)
        assert st.version_by_gid(vs[0].gid) == vs[0]
        with pytest.raises(sqlite3.IntegrityError):  # unique
            st.db.conn.execute("update versions set gid = ? where id = ?", (vs[0].gid, vs[1].id))
        new = _snap(st, {"y": 1})
        assert layout.GID.fullmatch(new.gid) and new.gid not in {v.gid for v in vs}
        assert registry.remotes(st) == []


# -- S3 (moto; tests/remote_servers.py) -----------------------------------------------------------
@pytest.fixture
def s3_env(monkeypatch):
    def use(server):
        for k, v in server.env.items():
            monkeypatch.setenv(k, v)
        return server.bucket("projects/churn")
    return use


def test_s3_round_trip_and_second_push_sends_nothing(alice, tmp_path, moto_s3, s3_env):
    s3_url = s3_env(moto_s3)
    data = _data()
    v = _snap(alice, dict(data), tags=["best"])
    r = api.remote_add("s3", s3_url, default=True, store=alice)
    assert r.conditional is True  # moto honours If-None-Match / If-Match
    first = api.push(store=alice)
    assert len(first.pushed) == 1
    again = api.push(store=alice)
    assert again.bytes_sent == 0 and len(again.already) == 1
    got = api.clone(s3_url, tmp_path / "s3clone")
    assert [x.gid for x in got.pulled] == [v.gid]
    with Store(tmp_path / "s3clone" / ".jupyter_mv") as st:
        (w,) = st.versions()
        assert api.load(w, "big", store=st).tobytes() == data["big"].tobytes()
        assert api.remote_ls(store=st)[0]["remote_tags"] == ["best"]
    assert "testing" not in repr(api.remotes(store=alice))  # no credential in the registry


def test_s3_remote_ignoring_conditional_writes_gets_no_tags(alice, tmp_path, noconditional_s3, s3_env):
    s3_url = s3_env(noconditional_s3)
    _snap(alice, {"x": np.arange(3)}, tags=["best"])
    r = api.remote_add("weak", s3_url, default=True, store=alice)
    assert r.conditional is False
    res = api.push(store=alice)
    assert len(res.pushed) == 1 and any("does not honour conditional writes" in n for n in res.notes)
    assert not list(open_remote(s3_url).list("tags/"))
    with Store(tmp_path / "c" / ".jupyter_mv") as c:  # the data itself is fine
        api.remote_add("weak", s3_url, store=c)
        api.pull(store=c)
        assert api.load(c.versions()[0], "x", store=c).tolist() == [0, 1, 2]


# -- Azure Blob (Azurite; tests/remote_servers.py) ------------------------------------------------------
def test_azure_push_clone_restore_and_a_tag_moved_after_pulling(alice, bob, tmp_path, azurite, monkeypatch):
    """az:// configured only by the standard AZURE_STORAGE_* variables (an http:// endpoint: allowed as
    given). Azure lists ETags unquoted and returns them quoted from HEAD: a tag's ETag recorded by a
    pull must still be the one its move sends as If-Match, or the tag never moves after a pull."""
    for k in [k for k in os.environ if k.startswith("AZURE")]:
        monkeypatch.delenv(k)
    for k, v in azurite.env.items():
        monkeypatch.setenv(k, v)
    az_url = azurite.container("projects/churn")
    data = _data()
    a1 = _snap(alice, dict(data), tags=["best"], metrics={"acc": 0.9})
    r = api.remote_add("az", az_url, default=True, store=alice)
    assert r.conditional is True  # Azurite honours If-None-Match: * and If-Match
    assert [v.gid for v in api.push(store=alice).pushed] == [a1.gid]
    assert api.push(store=alice).bytes_sent == 0
    got = api.clone(az_url, tmp_path / "azclone")
    assert [v.gid for v in got.pulled] == [a1.gid]
    with Store(tmp_path / "azclone" / ".jupyter_mv") as st:
        (v,) = st.versions()
        assert (v.tags, v.metrics, v.origin) == (("best",), {"acc": 0.9}, az_url)
        assert api.load(v, "big", store=st).tobytes() == data["big"].tobytes()
        assert api.load(v, "cfg", store=st) == data["cfg"]
        assert api.load(v, "zeros", store=st).tobytes() == data["zeros"].tobytes()
        assert st.verify() == []
    # bob pulls the team's tag, then deliberately tags his own version: his push moves it (If-Match)
    api.remote_add("az", az_url, default=True, store=bob)
    b1 = _snap(bob, {"x": np.arange(4)})
    api.pull(store=bob)
    bob.tag(b1, "best")
    res = api.push(store=bob)
    assert _team_tag(az_url) == b1.gid and not any("not moved" in n for n in res.notes), res.lines()
    # alice has not pulled since: her new "best" does not take it back
    a2 = _snap(alice, {"x": np.arange(5)}, tags=["best"])
    res = api.push(store=alice)
    assert [v.gid for v in res.pushed] == [a2.gid] and _team_tag(az_url) == b1.gid
    assert any("'best'" in n and "you have not pulled" in n for n in res.notes), res.lines()
    assert azurite.key not in repr(api.remotes(store=alice)) + "\n".join(res.lines())


# -- magics ------------------------------------------------------------------------------------------
def test_magics_push_and_pull_in_a_real_shell(shell, run, tmp_path, capsys):
    run("import numpy as np\nw = np.arange(1000.0)")
    run("%mv_snapshot w -t best")
    here = api.session().store()
    remote = (tmp_path / "remote").as_uri()
    api.remote_add("team", remote, store=here)
    run("%mv_push")
    assert "pushed" in capsys.readouterr().out
    run("%mv_push --remote team")
    assert "is already on" in capsys.readouterr().out
    # a colleague's store (the same notebook) pushes its own v1
    with Store(tmp_path / "colleague" / ".jupyter_mv") as other:
        api.remote_add("team", remote, store=other)
        run("w = np.arange(5.0)")
        api.take_snapshot(["w"], store=other)
        api.push(store=other)
    run("w = None")
    run("%mv_pull")
    out = capsys.readouterr().out
    assert "pulled" in out and "v2" in out and "%mv_restore v2 w" in out
    run("%mv_restore v2 w")
    assert shell.user_ns["w"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    from IPython.core.error import UsageError as IPyUsageError

    with pytest.raises(IPyUsageError, match="no version 'nosuch'"):
        run("%mv_pull nosuch")
    with pytest.raises(IPyUsageError, match="no remote 'elsewhere'"):
        run("%mv_push --remote elsewhere")


# -- CLI ---------------------------------------------------------------------------------------------
def test_cli_remote_add_push_ls_clone_pull(alice, tmp_path, run_cli, monkeypatch):
    _snap(alice, {"arr": np.arange(10)}, message="baseline", tags=["best"])
    st = str(alice.root)
    remote = (tmp_path / "cli-remote").as_uri()
    r = run_cli("--store", st, "remote", "add", "cli", remote, "--default")
    assert r.returncode == 0 and "added remote cli" in r.stdout and "(default)" in r.stdout
    r = run_cli("--store", st, "remote")
    assert "cli  " + remote + "  (default)" in r.stdout and "team" in r.stdout
    r = run_cli("--store", st, "push", env={"JUPYTER_MV_AUTHOR": "alice@laptop"})
    assert r.returncode == 0 and "pushed nb.ipynb v1" in r.stdout, r.stderr
    r = run_cli("--store", st, "remote", "ls")
    assert "nb.ipynb  v1" in r.stdout and "by alice@laptop" in r.stdout and "[best]" in r.stdout and "here: v1" in r.stdout
    r = run_cli("--store", st, "remote", "ls", "--json")
    assert json.loads(r.stdout)[0]["author"] == "alice@laptop"
    r = run_cli("clone", remote, str(tmp_path / "cloned"))
    assert r.returncode == 0 and "pulled nb.ipynb v1" in r.stdout, r.stderr
    r = run_cli("--store", str(tmp_path / "cloned"), "log")
    assert "baseline" in r.stdout and "(by alice@laptop)" in r.stdout
    r = run_cli("--store", str(tmp_path / "cloned"), "show", "v1")
    assert f"from     {remote} (by alice@laptop)" in r.stdout and "  id       " in r.stdout
    r = run_cli("--store", str(tmp_path / "cloned"), "pull")
    assert "nothing new" in r.stdout
    r = run_cli("clone", remote, str(tmp_path / "cloned"))
    assert r.returncode == 1 and "already holds a store" in r.stderr
    r = run_cli("clone", remote + "-typo", str(tmp_path / "other"))
    assert r.returncode == 1 and "does not exist" in r.stderr and not (tmp_path / "cli-remote-typo").exists()
    r = run_cli("--store", st, "remote", "add", "bad", "s3://KEY:SECRETVALUE@bucket/x")
    assert r.returncode == 1 and "SECRETVALUE" not in r.stderr and "credentials are never stored" in r.stderr
    r = run_cli("--store", st, "pull", "nosuch")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no version 'nosuch'" in r.stderr
    r = run_cli("--store", st, "remote", "remove", "cli")
    assert r.returncode == 0 and not run_cli("--store", st, "remote").stdout.startswith("cli ")


def test_non_finite_metrics_and_params_travel_as_json_and_come_back(alice, bob, remote_dir):
    import math

    v = _snap(alice, {"x": np.arange(3)}, metrics={"loss": float("nan"), "best": float("inf")},
              params={"clip": float("-inf"), "lr": 0.1})
    api.push(store=alice)
    raw = (remote_dir / layout.version_key(v.gid)).read_text()
    json.loads(raw, parse_constant=lambda c: pytest.fail(f"bare {c} in the manifest"))  # RFC 8259
    api.pull(store=bob)
    (w,) = bob.versions()
    assert math.isnan(w.metrics["loss"]) and w.metrics["best"] == math.inf
    assert w.params["clip"] == -math.inf and w.params["lr"] == 0.1


def test_two_pulls_into_one_store_at_once_import_each_version_once(alice, tmp_path, url):
    import threading

    for i in range(3):
        _snap(alice, {"x": np.arange(1000.0) * i})
    api.push(store=alice)
    root = tmp_path / "shared" / ".jupyter_mv"
    with Store(root) as st:
        api.remote_add("team", url, store=st)
    errors = []

    def one():
        try:
            with Store(root) as st:
                api.pull(store=st)
        except Exception as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store(root) as st:
        assert sorted(v.gid for v in st.versions()) == sorted(v.gid for v in alice.versions())
        assert st.verify() == []


def test_a_failed_pull_never_removes_a_chunk_another_version_uses(alice, bob, remote_dir):
    """Two pulls (or a pull and an import) sharing a chunk: the one that wrote it fails, the other found
    it present, skipped it and committed. The failure's cleanup must keep it (Store.discard_chunks)."""
    big = np.random.default_rng(5).standard_normal(600_000)  # one large chunk file
    v = _snap(alice, {"big": big})
    api.push(store=alice)
    api.pull(store=bob)
    (w,) = bob.versions()
    used = [p.name for p in (bob.root / "blobs").rglob("*-*")]
    assert used
    stray = bob.blobs.path("0" * 32 + "-10")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"Mr" + bytes(16))
    bob.discard_chunks(used + [stray.name])  # as a failed pull that had written all of them would
    assert not stray.exists() and api.load(w, "big", store=bob).tobytes() == big.tobytes()
    assert bob.verify() == [] and v.gid == w.gid


# -- adversarial regressions ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    "s3://AKIAEXAMPLEKEYID:wJalr/XUtnFEMI+K7MDENG@bucket/p",  # an AWS secret holding '/': urlsplit ends
    "gs://ya29tokenvalue@bucket/p",                            # the netloc early and sees no password
    "az://accountkey@container/p",
    "sftp://user:pa/ss@host/x",
])
def test_urls_with_credentials_are_refused_whatever_the_secret_holds(store, bad):
    with pytest.raises(UsageError, match="credentials are never stored") as e:
        api.remote_add("x", bad, store=store)
    msg = str(e.value)
    for secret in ("AKIAEXAMPLEKEYID", "wJalr", "MDENG", "ya29tokenvalue", "accountkey", "pa/ss", "ss@"):
        assert secret not in msg
    assert registry.remotes(store) == []


def test_one_folder_is_one_remote_however_its_path_is_written(store, tmp_path, monkeypatch):
    (tmp_path / "r").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "r")
    monkeypatch.chdir(tmp_path / "sub")
    want = (tmp_path / "r").resolve().as_uri()
    for i, spelled in enumerate(["../r", "../r/", "./../sub/../r", str(tmp_path / "link"),
                                 (tmp_path / "sub" / ".." / "r").as_uri() + "/"]):
        assert api.remote_add(f"r{i}", spelled, store=store).url == want, spelled
    assert {u for (u,) in store.db.conn.execute("select url from remotes")} == {want}


def test_a_failed_clone_leaves_nothing_behind(tmp_path, run_cli):
    (tmp_path / "remote").mkdir()
    for url in ["htps://bucket/x", (tmp_path / "nope").as_uri()]:
        r = run_cli("clone", url, str(tmp_path / "new" / "deeper"))
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert not (tmp_path / "new").exists(), url
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    r = run_cli("clone", "htps://bucket/x", str(tmp_path / "mine"))
    assert r.returncode == 1 and sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    # DIR a file, below a file, empty: one line, not "internal error FileExistsError"
    good = (tmp_path / "remote").as_uri()
    for bad, said in [(tmp_path / "mine" / "notes.txt", "cannot clone into"),
                      (tmp_path / "mine" / "notes.txt" / "sub", "cannot clone into"), (" ", "needs a folder")]:
        r = run_cli("clone", good, str(bad))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and said in r.stderr, r.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_a_child_pulled_before_its_parent_gets_its_parent_when_it_arrives(alice, bob, url):
    a1 = _snap(alice, {"x": np.arange(3)}, message="one")
    a2 = _snap(alice, {"x": np.arange(4)}, message="two")
    a3 = _snap(alice, {"x": np.arange(5)}, message="three")
    assert (a2.parent, a3.parent) == (a1.n, a2.n)
    api.push(store=alice)
    api.pull(a3.gid, store=bob)
    (b3,) = bob.versions()
    assert b3.parent is None  # its parent is not here yet
    api.pull(a1.gid, store=bob)
    api.pull(store=bob)
    by_gid = {v.gid: v for v in bob.versions()}
    assert by_gid[a2.gid].parent == by_gid[a1.gid].n
    assert by_gid[a3.gid].parent == by_gid[a2.gid].n
    assert by_gid[a1.gid].parent is None
    again = api.pull(store=bob)  # idempotent: nothing new, no duplicates
    assert again.pulled == [] and len(bob.versions()) == 3


def test_push_and_pull_take_refs_one_by_one_or_as_one_list(alice, bob):
    a1 = _snap(alice, {"x": np.arange(3)}, tags=["first"])
    a2 = _snap(alice, {"x": np.arange(4)})
    _snap(alice, {"x": np.arange(5)})
    r = api.push(["v1", a2], store=alice)
    assert [v.gid for v in r.pushed] == [a1.gid, a2.gid]
    r = api.pull(["first"], store=bob)
    assert [v.gid for v in r.pulled] == [a1.gid]
    r = api.pull(a2, store=bob)  # a Version stands for its global id
    assert [v.gid for v in r.pulled] == [a2.gid]
    for bad in ([None], 1.5, {"v": 1}, True):
        with pytest.raises(UsageError, match="a REF is a version label"):
            api.pull(bad, store=bob)
        with pytest.raises(UsageError, match="a REF is a version label"):
            api.push(bad, store=alice)


def test_pull_notebook_by_a_trailing_part_and_a_typo_is_an_error_not_nothing_new(alice, bob, url, run_cli):
    a = _snap(alice, {"x": np.arange(3)}, nb="projects/churn.ipynb")
    _snap(alice, {"y": np.arange(4)}, nb="other/eval.ipynb")
    api.push(all=True, store=alice)
    with pytest.raises(UsageError, match=r"no notebook 'churn.ipnyb' on .*notebooks there: other/eval.ipynb, "
                                         r"projects/churn.ipynb"):
        api.pull(notebook="churn.ipnyb", store=bob)
    with pytest.raises(UsageError, match="no notebook 'churn.ipnyb'"):
        api.remote_ls(notebook="churn.ipnyb", store=bob)
    assert bob.versions() == []
    assert [d["gid"] for d in api.remote_ls(notebook="churn.ipynb", store=bob)] == [a.gid]
    r = api.pull(notebook="churn.ipynb", store=bob)  # a unique trailing part, as NB names a local notebook
    assert [v.gid for v in r.pulled] == [a.gid] and r.pulled[0].notebook == "projects/churn.ipynb"
    # the sidebar's Pull of a notebook nobody pushed: nothing new, not an error
    assert api.pull(notebook="fresh.ipynb", store=bob, strict=False).pulled == []
    r = run_cli("--store", str(bob.root), "pull", "--notebook", "eval.ipnyb")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no notebook 'eval.ipnyb'" in r.stderr


@pytest.mark.parametrize("author", ["alice\nsmith", "bob\x1b[31m", "\tcarol\r\n", "dave\x7f"])
def test_an_author_with_control_characters_never_poisons_the_remote(alice, bob, monkeypatch, author):
    """A manifest is immutable: one pullers refuse (manifest.validate) must never be written."""
    monkeypatch.setenv("JUPYTER_MV_AUTHOR", author)
    v = _snap(alice, {"x": np.arange(3)})
    r = api.push(store=alice)
    assert [p.gid for p in r.pushed] == [v.gid]
    (row,) = api.remote_ls(store=bob)
    assert row["problem"] in (None, "") and all(ord(c) >= 32 and ord(c) != 127 for c in row["author"] + row["pushed_by"])
    api.pull(store=bob)
    (w,) = bob.versions()
    assert w.gid == v.gid and w.author == row["author"] and w.author.strip()


def test_push_checks_its_manifest_as_pullers_will_before_publishing_it(alice, bob, remote_dir, monkeypatch):
    from jupyter_mv.errors import StoreError

    v = _snap(alice, {"x": np.arange(3)})
    real = push_mod._push_data

    def bad_author(*a, **kw):  # whatever makes a manifest pullers refuse (here a control character)
        doc = real(*a, **kw)
        doc["pushed_by"] = "x\x00y"
        return doc

    monkeypatch.setattr(push_mod, "_push_data", bad_author)
    with pytest.raises(StoreError, match=r"cannot push nb.ipynb v1: pullers would refuse its manifest "
                                         r"\(its pushed_by is malformed\); nothing of it was published"):
        api.push(store=alice)
    assert not (remote_dir / layout.version_key(v.gid)).exists()
    monkeypatch.setattr(push_mod, "_push_data", real)
    assert [p.gid for p in api.push(store=alice).pushed] == [v.gid]


def test_a_tag_the_team_moved_comes_in_where_it_is_now(alice, bob, tmp_path, url, run_cli):
    a1 = _snap(alice, {"x": np.arange(3)}, tags=["best"])
    api.push(store=alice)
    api.pull(store=bob)
    b1 = _snap(bob, {"x": np.arange(4)}, tags=["best"])  # moves the tag locally off alice's pulled v1
    api.push(store=bob)
    remote = open_remote(url)
    assert json.loads(remote.get(layout.tag_key("nb.ipynb", "best")))["gid"] == b1.gid
    # a1's manifest still records "best" (immutable): a fresh clone must put it on b1 all the same
    api.clone(url, tmp_path / "carol")
    with Store(tmp_path / "carol" / ".jupyter_mv") as carol:
        tagged = {v.gid: v.tags for v in carol.versions()}
        assert tagged[b1.gid] == ("best",) and tagged[a1.gid] == ()
        r = run_cli("--store", str(carol.root), "remote", "ls")
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert "[best]" in rows[b1.gid[:12]] and "[best]" not in rows[a1.gid[:12]]


def test_one_bucket_prefix_is_one_remote_however_its_url_is_written():
    for spelled in ["s3://ml-bucket/churn", "s3://ml-bucket/churn/", "S3://ml-bucket/churn//"]:
        assert registry.normalize_url(spelled) == "s3://ml-bucket/churn"
    assert registry.normalize_url("s3://ml-bucket/") == registry.normalize_url("s3://ml-bucket") == "s3://ml-bucket"
    assert registry.normalize_url("gs://b/x/") == "gs://b/x"
    # an sftp URL's lone '/' is the root folder, not the home one: kept
    assert registry.normalize_url("sftp://host/") == "sftp://host/" and registry.normalize_url("sftp://host") == "sftp://host"


def test_cloning_an_empty_remote_says_so(tmp_path, run_cli):
    (tmp_path / "empty").mkdir()
    r = run_cli("clone", str(tmp_path / "empty"), str(tmp_path / "c"))
    assert r.returncode == 0 and "holds no versions yet" in r.stdout and "typo" in r.stdout, r.stdout
    assert (tmp_path / "c" / ".jupyter_mv" / "store.db").exists()


def test_a_version_imported_from_its_bundle_is_not_pulled_again(alice, bob, tmp_path):
    v = _snap(alice, {"x": np.arange(7.0), "cfg": {"lr": 0.1}})
    api.push(store=alice)
    bundle = tmp_path / "v1.mvz"
    api.export(v.label, bundle, store=alice)
    api.import_bundle(bundle, store=bob)
    (mine,) = bob.versions()
    r = api.pull(store=bob)
    assert r.pulled == [] and [w.id for w in r.already] == [mine.id] and len(bob.versions()) == 1
    # the other way round: pulled first, then its bundle imported: still one version
    with Store(tmp_path / "carol" / ".jupyter_mv") as carol:
        api.remote_add("team", alice.root.parent.parent.joinpath("remote").as_uri(), store=carol)
        api.pull(store=carol)
        api.import_bundle(bundle, store=carol)
        assert [w.gid for w in carol.versions()] == [v.gid]


def test_a_remote_inside_the_store_folder_is_refused(store, tmp_path, run_cli):
    """Its objects would be unreferenced blobs to the local gc, and mixed with the store's files."""
    for inside in (store.root, store.root / "blobs", store.root / "sub" / "deeper"):
        with pytest.raises(UsageError, match="inside this store's folder"):
            api.remote_add("r", str(inside), store=store)
        with pytest.raises(UsageError, match="inside this store's folder"):
            registry.get(store, inside.as_uri())
    assert registry.remotes(store) == []
    assert api.remote_add("beside", str(store.root.parent / "team-remote"), store=store).name == "beside"


def test_a_pull_that_refuses_some_versions_still_says_which_it_pulled(alice, bob, remote_dir, run_cli, shell, run,
                                                                        capsys):
    from IPython.core.error import UsageError as IPyUsageError

    good = [_snap(alice, {"x": np.arange(3.0) + i}) for i in range(2)]
    bad = [_snap(alice, {"y": np.arange(9.0) + i}) for i in range(2)]
    api.push(store=alice)
    for v in bad:  # damaged on the remote: not valid JSON any more
        (remote_dir / layout.version_key(v.gid)).write_bytes(b"{")
    with pytest.raises(RemoteCorrupt, match=r"\(1 other version refused; 2 other versions pulled\)") as e:
        api.pull(store=bob)
    assert sorted(v.gid for v in e.value.result.pulled) == sorted(v.gid for v in good)
    carol = tmp = remote_dir.parent / "carol-clone"
    r = run_cli("clone", remote_dir.as_uri(), str(tmp))
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "2 other versions pulled" in r.stderr
    assert r.stdout.count("pulled nb.ipynb v") == 2 and "without the versions refused" in r.stdout
    with Store(carol / ".jupyter_mv") as st:
        assert sorted(v.gid for v in st.versions()) == sorted(v.gid for v in good)
    api.remote_add("team", remote_dir.as_uri())
    capsys.readouterr()
    with pytest.raises(IPyUsageError, match="2 other versions pulled"):
        run("%mv_pull")
    out = capsys.readouterr().out
    assert out.count("pulled nb.ipynb v") == 2 and "%mv_restore" in out


def test_adls_container_at_account_urls_are_not_taken_for_credentials():
    """abfs[s]://CONTAINER@ACCOUNT.dfs.core.windows.net/ is ADLS Gen2's own form (obstore, adlfs)."""
    for url in ("abfss://models@myacct.dfs.core.windows.net/team/churn", "abfs://c@acct.blob.core.windows.net/x"):
        assert registry.normalize_url(url + "/") == url
    for bad in ("abfss://models:sas-secret@myacct.dfs.core.windows.net/x", "abfs://key@evil.example.com/x"):
        with pytest.raises(UsageError, match="credentials are never stored") as e:
            registry.normalize_url(bad)
        assert "sas-secret" not in str(e.value) and "key@" not in str(e.value)
