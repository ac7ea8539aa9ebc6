"""Credentials never leave the machine by accident (issue 10 part 2), and params are the ones that
matter (issue 17). Every run makes new, random, realistic-looking fake credentials (never real ones)
and looks for them, byte by byte, in everything that is shown or shared."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import string
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from jupyter_mv import api, bundle, credentials
from jupyter_mv.store import Store

from mvtest import cli_in_process

ALNUM = string.ascii_letters + string.digits


def _rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


@dataclass
class Fakes:
    openai: str
    hf: str
    akid: str
    aws_secret: str
    ghp: str
    pg_password: str
    client_key: str

    @property
    def pg_url(self) -> str:
        return f"postgresql://analyst:{self.pg_password}@db.example.com:5432/prod"

    def all(self) -> list[str]:
        return [self.openai, self.hf, self.akid, self.aws_secret, self.ghp, self.pg_password, self.client_key]


@pytest.fixture
def fakes() -> Fakes:
    return Fakes(openai="sk-" + _rand(48), hf="hf_" + _rand(34), akid="AKIA" + _rand(16, string.ascii_uppercase + string.digits),
                 aws_secret=_rand(40, ALNUM + "+/"), ghp="ghp_" + _rand(36), pg_password=_rand(20),
                 client_key="sk-proj-" + _rand(48))


def leaks(text: str | bytes, f: Fakes) -> list[str]:
    """The fake credentials (or a 16-character piece of one) found in `text`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    found = []
    for s in f.all():
        body = s.split("_", 1)[-1].split("-")[-1]  # the random part, without a sk-/hf_/ghp_ prefix
        pieces = [body[i: i + 16] for i in range(0, max(1, len(body) - 15), 4)]
        if s in text or any(p in text for p in pieces):
            found.append(s)
    return found


LEAKY_CELLS = [
    "OPENAI_API_KEY = '{openai}'",  # a key pasted as a literal into a cell
    "HF_TOKEN = '{hf}'\nAWS_ACCESS_KEY_ID = '{akid}'\nAWS_SECRET_ACCESS_KEY = '{aws_secret}'",
    "gh_token = '{ghp}'\nDB_URL = 'postgresql://analyst:{pg_password}@db.example.com:5432/prod'",
    "class Client:\n    def __init__(self, api_key):\n        self.api_key = api_key\n"
    "        self.base_url = 'https://api.example.com/v1'\n        self.timeout = 30\n"
    "client = Client('{client_key}')\nsettings = {{'db': {{'password': DB_URL.split(':')[2].split('@')[0]}}, 'retries': 3}}",
    "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
    "X = np.random.RandomState(0).rand(60, 3); y = (X[:, 0] > 0.5).astype(int)\n"
    "LR = 0.01\nclf = LogisticRegression(C=0.5).fit(X, y)\nmsg = 'training done'",
    "f'connecting with {{OPENAI_API_KEY}} to {{DB_URL}}'",  # an output that shows them
]
CREDENTIAL_VARS = {"OPENAI_API_KEY", "HF_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "gh_token", "DB_URL",
                   "client", "settings"}


@pytest.fixture
def leaky(shell, run, fakes):
    for cell in LEAKY_CELLS:
        run(cell.format(**fakes.__dict__))
    return fakes


# -- the detector ---------------------------------------------------------------------------------
def test_detector_finds_each_fake_kind(fakes):
    class Client:
        def __init__(self, k):
            self.api_key, self.base_url = k, "https://api.example.com"

    cases = {"OPENAI_API_KEY": fakes.openai, "hf": fakes.hf, "akid": fakes.akid, "AWS_SECRET_ACCESS_KEY":
             fakes.aws_secret, "gh": fakes.ghp, "url": fakes.pg_url, "cfg": {"db": {"password": fakes.pg_password}},
             "nested": [("x", {"token": fakes.hf})], "raw": fakes.openai.encode()}
    for name, value in cases.items():
        found = credentials.scan_object(name, value)
        assert found, (name, value)
        assert not leaks(" ".join(x.describe() for x in found), fakes), name  # descriptions are masked
    found = credentials.scan_object("client", Client(fakes.client_key))
    assert [x.where for x in found] == ["client.api_key"]
    assert found[0].masked == "sk-proj-…****"
    assert credentials.mask(fakes.openai) == "sk-…****" and credentials.mask(fakes.hf) == "hf_…****"
    assert credentials.mask(fakes.pg_password) == "****"


@pytest.mark.parametrize("name,value", [
    ("msg", "training done"), ("clf", "RandomForestClassifier"), ("path", "/home/user/data/train.csv"),
    ("run_id", "c8f1a2b9-1d2e-4f5a-9b8c-7d6e5f4a3b2c"), ("model_name", "bert-base-uncased"), ("EOS_TOKEN", "</s>"),
    ("commit", "9fceb02d0ae598e95dc970b74767f19372d61af8"), ("url", "https://example.com/data.csv?page=2"),
    ("text", "The quick brown fox jumps over the lazy dog 1234567890"), ("secret_message", "hello world"),
    ("n_tokens", 512), ("lr", 0.01),
    # long paths and object-store URLs: the base64 alphabet holds `/`, so they read as one high-entropy string
    ("S3_PATH", "s3://my-bucket/experiments/2024-01-01/run_8f3a9c2b7e1d/model.pt"),
    ("MODEL_URI", "gs://ml-artifacts-prod/models/churn/20240101T123000Z/xgb_8f3a9c2b7e1d4f6a.json"),
    ("data", "/home/jdoe/Projects/churn-model/data/processed/train_2024-01-01_v3.parquet"),
    ("msg", "saved to s3://my-bucket/experiments/2024-01-01/run_8f3a9c2b7e1d/model.pt in 3.2 s"),
    # the name of an environment variable, under a credential-like name
    ("api_key_env", "OPENAI_API_KEY"), ("TOKEN_VAR", "HF_TOKEN"),
])
def test_detector_leaves_ordinary_values_alone(name, value):
    assert credentials.scan_object(name, value) == []


def test_text_masking_keeps_the_rest(fakes):
    out = f"Epoch 1/10 - loss: 0.2345\nusing {fakes.openai} at {fakes.pg_url}\n"
    found = [v for _, v in credentials.find_in_text(out, prose=True)]
    masked = credentials.mask_text(out, found)
    assert masked == "Epoch 1/10 - loss: 0.2345\nusing sk-…**** at postgresql://analyst:****@db.example.com:5432/prod\n"
    src = f"import os\nKEY = '{fakes.hf}'\nmodel = load(KEY)"
    assert credentials.mask_text(src, [v for _, v in credentials.find_in_text(src)]) == \
        "import os\nKEY = 'hf_…****'\nmodel = load(KEY)"


# -- snapshot -------------------------------------------------------------------------------------
def test_argumentless_snapshot_skips_credentials_and_names_them(leaky, run, capsys):
    capsys.readouterr()
    run("%mv_snapshot -m baseline")
    out, err = capsys.readouterr()
    v = api.resolve("v1")
    assert CREDENTIAL_VARS.isdisjoint(v.variables)
    assert {"X", "y", "clf", "LR", "msg", "Client"} <= set(v.variables)
    for name in CREDENTIAL_VARS:
        assert f"skipped {name!r}: holds a credential" in err, name
    assert "client.api_key" in err and "%mv_snapshot client" in err
    assert not leaks(out + err, leaky)
    # params: the model's hyperparameters and the upper-case constant; no credential, no message
    assert v.params["C"] == 0.5 and v.params["LR"] == 0.01
    assert "msg" not in v.params and "OPENAI_API_KEY" not in v.params and "HF_TOKEN" not in v.params
    assert not leaks(json.dumps(v.params), leaky)


def test_named_snapshot_stores_credentials_marked(leaky, run, shell, capsys):
    run("%mv_snapshot OPENAI_API_KEY client settings clf -m 'with keys'")
    v = api.resolve("v1")
    assert set(v.variables) == {"OPENAI_API_KEY", "client", "settings", "clf"}
    st = api.session().store()
    marks = {x.name: x.credential for x in st.variables(v)}
    assert marks == {"OPENAI_API_KEY": ("OPENAI_API_KEY",), "client": ("client.api_key",),
                     "settings": ("settings['db']['password']",), "clf": ()}
    with sqlite3.connect(st.root / "store.db") as db:  # the mark is in the file (migration 3)
        rows = dict(db.execute("select name, credential from variables").fetchall())
    assert rows == {"OPENAI_API_KEY": 1, "client": 1, "settings": 1, "clf": 0}
    # the user's own disk holds the exact value; every view of it is masked
    assert api.load("v1", "OPENAI_API_KEY") == leaky.openai
    assert api.load("v1", "client").api_key == leaky.client_key
    info = api.show("v1")
    assert {x["name"]: x["credential"] for x in info["variables"]}["client"] == ["client.api_key"]
    shown = json.dumps(info, default=str, ensure_ascii=False)
    assert not leaks(shown, leaky) and "sk-…****" in shown


def test_credential_params_are_never_recorded(session, fakes):
    session.namespace.update({"API_TOKEN": fakes.hf, "BATCH": 32})
    with pytest.warns(UserWarning) as caught:
        v = api.snapshot(params={"api_key": fakes.openai, "depth": 3})
    texts = [str(w.message) for w in caught]
    assert any("skipped 'API_TOKEN': holds a credential" in t for t in texts)
    assert any("'param api_key': holds a credential" in t for t in texts)
    assert not leaks(" ".join(texts), fakes)
    assert v.params == {"BATCH": 32, "depth": 3}


# -- export ---------------------------------------------------------------------------------------
def bundle_bytes(path: Path) -> dict[str, bytes]:
    """Every member of a bundle, decompressed (zip deflate; zstd frames inside blobs too)."""
    import zstandard

    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            data = zf.read(info)
            if data[:4] == b"\x28\xb5\x2f\xfd":
                data = zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30)
            out[info.filename] = data
    # buffers under 2 kB travel inline in the manifest as base64 (a small pickle, a short string)
    inline = []

    def walk(x):
        if isinstance(x, dict):
            if isinstance(x.get("i"), str):
                inline.append(base64.b64decode(x["i"]))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(json.loads(out["manifest.json"]).get("variables", []))
    for i, data in enumerate(inline):
        if data[:4] == b"\x28\xb5\x2f\xfd":
            data = zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30)
        out[f"manifest.json inline buffer {i}"] = data
    return out


def test_export_withholds_and_include_secrets_ships(leaky, run, shell, tmp_path, capsys):
    run("%mv_snapshot OPENAI_API_KEY client settings clf X y -m 'keys named'")
    capsys.readouterr()
    run(f"%mv_export v1 {tmp_path / 'shared.mvz'}")
    err = capsys.readouterr().err
    assert err.count("jupyter_mv warning: credentials withheld from the bundle shared.mvz") == 1
    for item in ("variable OPENAI_API_KEY", "variable client (client.api_key)",
                 "variable settings (settings['db']['password'])", "source of cell 1", "output of cell"):
        assert item in err, item
    assert "--include-secrets" in err and not leaks(err, leaky)
    members = bundle_bytes(tmp_path / "shared.mvz")
    assert any(m.startswith("blobs/") for m in members)
    for name, data in members.items():
        assert not leaks(data, leaky), name
    manifest = json.loads(members["manifest.json"])
    held = {w["name"]: w.get("where") for w in manifest["withheld"] if w["kind"] == "variable"}
    assert held == {"OPENAI_API_KEY": ["OPENAI_API_KEY"], "client": ["client.api_key"],
                    "settings": ["settings['db']['password']"]}
    assert {w["kind"] for w in manifest["withheld"]} >= {"variable", "source", "output"}
    assert [v["name"] for v in manifest["variables"]] == ["X", "clf", "y"]
    nb = json.loads(members["notebook.ipynb"])
    assert "OPENAI_API_KEY = 'sk-…****'" in "".join(c["source"] for c in nb["cells"])
    # the colleague's store imports it (schema check included) and has no credential
    other = Store(tmp_path / "colleague" / ".jupyter_mv")
    try:
        result = bundle.import_(other, tmp_path / "shared.mvz")
        imported = result.version
        assert "left out by the sender (credentials): OPENAI_API_KEY, client, settings" in result.summary_line()
        assert set(imported.variables) == {"X", "clf", "y"}
        assert not any(x.credential for x in other.variables(imported))
    finally:
        other.close()

    # --include-secrets: shipped on purpose, and marked on the other side
    run(f"%mv_export v1 {tmp_path / 'full.mvz'} --include-secrets")
    assert "withheld" not in capsys.readouterr().err
    blob = b"".join(bundle_bytes(tmp_path / "full.mvz").values())
    assert set(leaks(blob, leaky)) >= {leaky.openai, leaky.client_key, leaky.pg_password}
    other = Store(tmp_path / "colleague2" / ".jupyter_mv")
    try:
        imported = bundle.import_(other, tmp_path / "full.mvz").version
        marks = {x.name: x.credential for x in other.variables(imported)}
        assert marks["client"] == ("client.api_key",) and marks["clf"] == ()
    finally:
        other.close()


def test_export_api_and_cli_withhold_params_and_texts(tmp_path, fakes, monkeypatch):
    """A version whose params, message and tags hold credentials (made before this release, or
    imported): the API warns once and the CLI prints one line; --include-secrets ships them."""
    from jupyter_mv.errors import CredentialsWithheld

    st = Store(tmp_path / ".jupyter_mv")
    try:
        st.commit_version("nb.ipynb", [], params={"api_key": fakes.openai, "depth": 3, "endpoint": fakes.pg_url},
                          message=f"tried key {fakes.hf}", metrics={"acc": 0.5})
        with pytest.warns(CredentialsWithheld) as caught:
            api.export("v1", tmp_path / "a.mvz", notebook="nb.ipynb", store=st)
        assert len(caught) == 1
        text = str(caught[0].message)
        assert "param api_key" in text and "param endpoint" in text and "message" in text
        members = bundle_bytes(tmp_path / "a.mvz")
        assert not any(leaks(d, fakes) for d in members.values())
        man = json.loads(members["manifest.json"])
        assert man["version"]["params"] == {"depth": 3} and man["version"]["message"] == "tried key hf_…****"
        # the mlflow/bundle link: the content hash is the version's own
        assert man["version"]["content_hash"] == bundle.version_hash(st, st.resolve("nb.ipynb", "v1"))
    finally:
        st.close()
    r = cli_in_process("--store", tmp_path / ".jupyter_mv", "export", "v1", tmp_path / "b.mvz")
    assert r.returncode == 0
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("jupyter-mv export: warning: credentials withheld")
    assert not leaks(r.stdout + r.stderr, fakes)
    r = cli_in_process("--store", tmp_path / ".jupyter_mv", "export", "v1", tmp_path / "c.mvz", "--include-secrets")
    assert r.returncode == 0 and r.stderr == ""
    assert fakes.openai in bundle_bytes(tmp_path / "c.mvz")["manifest.json"].decode()


def test_old_bundles_without_withheld_still_import(tmp_path, session):
    session.namespace["a"] = [1, 2, 3]
    with Store(tmp_path / "s1") as st:
        api.take_snapshot(store=st)
        path = api.export("v1", tmp_path / "old.mvz", store=st)
    # rewrite as a bundle from before this field: no "withheld"
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    man = json.loads(members["manifest.json"])
    del man["withheld"]
    members["manifest.json"] = json.dumps(man).encode()
    old = tmp_path / "really-old.mvz"
    with zipfile.ZipFile(old, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    with Store(tmp_path / "s2") as other:
        assert bundle.import_(other, old).version.variables == ("a",)
    man["withheld"] = "everything"
    members["manifest.json"] = json.dumps(man).encode()
    with zipfile.ZipFile(tmp_path / "bad.mvz", "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    from jupyter_mv.errors import BundleError

    with Store(tmp_path / "s3") as other, pytest.raises(BundleError, match="withheld list is malformed"):
        bundle.import_(other, tmp_path / "bad.mvz")


def test_bundle_schema_documents_withheld(tmp_path, session, fakes):
    import jsonschema

    schema = json.loads((Path(api.__file__).parent / "schemas" / "bundle.schema.json").read_text())
    session.namespace.update({"TOKEN": fakes.hf, "w": [1.0, 2.0]})
    with Store(tmp_path / "s") as st:
        api.take_snapshot(["TOKEN", "w"], store=st)
        for include in (False, True):
            p = tmp_path / f"b{include}.mvz"
            with pytest.warns(UserWarning) if not include else _nothing():
                api.export("v1", p, store=st, include_secrets=include)
            with zipfile.ZipFile(p) as zf:
                jsonschema.validate(json.loads(zf.read("manifest.json")), schema)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- what is shown: CLI, widget -------------------------------------------------------------------
def test_cli_output_masks_credentials(leaky, run, tmp_path):
    run("%mv_snapshot OPENAI_API_KEY client clf -m 'keys named'")
    run(f"x_note = 1")
    run(f"%mv_snapshot clf -m 'used {leaky.hf}' --params \"{{'depth': 3}}\"")
    root = api.session().store().root
    for args in (["log"], ["log", "--json"], ["show", "v1"], ["show", "v1", "--json"], ["show", "v2", "--json"],
                 ["diff", "v1", "v2"], ["diff", "v1", "v2", "--json"]):
        r = cli_in_process("--store", root, *args)
        assert r.returncode == 0, (args, r.stderr)
        assert not leaks(r.stdout + r.stderr, leaky), args
    assert "hf_…****" in cli_in_process("--store", root, "log").stdout
    assert "holds a credential (client.api_key)" in cli_in_process("--store", root, "show", "v1").stdout


def test_widget_state_masks_credentials(leaky, run, tmp_path):
    from jupyter_mv.widgets import HistoryWidget

    run("%mv_snapshot OPENAI_API_KEY client clf -m 'keys named'")
    run(f"%mv_snapshot clf -m 'used {leaky.hf}'")
    w = HistoryWidget()
    try:
        ids = {r["label"]: r["id"] for r in w.rows}
        w.selected = [ids["v1"]]
        assert w.details["variables"]
        w.act("restore_outputs")
        w.selected = [ids["v1"], ids["v2"]]
        w.act("diff")
        w.selected = [ids["v2"]]
        w.act("tag", tag="checked")  # the tagged version comes back from the store: masked too
        w.selected = [ids["v1"]]
        msg = w.act("export", path=str(tmp_path / "w.mvz"))
        assert msg["kind"] == "warning" and "credentials withheld" in msg["text"]
        state = json.dumps({k: getattr(w, k) for k in ("rows", "details", "diff", "replay", "message", "chart")},
                           default=str, ensure_ascii=False)
        assert not leaks(state, leaky)
        assert "sk-…****" in state and "hf_…****" in state
        # a version made while the widget is open arrives masked too
        run(f"%mv_snapshot clf -m 'again {leaky.openai}'")
        assert not leaks(json.dumps(w.rows), leaky)
    finally:
        w.close()


# -- params are the ones that matter (issue 17) -----------------------------------------------------
NOTEBOOK_LIKE = """
import numpy as np
from sklearn.ensemble import RandomForestClassifier
N_EPOCHS = 3
MAX_DEPTH = 4
DATA_PATH = "data/train.csv"
clf = "RandomForestClassifier"            # a string that happens to be named clf
X = np.random.RandomState(0).rand(80, 4); y = (X[:, 0] > 0.5).astype(int)
for epoch in range(N_EPOCHS):
    for i in range(3):
        msg = f"epoch {epoch} step {i}"
clf = RandomForestClassifier(n_estimators=5, max_depth=MAX_DEPTH, random_state=0).fit(X, y)
acc = float(clf.score(X, y))
"""


def test_params_hold_hyperparameters_constants_and_named_only(shell, run):
    run(NOTEBOOK_LIKE)
    run("%mv_snapshot --metrics \"{'acc': acc}\" --params \"{'notes': 'first'}\"")
    v = api.resolve("v1")
    assert {"i", "epoch", "msg", "acc"}.isdisjoint(v.params)  # counters, messages, metrics: not params
    assert v.metrics == {"acc": pytest.approx(shell.user_ns["acc"])}
    assert v.params["n_estimators"] == 5 and v.params["max_depth"] == 4  # the estimator's get_params
    assert v.params["N_EPOCHS"] == 3 and v.params["MAX_DEPTH"] == 4 and v.params["DATA_PATH"] == "data/train.csv"
    assert v.params["notes"] == "first"
    assert "clf" not in v.params
    # a constant named like a metric is shown once, as the metric
    run("ACC = 0.5")
    run("%mv_snapshot clf --metrics \"{'ACC': 0.9}\"")
    assert "ACC" not in api.resolve("v2").params and api.resolve("v2").metrics == {"ACC": 0.9}
    run("%mv_snapshot clf --metrics \"{'acc': acc}\" --params \"{'acc': acc, 'seed': 0}\"")
    assert api.resolve("v3").params.get("seed") == 0 and "acc" not in api.resolve("v3").params


def test_torch_optimizer_hyperparameters_are_params(shell, run):
    run("import torch\nnet = torch.nn.Linear(3, 1)\nopt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)\n"
        "loss_value = 0.123\nstep = 10")
    run("%mv_snapshot net opt")
    p = api.resolve("v1").params
    assert p["lr"] == 0.05 and p["momentum"] == 0.9
    assert "loss_value" not in p and "step" not in p


def test_diff_shows_changed_params_first(shell, run, capsys):
    run(NOTEBOOK_LIKE)
    run("%mv_snapshot clf X -m one")
    run("MAX_DEPTH = 6\nclf = RandomForestClassifier(n_estimators=5, max_depth=MAX_DEPTH, random_state=0).fit(X, y)\n"
        "msg = 'changed too'")
    run("%mv_snapshot clf X -m two")
    text = str(api.diff("v1", "v2"))
    lines = text.splitlines()
    assert lines[1] == "params:"
    changed = {ln.split(":")[0].strip("~ ") for ln in lines[2:] if ln.startswith("  ~ ") and ":" in ln}
    assert {"max_depth", "MAX_DEPTH"} <= changed
    assert "msg" not in text.split("variables:")[0]  # no noise among the params


def test_diff_against_current_state_masks_and_skips_credentials(leaky, run):
    run("%mv_snapshot clf -m base")
    from jupyter_mv.widgets import HistoryWidget

    d = api.diff_current("v1")
    assert CREDENTIAL_VARS.isdisjoint(x["name"] for x in d.variables["added"])
    assert not leaks(json.dumps(d.to_dict(), default=str, ensure_ascii=False), leaky)
    assert HistoryWidget  # imported: the widget module loads alongside


def test_auto_snapshots_never_store_credentials(shell, run, fakes, capsys):
    run("%mv_auto on")
    run(f"SERVICE_TOKEN = '{fakes.hf}'\nrows = [1, 2]")
    err = capsys.readouterr().err
    assert "SERVICE_TOKEN" in err and not leaks(err, fakes)
    v = api.resolve("latest")
    assert "SERVICE_TOKEN" not in v.variables and "rows" in v.variables
    run("rows = [1, 2, 3]")  # warned once per session, not after every cell
    assert "SERVICE_TOKEN" not in capsys.readouterr().err
    run("%mv_auto off")


def test_scanning_stays_fast():
    data = {f"k{i}": f"value number {i}" for i in range(500)}
    t = time.perf_counter()
    credentials.scan_object("data", data)
    credentials.scan_object("data", data)  # the second snapshot hits the cache
    assert time.perf_counter() - t < 5


def test_reproduce_compares_rerun_outputs_masked_like_the_bundle(fakes):
    """A bundle's recorded output holds `sk-…****`; a re-run that prints the real key (read from the
    environment, say) matches it, and other differences are still seen."""
    from jupyter_mv.reproduce import texts_match

    recorded, _, _ = credentials.mask_cell(_cell(f"using {fakes.openai} for 3 calls\n"))
    text = recorded.outputs[0]["text"]
    assert text == "using sk-…**** for 3 calls\n"
    assert texts_match(text, f"using {fakes.openai} for 3 calls\n", 1e-9)
    assert not texts_match(text, f"using {fakes.openai} for 4 calls\n", 1e-9)


def _cell(stdout: str):
    from jupyter_mv.model import Cell

    return Cell(source="print(...)", execution_count=1, outputs=({"output_type": "stream", "name": "stdout",
                                                                  "text": stdout},))


def test_export_checks_unmarked_plain_variables(session, tmp_path, fakes):
    """A store written before the mark existed: plain data is searched at export (no unpickling)."""
    session.namespace.update({"cfg": {"db": fakes.pg_url, "depth": 3}, "w": [1.0, 2.0]})
    with Store(tmp_path / ".jupyter_mv") as st:
        api.take_snapshot(["cfg", "w"], store=st)
        with st.write():
            st.db.conn.execute("update variables set credential = 0, credential_where = ''")
        assert not any(x.credential for x in st.variables(st.resolve(api.current_notebook(st), "v1")))
        with pytest.warns(UserWarning, match=r"variable cfg \(cfg\['db'\]\)"):
            path = api.export("v1", tmp_path / "old.mvz", store=st)
    members = bundle_bytes(path)
    assert not any(leaks(d, fakes) for d in members.values())
    assert [v["name"] for v in json.loads(members["manifest.json"])["variables"]] == ["w"]


def test_masking_leaves_pictures_and_data_payloads_alone(fakes):
    import base64
    import os

    png = base64.b64encode(os.urandom(3000)).decode()
    icon = base64.b64encode(os.urandom(300)).decode()
    html = f'<table><tr><td>1</td></tr></table><img src="data:image/png;base64,{icon}"><p>key {fakes.openai}</p>'
    out = {"output_type": "display_data", "metadata": {},
           "data": {"text/html": html, "image/png": png, "application/vnd.plotly.v1+json": {"bdata": icon}}}
    masked, changed = credentials.mask_output(out)
    assert changed and fakes.openai not in masked["data"]["text/html"]
    assert icon in masked["data"]["text/html"] and masked["data"]["image/png"] == png
    assert masked["data"]["application/vnd.plotly.v1+json"] == {"bdata": icon}


def test_encoded_data_in_variables_is_not_a_credential():
    import base64
    import os

    assert credentials.scan_object("logo_b64", base64.b64encode(os.urandom(3000)).decode()) == []
    assert credentials.scan_object("page", "<img src='data:image/png;base64,"
                                   + base64.b64encode(os.urandom(200)).decode() + "'>") == []
    # shorter encoded data: longer than any key without a format of its own, or a file's signature
    assert credentials.scan_object("embedding", base64.b64encode(os.urandom(256)).decode()) == []
    pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    assert credentials.scan_object("thumb", pixel) == []
    assert credentials.scan_object("thumbs", {"a": pixel, "b": base64.b64encode(b"\xff\xd8\xff" + os.urandom(60)).decode()}) == []
    # keys are still found: a generic 64-character token, a long key of a known format, a long named one
    assert credentials.scan_object("blob", _rand(64))
    assert credentials.scan_object("k", "sk-proj-" + _rand(156))
    assert credentials.scan_object("API_KEY", _rand(300))


def test_notebook_defined_code_holding_a_key_is_a_credential(shell, run, fakes, tmp_path, capsys):
    """A notebook-defined function or class is pickled by value (cloudpickle): the string constants
    in its code, its defaults and closure go into the stored bytes. A key written as a literal there
    is a credential of the variable holding the function, the class or an instance of it."""
    run(f"class Fetcher:\n    def headers(self):\n        return {{'Authorization': 'Bearer {fakes.ghp}'}}\n"
        f"fetcher = Fetcher()\n"
        f"def call(prompt, key='{fakes.openai}'):\n    return prompt\n"
        f"def make():\n    token = '{fakes.hf}'\n    return lambda: token\nget_token = make()\n"
        f"def double(x):\n    'sha 9fceb02d0ae598e95dc970b74767f19372d61af8, run c8f1a2b9-1d2e-4f5a-9b8c-7d6e5f4a3b2c'\n"
        f"    return 2 * x\n"
        f"class Scaler:\n    FACTOR = 3\n    def __call__(self, x):\n        return x * self.FACTOR\nscale = Scaler()")
    capsys.readouterr()
    run("%mv_snapshot -m code")
    err = capsys.readouterr().err
    v = api.resolve("v1")
    assert {"double", "Scaler", "scale"} <= set(v.variables)  # code without a key is stored
    assert {"Fetcher", "fetcher", "call", "get_token"}.isdisjoint(v.variables)
    for name in ("Fetcher", "fetcher", "call", "get_token"):
        assert f"skipped {name!r}: holds a credential" in err, name
    assert not leaks(err, fakes)
    run("%mv_snapshot Fetcher call double -m named")
    marks = {x.name: x.credential for x in api.session().store().variables(api.resolve("v2"))}
    assert marks["Fetcher"] and marks["call"] and marks["double"] == ()
    for ref in ("v1", "v2"):
        run(f"%mv_export {ref} {tmp_path / ref}.mvz")
        for member, data in bundle_bytes(tmp_path / f"{ref}.mvz").items():
            assert not leaks(data, fakes), (ref, member)


def test_random_keys_holding_slashes_are_still_found():
    """The path filter keeps keys: random base64 secrets with several `/` have mixed-case segments."""
    alphabet = ALNUM + "+/"
    for _ in range(200):
        key = "".join(secrets.choice(alphabet) for _ in range(40))
        if key.count("/") >= 2:
            # (under a neutral name, detect-secrets' entropy limit of 4.5 misses some 2% of random keys: its limit, not the filter's)
            assert not credentials._path_like(key) and credentials.scan_object("AWS_SECRET_ACCESS_KEY", key), key


@pytest.mark.parametrize("template", [
    "%env AWS_SECRET_ACCESS_KEY={key}", "%env WANDB_API_KEY {key}", "%set_env DB_PASSWORD={pw}", "!export HF_TOKEN={key}",
    "%%bash\nexport API_KEY=\"{key}\"\necho done", "headers = {{'Authorization': 'Bearer {key}'}}",
    "!curl -H 'X-API-Key: {key}' https://api.example.com/v1/models",
])
def test_keys_set_without_python_quotes_are_masked(template):
    """IPython's %env, shell exports and HTTP headers set a key where detect-secrets' Python keyword
    rules do not look; generic random keys (no known prefix) are found there too."""
    key, pw = _rand(40), _rand(16)
    src = template.format(key=key, pw=pw)
    masked = credentials.mask_json(src, prose=False)
    assert key not in masked and pw not in masked and "****" in masked, masked


@pytest.mark.parametrize("line", [
    "%env CUDA_VISIBLE_DEVICES=0", "%env TOKENIZERS_PARALLELISM=false", "!export PATH=$PATH:/opt/conda/bin",
    "%env MLFLOW_TRACKING_URI=http://localhost:5000", "%env HF_HOME=/data/hf_cache", "%env WANDB_MODE=offline",
    "export PYTHONPATH=/home/jdoe/Projects/churn-model/src", "%env API_KEY=$OPENAI_API_KEY",
    "headers = {'Authorization': f'Bearer {token}'}", "print('token count', n_tokens)",
])
def test_env_and_header_lines_without_keys_are_left_alone(line):
    assert credentials.find_in_text(line) == []


def test_env_magic_key_never_reaches_the_bundle(shell, run, tmp_path, monkeypatch):
    """Neither from the cell's source nor from the `env: NAME=value` line %env prints."""
    key, pw = _rand(40), _rand(14)
    monkeypatch.setenv("WANDB_API_KEY", "")  # restored after the test
    monkeypatch.setenv("DB_PASSWORD", "")
    run(f"%env WANDB_API_KEY={key}")
    run(f"%env DB_PASSWORD={pw}")
    run("import numpy as np\nX = np.arange(6.0)")
    run("%mv_snapshot X")
    run(f"%mv_export v1 {tmp_path / 'env.mvz'}")
    for member, data in bundle_bytes(tmp_path / "env.mvz").items():
        assert key.encode() not in data and pw.encode() not in data, member


def test_namedtuple_fields_and_partial_arguments_are_searched():
    """A namedtuple's field names say what its items are; a functools.partial pickles its bound
    arguments: both are searched like attributes."""
    import collections
    import functools

    login = collections.namedtuple("Login", "user password")("analyst", _rand(14))
    found = credentials.scan_object("login", login)
    assert [f.where for f in found] == ["login.password"]
    key = _rand(32)
    found = credentials.scan_object("call", functools.partial(print, "hello", api_key=key))
    assert [f.where for f in found] == ["call.keywords['api_key']"] and found[0].value == key
    assert credentials.scan_object("point", collections.namedtuple("Point", "x y")(1.5, "north")) == []


def test_params_holding_credentials_inside_dicts(session, tmp_path, fakes):
    """A structured param (`{"conn": {"password": …}}`) is judged with the names inside it: not
    recorded by a snapshot; in a version that holds one (older store, imported), masked wherever it
    is shown and withheld from a bundle."""
    from jupyter_mv.errors import CredentialsWithheld

    session.namespace["x"] = 1
    with pytest.warns(UserWarning, match="param conn"):
        v = api.snapshot("x", params={"conn": {"user": "analyst", "password": fakes.pg_password},
                                      "opt": {"lr": 0.1, "name": "adam"}, "layers": [64, 32]})
    assert v.params == {"opt": {"lr": 0.1, "name": "adam"}, "layers": [64, 32]}
    st = Store(tmp_path / "old" / ".jupyter_mv")
    try:
        st.commit_version("nb.ipynb", [], params={"conn": {"user": "analyst", "password": fakes.pg_password},
                                                  "depth": 3}, message="", metrics={})
        shown = api.versions("nb.ipynb", store=st)[0].params
        assert shown == {"conn": {"user": "analyst", "password": "****"}, "depth": 3}
        assert not leaks(json.dumps(api.show("v1", notebook="nb.ipynb", store=st)), fakes)
        with pytest.warns(CredentialsWithheld, match="param conn"):
            api.export("v1", tmp_path / "a.mvz", notebook="nb.ipynb", store=st)
        members = bundle_bytes(tmp_path / "a.mvz")
        assert not any(leaks(d, fakes) for d in members.values())
        assert json.loads(members["manifest.json"])["version"]["params"] == {"depth": 3}
    finally:
        st.close()


def test_upper_case_passwords_are_not_taken_for_variable_names():
    assert credentials.scan_object("password", "ADMIN_2024")
    assert credentials.scan_object("API_KEY", "ABCDEF123456GHIJ")


def test_variables_stored_together_with_a_credential_are_withheld_too(shell, run, fakes, tmp_path, capsys):
    # `sess` holds no key itself, but shares an object with `client`, so both are pickled as one unit
    # (codecs.groups): shipping `sess` would ship that unit, the client's key inside it
    run("class Session:\n    def __init__(self):\n        self.retries = 3\n"
        "class Client:\n    def __init__(self, api_key, session):\n        self.api_key = api_key\n"
        "        self.session = session\n"
        f"client = Client('{fakes.client_key}', Session())\nsess = client.session\n"
        "import numpy as np\nX = np.arange(12.0)")
    run("%mv_snapshot client sess X -m 'a client and its session'")
    capsys.readouterr()
    run(f"%mv_export v1 {tmp_path / 'together.mvz'}")
    err = capsys.readouterr().err
    assert "variable client (client.api_key)" in err
    assert "variable sess (stored together with client, which holds a credential)" in err
    members = bundle_bytes(tmp_path / "together.mvz")
    for name, data in members.items():
        assert not leaks(data, fakes), name
    manifest = json.loads(members["manifest.json"])
    assert [v["name"] for v in manifest["variables"]] == ["X"]
    assert {w["name"] for w in manifest["withheld"] if w["kind"] == "variable"} == {"client", "sess"}
