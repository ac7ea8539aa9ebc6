"""Remotes in the lab sidebar (issue 14), in headless Chromium against a real `jupyter lab`: the store's
default remote shown (its URL as registered, no credentials), Push from the sidebar puts the ☁ mark on
the pushed version only, and Pull brings in a version another store pushed to the same file:// remote."""

from __future__ import annotations

import pytest

from jupyter_mv import api
from jupyter_mv.store import Store

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"


def row(page, version: str):
    return page.locator(f"{PANEL} tr.mv-row[data-version='{version}']")


def marked(page) -> list[str]:
    """The versions whose row carries the remote mark, newest first."""
    return page.locator(f"{PANEL} tr.mv-row").evaluate_all(
        "rows => rows.filter(r => r.querySelector('.jp-mv-on-remote')).map(r => r.dataset.version)")


def headers(page) -> list[str]:
    return page.locator(f"{PANEL} table.jp-mv-versions th").all_inner_texts()


def colleague_pushes(tmp_path, url: str, notebook: str, monkeypatch) -> str:
    """Another store (bob's) with one version of `notebook`, pushed to `url`; returns its global id."""
    monkeypatch.setenv("JUPYTER_MV_AUTHOR", "bob@elsewhere")
    st = Store(tmp_path / "bob" / ".jupyter_mv")
    try:
        api.set_session(api.Session(namespace={"x": 42, "note": "bob's run"}))
        api.session().told_notebook = str(tmp_path / "bob" / notebook)
        v = api.take_snapshot([], message="bob's version", store=st).version
        api.remote_add("origin", url, store=st)
        result = api.push(v.label, notebook=notebook, store=st)
        assert [p.gid for p in result.pushed] == [v.gid]
        return v.gid
    finally:
        api.set_session(None)
        st.close()


def test_push_marks_and_pull_brings_in(lab, lab_page, tmp_path, monkeypatch):
    lp, page = lab_page, lab_page.page
    remote_dir = tmp_path / "team-remote"
    url = remote_dir.as_uri()
    # its own directory, so its store (and remote) is not the other browser tests' one
    lab.write_notebook("remotes/team.ipynb", [
        "%load_ext jupyter_mv\nx = 1\n%mv_snapshot x -m one --params \"{'lr': 0.1}\" --metrics \"{'acc': 0.5}\"",
        "x = 2\n%mv_snapshot x -m two --params \"{'lr': 0.05}\" --metrics \"{'acc': 0.75}\"",
        f"import jupyter_mv as mv\nprint(mv.remote_add('team', {url!r}))",
    ])
    lp.open("remotes/team.ipynb")
    page.locator(".jp-SideBar li[data-id='jupyter-mv-versions']").click()
    page.locator(PANEL).wait_for(state="visible")
    for i in range(2):
        lp.run_cell(i)
    page.locator(f"{PANEL} .jp-mv-action-refresh").click()
    row(page, "v2").wait_for()
    # no remote yet: no remote line, Push / Pull disabled, their tooltip says how to add one
    push = page.locator(f"{PANEL} .jp-mv-action-push")
    page.wait_for_function("(sel) => { const b = document.querySelector(sel); return b && b.title.includes('remote add'); }",
                           arg=f"{PANEL} .jp-mv-action-push")
    assert push.is_disabled() and page.locator(f"{PANEL} .jp-mv-action-pull").is_disabled()
    assert not page.locator(f"{PANEL} .jp-mv-remote").is_visible()
    lp.run_cell(2)
    assert "team" in lp.cell_output(2)
    page.locator(f"{PANEL} .jp-mv-action-refresh").click()
    where = page.locator(f"{PANEL} .jp-mv-remote:not(.jp-mv-remote-none) .jp-mv-remote-where")
    where.wait_for()
    assert where.inner_text() == f"☁ team {url}"
    assert marked(page) == []  # nothing pushed yet: no mark, and no ☁ column
    assert page.locator(f"{PANEL} .jp-mv-on-remote").count() == 0
    assert "☁" not in headers(page)

    # the commands are in the palette under their names
    labels = page.evaluate("() => ['jupyter-mv:push', 'jupyter-mv:pull'].map(c => window.jupyterapp.commands.label(c))")
    assert labels == ["Push version to remote", "Pull from remote"]

    # Push v1 from the sidebar: busy, then the summary; v1 carries the mark, v2 does not
    row(page, "v1").click()
    page.locator(f"{PANEL} .jp-mv-action-push").click()
    state = page.locator(f"{PANEL} .jp-mv-remote-state.jp-mv-remote-done")
    state.wait_for(timeout=60_000)
    assert state.inner_text().startswith("pushed v1 to team: ")
    page.locator(f"{PANEL} tr.mv-row[data-version='v1'] .jp-mv-on-remote").wait_for()
    assert marked(page) == ["v1"]
    assert headers(page)[:2] == ["version", "☁"]
    # the column is narrow: the table still fits the sidebar and every column stays readable
    widths = page.locator(f"{PANEL} table.jp-mv-versions th").evaluate_all(
        "ths => ths.filter(th => getComputedStyle(th).display !== 'none').map(th => th.getBoundingClientRect().width)")
    assert min(widths) >= 14 and sorted(widths)[1] >= 24, widths
    list_width, table_width = page.locator(f"{PANEL} .jp-mv-list").evaluate(
        "l => [l.clientWidth, l.querySelector('table').scrollWidth]")
    assert table_width <= list_width + 1
    assert lab.api("jupyter-mv/api/remote?notebook=remotes/team.ipynb")["on_remote"] == ["v1"]
    assert (remote_dir / "versions").is_dir()
    lp.screenshot("1-pushed-v1")

    # a colleague pushes their own version of the same notebook; Pull (the command) brings it in as v3
    bob_gid = colleague_pushes(tmp_path, url, "team.ipynb", monkeypatch)
    lp.command("jupyter-mv:pull")
    page.locator(f"{PANEL} .jp-mv-remote-state.jp-mv-remote-done", has_text="pulled v3 from team").wait_for(timeout=60_000)
    row(page, "v3").wait_for()
    page.locator(f"{PANEL} tr.mv-row[data-version='v3'] .jp-mv-on-remote").wait_for()
    assert marked(page) == ["v3", "v1"]
    v3 = lab.api("jupyter-mv/api/versions?notebook=remotes/team.ipynb")["versions"][-1]
    assert (v3["id"], v3["gid"], v3["author"], v3["message"]) == ("v3", bob_gid, "bob@elsewhere", "bob's version")
    assert v3["origin"] != "local"  # pulled: untrusted, like an imported bundle
    lp.screenshot("2-pulled-v3")

    # the sidebar's Pull button: nothing new; the marks stay
    page.locator(f"{PANEL} .jp-mv-action-pull").click()
    page.locator(f"{PANEL} .jp-mv-remote-state.jp-mv-remote-done", has_text="nothing new on team").wait_for(timeout=60_000)
    assert marked(page) == ["v3", "v1"]
    assert not [e for e in page.console_errors if "jupyter-mv" in e or "jupyter_mv" in e]
