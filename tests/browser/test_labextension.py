"""The lab extension end to end: toolbar Snapshot, the Model versions panel, the Diff tab and
Restore outputs, in headless Chromium against a real `jupyter lab`."""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"


def row(page, version: str):
    return page.locator(f"{PANEL} tr.mv-row[data-version='{version}']")


def snapshot_from_toolbar(lp, message: str) -> None:
    lp.page.locator(".jp-NotebookPanel:visible .jp-mv-snapshot-button").first.click()
    lp.answer_dialog(message)


def test_extensions_are_installed(lab):
    assert lab.api("jupyter-mv/api/version")["name"] == "jupyter_mv"
    labext = lab.api("lab/api/extensions")
    names = {e["name"] for e in labext} if isinstance(labext, list) else set()
    assert not names or "jupyter-mv-labextension" in names


def test_snapshot_diff_and_restore_outputs(lab, lab_page):
    lp, page = lab_page, lab_page.page
    lab.write_notebook("experiment.ipynb", ['x = 1\nprint("value", x)'])
    lp.open("experiment.ipynb")
    page.locator(f".jp-SideBar li[data-id='jupyter-mv-versions']").click()
    page.locator(PANEL).wait_for(state="visible")
    assert page.locator(".jp-NotebookPanel:visible .jp-mv-snapshot-button").count() == 1
    # JupyterLab shows the panel's tab in its sidebar: no extra toolbar button (that is Notebook 7's)
    assert page.locator(".jp-mv-panel-button").count() == 0

    lp.run_cell(0)
    assert "value 1" in lp.cell_output(0)
    snapshot_from_toolbar(lp, "first run")
    row(page, "v1").wait_for()
    assert "first run" in row(page, "v1").inner_text()
    lp.screenshot("1-snapshot-v1")

    lp.set_cell(0, 'x = 2\nprint("value", x)')
    lp.run_cell(0)
    assert "value 2" in lp.cell_output(0)
    snapshot_from_toolbar(lp, "second run")
    row(page, "v2").wait_for()
    # newest first
    ids = page.locator(f"{PANEL} tr.mv-row").evaluate_all("rows => rows.map(r => r.dataset.version)")
    assert ids == ["v2", "v1"]
    # the table fits JupyterLab's default sidebar width: no sideways scrolling, long values elided
    list_width, table_width = page.locator(f"{PANEL} .jp-mv-list").evaluate(
        "l => [l.clientWidth, l.querySelector('table').scrollWidth]")
    assert table_width <= list_width + 1, f"table {table_width} px in a {list_width} px list"
    lp.screenshot("2-snapshot-v2")

    page.locator(f"{PANEL} .jp-mv-action-diff").click()
    diff = page.locator(".jp-mv-diff:visible")
    diff.locator(".mv-diff-row").first.wait_for()
    tab = page.locator(".lm-TabBar-tab:has-text('Diff v1 → v2')")
    assert tab.count() == 1
    changed = diff.locator(".mv-diff-row[data-status='changed']")
    assert changed.count() >= 1
    text = changed.first.inner_text()
    assert "x = 1" in text and "x = 2" in text and "value 1" in text and "value 2" in text
    assert diff.locator(".mv-source div.mv-added", has_text="x = 2").count() == 1
    assert "x" in diff.locator(".mv-variables table").inner_text()  # the variables table lists x as changed
    lp.screenshot("3-diff-tab")

    # back to the notebook, select v1 and restore its outputs
    page.locator(".lm-TabBar-tab:has-text('experiment.ipynb')").first.click()
    row(page, "v1").click()
    page.locator(f"{PANEL} .mv-version-details[data-version='v1']").wait_for()
    assert "value 1" in page.locator(f"{PANEL} .mv-version-details").inner_text()
    page.locator(f"{PANEL} .jp-mv-action-restore-outputs").click()
    page.wait_for_function(
        """() => {
            const c = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')[0];
            return c && c.querySelector('.jp-OutputArea').innerText.includes('value 1');
        }"""
    )
    assert "value 2" not in lp.cell_output(0)
    lp.screenshot("4-restored-outputs-v1")

    # one undo brings the previous outputs back
    lp.command("jupyter-mv:undo-restore-outputs")
    page.wait_for_function(
        """() => {
            const c = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')[0];
            return c && c.querySelector('.jp-OutputArea').innerText.includes('value 2');
        }"""
    )

    # the server sees both versions under the notebook's name
    versions = lab.api("jupyter-mv/api/versions?notebook=experiment.ipynb")["versions"]
    assert [v["id"] for v in versions] == ["v1", "v2"]
    assert versions[0]["message"] == "first run"
    assert re.search(r"\bx\b", " ".join(versions[1]["variables"]))

    # rename the notebook: its history follows it, and the kernel learns the new name
    page.evaluate("() => window.jupyterapp.serviceManager.contents.rename('experiment.ipynb', 'renamed.ipynb')")
    deadline = time.monotonic() + 20
    while lab.api("jupyter-mv/api/versions?notebook=renamed.ipynb")["versions"] == []:
        assert time.monotonic() < deadline, "the history did not follow the rename"
        time.sleep(0.2)
    assert lab.api("jupyter-mv/api/versions?notebook=experiment.ipynb")["versions"] == []
    page.locator(f"{PANEL} .jp-mv-heading", has_text="renamed.ipynb").wait_for()
    lp.set_cell(0, 'import jupyter_mv.api as _a\nprint("NB", _a.current_notebook())')
    lp.run_cell(0)
    assert "NB renamed.ipynb" in lp.cell_output(0)
    lp.screenshot("5-renamed")
