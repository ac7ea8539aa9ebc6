"""The jupyter_server extension's REST API, against a real server (pytest-jupyter) and real store
files written through jupyter_mv.api."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import tornado.httpclient

from jupyter_mv import api, capture
from jupyter_mv.server.handlers import MAX_BODY, ROUTES
from jupyter_mv.server.location import PathRefused, locate

pytest_plugins = ["pytest_jupyter.jupyter_server"]

REPO = Path(__file__).resolve().parent.parent
OPENAPI = REPO / "jupyter_mv" / "server" / "openapi.yaml"


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mv": True}}}


def make_history(directory: Path, notebook: str = "nb.ipynb", store: Path | None = None) -> Path:
    """Two versions of `notebook` in the store beside it (or `store`): v1 and v2 (tagged best)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / notebook).write_text("{}")
    log = capture.CellLog()
    log.start("x = 1\nprint(x)", 1, "cell-a")
    log.add({"output_type": "stream", "name": "stdout", "text": "1\n"})
    s = api.Session(namespace={"x": 1, "depth": 3}, cell_log=log)
    s.told_notebook = str(directory / notebook)
    api.set_session(s)
    st = api.open_store(store or directory / ".jupyter_mv")
    try:
        api.take_snapshot(message="first", params={"depth": 3}, metrics={"acc": 0.5}, store=st)
        s.namespace["x"] = 2
        log.start("x = 2\nprint(x)", 2, "cell-a")
        log.add({"output_type": "stream", "name": "stdout", "text": "2\n"})
        api.take_snapshot(message="second", params={"depth": 5}, metrics={"acc": 0.75}, tags=["best"], store=st)
    finally:
        st.close()
        api.set_session(None)
    return st.root


async def fetch_json(jp_fetch, *parts, **kw):
    r = await jp_fetch("jupyter-mv", "api", *parts, **kw)
    assert r.headers["Content-Type"].startswith("application/json")
    return r.code, json.loads(r.body)


async def fetch_error(jp_fetch, *parts, **kw) -> tuple[int, dict]:
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_fetch("jupyter-mv", "api", *parts, **kw)
    resp = e.value.response
    assert resp.headers["Content-Type"].startswith("application/json")
    body = json.loads(resp.body)
    assert isinstance(body.get("message"), str) and body["message"]
    return e.value.code, body


# -- the extension is loaded ----------------------------------------------------------------------
def test_extension_is_enabled(jp_serverapp):
    assert "jupyter_mv" in jp_serverapp.extension_manager.extensions
    assert jp_serverapp.extension_manager.extensions["jupyter_mv"].enabled


def test_core_does_not_import_the_server():
    import subprocess
    import sys

    code = "import jupyter_mv, jupyter_mv.api, sys; print('tornado' in sys.modules, 'jupyter_server' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_server_config_file_enables_the_extension():
    cfg = json.loads((REPO / "jupyter-config" / "server-config" / "jupyter_mv.json").read_text())
    assert cfg["ServerApp"]["jpserver_extensions"]["jupyter_mv"] is True


# -- reads ----------------------------------------------------------------------------------------
async def test_version_handshake(jp_fetch):
    import jupyter_mv

    code, body = await fetch_json(jp_fetch, "version")
    assert code == 200
    assert body == {"name": "jupyter_mv", "version": jupyter_mv.__version__, "api": 1}


async def test_versions_lists_a_notebooks_history(jp_fetch, jp_root_dir):
    make_history(jp_root_dir)
    code, body = await fetch_json(jp_fetch, "versions", params={"notebook": "nb.ipynb"})
    assert code == 200
    assert body["notebook"] == "nb.ipynb" and body["key"] == "nb.ipynb"
    vs = body["versions"]
    assert [v["id"] for v in vs] == ["v1", "v2"]
    v1, v2 = vs
    for field in ("id", "name", "message", "created", "tags", "params", "metrics", "variables", "bytes", "parent"):
        assert field in v1
    assert v1["message"] == "first" and v1["metrics"] == {"acc": 0.5} and v1["params"]["depth"] == 3
    assert v2["tags"] == ["best"] and v2["parent"] == "v1"
    assert set(v1["variables"]) == {"x", "depth"}


async def test_versions_of_a_notebook_in_a_subdirectory(jp_fetch, jp_root_dir):
    make_history(jp_root_dir / "sub" / "dir", "deep.ipynb")
    code, body = await fetch_json(jp_fetch, "versions", params={"notebook": "sub/dir/deep.ipynb"})
    assert code == 200 and body["key"] == "deep.ipynb"
    assert [v["id"] for v in body["versions"]] == ["v1", "v2"]
    # the same name at the root has no history
    code, body = await fetch_json(jp_fetch, "versions", params={"notebook": "deep.ipynb"})
    assert code == 200 and body["versions"] == []


async def test_versions_without_a_store_is_an_empty_list(jp_fetch, jp_root_dir):
    code, body = await fetch_json(jp_fetch, "versions", params={"notebook": "never.ipynb"})
    assert code == 200 and body["versions"] == []
    assert not (jp_root_dir / ".jupyter_mv").exists()  # reading does not create a store


async def test_versions_of_an_unknown_notebook_in_a_store(jp_fetch, jp_root_dir):
    make_history(jp_root_dir)
    code, body = await fetch_json(jp_fetch, "versions", params={"notebook": "other.ipynb"})
    assert code == 200 and body["versions"] == []


async def test_versions_honours_jupyter_mv_store(jp_fetch, jp_root_dir, monkeypatch):
    shared = jp_root_dir / "shared-store"
    make_history(jp_root_dir / "proj", "nb.ipynb", store=shared)
    monkeypatch.setenv("JUPYTER_MV_STORE", str(shared))
    code, body = await fetch_json(jp_fetch, "versions", params={"notebook": "proj/nb.ipynb"})
    assert code == 200 and body["key"] == "proj/nb.ipynb"
    assert [v["id"] for v in body["versions"]] == ["v1", "v2"]


async def test_version_details_include_cells_and_outputs(jp_fetch, jp_root_dir):
    make_history(jp_root_dir)
    code, body = await fetch_json(jp_fetch, "versions", "v1", params={"notebook": "nb.ipynb"})
    assert code == 200 and body["id"] == "v1"
    assert body["cells"][0]["cell_id"] == "cell-a"
    assert body["cells"][0]["outputs"][0]["text"] == "1\n"
    assert {v["name"] for v in body["variables"]} == {"x", "depth"}
    assert "python" in body["environment"]
    for ref in ("best", "latest", "2", "v2"):
        code, body = await fetch_json(jp_fetch, "versions", ref, params={"notebook": "nb.ipynb"})
        assert body["id"] == "v2", ref


async def test_unknown_version_is_404(jp_fetch, jp_root_dir):
    make_history(jp_root_dir)
    code, body = await fetch_error(jp_fetch, "versions", "v9", params={"notebook": "nb.ipynb"})
    assert code == 404 and "v9" in body["message"]
    code, body = await fetch_error(jp_fetch, "versions", "v1", params={"notebook": "other.ipynb"})
    assert code == 404


async def test_errors_are_answered_with_the_status_they_carry(jp_fetch, jp_root_dir, monkeypatch):
    """One translator (handlers.error_reply): the exception class decides the status, for every
    handler; no table in the server. A bug (not an MVError) stays jupyter_server's 500."""
    from jupyter_mv import errors

    make_history(jp_root_dir)
    monkeypatch.setattr(errors.UnknownRef, "status", 410)
    code, body = await fetch_error(jp_fetch, "versions", "v9", params={"notebook": "nb.ipynb"})
    assert code == 410 and "v9" in body["message"]
    code, _ = await fetch_error(jp_fetch, "diff", params={"notebook": "nb.ipynb", "a": "v1", "b": "v9"})
    assert code == 410
    code, _ = await fetch_error(jp_fetch, "tags", method="POST",
                                body=json.dumps({"notebook": "nb.ipynb", "version": "v9", "tag": "t"}))
    assert code == 410
    for raised, status in [(errors.UsageError("bad"), 400), (errors.Untrusted("no"), 500),
                           (errors.ApiError(409, "conflict"), 409), (errors.PathRefused(403, "out"), 403)]:
        def fail(*a, _e=raised, **k):
            raise _e
        monkeypatch.setattr(api, "versions", fail)
        code, body = await fetch_error(jp_fetch, "versions", params={"notebook": "nb.ipynb"})
        assert (code, body["message"]) == (status, str(raised))
    monkeypatch.setattr(api, "versions", lambda *a, **k: 1 / 0)
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_fetch("jupyter-mv", "api", "versions", params={"notebook": "nb.ipynb"})
    assert e.value.code == 500 and "ZeroDivisionError" not in e.value.response.body.decode()


async def test_unknown_notebook_details_is_404(jp_fetch):
    code, body = await fetch_error(jp_fetch, "versions", "v1", params={"notebook": "nothing.ipynb"})
    assert code == 404
    code, body = await fetch_error(jp_fetch, "diff", params={"notebook": "nothing.ipynb", "a": "v1", "b": "v2"})
    assert code == 404


@pytest.mark.parametrize("ref", ["x" * 300, "bad\x01id", "a\\b"])
async def test_malformed_version_id_is_400(jp_fetch, jp_root_dir, ref):
    make_history(jp_root_dir)
    code, _ = await fetch_error(jp_fetch, "versions", ref, params={"notebook": "nb.ipynb"})
    assert code == 400
    if "\x01" not in ref:  # tornado turns control characters in query arguments into spaces
        code, _ = await fetch_error(jp_fetch, "diff", params={"notebook": "nb.ipynb", "a": ref, "b": "v2"})
        assert code == 400


async def test_diff(jp_fetch, jp_root_dir):
    make_history(jp_root_dir)
    code, body = await fetch_json(jp_fetch, "diff", params={"notebook": "nb.ipynb", "a": "v1", "b": "v2"})
    assert code == 200 and body["a"] == "v1" and body["b"] == "v2" and body["schema"] == 1
    assert body["params"]["changed"]["depth"] == [3, 5]
    assert body["metrics"]["changed"]["acc"]["new"] == 0.75
    assert [c["name"] for c in body["variables"]["changed"]] == ["x"]
    assert any(c["status"] != "same" for c in body["cells"])


async def test_diff_needs_both_versions(jp_fetch, jp_root_dir):
    make_history(jp_root_dir)
    code, body = await fetch_error(jp_fetch, "diff", params={"notebook": "nb.ipynb", "a": "v1"})
    assert code == 400 and "'b'" in body["message"]
    code, _ = await fetch_error(jp_fetch, "diff", params={"notebook": "nb.ipynb", "a": "v1", "b": "v7"})
    assert code == 404


async def test_notebook_parameter_is_required(jp_fetch):
    code, _ = await fetch_error(jp_fetch, "versions")
    assert code == 400


# -- changes --------------------------------------------------------------------------------------
async def test_tag_and_untag(jp_fetch, jp_root_dir):
    make_history(jp_root_dir)
    body = json.dumps({"notebook": "nb.ipynb", "version": "v1", "tag": "baseline"})
    code, got = await fetch_json(jp_fetch, "tags", method="POST", body=body)
    assert code == 200 and got["version"]["id"] == "v1" and got["version"]["tags"] == ["baseline"]
    code, got = await fetch_json(jp_fetch, "versions", "baseline", params={"notebook": "nb.ipynb"})
    assert got["id"] == "v1"
    body = json.dumps({"notebook": "nb.ipynb", "version": "v1", "tag": "baseline", "remove": True})
    code, got = await fetch_json(jp_fetch, "tags", method="POST", body=body)
    assert got["version"]["tags"] == []


@pytest.mark.parametrize("body, status", [
    ("not json", 400),
    ("[1, 2]", 400),
    (json.dumps({"notebook": "nb.ipynb", "version": "v1"}), 400),
    (json.dumps({"notebook": "nb.ipynb", "version": "v1", "tag": "has space"}), 400),
    (json.dumps({"notebook": "nb.ipynb", "version": "v1", "tag": "v3"}), 400),
    (json.dumps({"notebook": "nb.ipynb", "version": "v8", "tag": "ok"}), 404),
    (json.dumps({"notebook": "../nb.ipynb", "version": "v1", "tag": "ok"}), 403),
])
async def test_bad_tag_requests(jp_fetch, jp_root_dir, body, status):
    make_history(jp_root_dir)
    code, _ = await fetch_error(jp_fetch, "tags", method="POST", body=body)
    assert code == status


async def test_rename_keeps_history(jp_fetch, jp_root_dir):
    make_history(jp_root_dir / "d", "old.ipynb")
    body = json.dumps({"old": "d/old.ipynb", "new": "d/new.ipynb"})
    code, got = await fetch_json(jp_fetch, "rename", method="POST", body=body)
    assert code == 200 and got["renamed"] is True and got["key"] == "new.ipynb"
    _, got = await fetch_json(jp_fetch, "versions", params={"notebook": "d/new.ipynb"})
    assert [v["id"] for v in got["versions"]] == ["v1", "v2"]
    _, got = await fetch_json(jp_fetch, "versions", params={"notebook": "d/old.ipynb"})
    assert got["versions"] == []
    # nothing to move: fine, says so
    code, got = await fetch_json(jp_fetch, "rename", method="POST", body=json.dumps({"old": "x.ipynb", "new": "y.ipynb"}))
    assert code == 200 and got["renamed"] is False


async def test_rename_conflicts_are_409(jp_fetch, jp_root_dir):
    make_history(jp_root_dir, "a.ipynb")
    make_history(jp_root_dir, "b.ipynb")
    code, _ = await fetch_error(jp_fetch, "rename", method="POST", body=json.dumps({"old": "a.ipynb", "new": "b.ipynb"}))
    assert code == 409
    code, _ = await fetch_error(jp_fetch, "rename", method="POST",
                                body=json.dumps({"old": "a.ipynb", "new": "elsewhere/a.ipynb"}))
    assert code == 409


async def test_large_bodies_are_refused(jp_fetch, jp_root_dir):
    make_history(jp_root_dir)
    big = json.dumps({"notebook": "nb.ipynb", "version": "v1", "tag": "t", "pad": "x" * (MAX_BODY + 10)})
    code, body = await fetch_error(jp_fetch, "tags", method="POST", body=big)
    assert code == 413


# -- security -------------------------------------------------------------------------------------
ALL_REQUESTS = [
    ("GET", ("version",), None),
    ("GET", ("versions",), {"notebook": "nb.ipynb"}),
    ("GET", ("versions", "v1"), {"notebook": "nb.ipynb"}),
    ("GET", ("diff",), {"notebook": "nb.ipynb", "a": "v1", "b": "v2"}),
    ("GET", ("variable-history",), {"notebook": "nb.ipynb", "name": "x"}),
    ("POST", ("tags",), None),
    ("POST", ("rename",), None),
    ("GET", ("remote",), {"notebook": "nb.ipynb"}),  # remotes: tests/test_server_remotes.py
    ("POST", ("push",), None),
    ("POST", ("pull",), None),
]


def test_every_route_has_a_request_here():
    assert len(ALL_REQUESTS) == len(ROUTES)


@pytest.mark.parametrize("method, parts, params", ALL_REQUESTS)
async def test_unauthenticated_requests_are_refused(jp_fetch, jp_root_dir, method, parts, params):
    make_history(jp_root_dir)
    body = json.dumps({"notebook": "nb.ipynb", "version": "v1", "tag": "t", "old": "nb.ipynb", "new": "n.ipynb"})
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_fetch("jupyter-mv", "api", *parts, params=params, method=method,
                       body=body if method == "POST" else None, headers={"Authorization": ""})
    assert e.value.code in (401, 403)
    # and nothing changed
    _, got = await fetch_json(jp_fetch, "versions", params={"notebook": "nb.ipynb"})
    assert got["versions"][0]["tags"] == [] and len(got["versions"]) == 2


@pytest.mark.parametrize("notebook, status", [
    ("../outside.ipynb", 403),
    ("sub/../../outside.ipynb", 403),
    ("/etc/passwd", 400),
    ("~/nb.ipynb", 400),
    ("C:/x.ipynb", 400),
    ("", 400),
])
async def test_path_traversal_is_refused(jp_fetch, jp_root_dir, notebook, status):
    make_history(jp_root_dir.parent, "outside.ipynb")
    code, _ = await fetch_error(jp_fetch, "versions", params={"notebook": notebook})
    assert code == status
    if notebook:
        code, _ = await fetch_error(jp_fetch, "versions", "v1", params={"notebook": notebook})
        assert code == status


async def test_symlink_out_of_the_root_is_refused(jp_fetch, jp_root_dir, tmp_path):
    outside = make_history(tmp_path / "elsewhere").parent
    os.symlink(outside, jp_root_dir / "link")
    code, _ = await fetch_error(jp_fetch, "versions", params={"notebook": "link/nb.ipynb"})
    assert code == 403


def test_locate_maps_paths_to_stores(tmp_path):
    loc = locate(tmp_path, "a/b/nb.ipynb")
    assert loc.store == (tmp_path / "a" / "b" / ".jupyter_mv").resolve() and loc.key == "nb.ipynb"
    assert locate(tmp_path, "./a//nb.ipynb").path == "a/nb.ipynb"
    with pytest.raises(PathRefused) as e:
        locate(tmp_path, "a/../../x")
    assert e.value.status == 403


# -- documentation --------------------------------------------------------------------------------
def test_every_route_is_in_the_openapi_file():
    import yaml

    spec = yaml.safe_load(OPENAPI.read_text())
    documented = set(spec["paths"])
    for path, handler in ROUTES:
        templated = "/" + re.sub(r"\([^)]*\)", "{id}", path)
        assert templated in documented, f"{path} is not documented in {OPENAPI.name}"
        methods = {m for m in ("get", "post", "delete", "put", "patch") if m in vars(handler)}
        assert methods == set(spec["paths"][templated]), path
    assert len(documented) == len(ROUTES)


# -- credentials are masked in every response (issue 10) --------------------------------------------
async def test_responses_mask_credentials(jp_fetch, jp_root_dir):
    import secrets
    import string

    alnum = string.ascii_letters + string.digits
    key = "sk-" + "".join(secrets.choice(alnum) for _ in range(48))  # random fakes, new every run
    token = "hf_" + "".join(secrets.choice(alnum) for _ in range(34))
    password = "".join(secrets.choice(alnum) for _ in range(20))
    (jp_root_dir / "keys.ipynb").write_text("{}")
    log = capture.CellLog()
    log.start(f"OPENAI_API_KEY = '{key}'\nDB = 'postgresql://u:{password}@db/x'", 1, "cell-a")
    log.add({"output_type": "execute_result", "data": {"text/plain": f"'{key}'"}, "metadata": {},
             "execution_count": 1})
    s = api.Session(namespace={"OPENAI_API_KEY": key, "DB": f"postgresql://u:{password}@db/x", "x": 1}, cell_log=log)
    s.told_notebook = str(jp_root_dir / "keys.ipynb")
    api.set_session(s)
    st = api.open_store(jp_root_dir / ".jupyter_mv")
    try:
        api.take_snapshot(["OPENAI_API_KEY", "DB", "x"], message="named keys", store=st)
        api.take_snapshot(["x"], message=f"then {token}", store=st)
    finally:
        st.close()
        api.set_session(None)
    bodies = []
    for parts, params in ((("versions",), {}), (("versions", "v1"), {}), (("versions", "v2"), {}),
                          (("diff",), {"a": "v1", "b": "v2"})):
        code, body = await fetch_json(jp_fetch, *parts, params={"notebook": "keys.ipynb", **params})
        assert code == 200
        bodies.append(json.dumps(body, ensure_ascii=False))
    code, body = await fetch_json(jp_fetch, "tags", method="POST",
                                  body=json.dumps({"notebook": "keys.ipynb", "version": "v2", "tag": "t1"}))
    bodies.append(json.dumps(body, ensure_ascii=False))
    text = "\n".join(bodies)
    for secret in (key, token, password):
        assert secret not in text and secret[5:25] not in text
    assert "sk-…****" in text and "hf_…****" in text and "postgresql://u:****@db/x" in text
