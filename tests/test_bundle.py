"""Bundles: export -> import into another store -> bit-identical restore; hostile bundles refused
with one line and nothing written; pickle payloads never run without trust."""

from __future__ import annotations

import hashlib
import json
import pickle
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_mv import api, bundle
from jupyter_mv import loading as restore_mod
from jupyter_mv.errors import BundleError, Untrusted
from jupyter_mv.store import Store
from jupyter_mv.store.blobs import blob_size

from mvtest import as_colleague, chunk_ids, cli, hostile, store_bytes

SCHEMA = Path(api.__file__).parent / "schemas" / "bundle.schema.json"


# -- helpers ---------------------------------------------------------------------------------------
def _model_namespace():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    big = rng.normal(size=(700, 1000))  # 5.6 MB: several chunks
    clf = LogisticRegression(C=0.5, max_iter=200).fit(X, y)
    df = pd.DataFrame({"a": np.arange(50), "b": rng.normal(size=50), "c": list("xy" * 25)})
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    return {"X": X, "y": y, "big": big, "clf": clf, "df": df, "lr": 0.01, "note": "hello", "net": net,
            "t": torch.arange(12.0).reshape(3, 4)}


@pytest.fixture
def exported(tmp_path, monkeypatch):
    """A version (model, arrays, frame) snapshotted in store A and exported to a bundle."""
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "work/train.ipynb")
    ns = _model_namespace()
    s = api.Session(namespace=ns)
    api.set_session(s)
    a = Store(tmp_path / "alice" / ".jupyter_mv")
    v = api.take_snapshot(message="baseline", tags=["best"], metrics={"acc": 0.93}, store=a).version
    path = api.export(v, tmp_path / "alice" / "baseline.mvz", store=a)
    yield a, v, path, ns
    a.close()


@pytest.fixture
def other(tmp_path):
    st = Store(tmp_path / "bob" / "elsewhere" / ".jupyter_mv")
    yield st
    st.close()


def _state(st: Store) -> tuple:
    return (len(st.versions()), store_bytes(st.root), sorted(chunk_ids(st.root)),
            sorted(st.notebooks()))


def rewrite(src: Path, dst: Path, *, members: dict | None = None, drop=(), manifest=None, raw=(),
            fix_checksums: bool = True) -> Path:
    """Copy a bundle, replacing/adding members (name -> bytes), dropping some, editing the manifest
    (a function), adding raw ZipInfo entries [(ZipInfo, bytes)], recomputing checksums unless told not to."""
    with zipfile.ZipFile(src) as zf:
        data = {n: zf.read(n) for n in zf.namelist()}
    man = json.loads(data.pop("manifest.json"))
    for n in drop:
        data.pop(n, None)
        man["members"].pop(n, None)
    for n, b in (members or {}).items():
        data[n] = b
        if fix_checksums:
            man["members"][n] = {"size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
    for info, b in raw:
        if fix_checksums:
            man["members"][info.filename] = {"size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
    if manifest:
        manifest(man)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in data.items():
            zf.writestr(n, b)
        for info, b in raw:
            zf.writestr(info, b)
        zf.writestr("manifest.json", json.dumps(man))
    return dst


def _blob_member(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return next(n for n in zf.namelist() if n.startswith("blobs/"))


# -- round trip ------------------------------------------------------------------------------------
def test_export_import_restore_is_bit_identical(exported, other):
    a, v, path, ns = exported
    result = bundle.import_(other, path)
    assert not result.already
    w = result.version
    assert w.notebook == "work/train.ipynb"  # the colleague sees it in that notebook's history
    assert other.is_imported(w)
    assert w.message == "baseline" and w.tags == ("best",) and w.metrics == {"acc": 0.93}
    assert w.params == v.params and w.created == v.created
    assert [x.content_hash for x in other.variables(w)] == [x.content_hash for x in a.variables(v)]
    safe = restore_mod.load(other, w, ["X", "y", "big", "df", "lr", "note"])
    for name in ("X", "y", "big"):
        assert safe[name].dtype == ns[name].dtype and safe[name].shape == ns[name].shape
        assert safe[name].tobytes() == ns[name].tobytes()
    pd.testing.assert_frame_equal(safe["df"], ns["df"], check_exact=True)
    assert safe["lr"] == 0.01 and safe["note"] == "hello"
    clf = restore_mod.load(other, w, ["clf"], trust=True)["clf"]
    np.testing.assert_array_equal(clf.predict_proba(ns["X"]), ns["clf"].predict_proba(ns["X"]))
    assert clf.coef_.tobytes() == ns["clf"].coef_.tobytes()
    import torch

    net = restore_mod.load(other, w, ["net"], trust=True)["net"]
    xt = torch.from_numpy(ns["X"]).float()
    with torch.no_grad():
        assert torch.equal(net(xt), ns["net"](xt))
    assert torch.equal(restore_mod.load(other, w, ["t"])["t"], ns["t"])  # tensors are a safe codec
    assert other.verify() == []
    assert other.environment(w)["packages"] == a.environment(v)["packages"]


def test_import_twice_and_dedup(exported, other):
    _, _, path, _ = exported
    first = bundle.import_(other, path)
    before = _state(other)
    again = bundle.import_(other, path)
    assert again.already and again.version.id == first.version.id
    assert _state(other) == before


def test_import_of_own_export_adds_no_duplicate(exported):
    a, v, path, _ = exported
    before, n_versions = store_bytes(a.root), len(a.versions(v.notebook))
    result = bundle.import_(a, path)
    assert result.already and result.version.id == v.id and result.version.is_local
    assert "made in this store: nothing imported" in result.summary_line()
    assert len(a.versions(v.notebook)) == n_versions and store_bytes(a.root) == before


def test_import_dedups_blobs_the_store_holds(exported, tmp_path):
    _, v, path, ns = exported
    b = Store(tmp_path / "bob" / ".jupyter_mv")
    try:
        api.take_snapshot(message="same data, taken here", store=b)  # the same variables, another version
        before, held = store_bytes(b.root), chunk_ids(b.root)
        result = bundle.import_(b, path)
        # everything is deduplicated but the skops form of the estimator (the store pickles it; the
        # bundle ships it as skops): its small schema and arrays are the only new chunks
        skops = {c for x in bundle.read(path).manifest["variables"] if x["codec"] == "sklearn.skops"
                 for bb in x["manifest"]["buffers"] for c in bb.get("c", [])}
        new = chunk_ids(b.root) - held
        assert new == skops - held and 0 < result.new_bytes <= sum(blob_size(c) for c in new) + 64
        assert store_bytes(b.root) - before < 8192  # the 5.6 MB array: not written again
        assert not result.already and result.version.n == 2 and not result.version.is_local
    finally:
        b.close()


def test_bundle_contents(exported):
    import jsonschema
    import nbformat

    a, v, path, _ = exported
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        man = json.loads(zf.read("manifest.json"))
        nb = nbformat.reads(zf.read("notebook.ipynb").decode(), as_version=4)
        req = zf.read("requirements.txt").decode()
        for n in names:
            if n != "manifest.json":
                assert hashlib.sha256(zf.read(n)).hexdigest() == man["members"][n]["sha256"]
    jsonschema.validate(man, json.loads(SCHEMA.read_text()))
    nbformat.validate(nb)
    assert man["schema"] == bundle.SCHEMA and man["version"]["notebook"] == "work/train.ipynb"
    assert "numpy==" + np.__version__ in req.splitlines()
    ids = {c for var in man["variables"] for b in var["manifest"]["buffers"] for c in b.get("c", [])}
    assert {n for n in names if n.startswith("blobs/")} == {f"blobs/{i}" for i in ids}
    # only what the version references: the store's chunks, and those of the estimator re-encoded with skops
    assert {x["name"]: x["codec"] for x in man["variables"] if x["codec"].startswith("sklearn")} == {
        "clf": "sklearn.skops"}
    assert {c for var in man["variables"] if var["codec"] != "sklearn.skops"
            for b in var["manifest"]["buffers"] for c in b.get("c", [])} <= chunk_ids(a.root)
    assert any("i" in b for var in man["variables"] for b in var["manifest"]["buffers"])  # inline kept inline


def test_bundle_has_only_that_versions_blobs(tmp_path, monkeypatch):
    ns = {"x": np.arange(100_000.0)}
    api.set_session(api.Session(namespace=ns))
    st = Store(tmp_path / ".jupyter_mv")
    v1 = api.take_snapshot(store=st).version
    ns["x"] = np.arange(100_000.0) * 2
    ns["extra"] = np.ones(50_000)
    api.take_snapshot(store=st)
    path = bundle.export(st, v1, tmp_path / "v1.mvz")
    with zipfile.ZipFile(path) as zf:
        blobs = [n for n in zf.namelist() if n.startswith("blobs/")]
    want = {c for b in st.stored_variable(v1, "x").manifest["buffers"] for c in b["c"]}
    assert {b[6:] for b in blobs} == want
    st.close()


def test_notebook_in_bundle_has_cells_and_outputs(shell, run, tmp_path):
    run("import numpy as np")
    run("w = np.arange(6).reshape(2, 3)")
    run("print('trained', w.sum())")
    run("w.mean()")
    shell.run_line_magic("mv_snapshot", "w -m first")
    shell.run_line_magic("mv_export", f"latest {tmp_path / 'nb.mvz'}")
    with zipfile.ZipFile(tmp_path / "nb.mvz") as zf:
        nb = json.loads(zf.read("notebook.ipynb"))
    sources = [c["source"] for c in nb["cells"]]
    assert "print('trained', w.sum())" in sources
    mean = nb["cells"][sources.index("w.mean()")]
    assert mean["outputs"][0]["data"]["text/plain"] == "np.float64(2.5)"
    assert all(c["id"] for c in nb["cells"]) and len({c["id"] for c in nb["cells"]}) == len(nb["cells"])


def test_magics_export_import_and_trust(shell, run, tmp_path, capsys):
    from sklearn.tree import DecisionTreeClassifier

    shell.user_ns["clf"] = DecisionTreeClassifier(random_state=0).fit([[0], [1], [2]], [0, 1, 1])
    shell.user_ns["arr"] = np.linspace(0, 1, 5000)
    run("from sklearn.tree import DecisionTreeClassifier\n"
        "class ShallowTree(DecisionTreeClassifier):  # defined in the notebook: skops cannot hold it\n"
        "    pass\n"
        "custom = ShallowTree(random_state=0).fit([[0], [1], [2]], [0, 1, 1])")
    shell.run_line_magic("mv_snapshot", "clf custom arr -m tree")
    shell.run_line_magic("mv_export", f"v1 {tmp_path / 'tree.mvz'}")
    assert "exported v1" in capsys.readouterr().out
    # a colleague: another directory, another store
    other = as_colleague(shell, tmp_path)
    for n in ("clf", "arr", "custom", "ShallowTree"):
        shell.user_ns.pop(n)
    shell.run_line_magic("mv_import", str(tmp_path / "tree.mvz"))
    out = capsys.readouterr().out
    assert "imported v1" in out
    from IPython.core.error import UsageError

    nb = api.versions(all=True)[0].notebook
    api.set_notebook(nb)
    with pytest.raises(UsageError, match=r"custom would unpickle __main__\.ShallowTree.*--trust"):
        shell.run_line_magic("mv_restore", "v1 custom")
    assert "custom" not in shell.user_ns
    shell.run_line_magic("mv_restore", "v1 arr clf")  # npy and skops (scikit-learn types only): no trust needed
    assert shell.user_ns["arr"].tobytes() == np.linspace(0, 1, 5000).tobytes()
    assert list(shell.user_ns["clf"].predict([[0], [2]])) == [0, 1]
    shell.run_line_magic("mv_restore", "v1 custom --trust")
    assert type(shell.user_ns["custom"]).__name__ == "ShallowTree"
    assert list(shell.user_ns["custom"].predict([[0], [2]])) == [0, 1]
    with pytest.raises(UsageError, match="no bundle at"):
        shell.run_line_magic("mv_import", str(tmp_path / "tree.mvz") + "x")
    assert "PATH" in type(shell.magics_manager.registry["MVMagics"]).mv_export.__doc__


def test_cli_export_import(exported, tmp_path):
    a, v, _, ns = exported
    out = tmp_path / "cli.mvz"
    r = cli("--store", a.root, "export", "best", out, "--notebook", "work/train.ipynb")
    assert r.returncode == 0, r.stderr
    assert out.exists() and "exported v1" in r.stdout
    dest = tmp_path / "cli-dest" / ".jupyter_mv"
    r = cli("--store", dest, "import", out)
    assert r.returncode == 0, r.stderr
    assert "imported v1 of work/train.ipynb" in r.stdout
    r = cli("--store", dest, "import", tmp_path / "missing.mvz")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no bundle" in r.stderr


@pytest.mark.parametrize("argv", [["export"], ["import"], ["reproduce"], ["mlflow", "push"]])
def test_cli_help(argv, capsys):
    from jupyter_mv import cli as cli_mod

    with pytest.raises(SystemExit) as e:
        cli_mod.build_parser().parse_args([*argv, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and len(out.splitlines()) > 3


def test_export_is_atomic(exported, tmp_path, monkeypatch):
    a, v, _, _ = exported
    target = tmp_path / "atomic.mvz"

    def boom(*args, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle.exporting, "_compressible", boom)
    with pytest.raises(BundleError, match="No space"):
        bundle.export(a, v, target)
    assert not target.exists() and not list(tmp_path.glob(".atomic.mvz*"))


# -- pickle payloads -------------------------------------------------------------------------------
class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _pickle_bundle(exported, tmp_path, codec="pickle", claim_safe=True) -> tuple[Path, Path]:
    """The exported bundle plus a variable `payload` whose pickle stream runs `touch MARKER`."""
    _, _, path, _ = exported
    marker = tmp_path / f"pwned-{codec}"
    stream = pickle.dumps(_Evil(str(marker)), protocol=5)
    assert len(stream) < 2048  # small: inline in the manifest

    def edit(man):
        man["variables"].append({
            "name": "payload", "type_name": "builtins.dict", "codec": codec, "content_hash": "0" * 32,
            "nbytes": len(stream), "safe": claim_safe, "summary": {},
            "manifest": {"meta": {"oob": 0, "tensors": []},
                         "buffers": [{"n": len(stream), "i": __import__("base64").b64encode(stream).decode()}]},
        })

    return rewrite(path, tmp_path / f"evil-{codec}.mvz", manifest=edit), marker


@pytest.mark.parametrize("codec", ["pickle", "sklearn", "torch.module"])
def test_pickle_payload_never_runs_without_trust(exported, other, tmp_path, codec):
    evil, marker = _pickle_bundle(exported, tmp_path, codec)
    v = bundle.import_(other, evil).version  # importing never unpickles
    assert not marker.exists()
    with pytest.raises(Untrusted, match="payload"):
        restore_mod.load(other, v, ["payload"])
    with pytest.raises(Untrusted):
        restore_mod.load(other, v)  # restoring everything includes it
    assert not marker.exists()
    assert restore_mod.load(other, v, ["X"])["X"].shape == (300, 5)  # safe variables still restore
    api.set_session(api.Session(namespace={}))
    with pytest.raises(Untrusted):
        api.load(v, "payload", store=other)
    assert not marker.exists()
    # the payload is real: with explicit trust it does run (which is why trust is asked for)
    restore_mod.load(other, v, ["payload"], trust=True)
    assert marker.exists()


# -- hostile bundles: refused, one line, nothing written -------------------------------------------
def _refused(st: Store, path: Path, match: str, **kw) -> str:
    with hostile():
        before = _state(st)
        with pytest.raises(BundleError, match=match) as err:
            bundle.import_(st, path, **kw)
        msg = str(err.value)
        assert "\n" not in msg and len(msg) < 300
        assert _state(st) == before
        assert not (st.root / "tmp").exists() or not list((st.root / "tmp").iterdir())
    return msg


@pytest.fixture
def seeded(other, tmp_path):
    """A target store that already holds a version (so "unchanged" is not trivially "empty")."""
    api.set_session(api.Session(namespace={"z": np.arange(10_000)}))
    api.take_snapshot(store=other)
    return other


def test_zip_slip_refused(exported, seeded, tmp_path):
    _, _, path, _ = exported
    for i, name in enumerate(["../evil.txt", "blobs/../../evil.txt", "/etc/evil", "blobs\\..\\evil", "C:/evil"]):
        bad = rewrite(path, tmp_path / f"slip{i}.mvz", members={name: b"owned"})
        _refused(seeded, bad, "outside|absolute|backslash")
    assert not (tmp_path / "evil.txt").exists() and not (seeded.root.parent / "evil.txt").exists()


def test_symlink_refused(exported, seeded, tmp_path):
    _, _, path, _ = exported
    info = zipfile.ZipInfo("requirements.txt")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    bad = rewrite(path, tmp_path / "link.mvz", drop=["requirements.txt"], raw=[(info, b"/etc/passwd")])
    _refused(seeded, bad, "symbolic link")


def test_bad_checksum_refused(exported, seeded, tmp_path):
    _, _, path, _ = exported
    member = _blob_member(path)
    with zipfile.ZipFile(path) as zf:
        data = bytearray(zf.read(member))
    data[100] ^= 0xFF
    bad = rewrite(path, tmp_path / "flip.mvz", members={member: bytes(data)}, fix_checksums=False)
    _refused(seeded, bad, "sha256")
    # an attacker who also fixes the sha256 is caught by the blob's own content hash
    bad = rewrite(path, tmp_path / "flip2.mvz", members={member: bytes(data)})
    _refused(seeded, bad, "content hash")
    nb = json.loads(zipfile.ZipFile(path).read("notebook.ipynb"))
    nb["cells"].append({"cell_type": "code", "id": "evil", "metadata": {}, "execution_count": None,
                        "outputs": [], "source": "import os; os.system('rm -rf ~')"})
    text = json.dumps(nb).encode()
    bad = rewrite(path, tmp_path / "nb.mvz", members={"notebook.ipynb": text}, fix_checksums=False,
                  manifest=lambda m: m["members"]["notebook.ipynb"].__setitem__("size", len(text)))
    _refused(seeded, bad, "notebook.ipynb.*sha256")


def test_truncated_refused(exported, seeded, tmp_path):
    _, _, path, _ = exported
    raw = path.read_bytes()
    for i, cut in enumerate([len(raw) - 10, len(raw) // 2, 100, 0]):
        bad = tmp_path / f"cut{i}.mvz"
        bad.write_bytes(raw[:cut])
        _refused(seeded, bad, "damaged or truncated|not a zip")


def test_decompression_bomb_refused(exported, seeded, tmp_path, monkeypatch):
    _, _, path, _ = exported
    # 1. declared sizes over the total bound
    _refused(seeded, path, "more than the .* allowed", max_bytes=1000)

    def huge(man):
        man["members"]["notebook.ipynb"]["size"] = 10 * 1024**4

    _refused(seeded, rewrite(path, tmp_path / "decl.mvz", manifest=huge), "more than the .* allowed")
    # 2. a member that inflates far past what the manifest says (64 MB of zeros, 64 kB on disk)
    zeros = bytes(64 * 1024**2)
    member = _blob_member(path)

    def small(man):
        man["members"][member]["size"] = int(member.rsplit("-", 1)[1], 16)

    bomb = rewrite(path, tmp_path / "bomb.mvz", members={member: zeros}, manifest=small)
    assert bomb.stat().st_size < path.stat().st_size + 1024**2  # 64 MB inflated, < 1 MB more on disk
    _refused(seeded, bomb, "bomb|more than")
    # 3. a zip whose headers lie about the inflated size: streaming stops at the declared size
    liar = tmp_path / "liar.mvz"
    liar.write_bytes(_patch_sizes(bomb.read_bytes(), member, int(member.rsplit("-", 1)[1], 16)))
    _refused(seeded, liar, "damaged|checksum|sha256|bomb")
    # 4. a huge chunk declared honestly is over the per-member bound
    monkeypatch.setattr(bundle.validation, "MAX_CHUNK", 1024)
    _refused(seeded, path, "more than the 1024 allowed")


def _patch_sizes(raw: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed size of member `name` in its local header and central directory."""
    return _patch_header(raw, name, 22, 24, "<I", size)


def _patch_header(raw: bytes, name: str, local_off: int, central_off: int, fmt: str, value: int) -> bytes:
    """Overwrite one field of member `name` in its local header and its central directory entry."""
    raw = bytearray(raw)
    enc = name.encode()
    for sig, name_len_at, name_at, off in ((b"PK\x03\x04", 26, 30, local_off), (b"PK\x01\x02", 28, 46, central_off)):
        pos = 0
        while (pos := raw.find(sig, pos)) >= 0:
            n = struct.unpack_from("<H", raw, pos + name_len_at)[0]
            if raw[pos + name_at: pos + name_at + n] == enc:
                struct.pack_into(fmt, raw, pos + off, value)
            pos += 4
    return bytes(raw)


def test_unknown_schema_refused(exported, seeded, tmp_path):
    _, _, path, _ = exported

    def future(man):
        man["schema"] = 99

    msg = _refused(seeded, rewrite(path, tmp_path / "future.mvz", manifest=future), "schema version 99")
    assert "upgrade" in msg

    def alien(man):
        man["format"] = "something.else"

    _refused(seeded, rewrite(path, tmp_path / "alien.mvz", manifest=alien), "not a jupyter_mv bundle")


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("case", ["extra_member", "missing_member", "unknown_codec", "bad_name", "bad_tag",
                                  "dup_member", "not_zip", "no_manifest", "bad_json", "missing_blob",
                                  "bad_metric", "encrypted_flag", "dir_member"])
def test_other_hostile_bundles_refused(exported, seeded, tmp_path, case):
    _, _, path, _ = exported
    out = tmp_path / f"{case}.mvz"
    member = _blob_member(path)
    if case == "extra_member":
        rewrite(path, out, members={"notes.txt": b"hi"})
    elif case == "missing_member":
        rewrite(path, out, drop=[member], manifest=lambda m: m["members"].__setitem__(member, {
            "size": int(member.rsplit("-", 1)[1], 16), "sha256": "0" * 64}))
    elif case == "unknown_codec":
        rewrite(path, out, manifest=lambda m: m["variables"][0].__setitem__("codec", "evil"))
    elif case == "bad_name":
        rewrite(path, out, manifest=lambda m: m["variables"][0].__setitem__("name", "__import__('os')"))
    elif case == "bad_tag":
        rewrite(path, out, manifest=lambda m: m["version"].__setitem__("tags", ["v1"]))
    elif case == "bad_metric":
        rewrite(path, out, manifest=lambda m: m["version"].__setitem__("metrics", {"acc": "high"}))
    elif case == "missing_blob":
        rewrite(path, out, drop=[member])
    elif case == "dup_member":
        rewrite(path, out, raw=[(zipfile.ZipInfo("notebook.ipynb"), b"{}")], fix_checksums=False)
    elif case == "not_zip":
        out.write_bytes(b"this is not a zip file at all" * 10)
    elif case == "no_manifest":
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr("notebook.ipynb", "{}")
    elif case == "bad_json":
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as zf:
            for n in src.namelist():
                zf.writestr(n, src.read(n) if n != "manifest.json" else b"{not json")
    elif case == "encrypted_flag":
        rewrite(path, tmp_path / "plain.mvz")
        out.write_bytes(_patch_header((tmp_path / "plain.mvz").read_bytes(), "requirements.txt", 6, 8, "<H", 1))
    elif case == "dir_member":
        info = zipfile.ZipInfo("blobs/")
        info.external_attr = (stat.S_IFDIR | 0o755) << 16
        rewrite(path, out, raw=[(info, b"")], fix_checksums=False)
    _refused(seeded, out, ".")


@pytest.mark.parametrize("codec, meta", [
    ("numpy", {"descr": "|O", "shape": [1], "order": "C"}),
    ("numpy", {"descr": [["a", "<f8"], ["b", "|O"]], "shape": [1], "order": "C"}),
    ("numpy", {"descr": {"evil": 1}, "shape": [1]}),
    ("torch.tensor", {"dtype": "load", "shape": [1]}),
    ("pickle", {"oob": 0, "tensors": [{"dtype": "__class__", "shape": [1]}]}),
])
def test_safe_codecs_with_hostile_meta_refused(exported, seeded, tmp_path, codec, meta):
    _, _, path, _ = exported

    def edit(man):
        man["variables"].append({"name": "odd", "type_name": "x", "codec": codec, "content_hash": "0",
                                 "nbytes": 8, "summary": {},
                                 "manifest": {"meta": meta, "buffers": [{"n": 8, "i": "AAAAAAAAAAA="}]}})

    _refused(seeded, rewrite(path, tmp_path / "odd.mvz", manifest=edit), "odd")


def test_structured_numpy_field_names_are_not_mistaken_for_objects(tmp_path):
    arr = np.zeros(4, dtype=[("Other", "<f8"), ("Obj", "|S3")])
    api.set_session(api.Session(namespace={"arr": arr}))
    with Store(tmp_path / "a" / ".jupyter_mv") as a, Store(tmp_path / "b" / ".jupyter_mv") as b:
        v = api.take_snapshot(store=a).version
        w = bundle.import_(b, bundle.export(a, v, tmp_path / "s.mvz")).version
        assert restore_mod.load(b, w, ["arr"])["arr"].tobytes() == arr.tobytes()
