"""An adversarial user of the lab extension's "Model versions" sidebar in real JupyterLab (headless
Chromium): hundreds of versions, hostile text (HTML-looking, RTL, very long), keyboard-only use, a store
broken under the server, two notebooks, a notebook moved while open, no kernel. Each test pins faults
found by trying to break the UI."""

from __future__ import annotations

import shutil

import pytest

from jupyter_mv import api

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"
HOSTILE = '<img src=x onerror="window.__mv_pwned=1"><b>bold</b>'
RTL = "שלום עולם \u202eevil\u202c مرحبا"
LONG_TAG = "tag-" + "w" * 96  # the longest tag the store takes (100)


def make_versions(lab, notebook: str, n: int, message=lambda i: f"m{i}", tags=lambda i: ()) -> None:
    """n versions of `notebook` written straight into the store beside it (no kernel): fast and exact."""
    nb = lab.write_notebook(notebook, ["x = 1"])
    s = api.Session(namespace={"x": 0})
    s.told_notebook = str(nb)
    api.set_session(s)
    st = api.open_store(nb.parent / ".jupyter_mv")
    try:
        for i in range(1, n + 1):
            s.namespace["x"] = i
            api.take_snapshot(message=message(i), tags=tags(i), metrics={"loss": 1.0 / i}, store=st)
    finally:
        st.close()
        api.set_session(None)


def open_panel(lp) -> None:
    lp.page.locator(".jp-SideBar li[data-id='jupyter-mv-versions']").click()
    lp.page.locator(PANEL).wait_for(state="visible")


def row(page, version: str):
    return page.locator(f"{PANEL} tr.mv-row[data-version='{version}']")


def selected(page) -> list[str]:
    return page.locator(f"{PANEL} tr.mv-row.mv-selected").evaluate_all("rs => rs.map(r => r.dataset.version)")


def focused_version(page) -> str | None:
    return page.evaluate("() => document.activeElement && document.activeElement.dataset.version || null")


def test_300_hostile_versions_keyboard_only(lab, lab_page):
    """300 versions with HTML-looking / RTL / 2000-char messages and a 100-char tag: every row renders as
    text, the long tag does not stretch its row, and the list works from the keyboard alone: Tab reaches
    a row, Enter picks it, arrows move, Ctrl+Enter adds a second, and a refresh keeps selection and focus."""
    lp, page = lab_page, lab_page.page
    make_versions(lab, "many.ipynb", 300,
                  message=lambda i: (HOSTILE, RTL, "x" * 2000)[i % 3],
                  tags=lambda i: [LONG_TAG] if i == 299 else [f"<i>t{i}</i>"] if i == 298 else [])
    lp.open("many.ipynb")
    open_panel(lp)
    row(page, "v300").wait_for()
    assert page.locator(f"{PANEL} tr.mv-row").count() == 300
    assert page.evaluate("() => window.__mv_pwned") is None
    assert page.locator(f"{PANEL} img, {PANEL} .jp-mv-list b, {PANEL} .jp-mv-list i").count() == 0
    assert HOSTILE in row(page, "v300").inner_text()  # shown as the text it is
    assert "<i>t298</i>" in row(page, "v298").inner_text()
    # the 100-character tag elides on one line instead of wrapping a character a line
    heights = [row(page, v).bounding_box()["height"] for v in ("v299", "v297")]
    assert heights[0] <= heights[1] * 1.5 + 2, heights

    # keyboard only: Tab from the filter box reaches the rows
    page.locator(f"{PANEL} .jp-mv-filter").focus()
    for _ in range(12):
        page.keyboard.press("Tab")
        if focused_version(page):
            break
    assert focused_version(page) == "v300", page.evaluate("() => document.activeElement.outerHTML.slice(0, 200)")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert focused_version(page) == "v298"
    page.keyboard.press("Enter")
    page.locator(f"{PANEL} .mv-version-details[data-version='v298']").wait_for()
    assert selected(page) == ["v298"]
    assert page.locator(".jp-NotebookPanel .jp-Notebook.jp-mod-editMode").count() == 0  # Enter stayed ours
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("() => document.querySelectorAll('#jupyter-mv-versions tr.mv-selected').length === 2")
    assert sorted(selected(page)) == ["v298", "v299"]

    # a new version arrives and the list re-reads: selection and keyboard focus stay where they were
    page.locator(f"{PANEL} tr.mv-row[data-version='v299']").focus()
    s = api.Session(namespace={"x": -1})
    s.told_notebook = str(lab.root / "many.ipynb")
    api.set_session(s)
    st = api.open_store(lab.root / ".jupyter_mv")
    try:
        api.take_snapshot(message="new", store=st)
    finally:
        st.close()
        api.set_session(None)
    page.locator(f"{PANEL} .jp-mv-action-refresh").evaluate("b => b.click()")  # a click that keeps the focus
    row(page, "v301").wait_for()
    assert sorted(selected(page)) == ["v298", "v299"]
    assert focused_version(page) == "v299"
    page.keyboard.press("Space")  # plain Space: picks just this one
    page.wait_for_function("() => document.querySelectorAll('#jupyter-mv-versions tr.mv-selected').length === 1")
    assert selected(page) == ["v299"]
    errors = [e for e in page.console_errors if "jupyter-mv" in e or "Failed to load" in e]
    assert not errors, errors


def test_store_broken_under_server_is_one_message_and_no_stale_rows(lab, lab_page):
    """The store is replaced by garbage while the notebook is open: the panel says so in one readable
    line and drops the rows it can no longer back (selecting them would only fail)."""
    lp, page = lab_page, lab_page.page
    make_versions(lab, "broken/nb.ipynb", 2)
    lp.open("broken/nb.ipynb")
    open_panel(lp)
    row(page, "v2").click()
    page.locator(f"{PANEL} .mv-version-details[data-version='v2']").wait_for()
    store = lab.root / "broken" / ".jupyter_mv"
    shutil.rmtree(store)
    store.mkdir()
    (store / "store.db").write_bytes(b"not a database" * 500)
    page.locator(f"{PANEL} .jp-mv-action-refresh").click()
    status = page.locator(f"{PANEL} .jp-mv-status")
    page.wait_for_function("() => document.querySelector('#jupyter-mv-versions .jp-mv-status').textContent.startsWith('Cannot read')")
    text = status.inner_text()
    assert "store" in text and "\n" not in text and "Traceback" not in text, text
    assert page.locator(f"{PANEL} tr.mv-row").count() == 0
    assert page.locator(f"{PANEL} .mv-version-details").count() == 0


def test_two_notebooks_moved_notebook_and_no_kernel(lab, lab_page):
    """Two notebooks: each keeps its own selection when the user switches back and forth. A notebook moved
    to another directory while open says in the panel why it lists no versions (not "No versions yet").
    With the kernel shut down, Restore and Snapshot say they need one before asking anything."""
    lp, page = lab_page, lab_page.page
    make_versions(lab, "one.ipynb", 3, message=lambda i: f"one-{i}")
    make_versions(lab, "two.ipynb", 5, message=lambda i: f"two-{i}")
    lp.open("one.ipynb")
    open_panel(lp)
    row(page, "v2").click()
    page.locator(f"{PANEL} .mv-version-details[data-version='v2']").wait_for()
    lp.command("docmanager:open", {"path": "two.ipynb"})
    row(page, "v5").wait_for()
    assert page.locator(f"{PANEL} .jp-mv-heading").inner_text() == "two.ipynb"
    assert selected(page) == []
    row(page, "v4").click()
    page.locator(".lm-TabBar-tab", has_text="one.ipynb").click()
    page.wait_for_function("() => document.querySelector('#jupyter-mv-versions .jp-mv-heading').textContent === 'one.ipynb'")
    page.locator(f"{PANEL} .mv-version-details[data-version='v2']").wait_for()
    assert selected(page) == ["v2"] and page.locator(f"{PANEL} tr.mv-row").count() == 3
    assert "one-2" in page.locator(f"{PANEL} .mv-version-details").inner_text()
    page.locator(".lm-TabBar-tab", has_text="two.ipynb").click()
    page.locator(f"{PANEL} .mv-version-details[data-version='v4']").wait_for()
    assert selected(page) == ["v4"]

    # renamed in place: the history follows; moved to another directory: the panel says why it is empty
    page.locator(".lm-TabBar-tab", has_text="one.ipynb").click()
    page.evaluate("() => window.jupyterapp.serviceManager.contents.rename('one.ipynb', 'uno.ipynb')")
    page.wait_for_function("() => document.querySelector('#jupyter-mv-versions .jp-mv-heading').textContent === 'uno.ipynb'")
    row(page, "v3").wait_for()
    (lab.root / "elsewhere").mkdir()
    page.evaluate("() => window.jupyterapp.serviceManager.contents.rename('uno.ipynb', 'elsewhere/uno.ipynb')")
    page.wait_for_function("() => document.querySelector('#jupyter-mv-versions .jp-mv-status').textContent.includes('did not follow')")
    status = page.locator(f"{PANEL} .jp-mv-status").inner_text()
    assert "uno.ipynb" in status and "another directory" in status and "No versions yet" not in status, status

    # no kernel: the commands that need one say so before any dialog
    page.locator(".lm-TabBar-tab", has_text="two.ipynb").click()
    row(page, "v5").wait_for()
    lp.command("kernelmenu:shutdown")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.sessionContext.session")
    for command, said in (("jupyter-mv:restore", "Restore needs the notebook's kernel"),
                          ("jupyter-mv:snapshot", "A snapshot needs the notebook's kernel")):
        page.evaluate("(c) => { void window.jupyterapp.commands.execute(c); }", command)
        page.locator("[class*=jp-Notification-Toast]", has_text=said).first.wait_for()
        assert page.locator(".jp-Dialog").count() == 0, command


def test_diff_of_500_changed_variables_names_every_change(lab, lab_page):
    """Two versions with 500 changed ints, a 1000-line string changed at its end and a 5000-char string
    changed in its last character (their elided summaries read the same), and a name that looks like HTML:
    the Diff tab lists all 502 changes, says the long strings changed instead of a blank "change" cell,
    and shows the HTML-looking name as text. The details of a version with a 1000-line value stay text."""
    lp, page = lab_page, lab_page.page
    nb = lab.write_notebook("bigdiff/nb.ipynb", ["x = 1"])
    ns = {f"var_{i}": i for i in range(500)}
    ns.update(lines="\n".join(f"line {i}" for i in range(1000)), chars="a" * 5000, **{"<b>h</b>": 1})
    s = api.Session(namespace=ns)
    s.told_notebook = str(nb)
    api.set_session(s)
    st = api.open_store(nb.parent / ".jupyter_mv")
    try:
        api.take_snapshot(message="before", store=st)
        ns.update({f"var_{i}": i + 1 for i in range(500)}, lines=ns["lines"] + "\nmore", chars="a" * 4999 + "b")
        ns["<b>h</b>"] = 2
        api.take_snapshot(message="after", store=st)
    finally:
        st.close()
        api.set_session(None)
    lp.open("bigdiff/nb.ipynb")
    open_panel(lp)
    row(page, "v2").click()
    page.locator(f"{PANEL} .mv-version-details[data-version='v2']").wait_for()
    assert page.locator(f"{PANEL} .mv-version-details b").count() == 0
    row(page, "v1").click(modifiers=["Control"])
    page.locator(f"{PANEL} .jp-mv-action-diff").click()
    view = page.locator(".mv-diffview[data-a='v1'][data-b='v2']")
    view.wait_for()
    assert page.locator(".mv-diffview .mv-variables tr.mv-changed").count() == 503
    for name in ("lines", "chars"):
        change = page.locator(f".mv-diffview .mv-variables tr[data-name='{name}'] td").nth(3).inner_text()
        assert "value changed" in change, (name, change)
    assert "bytes" in page.locator(".mv-diffview .mv-variables tr[data-name='lines'] td").nth(3).inner_text()
    assert page.locator(".mv-diffview tr[data-name='<b>h</b>']").inner_text().startswith("<b>h</b>")
    assert page.locator(".mv-diffview .mv-variables b").count() == 0
