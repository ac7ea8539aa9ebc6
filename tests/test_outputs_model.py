"""Recorded outputs are what the notebook shows (issue 11, K7): display updates through a display_id
(`handle.update(...)`, `update_display`, also from a later cell) and `clear_output(wait=True)` (clear when
the next output comes) are applied to the recorded outputs, so `%mv_restore --outputs`, the widget, the
sidebar and `jupyter-mv show` show the final state. Checked against nbclient's notebook in a real kernel."""

from __future__ import annotations

import json
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from jupyter_mv import api, capture
from jupyter_mv.store import Store
from mvtest import cli_in_process


def _disp(text):
    return {"output_type": "display_data", "data": {"text/plain": text}, "metadata": {}}


def _stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def shown(outputs) -> list:
    """What a cell shows: (type, text) per output, consecutive streams of one name joined (frontends
    render them as one block; nbclient keeps one output per message)."""
    out: list = []
    for o in outputs:
        if o["output_type"] == "stream":
            if out and out[-1][0] == "stream:" + o["name"]:
                out[-1] = (out[-1][0], out[-1][1] + o["text"])
            else:
                out.append(("stream:" + o["name"], o["text"]))
        elif o["output_type"] in ("display_data", "execute_result"):
            out.append((o["output_type"], o["data"].get("text/plain")))
        else:
            out.append((o["output_type"], o.get("ename")))
    return out


# -- the log's output model -------------------------------------------------------------------------
def test_celllog_applies_updates_and_delayed_clears():
    log = capture.CellLog()
    log.start("progress", 1, "c1")
    log.add(_disp("epoch 0/3"), display_id="p")
    log.add(_stream("training\n"))
    for i in (1, 2, 3):
        log.update_display("p", {"text/plain": f"epoch {i}/3"})
    log.update_display("unknown", {"text/plain": "ignored"})
    log.start("loop", 2, "c2")
    for i in range(3):
        log.clear(wait=True)
        log.add(_stream(f"step {i}\n"))
    log.clear(wait=True)  # pending at the end of the cell: the last output stays shown
    log.start("later", 3, "c3")
    log.update_display("p", {"text/plain": "final: done"}, {"note": 1})  # a later cell updates c1's display
    log.add(_disp("second view"), display_id="p")  # a new view of the same display updates the first too
    cells = {c.cell_id: c for c in log.cells()}
    assert shown(cells["c1"].outputs) == [("display_data", "second view"), ("stream:stdout", "training\n")]
    assert cells["c1"].outputs[0]["metadata"] == {}
    assert shown(cells["c2"].outputs) == [("stream:stdout", "step 2\n")]
    assert shown(cells["c3"].outputs) == [("display_data", "second view")]
    log.clear()  # immediate clear of c3 forgets its view; c1's still follows updates
    log.update_display("p", {"text/plain": "third"})
    cells = {c.cell_id: c for c in log.cells()}
    assert shown(cells["c1"].outputs)[0] == ("display_data", "third") and cells["c3"].outputs == ()


def test_versions_keep_the_outputs_of_their_moment():
    log = capture.CellLog()
    log.start("h = display(...)", 1, "c1")
    log.add(_disp("epoch 0/3"), display_id="p")
    before = log.cells()[0]
    log.update_display("p", {"text/plain": "final: done"})
    assert shown(before.outputs) == [("display_data", "epoch 0/3")]  # an earlier version's cells are frozen
    assert shown(log.cells()[0].outputs) == [("display_data", "final: done")]


def test_rerun_cell_forgets_its_old_displays():
    log = capture.CellLog()
    log.start("a", 1, "c1")
    log.add(_disp("old"), display_id="p")
    log.start("a", 2, "c1")  # re-run: outputs start over
    log.add(_stream("new\n"))
    log.update_display("p", {"text/plain": "must not land on the stream"})
    assert shown(log.cells()[0].outputs) == [("stream:stdout", "new\n")]


# -- plain IPython ----------------------------------------------------------------------------------
def test_ipython_handle_update_and_clear_wait(shell, run):
    run("from IPython.display import display, clear_output, update_display")
    run("h = display('epoch 0/3', display_id=True)\nfor i in range(1, 4): h.update(f'epoch {i}/3')\n"
        "h.update('final: done')")
    run("for i in range(3):\n    clear_output(wait=True)\n    display(f'step {i}')")
    run("update_display('final: really', display_id=h.display_id)")
    run("%mv_snapshot -m outputs")
    cells = api.outputs("v1")
    by_src = {c.source.splitlines()[0]: c for c in cells}
    assert shown(by_src["h = display('epoch 0/3', display_id=True)"].outputs) == [
        ("display_data", "'final: really'")]
    assert shown(by_src["for i in range(3):"].outputs) == [("display_data", "'step 2'")]


def test_carriage_returns_show_the_last_state_of_a_line():
    """`\\r` returns to the line's start (tqdm, `print(..., end='\\r')`): a notebook shows each line's
    last state, and so do the recorded outputs, whichever chunks the text arrived in."""
    log = capture.CellLog()
    log.start("bar", 1, "c1")
    for i in range(0, 101, 25):
        log.add(_stream(f"\rprogress {i}%"))
    log.add(_stream("\n"))
    log.add(_stream("a\r\nb\n"))  # Windows line ends stay line breaks
    log.add(_stream("done 9"))
    log.add(_stream("\r"))
    log.add(_stream("done 10\n"))
    log.add({"output_type": "stream", "name": "stderr", "text": "warn\r\rlast err\n"})
    log.start("plain", 2, "c2")
    log.add(_stream("no return\n"))
    log.add(_stream("here\n"))
    cells = {c.cell_id: c for c in log.cells()}
    assert shown(cells["c1"].outputs) == [("stream:stdout", "progress 100%\na\nb\ndone 10\n"),
                                          ("stream:stderr", "last err\n")]
    assert shown(cells["c2"].outputs) == [("stream:stdout", "no return\nhere\n")]


# -- a real kernel, compared with what nbclient's notebook holds ------------------------------------
CELLS = [
    ("load", "%load_ext jupyter_mv\nfrom IPython.display import display, clear_output, update_display"),
    ("progress", "h = display('epoch 0/3', display_id=True)\nfor i in range(1, 4):\n    h.update(f'epoch {i}/3')\n"
                 "print('training')\nh.update('final: done')"),
    ("loop", "for i in range(3):\n    clear_output(wait=True)\n    print(f'step {i}')"),
    ("shared", "display('a', display_id='shared')\nprint('x')\n42"),
    ("later", "update_display('b', display_id='shared')\nh.update('final: really done')"),
    ("pending", "print('kept')\nclear_output(wait=True)"),
    ("again", "display('again', display_id='shared')"),
    ("cleared", "print('gone')\nclear_output()\nprint('after')"),
    ("html", "from IPython.display import HTML\nd = display(HTML('<b>0%</b>'), display_id=True)\n"
             "d.update(HTML('<b>100%</b>'))"),
    ("cr", "import sys\nfor i in range(5):\n    print(f'\\repoch {i}/4', end='')\nprint()\nsys.stderr.write('x\\ry\\n')"),
    ("snap", "%mv_snapshot -m outputs"),
]


@pytest.mark.kernel
@pytest.mark.slow
def test_recorded_outputs_match_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{sys.prefix}/bin:" + __import__("os").environ.get("PATH", ""))
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", str(tmp_path / "progress.ipynb"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src, id=cid) for cid, src in CELLS]
    nb = NotebookClient(nb, timeout=180, kernel_name="python3",
                        resources={"metadata": {"path": str(tmp_path)}}).execute()
    expected = {c.id: shown(c.outputs) for c in nb.cells if c.id != "snap"}
    assert expected["progress"] == [("display_data", "'final: really done'"), ("stream:stdout", "training\n")]
    assert expected["loop"] == [("stream:stdout", "step 2\n")]

    st = Store(tmp_path / ".jupyter_mv")
    try:
        (v,) = st.versions()
        ids = {src: cid for cid, src in CELLS}  # nbclient sends no cell ids: match by source
        recorded = {ids[c.source]: shown(c.outputs) for c in st.cells(v) if ids.get(c.source) in expected}
    finally:
        st.close()
    # nbclient keeps `\r` as sent; a notebook shows each line's last state, as recorded
    assert shown(nb.cells[[c for c, _ in CELLS].index("cr")].outputs)[0][1].startswith("\repoch 0/4\repoch 1/4")
    assert expected.pop("cr")[-1] == ("execute_result", "4")
    assert recorded.pop("cr") == [("stream:stdout", "epoch 4/4\n"), ("stream:stderr", "y\n"), ("execute_result", "4")]
    assert recorded == expected

    # jupyter-mv show (the sidebar and the widget read the same api.show)
    r = cli_in_process("show", "v1", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cells = {c["source"]: c for c in json.loads(r.stdout)["cells"]}
    assert shown(cells[CELLS[1][1]]["outputs"]) == expected["progress"]
    text = cli_in_process("show", "v1", cwd=tmp_path).stdout
    assert "epoch 0/3" not in text


@pytest.mark.kernel
@pytest.mark.slow
def test_restore_outputs_shows_the_final_frame(tmp_path, monkeypatch):
    """%mv_restore --outputs in a fresh kernel re-displays the final frame, not the first."""
    monkeypatch.setenv("PATH", f"{sys.prefix}/bin:" + __import__("os").environ.get("PATH", ""))
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", str(tmp_path / "progress.ipynb"))

    def run(cells):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        return NotebookClient(nb, timeout=180, kernel_name="python3",
                              resources={"metadata": {"path": str(tmp_path)}}).execute()

    run(["%load_ext jupyter_mv", CELLS[1][1].replace("print('training')\n", ""), "%mv_snapshot -m p"])
    nb = run(["%load_ext jupyter_mv", "%mv_restore v1 --outputs"])
    texts = [o.get("data", {}).get("text/plain", "") for o in nb.cells[1].outputs]  # not the source headers
    assert "'final: done'" in texts, texts
    assert not any("epoch" in t for t in texts), texts


@pytest.mark.kernel
@pytest.mark.slow
def test_widget_outputs_show_the_live_widget(tmp_path, monkeypatch):
    """A widget's later changes travel as widget messages, not display updates, so its text/plain is
    the first frame (a tqdm bar's `0%`): the recorded text is taken again from the live widget; a
    closed one keeps what it last showed; a version keeps the text of its moment."""
    monkeypatch.setenv("PATH", f"{sys.prefix}/bin:" + __import__("os").environ.get("PATH", ""))
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", str(tmp_path / "widgets.ipynb"))
    cells = ["%load_ext jupyter_mv",
             "import ipywidgets as w\n"
             "bar = w.IntProgress(value=0, max=3, description='train')\ndisplay(bar)\n"
             "for i in range(4):\n    bar.value = i\n"
             "gone = w.IntSlider(value=1)\ndisplay(gone)\ngone.value = 5",
             "%mv_snapshot -m first",
             "gone.close()\nbar.value = 1",
             "%mv_snapshot -m second"]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert shown(nb.cells[1].outputs) == [("display_data", "IntProgress(value=0, description='train', max=3)"),
                                          ("display_data", "IntSlider(value=1)")]  # as displayed
    with Store(tmp_path / ".jupyter_mv") as st:
        v1, v2 = st.versions()
        first = [c for c in st.cells(v1) if c.source == cells[1]][0]
        second = [c for c in st.cells(v2) if c.source == cells[1]][0]
    assert shown(first.outputs) == [("display_data", "IntProgress(value=3, description='train', max=3)"),
                                    ("display_data", "IntSlider(value=5)")]
    assert shown(second.outputs) == [("display_data", "IntProgress(value=1, description='train', max=3)"),
                                     ("display_data", "IntSlider(value=5)")]
    view = first.outputs[0]["data"]["application/vnd.jupyter.widget-view+json"]
    assert view == nb.cells[1].outputs[0]["data"]["application/vnd.jupyter.widget-view+json"]

    # %mv_restore --outputs in another kernel: the recorded text, not a view of a widget that kernel
    # does not have (a frontend would show "Error displaying widget: model not found")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in ("%load_ext jupyter_mv", "%mv_restore v1 --outputs")]
    nb = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown_again = [o for o in nb.cells[1].outputs if o.output_type == "display_data"]
    assert [o.data.get("text/plain") for o in shown_again] == [
        "IntProgress(value=3, description='train', max=3)", "IntSlider(value=5)"]
    assert not any("application/vnd.jupyter.widget-view+json" in o.data for o in shown_again)
