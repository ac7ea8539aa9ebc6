"""Settings the Jupyter way (jupyter_mv/config.py): traits of `JupyterMV` set from a real IPython shell's
`%config`, a real kernel's `ipython_config.py` and a real Jupyter server's config reach the core; the
environment variables still override them; the lab extension's settings schema is served."""

from __future__ import annotations

import collections
import copy
import json
import math
import warnings

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from jupyter_mv import api, config
from jupyter_mv.config import ENV, JupyterMV
from jupyter_mv.errors import BundleError, Untrusted, UsageError
from jupyter_mv.server.location import locate
from jupyter_mv.store import Store, blobs
from mvtest import REPO

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PLUGIN_ID = "jupyter-mv-labextension:plugin"
TRAITS = sorted(JupyterMV.class_traits(config=True))


@pytest.fixture(autouse=True)
def _defaults(monkeypatch, request):
    """Every test starts from the defaults and leaves them: no JUPYTER_MV_* override, the shell's JupyterMV
    (it outlives the extension, as in a kernel) reset, the process-wide instance dropped."""
    for env in ENV.values():
        monkeypatch.delenv(env, raising=False)
    yield
    if "shell" in request.fixturenames:  # (the shell fixture hides the shared shell from InteractiveShell.instance)
        ip = request.getfixturevalue("_ipython")
        ip.config.pop("JupyterMV", None)
        for c in ip.configurables:
            if isinstance(c, JupyterMV):
                # its own copy of the config too: `%config` re-loads all of it at the next change
                kept = copy.deepcopy(c.config)
                kept.pop("JupyterMV", None)
                c.config = kept
                for name in TRAITS:
                    c.set_trait(name, c.trait_defaults(name))
    config.use(None)


def _chunks(st: Store, v, name: str) -> int:
    return len(st.stored_variable(v, name).manifest["buffers"][0]["c"])


# -- the traits themselves ----------------------------------------------------------------------
def test_every_trait_is_documented_configurable_and_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert set(TRAITS) >= {"store", "notebook", "chunk_size", "pack_max", "max_bundle_bytes", "auto_keep",
                           "trust_imported", "detect_credentials", "debug"}  # and any added since: all documented
    for name in TRAITS:
        trait = JupyterMV.class_traits()[name]
        assert len(trait.help) > 40, name
        row = next((ln for ln in section.splitlines() if ln.startswith(f"| `{name}`")), None)
        assert row is not None, f"README Configuration table lacks {name}"
        help_text = " ".join(trait.help.split())
        if name in ENV:
            assert ENV[name] in help_text and f"`{ENV[name]}`" in row, name
        else:
            assert "No environment variable" in help_text and row.split("|")[4].strip() == "—", name
    # `%config JupyterMV` lists them with their help (IPython reads class_config_section)
    assert "chunk_size" in JupyterMV.class_config_section() and "JUPYTER_MV_CHUNK" in JupyterMV.class_config_section()


def test_defaults_are_todays_behaviour():
    s = config.current()
    assert (s.store, s.notebook, s.chunk_size, s.pack_max, s.max_bundle_bytes, s.auto_keep) == \
        ("", "", 4 * 1024 ** 2, 256 * 1024, 64 * 1024 ** 3, 0)
    assert (s.trust_imported, s.detect_credentials, s.debug, s.map_restores) == (False, True, False, True)
    assert blobs.CHUNK == 4 * 1024 ** 2 and blobs.PACK_MAX == 256 * 1024  # the old constants' names still read


def test_env_overrides_the_trait_and_a_bad_value_is_one_line(monkeypatch):
    cfg = JupyterMV(chunk_size=65536, store="/from/trait")
    config.use(cfg)
    assert config.current().chunk_size == 65536 and config.current().source("chunk_size") == "JupyterMV.chunk_size"
    monkeypatch.setenv("JUPYTER_MV_CHUNK", "131072")
    monkeypatch.setenv("JUPYTER_MV_STORE", "/from/env")
    assert config.current().chunk_size == 131072 and config.current().source("chunk_size") == "JUPYTER_MV_CHUNK"
    assert config.current().store == "/from/env"
    monkeypatch.setenv("JUPYTER_MV_CHUNK", "")  # empty is unset
    assert config.current().chunk_size == 65536
    for bad, why in (("4MB", "not a whole number of bytes"), ("0", "at least 1")):
        monkeypatch.setenv("JUPYTER_MV_CHUNK", bad)
        with pytest.raises(UsageError, match=f"JUPYTER_MV_CHUNK='{bad}' .*{why}.*unset it") as e:
            config.current().chunk_size
        assert "\n" not in str(e.value)
    monkeypatch.setenv("JUPYTER_MV_DEBUG", "0")
    config.use(JupyterMV(debug=True))
    assert config.current().debug is False  # '0' means off (any other value on, as before)
    monkeypatch.setenv("JUPYTER_MV_DEBUG", "1")
    assert config.current().debug is True


def test_setting_a_trait_the_environment_overrides_warns(monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_PACK_MAX", "1024")
    with pytest.warns(UserWarning, match=r"JupyterMV.pack_max = 0 has no effect while .*JUPYTER_MV_PACK_MAX"):
        JupyterMV(pack_max=0)
    monkeypatch.delenv("JUPYTER_MV_PACK_MAX")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        JupyterMV(pack_max=0)


def test_invalid_trait_values_are_refused():
    from traitlets import TraitError

    with pytest.raises(TraitError):
        JupyterMV(chunk_size=0)
    with pytest.raises(TraitError):
        JupyterMV(auto_keep=-1)


def test_numbers_out_of_range_bools_and_nan_are_refused_by_trait_and_env(monkeypatch):
    """lease_ttl = inf / 1e300 crashed the push lease's refresh thread (OverflowError) and would block
    remote gc for ever; chunk_size > 1 GiB makes chunks every pull and bundle import refuses."""
    from traitlets import TraitError

    for kw in ({"lease_ttl": math.inf}, {"lease_ttl": math.nan}, {"lease_ttl": 1e300},
               {"chunk_size": 2**62}, {"chunk_size": True}, {"auto_keep": True}, {"undo_depth": False}):
        with pytest.raises(TraitError):
            JupyterMV(**kw)
    assert JupyterMV(lease_ttl=7 * 86400.0).lease_ttl == 604800.0 and JupyterMV(chunk_size=2**30).chunk_size == 2**30
    config.use(JupyterMV())
    for env, bad, why in (("JUPYTER_MV_LEASE_TTL", "1e300", "at most 604800"),
                          ("JUPYTER_MV_LEASE_TTL", "nan", "at least 1"),
                          ("JUPYTER_MV_CHUNK", str(2**31), "at most 1073741824")):
        monkeypatch.setenv(env, bad)
        name = "lease_ttl" if env.endswith("TTL") else "chunk_size"
        with pytest.raises(UsageError, match=f"{env}='{bad}' must be .*{why}.*unset it") as e:
            getattr(config.current(), name)
        assert "\n" not in str(e.value)
        monkeypatch.delenv(env)


def test_percent_config_lease_ttl_inf_is_refused_and_push_still_works(shell, run, tmp_path, capsys):
    run("%load_ext jupyter_mv")
    api.remote_add("team", str(tmp_path / "remote"))
    run("%config JupyterMV.lease_ttl = float('inf')")
    run("%config JupyterMV.lease_ttl = float('nan')")
    assert config.current().lease_ttl == 120.0
    shell.user_ns["w"] = np.arange(3.0)
    run("%mv_snapshot w")
    run("%mv_push")
    out = capsys.readouterr()
    assert "pushed" in out.out and "Traceback" not in out.err + out.out


# -- kernel side: a real IPython shell ----------------------------------------------------------
def test_percent_config_changes_the_next_snapshots_chunking(shell, monkeypatch):
    shell.user_ns["x"] = np.arange(300_000, dtype=np.float64)  # 2.4 MB: one 4 MiB chunk by default
    st = api.session().store()
    shell.run_line_magic("mv_snapshot", "x -m default")
    assert _chunks(st, api.versions()[-1], "x") == 1
    shell.run_line_magic("config", "JupyterMV.chunk_size = 262144")
    shell.user_ns["x"] = shell.user_ns["x"] + 1
    shell.run_line_magic("mv_snapshot", "x -m small")
    v = api.versions()[-1]
    assert _chunks(st, v, "x") == math.ceil(2_400_000 / 262144) == 10
    assert np.array_equal(api.load(v, "x"), np.arange(300_000) + 1.0)
    # `%config JupyterMV` lists the class (the shell knows it) and the value
    assert any(isinstance(c, JupyterMV) and c.chunk_size == 262144 for c in shell.configurables)
    # the environment variable overrides the trait, at the next snapshot
    monkeypatch.setenv("JUPYTER_MV_CHUNK", "1048576")
    shell.user_ns["x"] = shell.user_ns["x"] + 1
    shell.run_line_magic("mv_snapshot", "x -m env")
    assert _chunks(st, api.versions()[-1], "x") == 3
    # versions cut at other sizes still restore exactly
    assert np.array_equal(api.load("v1", "x"), np.arange(300_000, dtype=np.float64))


def test_percent_config_store_and_notebook(shell, tmp_path):
    shell.run_line_magic("config", f"JupyterMV.store = {str(tmp_path / 'elsewhere' / 'st')!r}")
    shell.run_line_magic("config", "JupyterMV.notebook = 'work/train.ipynb'")
    shell.user_ns["a"] = 1
    shell.run_line_magic("mv_snapshot", "a")
    st = Store(tmp_path / "elsewhere" / "st", create=False)
    try:
        (v,) = st.versions()
        assert v.notebook == "work/train.ipynb"
    finally:
        st.close()
    assert not (tmp_path / ".jupyter_mv").exists()


def test_percent_config_auto_keep_is_the_default_retention(shell, run):
    shell.run_line_magic("config", "JupyterMV.auto_keep = 2")
    shell.run_line_magic("mv_auto", "on")
    for i in range(5):
        run(f"a = {i}")
    assert [v.kind for v in api.versions()] == ["auto", "auto"]
    assert api.load("latest", "a") == 4
    shell.run_line_magic("mv_auto", "on --keep 3")  # the magic's --keep wins for the session
    for i in range(5, 9):
        run(f"a = {i}")
    assert len(api.versions()) == 3
    shell.run_line_magic("mv_auto", "off")


def test_percent_config_detect_credentials(shell, capsys):
    key = "sk-proj-" + "Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3"
    shell.user_ns.update(api_key=key, n=1)
    shell.run_line_magic("mv_snapshot", "")
    assert api.versions()[-1].variables == ("n",) or "api_key" not in api.versions()[-1].variables
    shell.run_line_magic("config", "JupyterMV.detect_credentials = False")
    shell.run_line_magic("mv_snapshot", "")
    assert "api_key" in api.versions()[-1].variables
    assert api.load("latest", "api_key") == key


def test_percent_config_debug(shell, monkeypatch):
    from IPython.core.error import UsageError as IPythonUsageError

    from jupyter_mv.widgets.messages import error_text

    shell.user_ns["a"] = 1
    shell.run_line_magic("mv_snapshot", "a")
    monkeypatch.setattr(api, "show", lambda *a, **k: (_ for _ in ()).throw(KeyError("bug")))
    with pytest.raises(IPythonUsageError, match="internal error KeyError"):
        shell.run_line_magic("mv_show", "v1")
    shell.run_line_magic("config", "JupyterMV.debug = True")
    with pytest.raises(KeyError):  # the traceback shows
        shell.run_line_magic("mv_show", "v1")
    try:
        1 / 0
    except ZeroDivisionError as e:
        assert "Traceback" in error_text(e)  # the widgets' translator follows it too
    monkeypatch.setenv("JUPYTER_MV_DEBUG", "off")  # the env var overrides the trait
    with pytest.raises(IPythonUsageError, match="internal error KeyError"):
        shell.run_line_magic("mv_show", "v1")


def test_trust_policy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "nb.ipynb")
    api.set_session(api.Session(namespace={"c": collections.Counter("abca"), "arr": np.arange(5000.0)}))
    a = Store(tmp_path / "alice" / ".jupyter_mv")
    b = Store(tmp_path / "bob" / ".jupyter_mv")
    try:
        v = api.take_snapshot(store=a).version
        bundle = api.export(v, tmp_path / "c.mvz", store=a)
        w = api.import_bundle(bundle, store=b).version
        with pytest.raises(Untrusted, match="--trust"):
            api.load(w, "c", store=b)  # default: imported data is untrusted
        config.use(JupyterMV(trust_imported=True))
        assert api.load(w, "c", store=b) == collections.Counter("abca")
    finally:
        a.close()
        b.close()


def test_max_bundle_bytes_is_read_at_import_time_of_the_bundle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "nb.ipynb")
    api.set_session(api.Session(namespace={"arr": np.arange(50_000.0)}))
    a = Store(tmp_path / "alice" / ".jupyter_mv")
    b = Store(tmp_path / "bob" / ".jupyter_mv")
    try:
        bundle = api.export(api.take_snapshot(store=a).version, tmp_path / "a.mvz", store=a)
        config.use(JupyterMV(max_bundle_bytes=100_000))  # the array alone is 400 kB
        with pytest.raises(BundleError, match=r"more than the 100000 allowed .*JupyterMV.max_bundle_bytes"):
            api.import_bundle(bundle, store=b)
        assert b.versions() == []
        monkeypatch.setenv("JUPYTER_MV_MAX_BUNDLE_BYTES", str(10 * 1024 ** 2))  # the env var overrides the trait
        w = api.import_bundle(bundle, store=b).version
        assert np.array_equal(api.load(w, "arr", store=b), np.arange(50_000.0))
    finally:
        a.close()
        b.close()


# -- kernel side: ipython_config.py in a real kernel ----------------------------------------------
@pytest.mark.kernel
@pytest.mark.slow
def test_ipython_config_file_reaches_the_core_in_a_real_kernel(tmp_path, monkeypatch):
    ipdir = tmp_path / "ipython"
    (ipdir / "profile_default").mkdir(parents=True)
    store = tmp_path / "configured" / ".jupyter_mv"
    (ipdir / "profile_default" / "ipython_config.py").write_text(
        f"c.JupyterMV.chunk_size = 262144\nc.JupyterMV.store = {str(store)!r}\n"
        "c.JupyterMV.notebook = 'from_config.ipynb'\n")
    monkeypatch.setenv("IPYTHONDIR", str(ipdir))
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (
        "%load_ext jupyter_mv\nimport numpy as np\nx = np.arange(300_000, dtype=np.float64)",
        "%mv_snapshot x",
        "%config JupyterMV.chunk_size = 1048576\nx = x + 1",
        "%mv_snapshot x",
        "%config JupyterMV",
    )]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    listing = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "JupyterMV" in listing and "chunk_size" in listing
    st = Store(store, create=False)
    try:
        v1, v2 = st.versions("from_config.ipynb")
        assert _chunks(st, v1, "x") == 10  # 2.4 MB at 256 KiB, from ipython_config.py
        assert _chunks(st, v2, "x") == 3  # 1 MiB, from %config in the same kernel
    finally:
        st.close()
    assert not (work / ".jupyter_mv").exists()


# -- server side ---------------------------------------------------------------------------------
def test_location_reads_the_server_trait_and_env_overrides_it(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    cfg = JupyterMV(store=str(tmp_path / ".jupyter_mv"))  # one store for the whole tree
    loc = locate(tmp_path, "sub/nb.ipynb", cfg)
    assert loc.store == tmp_path / ".jupyter_mv" and loc.key == "sub/nb.ipynb"
    assert locate(tmp_path, "sub/nb.ipynb").store == tmp_path / "sub" / ".jupyter_mv"  # default: beside it
    monkeypatch.setenv("JUPYTER_MV_STORE", str(tmp_path / "sub" / ".jupyter_mv"))
    loc = locate(tmp_path, "sub/nb.ipynb", cfg)
    assert loc.store == tmp_path / "sub" / ".jupyter_mv" and loc.key == "nb.ipynb"


@pytest.fixture
def central(tmp_path):
    return tmp_path / "central" / ".jupyter_mv"


@pytest.fixture
def jp_server_config(central):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mv": True}}, "JupyterMV": {"store": str(central)}}


async def test_jupyter_server_config_reaches_location(jp_fetch, jp_root_dir, central):
    (jp_root_dir / "proj").mkdir()
    (jp_root_dir / "proj" / "nb.ipynb").write_text("{}")
    s = api.Session(namespace={"x": 1})
    s.told_notebook = str(jp_root_dir / "proj" / "nb.ipynb")
    api.set_session(s)
    st = api.open_store(central)
    try:
        api.take_snapshot(message="central", store=st)
    finally:
        st.close()
        api.set_session(None)
    r = await jp_fetch("jupyter-mv", "api", "versions", params={"notebook": "proj/nb.ipynb"})
    body = json.loads(r.body)
    assert [v["message"] for v in body["versions"]] == ["central"]
    assert not (jp_root_dir / "proj" / ".jupyter_mv").exists()


# -- JupyterLab settings schema ------------------------------------------------------------------
def test_lab_settings_schema_is_declared_and_built():
    pkg = json.loads((REPO / "labextension" / "package.json").read_text())
    assert pkg["jupyterlab"]["schemaDir"] == "schema"
    schema = json.loads((REPO / "labextension" / "schema" / "plugin.json").read_text())
    assert set(schema["properties"]) == {"showAutomaticVersions", "refreshInterval"}
    for prop in schema["properties"].values():
        assert prop["title"] and prop["description"] and "default" in prop
    src = (REPO / "labextension" / "src" / "index.ts").read_text()
    assert f"const PLUGIN_ID = '{PLUGIN_ID}'" in src and "settingRegistry" in src
    built = REPO / "jupyter_mv" / "labextension" / "schemas" / "jupyter-mv-labextension" / "plugin.json"
    assert json.loads(built.read_text()) == schema, "rebuild the lab extension (cd labextension && npm run build)"


@pytest.mark.slow
def test_lab_serves_the_settings_schema(tmp_path):
    """A real `jupyter lab` answers /lab/api/settings/<plugin id> with the schema and its defaults."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_MV_")}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"))
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                             "--IdentityProvider.token=t", f"--ServerApp.root_dir={tmp_path}", "--allow-root"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/lab/api/settings/{PLUGIN_ID}?token=t"
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert body["id"] == PLUGIN_ID
    assert body["schema"]["properties"]["showAutomaticVersions"]["default"] is True
    assert body["schema"]["properties"]["refreshInterval"]["default"] == 5
