"""A bundle names its version's global id (manifest version.gid), and import, push and pull accept that
id only when content verifies (jupyter_mv/bundle/identity.py): an export imported by a teammate and
pushed is not a second version on the remote, pulling the original after importing its bundle adds no
duplicate, and a hostile bundle claiming the id of a version the user or the team holds can neither
replace nor hide it. Real stores in temp dirs, a file:// remote."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jupyter_mv import api, bundle
from jupyter_mv.errors import BundleError
from jupyter_mv.remotes import layout
from jupyter_mv.store import Store


def _snap(st: Store, ns: dict, nb: str = "nb.ipynb", **kw):
    api.set_session(api.Session(namespace=ns))
    api.session().told_notebook = str(st.root.parent / nb)
    return api.take_snapshot([], store=st, **kw).version


def _store(tmp_path: Path, who: str, url: str) -> Store:
    st = Store(tmp_path / who / ".jupyter_mv")
    api.remote_add("team", url, store=st)
    return st


@pytest.fixture
def remote_dir(tmp_path) -> Path:
    return tmp_path / "remote"


@pytest.fixture
def team(tmp_path, remote_dir, monkeypatch):
    """alice, bob and carol, each with a store whose default remote is one folder."""
    monkeypatch.setenv("JUPYTER_MV_AUTHOR", "alice@laptop")
    stores = {who: _store(tmp_path, who, remote_dir.as_uri()) for who in ("alice", "bob", "carol")}
    yield stores
    for st in stores.values():
        st.close()


def _manifests(remote_dir: Path) -> list[dict]:
    return [json.loads(p.read_bytes()) for p in sorted((remote_dir / "versions").glob("*.json"))]


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """A copy of bundle `src` whose manifest.json went through `edit(manifest)` (the other members,
    which the manifest's sha256 table covers, are copied as they are)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "manifest.json":
                man = json.loads(data)
                edit(man)
                data = json.dumps(man).encode()
            zout.writestr(info, data)
    return dst


def _model():
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(3).standard_normal((40, 3))
    return LogisticRegression().fit(X, X[:, 0] > 0)


def test_a_bundle_names_its_version_and_the_import_keeps_the_claim_apart(team, tmp_path):
    alice, bob = team["alice"], team["bob"]
    v = _snap(alice, {"x": np.arange(5.0)}, message="m")
    path = api.export(v.label, tmp_path / "v1.mvz", store=alice)
    ver = bundle.read(path).version
    assert (ver["gid"], ver["author"], ver["origin"]) == (v.gid, "alice@laptop", "local")
    assert "claimed_gid" not in ver
    got = api.import_bundle(path, store=bob)
    mine = got.version
    # nothing held the id here, but nothing verified it either: a fresh id, the claim kept apart
    assert mine.gid != v.gid and bob.claimed_gid(mine) == v.gid and mine.author == "alice@laptop"
    assert bob.version_by_gid(v.gid) is None
    assert api.import_bundle(path, store=bob).already and len(bob.versions()) == 1
    # its own export passes the claim on, next to its own id
    again = bundle.read(api.export(mine, tmp_path / "again.mvz", store=bob)).version
    assert (again["gid"], again["claimed_gid"], again["origin"]) == (mine.gid, v.gid, "imported")


def test_export_import_push_makes_no_second_copy(team, tmp_path, remote_dir):
    alice, bob = team["alice"], team["bob"]
    v = _snap(alice, {"x": np.arange(7.0), "clf": _model(), "cfg": {"lr": 0.1}}, metrics={"acc": 0.5})
    api.push(store=alice, all=True)
    api.import_bundle(api.export(v.label, tmp_path / "v1.mvz", store=alice), store=bob)
    r = api.push(store=bob, all=True)
    assert r.pushed == [] and [w.gid for w in r.already] == [v.gid]
    assert any(f"({v.gid[:12]}) is already on" in line for line in r.lines())
    assert [m["gid"] for m in _manifests(remote_dir)] == [v.gid]  # one version on the remote
    (mine,) = bob.versions()
    assert mine.gid == v.gid and bob.claimed_gid(mine) == ""  # verified: it is that version now
    p = api.pull(store=bob)
    assert p.pulled == [] and len(bob.versions()) == 1
    # a third member pulls one version, bit-identical
    carol = team["carol"]
    assert [w.gid for w in api.pull(store=carol).pulled] == [v.gid]
    assert api.load(carol.versions()[0], "x", store=carol).tobytes() == np.arange(7.0).tobytes()


def test_the_importer_pushing_first_still_leaves_one_version_in_every_history(team, tmp_path, remote_dir):
    """The claim is never sent as an id (it is unverified), so the remote then holds two manifests of
    one content (chunks stored once); every pull recognises the twin and keeps one version."""
    alice, bob, carol = team["alice"], team["bob"], team["carol"]
    v = _snap(alice, {"x": np.arange(9.0)})
    api.import_bundle(api.export(v.label, tmp_path / "v1.mvz", store=alice), store=bob)
    (mine,) = bob.versions()
    assert [w.gid for w in api.push(store=bob, all=True).pushed] == [mine.gid]
    assert mine.gid != v.gid and _manifests(remote_dir)[0]["bundle"]["version"]["claimed_gid"] == v.gid
    api.push(store=alice, all=True)
    assert sorted(m["gid"] for m in _manifests(remote_dir)) == sorted([v.gid, mine.gid])
    a = api.pull(store=alice)
    assert a.pulled == [] and [w.id for w in a.already] == [v.id] and len(alice.versions()) == 1
    b = api.pull(store=bob)
    assert b.pulled == [] and [w.gid for w in bob.versions()] == [v.gid]  # the claim verified: adopted
    c = api.pull(store=carol)
    assert len(c.pulled) == 1 and len(carol.versions()) == 1
    assert api.pull(store=bob).pulled == [] and api.pull(store=carol).pulled == []


def test_pulled_then_its_bundle_imported_says_already_here(team, tmp_path):
    alice, bob = team["alice"], team["bob"]
    v = _snap(alice, {"x": np.arange(4.0), "clf": _model()})
    _snap(alice, {"x": np.arange(4.0) + 1})  # another version, so v is not simply the latest
    api.push(store=alice, all=True)
    api.pull(store=bob)
    path = api.export(v.label, tmp_path / "v1.mvz", store=alice)
    got = api.import_bundle(path, store=bob)
    here = bob.version_by_gid(v.gid)
    assert got.already and got.version.id == here.id and got.new_bytes == 0
    assert got.summary_line().startswith(f"already here as {here.label} of nb.ipynb ({v.gid[:12]})")
    assert len(bob.versions()) == 2


def _tampered(alice: Store, tmp_path: Path, target, forge_hashes: bool) -> Path:
    """A bundle of another version of alice's, its manifest claiming `target`'s id (and, with
    `forge_hashes`, its creation time and its variables' content hashes: the claims the old
    created-time heuristic trusted)."""
    other = _snap(alice, {"x": np.arange(4.0) * -1.0, "clf": {"evil": True}})
    real = {r.name: r.content_hash for r in alice.variables(target)}

    def edit(man):
        man["version"]["gid"] = target.gid
        if forge_hashes:
            man["version"]["created"] = target.created
            for var in man["variables"]:
                var["content_hash"] = real.get(var["name"], var["content_hash"])

    path = api.export(other.label, tmp_path / "other.mvz", store=alice)
    return _rewrite(path, tmp_path / f"forged-{forge_hashes}.mvz", edit)


@pytest.mark.parametrize("forge_hashes", [False, True])
def test_a_bundle_claiming_a_held_id_with_other_content_never_replaces_it(team, tmp_path, remote_dir,
                                                                        forge_hashes):
    alice, bob = team["alice"], team["bob"]
    v = _snap(alice, {"x": np.arange(4.0), "clf": {"lr": 0.1}})
    api.push(store=alice, all=True)
    api.pull(store=bob)
    forged = _tampered(alice, tmp_path, v, forge_hashes)
    before = (remote_dir / layout.version_key(v.gid)).read_bytes()
    got = api.import_bundle(forged, store=bob)
    line = got.summary_line()
    assert not got.already and got.version.gid != v.gid and bob.claimed_gid(got.version) == ""
    assert f"claims the id {v.gid[:12]} of nb.ipynb v1 here, but its content differs" in line
    assert "\n" not in line
    real = bob.version_by_gid(v.gid)  # still the real one, under its id, with its content
    assert real.label == "v1" and api.load(real, "x", store=bob).tobytes() == np.arange(4.0).tobytes()
    # pushed, it is a version of its own; the real manifest is untouched
    r = api.push(store=bob, all=True)
    assert [w.gid for w in r.pushed] == [got.version.gid]
    assert (remote_dir / layout.version_key(v.gid)).read_bytes() == before


@pytest.mark.parametrize("forge_hashes", [False, True])
def test_a_bundle_claiming_the_teams_id_cannot_hide_the_teams_version(team, tmp_path, remote_dir, forge_hashes):
    """carol does not hold the id yet: the claim stays a claim; her push finds other content under it
    on the remote and sends hers apart, and her pull brings the team's version in."""
    alice, carol = team["alice"], team["carol"]
    v = _snap(alice, {"x": np.arange(4.0), "clf": {"lr": 0.1}})
    api.push(store=alice, all=True)
    before = (remote_dir / layout.version_key(v.gid)).read_bytes()
    forged = api.import_bundle(_tampered(alice, tmp_path, v, forge_hashes), store=carol).version
    assert forged.gid != v.gid and carol.claimed_gid(forged) == v.gid
    r = api.push(store=carol, all=True)
    assert [w.gid for w in r.pushed] == [forged.gid]
    assert any(f"claimed the id {v.gid[:12]}" in n and "other content" in n for n in r.notes)
    assert carol.claimed_gid(carol.version_by_id(forged.id)) == ""  # refuted
    assert (remote_dir / layout.version_key(v.gid)).read_bytes() == before
    p = api.pull(store=carol)
    assert [w.gid for w in p.pulled] == [v.gid]
    assert api.load(carol.version_by_gid(v.gid), "x", store=carol).tobytes() == np.arange(4.0).tobytes()


@pytest.mark.parametrize("forge_hashes", [False, True])
def test_a_claim_pulled_before_pushing_is_checked_too(team, tmp_path, forge_hashes):
    alice, carol = team["alice"], team["carol"]
    v = _snap(alice, {"x": np.arange(4.0), "clf": {"lr": 0.1}})
    api.push(store=alice, all=True)
    forged = api.import_bundle(_tampered(alice, tmp_path, v, forge_hashes), store=carol).version
    p = api.pull(store=carol)  # the team's version is not taken for the forged one
    assert [w.gid for w in p.pulled] == [v.gid] and p.already == []
    assert any(f"claimed the id {v.gid[:12]}" in n and "two versions" in n for n in p.lines())
    assert carol.claimed_gid(carol.version_by_id(forged.id)) == ""  # refuted
    assert carol.version_by_id(forged.id).gid == forged.gid and len(carol.versions()) == 2


def test_a_bundle_without_a_global_id_still_imports(team, tmp_path):
    alice, bob = team["alice"], team["bob"]
    v = _snap(alice, {"x": np.arange(6.0)}, message="old")
    path = api.export(v.label, tmp_path / "v1.mvz", store=alice)

    def old(man):  # as bundles were written before they named their version
        for key in ("gid", "author", "origin", "claimed_gid"):
            man["version"].pop(key, None)

    old_path = _rewrite(path, tmp_path / "old.mvz", old)
    got = api.import_bundle(old_path, store=bob)
    assert not got.already and got.version.message == "old" and got.version.gid != v.gid
    assert bob.claimed_gid(got.version) == "" and got.version.author == ""
    assert api.load(got.version, "x", store=bob).tobytes() == np.arange(6.0).tobytes()
    assert api.import_bundle(old_path, store=bob).already  # the second time: nothing
    # its version pushed by alice later is still recognised on pull (same content and creation time)
    api.push(store=alice, all=True)
    assert api.pull(store=bob).pulled == [] and len(bob.versions()) == 1


@pytest.mark.parametrize("key, value, why", [
    ("gid", "G" * 32, "version.gid is not a global id"),
    ("gid", 12, "version.gid is not a global id"),
    ("gid", "ab" * 17, "version.gid is not a global id"),
    ("claimed_gid", "../" * 11, "version.claimed_gid is not a global id"),
    ("author", "mallory\x1b[2J", "version.author is malformed"),
    ("origin", "https://evil", "version.origin is not one of"),
])
def test_a_malformed_identity_is_refused_in_one_line(team, tmp_path, key, value, why):
    alice, bob = team["alice"], team["bob"]
    v = _snap(alice, {"x": np.arange(3.0)})
    path = api.export(v.label, tmp_path / "v1.mvz", store=alice)
    bad = _rewrite(path, tmp_path / "bad.mvz", lambda man: man["version"].__setitem__(key, value))
    with pytest.raises(BundleError, match=why) as e:
        api.import_bundle(bad, store=bob)
    assert "\n" not in str(e.value) and str(e.value).endswith("nothing was imported")
    assert bob.versions() == []
