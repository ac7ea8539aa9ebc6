"""Hostile requests to the REST API (fault suite): every route refuses unauthenticated requests,
and malformed ids, query strings, paths and bodies get a 4xx JSON message — never a 5xx, never a
change to the store, never a file outside the server root."""

from __future__ import annotations

import contextlib
import json
import random
import urllib.parse

import pytest
import tornado.httpclient
import tornado.web

from jupyter_mv.server.handlers import ROUTES
from mvtest import hostile
from test_server import make_history

pytest_plugins = ["pytest_jupyter.jupyter_server"]
pytestmark = pytest.mark.faults


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mv": True}}}


def test_route_table_handlers_are_authenticated():
    """Walk the route table: each verb a handler defines is wrapped by tornado's `authenticated`."""
    for path, handler in ROUTES:
        verbs = [m for m in ("get", "post", "put", "delete", "patch") if m in vars(handler)]
        assert verbs, f"{path}: no verbs"
        for verb in verbs:
            fn = vars(handler)[verb]
            wrapped = getattr(fn, "__wrapped__", None)
            assert wrapped is not None and fn.__code__ is tornado.web.authenticated(wrapped).__code__, \
                f"{handler.__name__}.{verb} ({path}) is not @tornado.web.authenticated"


_NASTY = ["", ".", "..", "../x.ipynb", "../../etc/passwd", "/etc/passwd", "a/../../b.ipynb", "%2e%2e/x",
          "nb.ipynb\x00.txt", "\\..\\x.ipynb", "~/x.ipynb", "C:\\x.ipynb", "nb.ipynb" + "/" * 300, "x" * 5000,
          "🙂.ipynb", "nb.ipynb?a=b", "nb.ipynb#frag", "sub/../../nb.ipynb", "//host/share/x.ipynb", "\n",
          "nb.ipynb;rm -rf /", "$(touch pwned)", "nb.ipynb\r\nX-Evil: 1"]
_IDS = ["v1", "v0", "v-1", "vv1", "v1.5", "latest", "latest~99999999999", "9" * 40, "", "best", "' or 1=1 --",
        "v1/../v2", "%00", "v" + "1" * 500, "null", "[]", "{}"]


def _random_requests(rng: random.Random, n: int):
    for _ in range(n):
        kind = rng.choice(["versions", "detail", "diff", "tags", "rename", "tags_raw"])
        nb = rng.choice(_NASTY + ["nb.ipynb"])
        if kind == "versions":
            yield "GET", ["versions"], {"notebook": nb}, None
        elif kind == "detail":
            yield "GET", ["versions", urllib.parse.quote(rng.choice(_IDS), safe="")], {"notebook": nb}, None
        elif kind == "diff":
            params = {"notebook": nb, "a": rng.choice(_IDS), "b": rng.choice(_IDS)}
            if rng.random() < 0.3:
                params.pop(rng.choice(list(params)))
            yield "GET", ["diff"], params, None
        elif kind == "tags":
            body = {"notebook": nb, "version": rng.choice(_IDS), "tag": rng.choice(["", "v1", "a b", "x" * 300,
                                                                                   "latest", None, 5, [], {}])}
            yield "POST", ["tags"], {}, json.dumps(body)
        elif kind == "rename":
            body = {"old": rng.choice(_NASTY), "new": rng.choice(_NASTY), "extra": rng.choice([None, 1, "x"])}
            yield "POST", ["rename"], {}, json.dumps(body)
        else:
            yield "POST", ["tags"], {}, rng.choice(["", "{", "[]", "null", "1", '"x"', "{\"notebook\": 1}",
                                                   "\xff\xfe", "{" * 10000])


def _escapes(p: str) -> bool:
    return p.startswith(("/", "\\", "~")) or ".." in p.replace("\\", "/").split("/") or p[1:3] in (":/", ":\\")


def _state(root):
    from jupyter_mv.store import Store

    st = Store(root)
    try:
        return ([v.to_dict() for v in st.versions(None)],
                st.db.conn.execute("select tag, version_id from tags order by tag").fetchall(), st.notebooks())
    finally:
        st.close()


async def test_hostile_requests_get_4xx_json(jp_fetch, jp_root_dir, tmp_path):
    root = make_history(jp_root_dir)
    before = _state(root)
    rng = random.Random(7)
    outside = {p for p in tmp_path.parent.iterdir()} if tmp_path.parent.exists() else set()
    for method, parts, params, body in _random_requests(rng, 250):
        with hostile():
            try:
                r = await jp_fetch("jupyter-mv", "api", *parts, method=method, params=params,
                                   **({"body": body} if body is not None else {}))
                code, payload = r.code, r.body
            except tornado.httpclient.HTTPClientError as e:
                code, payload = e.code, e.response.body if e.response else b""
            assert code < 500, (method, parts, params, body, code, payload[:200])
            if code >= 400:
                msg = json.loads(payload)["message"]
                assert isinstance(msg, str) and msg and "Traceback" not in msg
            else:  # what succeeds names paths inside the root and changes nothing (asserted below)
                values = list(params.values())
                if body:
                    with contextlib.suppress(ValueError, AttributeError):
                        values += [v for v in json.loads(body).values() if isinstance(v, str)]
                assert not any(_escapes(v) for v in values), (method, parts, params, body, code)
            assert _state(root) == before
    assert {p for p in tmp_path.parent.iterdir()} == outside  # nothing written beside the test dirs


@pytest.mark.parametrize("method, parts, body", [
    ("GET", ["version"], None), ("GET", ["versions"], None), ("GET", ["versions", "v1"], None),
    ("GET", ["diff"], None), ("POST", ["tags"], "{}"), ("POST", ["rename"], "{}"),
])
async def test_forged_tokens_are_refused(jp_fetch, jp_root_dir, method, parts, body):
    make_history(jp_root_dir)
    for token in ["", "wrong", "x" * 2000, "token", "Bearer"]:
        with hostile():
            with pytest.raises(tornado.httpclient.HTTPClientError) as e:
                await jp_fetch("jupyter-mv", "api", *parts, method=method, params={"notebook": "nb.ipynb"},
                               headers={"Authorization": f"token {token}"},
                               **({"body": body} if body is not None else {}))
            assert e.value.code in (401, 403)
