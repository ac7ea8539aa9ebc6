"""The REST side of remotes (issue 14) for the lab sidebar, against a real Jupyter server (pytest-jupyter),
real stores and a file:// remote: GET remote (which versions the default remote holds, from the store
alone), POST push and POST pull, their errors as one line, and no credentials in any reply."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path

import jsonschema
import pytest
import tornado.httpclient
from referencing import Registry, Resource

from jupyter_mv import api
from jupyter_mv.store import Store
from test_server import fetch_error, fetch_json, make_history

pytest_plugins = ["pytest_jupyter.jupyter_server"]

SCHEMAS = Path(__file__).resolve().parent.parent / "jupyter_mv" / "schemas"
BASE = "https://jupyter-mv.invalid/schemas/"


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mv": True}}}


@pytest.fixture(autouse=True)
def _author(monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_AUTHOR", "lab-user@test")


def valid(name: str, data: dict) -> dict:
    reg = Registry().with_resources((BASE + p.name, Resource.from_contents(json.loads(p.read_text())))
                                    for p in SCHEMAS.glob("*.schema.json"))
    schema = reg.contents(f"{BASE}{name}.schema.json")
    jsonschema.Draft202012Validator(schema, registry=reg).validate(data)
    return data


async def status(jp_fetch, notebook="nb.ipynb") -> dict:
    code, body = await fetch_json(jp_fetch, "remote", params={"notebook": notebook})
    assert code == 200
    return valid("remote-status", body)


async def post(jp_fetch, route: str, **body) -> dict:
    code, reply = await fetch_json(jp_fetch, route, method="POST", body=json.dumps(body))
    assert code == 200
    return valid("remote-transfer", reply)


def add_remote(store_dir: Path, url: str, name: str = "team") -> None:
    st = Store(store_dir)
    try:
        api.remote_add(name, url, store=st)
    finally:
        st.close()


async def test_status_push_and_pull_through_rest(jp_fetch, jp_root_dir, tmp_path, monkeypatch):
    store = make_history(jp_root_dir)  # v1, v2 (tagged best)
    # a store with no remote: null remote, a line saying what to do; nothing asked of any remote
    s = await status(jp_fetch)
    assert s["remote"] is None and s["on_remote"] == [] and "remote add" in s["problem"]
    remote_dir = tmp_path / "remote"
    url = remote_dir.as_uri()
    add_remote(store, url)
    s = await status(jp_fetch)
    assert s["remote"] == {"name": "team", "url": url, "conditional": True} and s["problem"] is None
    assert s["on_remote"] == []

    r = await post(jp_fetch, "push", notebook="nb.ipynb", versions=["v1"])
    assert r["op"] == "push" and r["versions"] == ["v1"] and r["already"] == [] and r["bytes"] > 0
    assert r["summary"].startswith("pushed v1 to team: ") and r["on_remote"] == ["v1"]
    assert any(line.startswith("pushed nb.ipynb v1") for line in r["lines"])
    assert (remote_dir / "versions").is_dir()
    s = await status(jp_fetch)
    assert s["on_remote"] == ["v1"]  # v1 is there, v2 is not

    # status reads the store only: with the remote gone it still answers (and still says v1)
    hidden = tmp_path / "remote-away"
    remote_dir.rename(hidden)
    assert (await status(jp_fetch))["on_remote"] == ["v1"]
    hidden.rename(remote_dir)

    # pushing again sends nothing; the tag (best) of v2 goes with it
    r = await post(jp_fetch, "push", notebook="nb.ipynb", versions=["v1", "best"])
    assert r["versions"] == ["v2"] and r["already"] == ["v1"] and r["on_remote"] == ["v1", "v2"]
    r = await post(jp_fetch, "push", notebook="nb.ipynb", versions=["v2"])
    assert r["versions"] == [] and r["bytes"] == 0 and r["summary"] == "v2 already on team: nothing sent"

    # another store (a colleague) pushes its own v1 of the same notebook; Pull brings it in as v3
    other = make_history(tmp_path / "bob", store=tmp_path / "bob" / ".jupyter_mv")
    st = Store(other)
    monkeypatch.setenv("JUPYTER_MV_AUTHOR", "bob@elsewhere")
    try:
        api.remote_add("origin", url, store=st)
        api.push("v1", notebook="nb.ipynb", store=st)
        bob_gid = st.versions("nb.ipynb")[0].gid
    finally:
        st.close()
    r = await post(jp_fetch, "pull", notebook="nb.ipynb")
    assert r["op"] == "pull" and r["versions"] == ["v3"] and sorted(r["already"]) == ["v1", "v2"]
    assert r["summary"].startswith("pulled v3 from team: ") and r["on_remote"] == ["v1", "v2", "v3"]
    code, page = await fetch_json(jp_fetch, "versions", params={"notebook": "nb.ipynb"})
    v3 = page["versions"][-1]
    assert (v3["id"], v3["gid"], v3["author"]) == ("v3", bob_gid, "bob@elsewhere") and v3["origin"] != "local"
    r = await post(jp_fetch, "pull", notebook="nb.ipynb")
    assert r["versions"] == [] and r["summary"] == "nothing new on team (3 already here)"


async def test_errors_are_one_line(jp_fetch, jp_root_dir, tmp_path):
    # no store beside the notebook: the status says so; push and pull are 404
    s = await status(jp_fetch, "nothing.ipynb")
    assert s["remote"] is None and "no versions" in s["problem"]
    code, body = await fetch_error(jp_fetch, "push", method="POST",
                                   body=json.dumps({"notebook": "nothing.ipynb", "versions": ["v1"]}))
    assert code == 404
    store = make_history(jp_root_dir)
    # no remote yet: 400 and the line saying how to add one
    code, body = await fetch_error(jp_fetch, "push", method="POST",
                                   body=json.dumps({"notebook": "nb.ipynb", "versions": ["v1"]}))
    assert code == 400 and "remote add" in body["message"] and "\n" not in body["message"]
    code, body = await fetch_error(jp_fetch, "pull", method="POST", body=json.dumps({"notebook": "nb.ipynb"}))
    assert code == 400 and "remote add" in body["message"]
    add_remote(store, (tmp_path / "remote").as_uri())
    for bad in ({"notebook": "nb.ipynb"}, {"notebook": "nb.ipynb", "versions": []},
                {"notebook": "nb.ipynb", "versions": "v1"}, {"notebook": "nb.ipynb", "versions": [1]},
                {"versions": ["v1"]}, {"notebook": "/etc/passwd", "versions": ["v1"]}):
        code, body = await fetch_error(jp_fetch, "push", method="POST", body=json.dumps(bad))
        assert code == 400, bad
    code, body = await fetch_error(jp_fetch, "push", method="POST",
                                   body=json.dumps({"notebook": "nb.ipynb", "versions": ["v9"]}))
    assert code == 404 and "v9" in body["message"]
    code, body = await fetch_error(jp_fetch, "push", method="POST",
                                   body=json.dumps({"notebook": "../x.ipynb", "versions": ["v1"]}))
    assert code == 403
    # GET is not a push; the routes are authenticated (no token: 403)
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_fetch("jupyter-mv", "api", "push", method="GET")
    assert e.value.code == 405


async def test_unauthenticated_and_cross_site_requests_are_refused(jp_root_dir, jp_base_url, http_server_client,
                                                                    jp_serverapp, tmp_path):
    """No token: 403. A browser session (login cookie) without the XSRF header, which is what another
    site's form or script could send: 403 for push and pull, nothing leaves; with the header: done."""
    store = make_history(jp_root_dir)
    remote_dir = tmp_path / "remote"
    add_remote(store, remote_dir.as_uri())
    api_url = f"{jp_base_url}jupyter-mv/api/"
    push_body = json.dumps({"notebook": "nb.ipynb", "versions": ["v1"]})
    for route, method, body in (("remote?notebook=nb.ipynb", "GET", None), ("push", "POST", push_body),
                                ("pull", "POST", json.dumps({"notebook": "nb.ipynb"}))):
        r = await http_server_client.fetch(api_url + route, method=method, body=body, raise_error=False)
        assert r.code == 403, route
    # log in as a browser does: the login page's _xsrf cookie, then the token as the password
    r = await http_server_client.fetch(f"{jp_base_url}login", raise_error=False)
    xsrf = re.search(r"_xsrf=([^;]+)", " ".join(r.headers.get_list("Set-Cookie"))).group(1)
    r = await http_server_client.fetch(f"{jp_base_url}login", method="POST", follow_redirects=False, raise_error=False,
                                       body=f"password={jp_serverapp.identity_provider.token}&_xsrf={xsrf}",
                                       headers={"Cookie": f"_xsrf={xsrf}"})
    cookies = "; ".join(c.split(";")[0] for c in r.headers.get_list("Set-Cookie")) + f"; _xsrf={xsrf}"
    assert "username-" in cookies
    for route, body in (("push", push_body), ("pull", json.dumps({"notebook": "nb.ipynb"}))):
        r = await http_server_client.fetch(api_url + route, method="POST", body=body, raise_error=False,
                                           headers={"Cookie": cookies})
        assert r.code == 403, route
    assert not (remote_dir / "versions").exists()
    r = await http_server_client.fetch(api_url + "push", method="POST", body=push_body, raise_error=False,
                                       headers={"Cookie": cookies, "X-XSRFToken": xsrf})
    assert r.code == 200 and json.loads(r.body)["versions"] == ["v1"]
    r = await http_server_client.fetch(api_url + "remote?notebook=nb.ipynb", headers={"Cookie": cookies})
    assert json.loads(r.body)["on_remote"] == ["v1"]  # a GET needs no XSRF header


async def test_no_credentials_in_replies(jp_fetch, jp_root_dir, tmp_path):
    """A remote URL recorded with a password and a signed query (an old store, a hand edit) is shown and
    used without them; the version it names the remote by is the same."""
    store = make_history(jp_root_dir)
    remote_dir = tmp_path / "remote"
    add_remote(store, remote_dir.as_uri())
    db = sqlite3.connect(store / "store.db")
    with db:
        db.execute("insert into remotes (name, url, is_default, conditional, added) values (?,?,?,?,?)",
                   ("leaky", "sftp://me:hunter2-secret@example.invalid/data?sig=SIGNATURE123", 0, None, "x"))
        db.execute("update remotes set is_default = (name = 'leaky')")
    db.close()
    s = await status(jp_fetch)
    text = json.dumps(s)
    assert s["remote"]["name"] == "leaky" and "hunter2-secret" not in text and "SIGNATURE123" not in text
    assert s["remote"]["url"].startswith("sftp://me@example.invalid/data")


async def test_push_does_not_block_the_server_and_reports_progress(jp_fetch, jp_root_dir, tmp_path, monkeypatch):
    """The transfer runs in a worker thread: other requests are answered while it is in progress, and
    GET remote?transfer=ID reports its bytes, rate and ETA until it ends."""
    import threading

    from jupyter_mv.remotes import push as push_mod

    import numpy as np

    store = make_history(jp_root_dir)
    add_remote(store, (tmp_path / "remote").as_uri())
    s = api.Session(namespace={"arr": np.arange(20_000.0)})  # v3: 160 kB
    s.told_notebook = str(jp_root_dir / "nb.ipynb")
    api.set_session(s)
    st = Store(store)
    try:
        total = api.take_snapshot(["arr"], message="big", store=st).version.nbytes
    finally:
        st.close()
        api.set_session(None)
    started, release = threading.Event(), threading.Event()
    real = push_mod.push

    def slow_push(*a, **kw):
        kw["progress"](1000)  # 1000 bytes handled, then a pause
        started.set()
        assert release.wait(30)
        return real(*a, **kw)

    monkeypatch.setattr(push_mod, "push", slow_push)
    pushing = asyncio.ensure_future(post(jp_fetch, "push", notebook="nb.ipynb", versions=["v3"],
                                         transfer="lab-transfer-1"))
    for _ in range(200):
        if started.is_set():
            break
        await asyncio.sleep(0.05)
    assert started.is_set()
    s = await status(jp_fetch)  # answered while the push waits
    assert s["on_remote"] == [] and not pushing.done() and "transfer" not in s
    q = {"notebook": "nb.ipynb", "transfer": "lab-transfer-1"}
    code, s = await fetch_json(jp_fetch, "remote", params=q)
    p = valid("remote-status", s)["transfer"]
    assert (p["op"], p["done"], p["total"]) == ("push", 1000, total) and total > 100_000
    assert p["rate"] > 0 and p["eta"] == pytest.approx((total - 1000) / p["rate"], rel=0.2)
    # another notebook's store, or an unknown id: no progress; a malformed id: 400
    code, s = await fetch_json(jp_fetch, "remote", params={**q, "transfer": "someone-else"})
    assert s["transfer"] is None
    code, body = await fetch_error(jp_fetch, "remote", params={**q, "transfer": "a b"})
    assert code == 400
    release.set()
    r = await pushing
    assert r["versions"] == ["v3"] and (await status(jp_fetch))["on_remote"] == ["v3"]
    code, s = await fetch_json(jp_fetch, "remote", params=q)
    assert s["transfer"] is None  # finished


def test_author_is_a_setting_the_environment_overrides(monkeypatch, tmp_path):
    """JupyterMV.author (config files, %config; the server extension's own instance for the sidebar's
    Push) names who pushes; JUPYTER_MV_AUTHOR overrides it; empty falls back to the git user / user@host."""
    from jupyter_mv import config
    from jupyter_mv.config import JupyterMV
    from jupyter_mv.remotes.push import identity

    monkeypatch.delenv("JUPYTER_MV_AUTHOR")
    before = config.use(JupyterMV(author="carol@team"))
    try:
        assert identity() == "carol@team"
        assert identity(JupyterMV(author="  server-side  ")) == "server-side"  # the server's instance
        assert identity(JupyterMV()) not in ("", "carol@team")  # git user or user@host
        monkeypatch.setenv("JUPYTER_MV_AUTHOR", "from-env")
        with pytest.warns(UserWarning, match="JupyterMV.author = 'x' has no effect"):
            server_cfg = JupyterMV(author="x")
        assert identity() == "from-env" and identity(server_cfg) == "from-env"
        monkeypatch.delenv("JUPYTER_MV_AUTHOR")
        # what a push records: the remote's manifest and, pulled elsewhere, the version's author
        st = Store(make_history(tmp_path / "a"))
        try:
            api.remote_add("team", (tmp_path / "remote").as_uri(), store=st)
            api.push("v1", notebook="nb.ipynb", store=st)
            api.push("v2", notebook="nb.ipynb", store=st, author="dave@team")
        finally:
            st.close()
        other = Store(make_history(tmp_path / "b"))
        try:
            ls = {d["label"]: d["pushed_by"] for d in api.remote_ls((tmp_path / "remote").as_uri(), store=other)}
        finally:
            other.close()
    finally:
        config.use(before)
    assert ls == {"v1": "carol@team", "v2": "dave@team"}


def test_lease_ttl_is_a_setting_the_environment_overrides(monkeypatch):
    """JupyterMV.lease_ttl (config files, %config) sets the push lease's time-to-live; JUPYTER_MV_LEASE_TTL
    overrides it; a bad value is one line naming the variable."""
    from jupyter_mv import config
    from jupyter_mv.config import JupyterMV
    from jupyter_mv.errors import UsageError
    from jupyter_mv.remotes import leases

    monkeypatch.delenv("JUPYTER_MV_LEASE_TTL", raising=False)
    assert leases.lease_ttl() == leases.DEFAULT_TTL == JupyterMV().lease_ttl == 120.0
    before = config.use(JupyterMV(lease_ttl=30))
    try:
        assert leases.lease_ttl() == 30.0
        monkeypatch.setenv("JUPYTER_MV_LEASE_TTL", "2.5")
        assert leases.lease_ttl() == 2.5 and config.current().source("lease_ttl") == "JUPYTER_MV_LEASE_TTL"
        for bad, why in (("soon", "not a number of seconds"), ("0.5", "at least 1"), ("nan", "at least 1"),
                         ("inf", "at least 1")):
            monkeypatch.setenv("JUPYTER_MV_LEASE_TTL", bad)
            with pytest.raises(UsageError, match=f"JUPYTER_MV_LEASE_TTL='{bad}' .*{why}.*unset it") as e:
                leases.lease_ttl()
            assert "\n" not in str(e.value)
    finally:
        config.use(before)
    from traitlets import TraitError

    with pytest.raises(TraitError):
        JupyterMV(lease_ttl=0.5)
