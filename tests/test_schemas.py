"""jupyter_mv/schemas/*.schema.json are the one source of the JSON shapes (the lab extension's and the
widgets' TypeScript types are generated from them): every REST response of a real server and the
widgets' synced state validate against them."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
import tornado.httpclient
from referencing import Registry, Resource

from jupyter_mv import api
from jupyter_mv.server.handlers import ROUTES

from test_server import make_history

pytest_plugins = ["pytest_jupyter.jupyter_server"]

SCHEMAS = resources.files("jupyter_mv") / "schemas"
BASE = "https://jupyter-mv.invalid/schemas/"
# REST route -> the schema of its reply (every route has one: test_every_route_has_a_schema)
ROUTE_SCHEMAS = {"version": "server-version", "versions": "history-page", r"versions/([^/]+)": "version-details",
                 "diff": "diff", "tags": "tag-reply", "rename": "rename-reply", "variable-history": "variable-history",
                 "remote": "remote-status", "push": "remote-transfer", "pull": "remote-transfer"}  # (test_server_remotes.py)


def _load() -> dict:
    return {p.name: json.loads(p.read_text()) for p in SCHEMAS.iterdir() if p.name.endswith(".schema.json")}


@pytest.fixture(scope="module")
def registry():
    return Registry().with_resources((BASE + name, Resource.from_contents(s)) for name, s in _load().items())


def check(registry, name: str, data) -> None:
    """Validate `data` as a client receives it (RFC 8259 JSON text parsed) against schema `name`."""
    data = json.loads(json.dumps(data, allow_nan=False))
    schema = registry.contents(f"{BASE}{name}.schema.json")
    jsonschema.Draft202012Validator(schema, registry=registry).validate(data)


def test_schemas_are_valid_and_every_reference_resolves(registry):
    schemas = _load()
    assert {"version", "version-details", "history-page", "diff", "server-version", "tag-reply", "rename-reply",
            "error", "history-widget", "diff-widget"} <= {n.removesuffix(".schema.json") for n in schemas}
    for name, s in schemas.items():
        jsonschema.Draft202012Validator.check_schema(s)
        assert s["$id"] == BASE + name and s.get("title")

        def refs(x):
            if isinstance(x, dict):
                if "$ref" in x:
                    yield x["$ref"]
                for v in x.values():
                    yield from refs(v)
            elif isinstance(x, list):
                for v in x:
                    yield from refs(v)
        resolver = registry.resolver(base_uri=BASE + name)
        for ref in refs(s):
            resolver.lookup(ref)  # raises when a reference points nowhere


def test_every_route_has_a_schema():
    assert {path for path, _ in ROUTES} == set(ROUTE_SCHEMAS)


def test_schemas_reject_what_they_should(registry):
    """Not vacuous: a wrong shape fails."""
    with pytest.raises(jsonschema.ValidationError):
        check(registry, "version", {"id": "v1"})
    with pytest.raises(jsonschema.ValidationError):
        check(registry, "history-page", {"notebook": "a", "key": "a", "versions": [{"id": "x1"}]})
    with pytest.raises(jsonschema.ValidationError):
        check(registry, "diff", {"schema": 1})


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mv": True}}}


async def get(jp_fetch, *parts, **kw):
    r = await jp_fetch("jupyter-mv", "api", *parts, **kw)
    return json.loads(r.body)


async def test_every_rest_response_validates(jp_fetch, jp_root_dir, registry):
    make_history(jp_root_dir)
    q = {"notebook": "nb.ipynb"}
    check(registry, "server-version", await get(jp_fetch, "version"))
    page = await get(jp_fetch, "versions", params=q)
    check(registry, "history-page", page)
    assert [v["id"] for v in page["versions"]] == ["v1", "v2"]
    for v in page["versions"]:
        check(registry, "version", v)
        check(registry, "version-details", await get(jp_fetch, "versions", v["id"], params=q))
    check(registry, "diff", await get(jp_fetch, "diff", params={**q, "a": "v1", "b": "v2"}))
    body = json.dumps({"notebook": "nb.ipynb", "version": "v1", "tag": "keep"})
    check(registry, "tag-reply", await get(jp_fetch, "tags", method="POST", body=body))
    body = json.dumps({"old": "nb.ipynb", "new": "renamed.ipynb"})
    check(registry, "rename-reply", await get(jp_fetch, "rename", method="POST", body=body))
    # an empty history (no store) and errors
    check(registry, "history-page", await get(jp_fetch, "versions", params={"notebook": "nothing.ipynb"}))
    for parts, params in ((("versions", "v9"), {"notebook": "renamed.ipynb"}), (("diff",), {"notebook": "renamed.ipynb", "a": "v1"})):
        with pytest.raises(tornado.httpclient.HTTPClientError) as e:
            await jp_fetch("jupyter-mv", "api", *parts, params=params)
        assert 400 <= e.value.code < 500
        check(registry, "error", json.loads(e.value.response.body))


async def test_rich_versions_validate(jp_fetch, jp_root_dir, registry):
    """Models, arrays, frames, NaN metrics, nested params, outputs of every kind."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from jupyter_mv import capture

    (jp_root_dir / "rich.ipynb").write_text("{}")
    log = capture.CellLog()
    log.start("fit()", 1, "c1")
    log.add({"output_type": "display_data", "data": {"text/html": "<b>x</b>", "text/plain": "x"}, "metadata": {}})
    log.add({"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["tb"]})
    X = np.random.default_rng(0).random((30, 2))
    y = (X[:, 0] > 0.5).astype(int)
    s = api.Session(namespace={"clf": LogisticRegression(C=1.0).fit(X, y), "arr": np.arange(5.0),
                               "df": pd.DataFrame({"a": [1, 2]})}, cell_log=log)
    s.told_notebook = str(jp_root_dir / "rich.ipynb")
    api.set_session(s)
    st = api.open_store(jp_root_dir / ".jupyter_mv")
    try:
        api.take_snapshot(message="a", params={"grid": {"lr": [0.1, float("nan")]}, "opt": None},
                          metrics={"loss": float("nan"), "acc": 0.5}, store=st)
        s.namespace.update(clf=LogisticRegression(C=0.01).fit(X, y), arr=np.arange(5.0) * 2,
                           df=pd.DataFrame({"a": [1, 3], "b": ["x", "y"]}))
        api.take_snapshot(message="b", params={"grid": {"lr": [0.2]}}, metrics={"loss": float("inf")}, store=st)
    finally:
        st.close()
        api.set_session(None)
    q = {"notebook": "rich.ipynb"}
    check(registry, "history-page", await get(jp_fetch, "versions", params=q))
    check(registry, "version-details", await get(jp_fetch, "versions", "v2", params=q))
    d = await get(jp_fetch, "diff", params={**q, "a": "v1", "b": "v2"})
    check(registry, "diff", d)
    kinds = {v["name"]: v["analysis"]["kind"] for v in d["variables"]["changed"]}
    assert kinds == {"clf": "model", "arr": "array", "df": "frame"}


# -- the widgets' synced state ----------------------------------------------------------------------
def widget_state(w) -> dict:
    state = w.get_state()
    return {k: v for k, v in state.items() if not k.startswith("_") and k not in ("layout", "tabbable", "tooltip")}


def test_widget_states_validate(shell, run, registry):
    from jupyter_mv.widgets import DiffWidget, HistoryWidget

    run("from IPython.display import display, HTML\nLR = 0.1\nx = [1, 2]\ndisplay(HTML('<b>hi</b>'))\nprint('out')")
    run("%mv_snapshot -m one --metrics \"{'acc': 0.5, 'loss': float('nan')}\"")
    run("LR = 0.05\nx = [1, 2, 3]\nraise_it = 1")
    run("%mv_snapshot -m two -t best --metrics \"{'acc': 0.75}\"")
    w = HistoryWidget()
    check(registry, "history-widget", widget_state(w))  # nothing selected: {} details, diff, replay
    ids = [r["id"] for r in w.rows]
    w.selected = [ids[-1]]
    check(registry, "history-widget", widget_state(w))
    assert w.details["id"] == "v1" and w.details["cells"]
    w.act("restore_outputs")
    assert w.replay["cells"]
    w.selected = ids
    w.act("diff")
    assert w.diff["a"] == "v1"
    w.act("tag")  # an error message (no tag typed)
    state = widget_state(w)
    check(registry, "history-widget", state)
    assert state["message"]["kind"] == "error"
    w.close()
    d = DiffWidget(api.diff("v1", "v2"))
    check(registry, "diff-widget", widget_state(d))
    d.show_all_params = True
    check(registry, "diff-widget", widget_state(d))
    d.close()
    check(registry, "diff-widget", widget_state(DiffWidget()))
