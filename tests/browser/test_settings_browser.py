"""The lab extension's own settings (labextension/schema/plugin.json) in a real JupyterLab: the Model versions
sidebar hides automatic versions when "Show automatic versions" is off, keeping the ones given a tag or name."""

from __future__ import annotations

import json
import urllib.request

import pytest

from jupyter_mv import api, capture

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"
PLUGIN_ID = "jupyter-mv-labextension:plugin"


def _put_settings(lab, raw: dict) -> None:
    req = urllib.request.Request(f"{lab.url}lab/api/settings/{PLUGIN_ID}", method="PUT",
                                 data=json.dumps({"raw": json.dumps(raw)}).encode(),
                                 headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 204)


def _history(lab, notebook: str) -> None:
    """v1 manual, v2 and v3 automatic, v4 automatic but tagged, beside `notebook` in the lab root."""
    lab.write_notebook(notebook, ["x = 1"])
    s = api.Session(namespace={"x": 0}, cell_log=capture.CellLog())
    s.told_notebook = str(lab.root / notebook)
    api.set_session(s)
    st = api.open_store(lab.root / ".jupyter_mv")
    try:
        api.take_snapshot(message="manual", store=st)
        for i in (1, 2):
            s.namespace["x"] = i
            api.take_snapshot(message=f"auto {i}", kind="auto", store=st)
        s.namespace["x"] = 3
        api.take_snapshot(message="auto kept", kind="auto", tags=["keep"], store=st)
    finally:
        st.close()
        api.set_session(None)


def _shown(page) -> list[str]:
    return page.locator(f"{PANEL} tr[data-version]").evaluate_all("rows => rows.map(r => r.dataset.version)")


def test_show_automatic_versions_setting(lab, lab_page):
    lp, page = lab_page, lab_page.page
    _history(lab, "settings.ipynb")
    assert lab.api(f"lab/api/settings/{PLUGIN_ID}")["schema"]["properties"]["showAutomaticVersions"]["default"] is True
    try:
        lp.open("settings.ipynb", wait_idle=False)
        page.locator(".jp-SideBar li[data-id='jupyter-mv-versions']").click()
        page.locator(f"{PANEL} tr[data-version='v4']").wait_for()
        page.wait_for_function(f"() => document.querySelectorAll('{PANEL} tr[data-version]').length === 4")
        assert _shown(page) == ["v4", "v3", "v2", "v1"]  # default: every version

        _put_settings(lab, {"showAutomaticVersions": False, "refreshInterval": 0})
        lp.open("settings.ipynb", wait_idle=False)
        page.locator(".jp-SideBar li[data-id='jupyter-mv-versions']").click()
        page.locator(f"{PANEL} tr[data-version='v4']").wait_for()
        page.wait_for_function(f"() => document.querySelectorAll('{PANEL} tr[data-version]').length === 2")
        assert _shown(page) == ["v4", "v1"]  # the tagged automatic version stays
    finally:
        _put_settings(lab, {})  # the lab server is shared by the package's tests
