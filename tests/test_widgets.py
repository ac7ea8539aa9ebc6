"""The widgets driven through their synced state, as the front end would drive them (anywidget on a
dummy comm, no browser): selecting rows, the buttons' requests, the message area, listeners."""

from __future__ import annotations

import time

import pytest

import anywidget  # noqa: F401

from IPython.utils.capture import capture_output  # noqa: E402

from jupyter_mv import api  # noqa: E402
from jupyter_mv.render import HistoryTable  # noqa: E402
from jupyter_mv.widgets import DiffWidget, HistoryWidget, install, uninstall  # noqa: E402
from jupyter_mv.widgets.query import Query  # noqa: E402

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def three(run):
    """Three versions of a small 'training' notebook: LR and acc change, x is the model stand-in."""
    run("LR = 0.1\nx = [1, 2, 3]\nf'trained {LR}'")  # an execute_result (plain IPython records no print)
    run("%mv_snapshot -m 'baseline' --metrics \"{'acc': 0.7, 'loss': 0.9}\"")
    run("LR = 0.05\nx = [1, 2, 4]")
    run("%mv_snapshot -m 'smaller LR' -t candidate --metrics \"{'acc': 0.8, 'loss': 0.5}\"")
    run("LR = 0.01\nx = [9]")
    run("%mv_snapshot -n final -m 'tiny LR' --metrics \"{'acc': 0.85, 'loss': 0.4}\"")


def ids(w: HistoryWidget) -> dict:
    return {r["label"]: r["id"] for r in w.rows}


def send(w, action, **kw):
    """Set `request` exactly as the front end does (a fresh seq every time)."""
    w.request = {"action": action, "seq": time.monotonic(), **kw}
    return w.message


# -- the table ---------------------------------------------------------------------------------
def test_rows_newest_first_with_key_params_and_metrics(shell, three):
    w = HistoryWidget()
    assert [r["label"] for r in w.rows] == ["v3", "v2", "v1"]
    assert w.total == w.count == 3
    assert "LR" in w.key_params and "x" not in w.key_params or "LR" in w.key_params
    assert w.metric_names[:2] == ["acc", "loss"]
    r3 = w.rows[0]
    assert r3["name"] == "final" and r3["message"] == "tiny LR" and r3["metrics"]["acc"] == 0.85
    assert r3["params"]["LR"] == "0.01" and r3["parent"] == "v2" and r3["created"]
    assert w.rows[1]["tags"] == ["candidate"]
    assert w.chart["x"] == [1, 2, 3] and w.chart["series"]["acc"] == [0.7, 0.8, 0.85]
    w.close()


def test_sort_filter_and_pages(shell, three):
    w = HistoryWidget()
    w.sort_by = "metric:loss"
    w.sort_desc = False
    assert [r["label"] for r in w.rows] == ["v3", "v2", "v1"]
    w.sort_by = "message"
    assert [r["message"] for r in w.rows] == ["baseline", "smaller LR", "tiny LR"]
    w.filter = "acc>0.75"
    assert sorted(r["label"] for r in w.rows) == ["v2", "v3"] and w.total == 2
    w.filter = "candidate"
    assert [r["label"] for r in w.rows] == ["v2"]
    w.filter = "LR <= 0.05 loss<0.45"
    assert [r["label"] for r in w.rows] == ["v3"]
    w.filter = ""
    w.sort_by, w.sort_desc = "version", True
    w.page_size = 2
    assert [r["label"] for r in w.rows] == ["v3", "v2"]
    w.page = 1
    assert [r["label"] for r in w.rows] == ["v1"]
    w.page = 7  # past the end: clamped to the last page
    assert w.page == 1 and [r["label"] for r in w.rows] == ["v1"]
    w.close()


def test_query_language():
    assert not Query("  ")
    q = Query("acc >= 0.9 best")
    assert q.words == ["best"] and q.compares[0][0] == "acc"


# -- details -----------------------------------------------------------------------------------
def test_selecting_a_row_shows_details(shell, three):
    w = HistoryWidget()
    w.selected = [ids(w)["v1"]]
    d = w.details
    assert d["id"] == "v1" and d["message"] == "baseline" and d["metrics"]["acc"] == 0.7
    names = {v["name"]: v for v in d["variables"]}
    assert set(names) >= {"LR", "x"} and len(names["x"]["hash"]) == 10 and names["x"]["bytes"] > 0
    assert d["environment"]["python"] and d["environment"]["packages"] > 0
    srcs = [c["source"] for c in d["cells"]]
    assert any("f'trained {LR}'" in s for s in srcs)
    shown = [o["data"].get("text/plain", "") for c in d["cells"] for o in c["outputs"] if o["output_type"] == "display_data"]
    assert any("trained 0.1" in t for t in shown)
    assert d["lineage"] == ["v1"] and d["children"] == ["v2"]
    w.selected = []
    assert w.details == {}
    w.close()


def test_details_render_images_and_html(shell, run):
    run("import base64\nfrom IPython.display import display, HTML, Image\n"
        "png = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==')\n"
        "display(Image(data=png, format='png'))\ndisplay(HTML('<b>bold</b>'))")
    run("%mv_snapshot x_unused_ok -m img" if False else "%mv_snapshot png -m img")
    w = HistoryWidget()
    w.selected = [w.rows[0]["id"]]
    outs = [o["data"] for c in w.details["cells"] for o in c["outputs"] if o["output_type"] == "display_data"]
    assert any("image/png" in d for d in outs) and any(d.get("text/html") == "<b>bold</b>" for d in outs)
    w.close()


# -- actions -----------------------------------------------------------------------------------
def test_restore_puts_v1_back(shell, three):
    w = HistoryWidget()
    w.selected = [ids(w)["v1"]]
    msg = send(w, "restore", names=[], prefix="")
    assert msg["kind"] == "ok" and "v1" in msg["text"], msg
    assert shell.user_ns["LR"] == 0.1 and shell.user_ns["x"] == [1, 2, 3]
    w.close()


def test_restore_picked_variables_with_prefix(shell, three):
    w = HistoryWidget()
    w.selected = [ids(w)["v2"]]
    msg = send(w, "restore", names=["x"], prefix="old_")
    assert msg["kind"] == "ok" and "old_x" in msg["text"]
    assert shell.user_ns["old_x"] == [1, 2, 4]
    assert shell.user_ns["x"] == [9] and shell.user_ns["LR"] == 0.01 and "old_LR" not in shell.user_ns
    w.close()


def test_restore_of_an_imported_version_offers_the_trust_choice(shell, run, tmp_path):
    """An imported version's pickle-based variable is named and the choice offered; nothing is
    restored until the user picks "Restore anyway", which restores that version even if the
    selection moved. Safe formats (arrays) restore from it without asking."""
    from jupyter_mv.store import Store

    run("import numpy as np\nclass Box:\n    def __init__(self, n):\n        self.n = n\n"
        "box = Box(3)\narr = np.arange(4)")
    path = api.export(api.snapshot(), tmp_path / "shared.mvz")
    with Store(tmp_path / "colleague" / ".jupyter_mv") as other:
        got = api.import_bundle(path, store=other).version
        for n in ("box", "arr"):
            del shell.user_ns[n]
        w = HistoryWidget(store=other, notebook=got.notebook)
        w.selected = [got.id]
        msg = send(w, "restore", names=[], prefix="")
        assert msg["kind"] == "trust", msg
        assert "box would unpickle" in msg["text"] and "Box" in msg["text"] and "arr" not in msg["text"]
        assert "--trust" not in msg["text"] and "nothing was restored" in msg["text"]
        assert "box" not in shell.user_ns and "arr" not in shell.user_ns
        trust, cancel = msg["choices"]
        assert trust["label"].startswith("Restore anyway") and trust["request"]["trust"] is True
        assert "request" not in cancel
        assert send(w, "restore", names=["arr"], prefix="")["kind"] == "ok"  # arrays need no trust
        assert list(shell.user_ns.pop("arr")) == [0, 1, 2, 3] and "box" not in shell.user_ns
        assert send(w, "restore", names=[], prefix="", trust="yes")["kind"] == "trust"  # only True trusts
        w.selected = []
        msg = send(w, **trust["request"])
        assert msg["kind"] == "ok" and "box" in msg["text"], msg
        assert isinstance(shell.user_ns["box"], shell.user_ns["Box"]) and shell.user_ns["box"].n == 3
        assert list(shell.user_ns["arr"]) == [0, 1, 2, 3]
        w.close()


def test_restore_outputs_replays_them(shell, three):
    w = HistoryWidget()
    w.selected = [ids(w)["v1"]]
    msg = send(w, "restore_outputs")
    assert msg["kind"] == "ok" and w.replay["version"] == "v1"
    texts = [o.get("data", {}).get("text/plain", "") for c in w.replay["cells"] for o in c["outputs"]]
    assert any("trained 0.1" in t for t in texts)
    w.close()


def test_diff_of_two_rows(shell, three):
    w = HistoryWidget()
    w.selected = [ids(w)["v3"], ids(w)["v1"]]  # picked newest first: still diffed oldest -> newest
    msg = send(w, "diff")
    assert msg["kind"] == "ok", msg
    d = w.diff
    assert (d["a"], d["b"]) == ("v1", "v3")
    assert d["params"]["changed"]["LR"] == [0.1, 0.01]
    assert d["metrics"]["changed"]["acc"]["delta"] == pytest.approx(0.15)
    assert [v["name"] for v in d["variables"]["changed"]] == ["LR", "x"] or {v["name"] for v in d["variables"]["changed"]} >= {"LR", "x"}
    assert w.last_diff.to_dict()["params"] == d["params"]
    w.close()


def test_diff_against_the_current_state(shell, three, run):
    w = HistoryWidget()
    w.selected = [ids(w)["v3"]]
    assert send(w, "diff")["kind"] == "ok"
    assert w.diff["b"] == "current" and not w.diff["variables"]["changed"]  # nothing changed since v3
    run("LR = 0.5\nnew_var = 1")
    send(w, "diff")
    assert w.diff["params"]["changed"]["LR"] == [0.01, 0.5]
    assert [v["name"] for v in w.diff["variables"]["added"]] == ["new_var"]
    w.close()


def test_tag_from_the_widget(shell, three):
    w = HistoryWidget()
    w.selected = [ids(w)["v1"]]
    msg = send(w, "tag", tag="best")
    assert msg["kind"] == "ok" and "best" in msg["text"]
    assert api.resolve("best").label == "v1"
    assert [r["tags"] for r in w.rows if r["label"] == "v1"] == [["best"]]
    assert "best" in w.details["tags"]
    send(w, "tag", tag="candidate")  # a tag moves: v2 loses it in the table
    assert [r["tags"] for r in w.rows if r["label"] == "v2"] == [[]]
    w.close()


def test_export_button_follows_the_api(shell, three, tmp_path):
    w = HistoryWidget()
    assert w.can_export == callable(getattr(api, "export", None))
    if w.can_export:
        w.selected = [ids(w)["v1"]]
        msg = send(w, "export", path=str(tmp_path / "b.mvz"))
        assert msg["kind"] == "ok", msg
        assert (tmp_path / "b.mvz").exists()
    w.close()


@pytest.mark.parametrize("action,kw,needle", [
    ("restore", {}, "select a version"),
    ("diff", {}, "select one version"),
    ("tag", {}, "select a version"),
    ("nonsense", {}, "unknown action"),
])
def test_errors_land_in_the_message_area(shell, three, action, kw, needle):
    w = HistoryWidget()
    msg = send(w, action, **kw)
    assert msg["kind"] == "error" and needle in msg["text"], msg
    w.close()


def test_bad_input_is_reported_not_raised(shell, three):
    w = HistoryWidget()
    w.selected = [ids(w)["v1"]]
    assert send(w, "restore", prefix="1bad")["kind"] == "error"
    assert "prefix" in w.message["text"]
    msg = send(w, "tag", tag="v7")
    assert msg["kind"] == "error" and "bad tag" in msg["text"]
    assert send(w, "tag", tag="")["text"] == "type a tag first"
    msg = send(w, "restore", names=["no_such_var"])
    assert msg["kind"] == "error" and "no_such_var" in msg["text"]
    w.selected = [123456]
    assert w.message["kind"] == "error" and "123456" in w.message["text"]
    w.close()


# -- live updates ------------------------------------------------------------------------------
def test_new_snapshot_updates_the_widget_and_close_unregisters(shell, three, run):
    w = HistoryWidget()
    listeners = api.session().listeners
    assert w._on_snapshot in listeners
    run("LR = 0.001")
    run("%mv_snapshot -m 'even smaller' --metrics \"{'acc': 0.9}\"")
    assert [r["label"] for r in w.rows][:2] == ["v4", "v3"] and w.count == 4
    assert w.message["kind"] == "info" and "v4" in w.message["text"]
    assert w.chart["series"]["acc"][-1] == 0.9
    w.close()
    assert w._on_snapshot not in listeners
    run("%mv_snapshot -m 'after close'")
    assert w.count == 4


def test_n_keeps_the_last_n_and_all_shows_every_notebook(shell, three, monkeypatch, run):
    w = HistoryWidget(n=2)
    assert [r["label"] for r in w.rows] == ["v3", "v2"]
    run("%mv_snapshot -m more")
    assert [r["label"] for r in w.rows] == ["v4", "v3"]
    w.close()
    api.set_notebook("other.ipynb")
    run("%mv_snapshot -m 'in another notebook'")
    wa = HistoryWidget(all=True)
    assert wa.count == 5 and len({r["notebook"] for r in wa.rows}) == 2 and "other.ipynb" in wa.notebook + "".join(
        r["notebook"] for r in wa.rows)
    wa.close()


# -- display wiring ----------------------------------------------------------------------------
def test_mv_log_and_mv_diff_display_widgets_with_fallbacks(shell, three):
    install(shell)
    try:
        with capture_output() as cap:
            shell.run_line_magic("mv_log", "-n 2")
        data = cap.outputs[0].data
        assert WIDGET_MIME in data and "jupyter-mv-log" in data["text/html"] and "v3" in data["text/plain"]
        with capture_output() as cap:
            shell.run_line_magic("mv_diff", "v1 v2")
        data = cap.outputs[0].data
        assert WIDGET_MIME in data and "jupyter-mv-diff" in data["text/html"] and "LR" in data["text/plain"]
        fmt, _ = shell.display_formatter.format(api.diff("v1", "v3"))
        assert WIDGET_MIME in fmt and "text/html" in fmt
    finally:
        uninstall(shell)
    fmt, _ = shell.display_formatter.format(HistoryTable(api.versions()))
    assert WIDGET_MIME not in fmt and "text/html" in fmt


def test_diff_widget_structure_and_toggle(shell, run):
    shell.run_cell("LR = 0.1\nEPOCHS = 3\nMSG = 'fit'", store_history=True, cell_id="train")
    run("%mv_snapshot")
    shell.run_cell("LR = 0.05\nEPOCHS = 3\nMSG = 'fit'", store_history=True, cell_id="train")  # the same cell, edited
    run("%mv_snapshot")
    w = DiffWidget(api.diff("v1", "v2"))
    assert w.diff["params"]["changed"] == {"LR": [0.1, 0.05]}
    assert [r[0] for r in w.params_rows()] == ["LR"]
    w.show_all_params = True  # the front end's "show all" checkbox
    assert {r[0] for r in w.params_rows()} == {"LR", "EPOCHS", "MSG"}
    # the widget gets the server's diff as is (one diff): the front end lays it out from source_diff
    assert w.diff == api.diff("v1", "v2").to_dict()
    cell = next(c for c in w.diff["cells"] if c["status"] == "changed")
    assert cell["cell_id"] == "train" and "+LR = 0.05" in cell["source_diff"]
    bundle, _ = w._repr_mimebundle_()
    assert WIDGET_MIME in bundle and "text/html" in bundle
    w.close()


# -- scale -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    from jupyter_mv.store import Store

    root = tmp_path_factory.mktemp("big") / ".jupyter_mv"
    st = Store(root)
    with st.write():
        for i in range(10_000):
            st.commit_version("big.ipynb", [], params={"lr": 1.0 / (i + 1), "depth": i % 7},
                              metrics={"acc": (i % 100) / 100, "loss": 1 - (i % 100) / 100},
                              tags=["t%d" % i] if i % 1000 == 0 else [], message=f"run {i}",
                              parent=i if i else None)
    yield st
    st.close()


def test_ten_thousand_versions_open_fast(big_store):
    versions = big_store.versions("big.ipynb")
    t0 = time.perf_counter()
    w = HistoryWidget(store=big_store, versions=versions)
    built = time.perf_counter() - t0
    assert w.count == 10_000 and len(w.rows) == w.page_size and w.rows[0]["label"] == "v10000"
    assert len(w.chart["x"]) <= 2000
    assert built < 1.0, f"building the widget state took {built:.2f}s"
    t0 = time.perf_counter()
    w.filter = "acc>0.9"
    w.sort_by = "metric:loss"
    assert w.total == 900 and time.perf_counter() - t0 < 1.0
    w.close()
    t0 = time.perf_counter()
    w = HistoryWidget(store=big_store, notebook="big.ipynb")  # including the store query
    assert w.count == 10_000
    assert time.perf_counter() - t0 < 3.0
    w.close()
