"""Non-finite metrics in the lab panel (issue 11, K4): the REST API writes them as "NaN"/"Infinity"
(RFC 8259 has no literal for them) and the panel shows NaN / ∞ instead of failing to parse."""

from __future__ import annotations

import pytest

from jupyter_mv import api

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"


def test_panel_shows_nan_and_infinity(lab, lab_page):
    lp, page = lab_page, lab_page.page
    nb = lab.write_notebook("nonfinite.ipynb", ["x = 1"])
    s = api.Session(namespace={"x": 1})
    s.told_notebook = str(nb)
    api.set_session(s)
    st = api.open_store(lab.root / ".jupyter_mv")
    try:
        api.take_snapshot(message="finite", metrics={"loss": 0.5, "best_loss": 0.4}, store=st)
        api.take_snapshot(message="diverged", metrics={"loss": float("nan"), "best_loss": float("inf")}, store=st)
    finally:
        st.close()
        api.set_session(None)

    lp.open("nonfinite.ipynb")
    page.locator(".jp-SideBar li[data-id='jupyter-mv-versions']").click()
    row = page.locator(f"{PANEL} tr.mv-row[data-version='v2']")
    row.wait_for()
    text = row.inner_text()
    assert "loss=NaN" in text and "best_loss=∞" in text, text
    assert "finite" in page.locator(f"{PANEL} tr.mv-row[data-version='v1']").inner_text()
    row.click()
    details = page.locator(f"{PANEL} .mv-version-details[data-version='v2']")
    details.wait_for()
    assert "∞" in details.inner_text() and "NaN" in details.inner_text()
    lp.screenshot("nonfinite-panel")
