"""Branches and a variable's history: the parent recorded after a restore, which versions changed a
variable (each compared with its parent, so along a branch), its numeric values, the REST route and
the history widget's graph and variable-history state."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest
import tornado.httpclient

from jupyter_mv import api
from jupyter_mv.errors import UnknownVariable, UsageError

from test_schemas import _load, check  # noqa: F401  (the schema registry helpers)
from test_widgets import big_store  # noqa: F401  (fixture: 10,000 versions)

pytest_plugins = ["pytest_jupyter.jupyter_server"]


def parents() -> dict:
    return {v.label: (f"v{v.parent}" if v.parent else None) for v in api.versions()}


# -- the parent after a restore ---------------------------------------------------------------------
def test_restore_then_snapshot_starts_a_branch_from_the_restored_version(shell, run):
    run("x = 1")
    run("%mv_snapshot -m a")
    run("x = 2")
    run("%mv_snapshot -m b")
    run("x = 3")
    run("%mv_snapshot -m c")
    run("%mv_restore v1")
    run("x = 10")
    run("%mv_snapshot -m branch")
    run("x = 11")
    run("%mv_snapshot -m on-branch")
    assert parents() == {"v1": None, "v2": "v1", "v3": "v2", "v4": "v1", "v5": "v4"}
    # restoring some variables only, or under a prefix, does not move the state's origin
    run("%mv_restore v2 x --prefix old_")
    run("%mv_snapshot -m after-prefix")
    assert parents()["v6"] == "v5"


def test_auto_versions_after_a_restore_branch_and_a_no_op_cell_makes_none(shell, run):
    run("%mv_auto on")
    run("x = 1")
    run("x = 2")
    run("x = 3")
    assert parents() == {"v1": None, "v2": "v1", "v3": "v2"}
    run("%mv_restore v1")
    run("print(x)")  # changes nothing: the state is v1's, so no copy of v1
    assert len(api.versions()) == 3
    run("x = 5")
    assert parents()["v4"] == "v1"
    run("x = 6")
    assert parents()["v5"] == "v4"


# -- which versions changed a variable --------------------------------------------------------------
@pytest.fixture
def branched(session):
    """v1 x=1 lr=0.1 | v2 x=2 | v3 y added (x same) | restore v1 -> v4 x=1 (same as v1), lr=0.5 |
    v5 x=7, y removed | metrics: acc on every version, loss NaN twice."""
    ns = session.namespace
    ns.update(x=1, lr=0.1, label="a")
    api.take_snapshot(metrics={"acc": 0.5, "loss": float("nan")})
    ns.update(x=2)
    api.take_snapshot(metrics={"acc": 0.6, "loss": float("nan")})
    ns.update(y=[1, 2])
    api.take_snapshot(metrics={"acc": 0.6})
    api.restore("v1")
    ns.pop("y")
    ns.update(lr=0.5)
    api.take_snapshot(metrics={"acc": 0.55})
    ns.update(x=7)
    api.take_snapshot(metrics={"acc": 0.7})
    return session


def changes(h) -> list:
    return [(c["id"], c["change"]) for c in h["changes"]]


def test_variable_changes_are_against_the_parent_across_a_branch(branched):
    assert parents() == {"v1": None, "v2": "v1", "v3": "v2", "v4": "v1", "v5": "v4"}
    h = api.variable_history("x")
    assert h["kind"] == "variable"
    # v4 holds x=1 like its parent v1 (though v3, the version before it, held 2): no change there
    assert changes(h) == [("v1", "added"), ("v2", "changed"), ("v5", "changed")]
    assert [c["text"] for c in h["changes"]] == ["1", "2", "7"]
    assert h["values"] == [{"id": f"v{i}", "value": x} for i, x in enumerate([1, 2, 2, 1, 7], 1)]
    lr = api.variable_history("lr")
    assert changes(lr) == [("v1", "added"), ("v4", "changed")]
    assert [v["value"] for v in lr["values"]] == [0.1, 0.1, 0.1, 0.5, 0.5]
    y = api.variable_history("y")  # not a number: changes, no values
    assert changes(y) == [("v3", "added")] and y["values"] == []
    assert y["changes"][0]["type"] == "builtins.list"
    assert changes(api.variable_history("label")) == [("v1", "added")]


def test_a_removed_variable_and_one_coming_back(session):
    ns = session.namespace
    ns.update(a=1, b=2)
    api.take_snapshot()
    del ns["b"]
    api.take_snapshot()
    ns["b"] = 2
    api.take_snapshot()
    assert changes(api.variable_history("b")) == [("v1", "added"), ("v2", "removed"), ("v3", "added")]
    assert changes(api.variable_history("a")) == [("v1", "added")]


def test_metric_history_nan_is_no_change(branched):
    h = api.variable_history("acc")
    assert h["kind"] == "metric"
    assert changes(h) == [("v1", "added"), ("v2", "changed"), ("v4", "changed"), ("v5", "changed")]
    assert [c["text"] for c in h["changes"]] == ["0.5", "0.6", "0.55", "0.7"]
    assert [v["value"] for v in h["values"]] == [0.5, 0.6, 0.6, 0.55, 0.7]
    loss = api.variable_history("loss", kind="metric")
    assert changes(loss) == [("v1", "added"), ("v3", "removed"), ("v4", "removed")]  # v4: its parent v1 had it


def test_numpy_scalars_chart_and_a_credential_is_never_shown(session):
    import numpy as np

    ns = session.namespace
    ns.update(f=np.float64(0.25), i=np.int64(3), big=np.float32(1.5), flag=True,
              client_secret="sk-" + "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV")
    names = ["f", "i", "big", "flag", "client_secret"]  # named: a credential-holding variable is stored, marked
    api.take_snapshot(names)
    ns.update(f=np.float64(1e-7), i=np.int64(-4))
    api.take_snapshot(names)
    assert [v["value"] for v in api.variable_history("f")["values"]] == [0.25, 1e-7]
    assert [v["value"] for v in api.variable_history("i")["values"]] == [3, -4]
    assert [v["value"] for v in api.variable_history("big")["values"]] == [1.5, 1.5]
    assert api.variable_history("flag")["values"] == []  # True is no quantity
    secret = api.variable_history("client_secret")
    assert [c["text"] for c in secret["changes"]] == [""]
    assert "sk-" not in json.dumps(secret)


def test_unknown_names_and_bad_kind_are_one_line(branched):
    with pytest.raises(UnknownVariable) as e:
        api.variable_history("nope")
    msg = str(e.value)
    assert "\n" not in msg and "'nope'" in msg and "lr" in msg and "acc" in msg
    with pytest.raises(UnknownVariable):
        api.variable_history("x", kind="metric")
    with pytest.raises(UnknownVariable):
        api.variable_history("acc", kind="variable")
    with pytest.raises(UsageError):
        api.variable_history("x", kind="column")


# -- REST -------------------------------------------------------------------------------------------
@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mv": True}}}


@pytest.fixture
def registry():
    from referencing import Registry, Resource

    from test_schemas import BASE

    return Registry().with_resources((BASE + name, Resource.from_contents(s)) for name, s in _load().items())


def write_branched(directory) -> None:
    (directory / "nb.ipynb").write_text("{}")
    s = api.Session(namespace={"x": 1, "lr": 0.1})
    s.told_notebook = str(directory / "nb.ipynb")
    api.set_session(s)
    st = api.open_store(directory / ".jupyter_mv")
    try:
        api.take_snapshot(metrics={"acc": 0.5, "loss": float("nan")}, store=st)
        s.namespace["x"] = 2
        api.take_snapshot(metrics={"acc": float("inf")}, store=st)
        api.restore("v1", store=st)
        s.namespace["lr"] = 0.2
        api.take_snapshot(metrics={"acc": 0.5}, store=st)
    finally:
        st.close()
        api.set_session(None)


async def test_rest_variable_history(jp_fetch, jp_root_dir, registry):
    write_branched(jp_root_dir)
    q = {"notebook": "nb.ipynb"}
    r = await jp_fetch("jupyter-mv", "api", "variable-history", params={**q, "name": "x"})
    body = json.loads(r.body)
    check(registry, "variable-history", body)
    assert [(c["id"], c["change"]) for c in body["changes"]] == [("v1", "added"), ("v2", "changed")]
    assert [v["value"] for v in body["values"]] == [1, 2, 1]
    page = json.loads((await jp_fetch("jupyter-mv", "api", "versions", params=q)).body)
    assert [v["parent"] for v in page["versions"]] == [None, "v1", "v1"]  # the graph's data
    body = json.loads((await jp_fetch("jupyter-mv", "api", "variable-history",
                                      params={**q, "name": "acc", "kind": "metric"})).body)
    check(registry, "variable-history", body)
    assert [v["value"] for v in body["values"]] == [0.5, "Infinity", 0.5]  # RFC 8259 JSON
    # v3 (branched from v1) has v1's acc: no change there, though v2 before it had another
    assert [(c["id"], c["change"]) for c in body["changes"]] == [("v1", "added"), ("v2", "changed")]
    for params, status in (({**q, "name": "nope"}, 404), ({**q}, 400), ({**q, "name": "x", "kind": "col"}, 400),
                           ({"notebook": "none.ipynb", "name": "x"}, 404), ({**q, "name": "x" * 300}, 400)):
        with pytest.raises(tornado.httpclient.HTTPClientError) as e:
            await jp_fetch("jupyter-mv", "api", "variable-history", params=params)
        assert e.value.code == status, params
        err = json.loads(e.value.response.body)
        check(registry, "error", err)
        assert "\n" not in err["message"]


def test_the_schema_rejects_a_wrong_shape(registry):
    with pytest.raises(jsonschema.ValidationError):
        check(registry, "variable-history", {"notebook": "a", "name": "x", "kind": "variable",
                                             "changes": [{"id": "v1", "change": "moved", "type": "", "text": ""}],
                                             "values": []})


# -- the history widget -----------------------------------------------------------------------------
def test_widget_graph_and_variable_history(shell, run, registry):
    from jupyter_mv.widgets import HistoryWidget

    from test_schemas import widget_state

    run("x = 1\nlr = 0.1")
    run("%mv_snapshot -m a -t base --metrics \"{'acc': 0.5}\"")
    run("x = 2")
    run("%mv_snapshot -m b --metrics \"{'acc': 0.6}\"")
    run("%mv_restore v1")
    run("lr = 0.3")
    run("%mv_snapshot -m c -n tuned")
    w = HistoryWidget()
    assert w.view == "table" and w.graph == []  # built only while shown
    w.view = "graph"
    ids = {n["label"]: n["key"] for n in w.graph}
    assert [(n["label"], n["parent"]) for n in w.graph] == [("v1", None), ("v2", ids["v1"]), ("v3", ids["v1"])]
    assert w.graph[0]["tags"] == ["base"] and w.graph[2]["name"] == "tuned"
    assert w.var_names == {"variables": ["lr", "x"], "metrics": ["acc"]}
    check(registry, "history-widget", widget_state(w))
    w.variable = "x"
    assert changes(w.var_history) == [("v1", "added"), ("v2", "changed")]
    w.variable = "metric:acc"
    assert w.var_history["kind"] == "metric" and [v["id"] for v in w.var_history["values"]] == ["v1", "v2"]
    check(registry, "history-widget", widget_state(w))
    w.selected = [ids["v2"]]
    w.act("tag", tag="keep")  # tags reach the nodes
    assert w.graph[1]["tags"] == ["keep"]
    run("x = 9")
    run("%mv_snapshot -m d")  # a new version reaches the open widget: graph and history follow
    w.variable = "x"
    assert changes(w.var_history)[-1] == ("v4", "changed")
    assert w.graph[-1]["parent"] == ids["v3"]
    w.act("goto", label="v2")  # stepping to a change selects it, in either view
    assert w.selected == [ids["v2"]] and w.details["id"] == "v2"
    assert w.act("goto", label="v99")["kind"] == "error"
    last = HistoryWidget(n=1)  # the last version only: the history still compares with its parent
    last.variable = "x"
    assert last.var_history == api.variable_history("x") and changes(last.var_history)[-1] == ("v4", "changed")
    last.close()
    w.variable = "nope"
    assert w.message["kind"] == "error" and "nope" in w.message["text"]
    w.close()


def test_graph_of_ten_thousand_versions(big_store):
    from jupyter_mv.widgets import HistoryWidget

    w = HistoryWidget(store=big_store, versions=big_store.versions("big.ipynb"))
    t0 = time.perf_counter()
    w.view = "graph"
    assert len(w.graph) == 10_000 and w.graph[-1]["parent"] == w.graph[-2]["key"]
    assert time.perf_counter() - t0 < 1.0
    t0 = time.perf_counter()
    w.page = 3  # paging the table does not rebuild the graph
    w.filter = "acc>0.9"
    assert time.perf_counter() - t0 < 1.0
    w.close()


def test_widget_graph_of_all_notebooks(session, tmp_path):
    from jupyter_mv.widgets import HistoryWidget

    session.namespace["x"] = 1
    for nb, count in (("a.ipynb", 2), ("b.ipynb", 2)):
        api.set_notebook(str(tmp_path / nb))
        for i in range(count):
            session.namespace["x"] = i + 5
            api.take_snapshot()
    w = HistoryWidget(all=True)
    w.view = "graph"
    ids = {(n["notebook"], n["label"]): n["key"] for n in w.graph}
    # each notebook its own line: b's v2 descends from b's v1, not a's
    assert [(n["notebook"], n["label"], n["parent"]) for n in w.graph] == [
        ("a.ipynb", "v1", None), ("a.ipynb", "v2", ids[("a.ipynb", "v1")]),
        ("b.ipynb", "v1", None), ("b.ipynb", "v2", ids[("b.ipynb", "v1")])]
    w.variable = "x"  # a variable's history is per notebook
    assert w.var_history == {} and w.message["kind"] == "error" and "one notebook" in w.message["text"]
    w.close()


def test_history_after_retention_drops_automatic_versions(shell, run):
    """`%mv_auto on --keep 1` drops older automatic versions and re-parents their children: a change is then
    counted against the nearest version still kept (the state it descends from)."""
    run("x = 1")
    run("%mv_snapshot -m base")
    run("%mv_auto on --keep 1")
    run("x = 2")
    run("x = 3")  # v3; v2 (auto) dropped, v3's parent is now v1
    run("%mv_auto off")
    run("%mv_snapshot -t keep")  # v4: nothing changed since v3
    assert parents() == {"v1": None, "v3": "v1", "v4": "v3"}
    h = api.variable_history("x")
    assert changes(h) == [("v1", "added"), ("v3", "changed")]
    assert [v["id"] for v in h["values"]] == ["v1", "v3", "v4"]
