"""In a real JupyterLab and headless Chromium (fixtures: tests/browser/conftest.py): restoring a version
made elsewhere that needs unpickling asks the user, in the history widget and in the sidebar's Restore
command, and restores only on "Restore anyway"; a snapshot message typed in the lab's dialog is stored
exactly as typed. Screenshots: test-artifacts/browser/<test>-NN-*.png."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"
# v1 made here; v2 made in a colleague's store (another store beside this notebook, so the same notebook
# path), exported and imported here: a version made
# elsewhere holding a notebook-class instance
SETUP = ("%load_ext jupyter_mv\nclass Box:\n    def __init__(self, n):\n        self.n = n\n"
         "box = Box(3)\n%mv_snapshot box -m made\n"
         "from jupyter_mv import api\nfrom jupyter_mv.store import Store\n"
         "theirs = Store('colleague-store')\n"
         "api.export(api.take_snapshot(['box'], store=theirs).version, 'shared.mvz', store=theirs)\n"
         "theirs.close()\n%mv_import shared.mvz\ndel box, theirs")
CHECK = "print('HAS_BOX', 'box' in globals(), getattr(globals().get('box'), 'n', None))"


def test_widget_restore_of_an_imported_version_asks_first(lab, lab_page):
    lab.write_notebook("trust_widget.ipynb", [SETUP, "%mv_log", CHECK])
    lp, page = lab_page, lab_page.page
    lp.open("trust_widget.ipynb")
    for i in range(3):
        lp.run_cell(i)
    assert "HAS_BOX False" in lp.cell_output(2)
    log = page.locator(".mv-history")
    log.locator("tr.mv-row[data-version='v2']").click()
    log.locator(".mv-details h3", has_text="v2").wait_for()

    log.locator("button.mv-restore").click()
    asked = log.locator(".mv-message.mv-msg-trust")
    asked.wait_for()
    text = asked.inner_text()
    assert "box would unpickle" in text and "Box" in text and "--trust" not in text, text
    assert log.locator("button.mv-trust-restore").inner_text() == "Restore anyway (trust this version)"
    lp.screenshot("01-asked", full_page=True)
    log.locator("button.mv-trust-cancel").click()
    log.locator(".mv-message", has_text="nothing restored").wait_for()
    assert log.locator("button.mv-trust-restore").count() == 0
    lp.run_cell(2)
    assert "HAS_BOX False" in lp.cell_output(2)

    log.locator("button.mv-restore").click()
    log.locator("button.mv-trust-restore").click()
    log.locator(".mv-message.mv-msg-ok", has_text="restored").wait_for()
    assert "box" in log.locator(".mv-message").inner_text()
    lp.screenshot("02-trusted", full_page=True)
    lp.run_cell(2)
    assert "HAS_BOX True 3" in lp.cell_output(2)


def test_sidebar_restore_of_an_imported_version_asks_first(lab, lab_page):
    lab.write_notebook("trust_sidebar.ipynb", [SETUP, CHECK])
    lp, page = lab_page, lab_page.page
    lp.open("trust_sidebar.ipynb")
    lp.run_cell(0)
    page.locator(".jp-SideBar li[data-id='jupyter-mv-versions']").click()
    page.locator(PANEL).wait_for(state="visible")
    page.locator(f"{PANEL} .jp-mv-action-refresh").click()  # the snapshot and import came from a cell
    row = page.locator(f"{PANEL} tr.mv-row[data-version='v2']")
    row.wait_for()
    row.click()

    def restore_then(trust: bool) -> str:
        page.locator(f"{PANEL} .jp-mv-action-restore").click()
        lp.answer_dialog()  # "Restore v2?"
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for()
        body = dialog.inner_text()
        lp.screenshot("01-trust-dialog" if not trust else "02-trust-dialog")
        lp.answer_dialog(accept=trust)
        return body

    body = restore_then(trust=False)
    assert "Trust v2?" in body and "box would unpickle" in body and "Restore anyway" in body, body
    assert "--trust" not in body
    page.locator(".jp-Notification-Toast-info", has_text="nothing restored").first.wait_for()
    lp.run_cell(1)
    assert "HAS_BOX False" in lp.cell_output(1)

    restore_then(trust=True)
    page.locator(".jp-Notification-Toast-success", has_text="restored").first.wait_for()
    lp.run_cell(1)
    assert "HAS_BOX True 3" in lp.cell_output(1)


def test_snapshot_message_typed_in_the_dialog_is_stored_exactly(lab, lab_page):
    message = "costs $5 ${x} {x} {{x}} 'single' \"double\" # not a comment \\ back\\slash $$ café 😀"
    lab.write_notebook("message.ipynb", ["x = 'EXPANDED'"])
    lp, page = lab_page, lab_page.page
    lp.open("message.ipynb")
    lp.run_cell(0)
    page.locator(".jp-NotebookPanel:visible .jp-mv-snapshot-button").first.click()
    lp.answer_dialog(message)
    page.locator(".jp-Notification-Toast-success", has_text="v1").first.wait_for()
    versions = lab.api("jupyter-mv/api/versions?notebook=message.ipynb")["versions"]
    assert [v["message"] for v in versions] == [message]
