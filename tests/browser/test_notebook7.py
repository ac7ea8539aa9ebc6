"""The lab extension in Notebook 7 (`jupyter notebook`, which runs JupyterLab extensions in its own
shell: one document per browser tab, the side panels collapsed): the Model versions panel opened from
the notebook toolbar, two versions selected with Ctrl/Shift-click and their diff shown, and the panel
fitting Notebook 7's side panel."""

from __future__ import annotations

import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"
LONG_MESSAGE = "second: a much smaller learning rate, to see whether the validation loss keeps falling"
CELLS = [
    "%load_ext jupyter_mv",
    'lr = 0.1\nprint("lr is", lr)',
    '%mv_snapshot lr -m "first"',
    'lr = 0.01\nprint("lr is", lr)',
    f'%mv_snapshot lr -m "{LONG_MESSAGE}"',
]


@pytest.fixture(scope="module")
def two_versions(notebook7):
    """experiment.ipynb under the server root with v1 and v2, made by running it in a real kernel."""
    path = notebook7.root / "experiment.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src, id=f"cell-{i}") for i, src in enumerate(CELLS)]
    env_before = os.environ.get("JPY_SESSION_NAME"), os.environ.get("PATH", "")
    # the kernel must write where the server reads: no store or notebook override from elsewhere
    overrides = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("JUPYTER_MV_")}
    # the kernel learns its notebook from JPY_SESSION_NAME, as under jupyter_server
    os.environ["JPY_SESSION_NAME"] = str(path)
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env_before[1]
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook7.root)}}).execute()
    finally:
        if env_before[0] is None:
            os.environ.pop("JPY_SESSION_NAME", None)
        else:
            os.environ["JPY_SESSION_NAME"] = env_before[0]
        os.environ["PATH"] = env_before[1]
        os.environ.update(overrides)
    nbformat.write(nb, path)
    versions = notebook7.api("jupyter-mv/api/versions?notebook=experiment.ipynb")["versions"]
    assert [v["id"] for v in versions] == ["v1", "v2"]
    return path


def open_notebook(page, server, name: str) -> None:
    page.goto(f"{server.url}notebooks/{name}?token={server.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp !== undefined && window.jupyterapp.name.includes('Notebook')")


def open_panel_from_toolbar(page) -> None:
    button = page.locator(".jp-NotebookPanel-toolbar .jp-mv-panel-button")
    button.wait_for()
    assert not page.locator(PANEL).is_visible()  # Notebook 7 starts with the side panel collapsed
    button.click()
    page.locator(PANEL).wait_for(state="visible")
    page.locator(f"{PANEL} tr.mv-row[data-version='v1']").wait_for()


def select_pair(page) -> None:
    """v1 then v2: a plain click, then Ctrl-click; Shift-click toggles v2 off and on again."""
    page.locator(f"{PANEL} tr.mv-row[data-version='v1']").click()
    page.locator(f"{PANEL} .mv-version-details[data-version='v1']").wait_for()
    page.locator(f"{PANEL} tr.mv-row[data-version='v2']").click(modifiers=["Control"])
    page.locator(f"{PANEL} .jp-mv-details", has_text="v1 and v2 selected").wait_for()
    page.locator(f"{PANEL} tr.mv-row[data-version='v2']").click(modifiers=["Shift"])
    assert page.locator(f"{PANEL} tr.mv-selected").count() == 1
    page.locator(f"{PANEL} tr.mv-row[data-version='v2']").click(modifiers=["Shift"])
    selected = page.locator(f"{PANEL} tr.mv-selected").evaluate_all("rows => rows.map(r => r.dataset.version)")
    assert sorted(selected) == ["v1", "v2"]


def assert_diff_content(diff) -> None:
    diff.locator(".mv-diff-row").first.wait_for()
    assert "v1 → v2" in diff.locator(".mv-diff-title").inner_text()
    # the cell that set lr = 0.01 is new in v2, its source and output shown on v2's side
    added = diff.locator(".mv-diff-row[data-status='added']", has_text="lr = 0.01")
    assert added.count() == 1
    assert "lr is 0.01" in added.inner_text()
    # the variables table names lr as changed
    variables = diff.locator(".mv-variables table")
    assert "lr" in variables.locator("span.mv-changed").inner_text()


def assert_row_in_view(page, version: str) -> None:
    """The version's row is inside the list's scrolled viewport, and the list inside the window."""
    inside = page.locator(f"{PANEL} tr.mv-row[data-version='{version}']").evaluate("""row => {
        const list = row.closest('.jp-mv-list').getBoundingClientRect();
        const r = row.getBoundingClientRect();
        return r.height > 0 && r.top >= list.top - 1 && r.bottom <= list.bottom + 1 && list.bottom <= window.innerHeight;
    }""")
    assert inside, f"{version}'s row is scrolled out of view"


def assert_fits(page, where: str) -> None:
    """The versions table is no wider than the panel's list (no sideways scrolling)."""
    widths = page.locator(f"{PANEL} .jp-mv-list").evaluate(
        "l => [l.clientWidth, l.querySelector('table').scrollWidth, l.getBoundingClientRect().width]")
    assert widths[1] <= widths[0] + 1, f"{where}: table {widths[1]} px in a {widths[0]} px list"


def test_panel_and_diff_in_notebook7(notebook7, two_versions, notebook7_page):
    page = notebook7_page.page
    open_notebook(page, notebook7, "experiment.ipynb")
    open_panel_from_toolbar(page)
    panel_width = page.locator(PANEL).evaluate("p => p.getBoundingClientRect().width")
    assert panel_width < 400  # Notebook 7's side panel: about 320 px in a 1440 px window

    # the table fits: empty columns (name, params, tags) are left out, long values elide with a tooltip
    headers = page.locator(f"{PANEL} table.jp-mv-versions th").all_inner_texts()
    assert "name" not in headers and "tags" not in headers
    assert headers[0] == "version" and "message" in headers
    message = page.locator(f"{PANEL} tr.mv-row[data-version='v2'] td.mv-col-message")
    assert message.get_attribute("title") == LONG_MESSAGE
    # elided (two lines at most, then cut), not wrapped off the panel
    assert message.evaluate("td => { const c = td.querySelector('.mv-cell'); return c.scrollHeight > c.clientHeight + 1 || c.scrollWidth > c.clientWidth; }")
    assert_fits(page, "Notebook 7")
    notebook7_page.screenshot("1-panel")

    select_pair(page)
    page.locator(f"{PANEL} .jp-mv-action-diff").click()
    # Notebook 7 keeps one document in its main area: the diff opens in the bottom area, full width
    diff = page.locator("#jp-down-stack .jp-mv-diff")
    diff.wait_for(state="visible")
    assert_diff_content(diff)
    # ... and tall enough to read (Notebook 7 opens that area at the height of its tab bar)
    assert diff.bounding_box()["height"] > 250
    assert diff.locator(".mv-diff-row").first.is_visible()
    assert page.locator("#jp-down-stack .lm-TabBar-tab", has_text="Diff v1 → v2").count() == 1
    # the same pair again (awaited through the command the button runs): the open tab, not a second one
    page.evaluate("() => window.jupyterapp.commands.execute('jupyter-mv:diff')")
    assert page.locator("#jp-down-stack .lm-TabBar-tab", has_text="Diff v1 → v2").count() == 1
    assert page.locator("#main-panel .jp-NotebookPanel").is_visible()  # the notebook stays in place
    notebook7_page.screenshot("2-diff-bottom")

    # the list stays in view while the details are long
    page.locator(f"{PANEL} tr.mv-row[data-version='v2']").click()
    page.locator(f"{PANEL} .mv-version-details[data-version='v2']").wait_for()
    page.locator(f"{PANEL} .jp-mv-details").evaluate("d => { d.scrollTop = d.scrollHeight; }")
    assert_row_in_view(page, "v1")
    assert_row_in_view(page, "v2")
    notebook7_page.screenshot("3-details")

    # the notebook toolbar's Snapshot works here too: a new version from this page's kernel shows up
    notebook7_page.wait_idle()
    notebook7_page.set_cell(1, 'lr = 0.001\nprint("lr is", lr)')
    notebook7_page.run_cell(1)
    page.locator(".jp-NotebookPanel-toolbar .jp-mv-snapshot-button").click()
    notebook7_page.answer_dialog("from Notebook 7")
    page.locator(f"{PANEL} tr.mv-row[data-version='v3']", has_text="from Notebook 7").wait_for()
    v3 = notebook7.api("jupyter-mv/api/versions/v3?notebook=experiment.ipynb")
    assert [v["name"] for v in v3["variables"]] == ["lr"]
    assert any("lr = 0.001" in c["source"] for c in v3["cells"])

    # the toolbar button also hides the panel again
    page.locator(".jp-NotebookPanel-toolbar .jp-mv-panel-button").click()
    page.locator(PANEL).wait_for(state="hidden")


def test_diff_inside_the_panel_when_the_shell_has_no_bottom_area(notebook7, two_versions, notebook7_page):
    """A shell that takes the diff in neither its main nor its bottom area (as Notebook 7.0, which has
    no bottom area) gets it inside the panel, the two sides stacked."""
    page = notebook7_page.page
    open_notebook(page, notebook7, "experiment.ipynb")
    page.evaluate("""() => {
        const shell = window.jupyterapp.shell;
        const add = shell.add.bind(shell);
        shell.add = (w, area, options) => (area === 'down' ? undefined : add(w, area, options));
    }""")
    # the command palette opens the panel too
    page.locator(".jp-NotebookPanel .jp-Cell .jp-InputPrompt").first.click()  # command mode
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".jp-ModalCommandPalette")
    palette.locator("input").fill("show model versions")
    palette.locator("li.lm-CommandPalette-item[data-command='jupyter-mv:open-panel']").click()
    page.locator(PANEL).wait_for(state="visible")
    page.locator(f"{PANEL} tr.mv-row[data-version='v1']").wait_for()
    select_pair(page)
    page.locator(f"{PANEL} .jp-mv-action-diff").click()
    diff = page.locator(f"{PANEL} .jp-mv-inline-diff .jp-mv-diff")
    diff.wait_for(state="visible")
    assert_diff_content(diff)
    assert page.locator("#jp-down-stack .jp-mv-diff").count() == 0
    # narrow: the sides are stacked (one grid column) and labelled with their version
    assert diff.locator(".mv-diff-sides").first.evaluate("g => getComputedStyle(g).gridTemplateColumns.split(' ').length") == 1
    assert diff.locator(".mv-diff-side[data-side='v2']").count() >= 1
    assert_row_in_view(page, "v1")
    assert_row_in_view(page, "v2")
    notebook7_page.screenshot("diff-in-panel")
    page.locator(f"{PANEL} .jp-mv-action-close-diff").click()
    assert diff.count() == 0
