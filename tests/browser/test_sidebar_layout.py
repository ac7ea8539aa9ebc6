"""The Model versions sidebar at JupyterLab's default width (issue 16): the versions list stays
visible and clickable whatever the selected version's details hold (click another version, Ctrl-click
two, Diff), and the table fits: no sideways scrolling, empty columns left out, the params that differ
between versions first and marked, long values elided with their full text as a tooltip."""

from __future__ import annotations

import pytest

from jupyter_mv import api, capture

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"
N = 12


def long_history(lab, name: str) -> None:
    """N versions; each has 40 executed cells with outputs and 25 variables (a long details pane)."""
    nb = lab.write_notebook(name, ["x = 1"])
    log = capture.CellLog()
    ns = {f"var_{i:02d}": i for i in range(25)}
    s = api.Session(namespace=ns, cell_log=log)
    s.told_notebook = str(nb)
    api.set_session(s)
    st = api.open_store(lab.root / ".jupyter_mv")
    try:
        for v in range(N):
            for c in range(40):
                log.start(f"step_{c} = {v}\nprint('cell {c} of version {v}')", v * 40 + c + 1, f"cell-{c}")
                log.add({"output_type": "stream", "name": "stdout", "text": f"cell {c} of version {v}\n"})
            ns["var_00"] = v
            api.take_snapshot(message=f"run {v} with a message long enough to need eliding in a narrow list",
                              params={"lr": 0.1 / (v + 1), "optimizer": "adam", "epochs": 10,
                                      "note": "a long constant parameter value " * 3},
                              metrics={"acc": 0.5 + v / 100, "loss": 1 / (v + 1)}, store=st)
    finally:
        st.close()
        api.set_session(None)


def list_box(page) -> dict:
    return page.locator(f"{PANEL} .jp-mv-list").evaluate("""l => {
        const r = l.getBoundingClientRect(); const t = l.querySelector('table');
        const rows = [...l.querySelectorAll('tr.mv-row')].filter(tr => {
            const b = tr.getBoundingClientRect(); return b.height > 0 && b.top >= r.top - 1 && b.bottom <= r.bottom + 1; });
        return {height: r.height, client: l.clientWidth, scroll: t.scrollWidth, visibleRows: rows.length,
                bottom: r.bottom, window: window.innerHeight};
    }""")


def test_list_stays_usable_with_long_details(lab, lab_page):
    lp, page = lab_page, lab_page.page
    long_history(lab, "long.ipynb")
    lp.open("long.ipynb")
    page.locator(".jp-SideBar li[data-id='jupyter-mv-versions']").click()
    row = lambda v: page.locator(f"{PANEL} tr.mv-row[data-version='{v}']")  # noqa: E731
    row(f"v{N}").wait_for()

    # the default width: the table fits, columns nobody fills (name) are left out
    box = list_box(page)
    assert box["scroll"] <= box["client"] + 1, box
    headers = page.locator(f"{PANEL} table.jp-mv-versions th").all_inner_texts()
    assert "name" not in headers and headers[0] == "version" and "created" in headers
    # lr differs between versions: it comes first in the values cell and is marked; metrics, then the constant params follow
    params = row("v3").locator("td.mv-col-values")
    first = params.locator("span.mv-kv").first
    assert first.inner_text() == "lr=0.0333333" and "mv-param-changed" in first.get_attribute("class")
    assert [s.inner_text().split("=")[0] for s in params.locator("span.mv-kv").all()] == ["lr", "acc", "loss", "epochs"]
    assert "mv-param-changed" not in params.locator("span.mv-kv", has_text="epochs").get_attribute("class")
    assert "note=a long constant parameter value" in params.get_attribute("title")  # the rest in the tooltip
    # the columns it shows are readable, not squeezed: each at least 3 characters wide
    widths = page.locator(f"{PANEL} table.jp-mv-versions th").evaluate_all("ths => ths.filter(th => getComputedStyle(th).display !== 'none').map(th => th.getBoundingClientRect().width)")
    assert min(widths) >= 24, widths
    message = row("v3").locator("td.mv-col-message")
    assert message.get_attribute("title").startswith("run 2 with a message long enough")  # elided, full text as tooltip
    lp.screenshot("1-default-width")

    # select a version: its long details do not push the list away
    row("v3").click()
    page.locator(f"{PANEL} .mv-version-details[data-version='v3']").wait_for()
    details_h = page.locator(f"{PANEL} .jp-mv-details").evaluate("d => [d.scrollHeight, d.clientHeight]")
    assert details_h[0] > details_h[1] * 2, details_h  # the details really are long (they scroll)
    box = list_box(page)
    assert box["visibleRows"] >= 3 and box["bottom"] <= box["window"], box
    lp.screenshot("2-long-details")

    # the list still works: click another version, scroll to it if needed
    row("v9").scroll_into_view_if_needed()
    row("v9").click()
    page.locator(f"{PANEL} .mv-version-details[data-version='v9']").wait_for()
    assert list_box(page)["visibleRows"] >= 3
    # scrolled to the bottom of the details, the list is still there
    page.locator(f"{PANEL} .jp-mv-details").evaluate("d => { d.scrollTop = d.scrollHeight; }")
    assert list_box(page)["visibleRows"] >= 3
    # Ctrl-click a second one -> Diff
    row("v1").scroll_into_view_if_needed()
    row("v1").click(modifiers=["Control"])
    page.wait_for_function(f"document.querySelectorAll('{PANEL} tr.mv-selected').length === 2")
    page.locator(f"{PANEL} .jp-mv-action-diff").click()
    diff = page.locator(".jp-mv-diff:visible")
    diff.locator(".mv-diff-title", has_text="v1 → v9").wait_for()
    changed = diff.locator(".mv-params tr.mv-changed")
    assert "lr" in changed.first.inner_text()
    # the diff shows the server's values by the one formatting rule
    assert "0.0111111" in diff.locator(".mv-params").inner_text()
    lp.screenshot("3-diff-from-ctrl-click")
