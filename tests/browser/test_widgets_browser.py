"""The widgets in a real JupyterLab and headless Chromium (fixtures: tests/browser/conftest.py):
snapshot twice, %mv_log, click v1 and Restore, check the kernel has v1's values again, then Diff
(from the widget and with %mv_diff) and check the changed param is shown.
Screenshots: test-artifacts/browser/<test>-NN-*.png."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

CELLS = [
    "%load_ext jupyter_mv\nx = 1\nLR = 0.1\n%mv_snapshot -m first --metrics \"{'acc': 0.5}\"",
    "x = 2\nLR = 0.2\n%mv_snapshot -m second --metrics \"{'acc': 0.7}\"",
    "%mv_log",
    "print('X_IS', x, 'LR_IS', LR)",
    "%mv_diff v1 v2",
]


def test_log_restore_and_diff_in_jupyterlab(lab, lab_page):
    lab.write_notebook("widgets_browser.ipynb", CELLS)
    lab_page.open("widgets_browser.ipynb")
    for i in range(3):
        lab_page.run_cell(i)
    page = lab_page.page
    log = page.locator(".mv-history")
    row1 = log.locator("tr.mv-row[data-version='v1']")
    row1.wait_for()
    log.locator("tr.mv-row[data-version='v2']").wait_for()
    lab_page.screenshot("01-mv-log", full_page=True)

    # click v1, press Restore, check the kernel
    row1.click()
    log.locator(".mv-details h3", has_text="v1").wait_for()
    restore = log.locator("button.mv-restore")
    assert restore.inner_text() == "Restore"
    restore.click()
    log.locator(".mv-message.mv-msg-ok", has_text="restored").wait_for()
    assert "from v1" in log.locator(".mv-message").inner_text()
    lab_page.screenshot("02-restored-v1", full_page=True)
    lab_page.run_cell(3)
    assert "X_IS 1 LR_IS 0.1" in lab_page.cell_output(3)

    # tick v1 and v2, press Diff: the changed param is shown
    log.locator("tr.mv-row[data-version='v1'] input.mv-row-pick").check()
    log.locator("tr.mv-row[data-version='v2'] input.mv-row-pick").check()
    page.wait_for_function("document.querySelectorAll('.mv-history tr.mv-selected').length === 2")
    diff = log.locator("button.mv-diff")
    assert diff.inner_text() == "Diff"
    diff.click()
    params = log.locator(".mv-diff-panel .mv-params")
    params.wait_for()
    text = params.inner_text()
    assert "LR" in text and "0.1" in text and "0.2" in text
    lab_page.screenshot("03-diff-button", full_page=True)
    for label in ("Restore outputs", "Tag"):
        assert log.locator("button.mv-btn", has_text=label).count() >= 1

    # %mv_diff renders the diff widget
    lab_page.run_cell(4)
    dw = page.locator(".mv-diff-widget .mv-params")
    dw.wait_for()
    assert "LR" in dw.inner_text()
    lab_page.screenshot("04-mv-diff", full_page=True)
