"""Issue 16 in real JupyterLab (headless Chromium): the branch graph after a restore-and-snapshot (two
branches, tags and names on the nodes, two nodes clicked -> Diff), a variable's history (pick a variable:
the versions where it changed, against their parents, are highlighted; next/prev move through them), in
the Model versions sidebar and in the %mv_log widget (auto versions folded, opened on click).
Screenshots: test-artifacts/browser/<test>-*.png."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"

# v1 (tag start) -> v2 -> v3 ; restore v1 -> v4 (name tuned) -> v5
SIDEBAR_CELLS = [
    "%load_ext jupyter_mv\nx = 1\nlr = 0.1\n%mv_snapshot -m base -t start --metrics \"{'acc': 0.5}\"",
    "x = 2\n%mv_snapshot -m two --metrics \"{'acc': 0.6}\"",
    "x = 3\nlr = 0.2\n%mv_snapshot -m three --metrics \"{'acc': 0.7}\"",
    "%mv_restore v1\nlr = 0.05\n%mv_snapshot -m branch -n tuned --metrics \"{'acc': 0.65}\"",
    "x = 9\n%mv_snapshot -m branch-two --metrics \"{'acc': 0.8}\"",
]


def shown(page, selector: str) -> list[str]:
    return page.locator(selector).evaluate_all("els => els.map(e => e.dataset.version)")


def wait_shown(page, selector: str, expected: list[str]) -> None:
    page.wait_for_function("([sel, want]) => JSON.stringify([...document.querySelectorAll(sel)].map(e => e.dataset.version)) === JSON.stringify(want)",
                           arg=[selector, expected], timeout=15_000)


def lanes(scope) -> int:
    """How many lanes the graph's nodes sit in (distinct x of the dots)."""
    return scope.locator(".mv-graph-dot").evaluate_all("cs => new Set(cs.map(c => c.getAttribute('cx'))).size")


def test_sidebar_branch_graph_and_variable_history(lab, lab_page):
    lp, page = lab_page, lab_page.page
    lab.write_notebook("branches.ipynb", SIDEBAR_CELLS)
    lp.open("branches.ipynb")
    for i in range(len(SIDEBAR_CELLS)):
        lp.run_cell(i)
    assert "restored" in lp.cell_output(3)
    versions = {v["id"]: v["parent"] for v in lab.api("jupyter-mv/api/versions?notebook=branches.ipynb")["versions"]}
    assert versions == {"v1": None, "v2": "v1", "v3": "v2", "v4": "v1", "v5": "v4"}
    page.locator(".jp-SideBar li[data-id='jupyter-mv-versions']").click()
    panel = page.locator(PANEL)
    panel.wait_for(state="visible")
    panel.locator(".jp-mv-action-refresh").click()
    panel.locator("tr.mv-row[data-version='v5']").wait_for()

    # the graph: newest first, two branches from v1, tag and name on their nodes
    panel.locator(".jp-mv-view-graph").click()
    nodes = f"{PANEL} .mv-graph-node"
    wait_shown(page, nodes, ["v5", "v4", "v3", "v2", "v1"])
    assert lanes(panel) == 2
    v4 = panel.locator(".mv-graph-node[data-version='v4']")
    assert "mv-graph-branch" in v4.get_attribute("class") and "from v1" in v4.inner_text() and "tuned" in v4.inner_text()
    assert "start" in panel.locator(".mv-graph-node[data-version='v1'] .mv-tagchip").inner_text()
    # no sideways scrolling at the default sidebar width
    assert panel.locator(".jp-mv-list").evaluate("l => l.scrollWidth <= l.clientWidth + 1")
    lp.screenshot("1-graph")

    # click a node: its details; Ctrl-click a second: Diff compares them
    panel.locator(".mv-graph-node[data-version='v3']").click()
    panel.locator(".mv-version-details[data-version='v3']").wait_for()
    panel.locator(".mv-graph-node[data-version='v5']").click(modifiers=["Control"])
    wait_shown(page, f"{nodes}.mv-selected", ["v5", "v3"])
    panel.locator(".jp-mv-action-diff").click()
    diff = page.locator(".jp-mv-diff:visible")
    diff.locator(".mv-variables").wait_for()
    assert page.locator(".lm-TabBar-tab:has-text('Diff v3 → v5')").count() == 1
    assert "x" in diff.locator(".mv-variables").inner_text()
    lp.screenshot("2-diff-of-two-nodes")
    page.locator(".lm-TabBar-tab:has-text('branches.ipynb')").first.click()
    # the keyboard: Enter on a focused node selects it, and the focus stays on it
    panel.locator(".mv-graph-node[data-version='v2']").focus()
    page.keyboard.press("Enter")
    wait_shown(page, f"{nodes}.mv-selected", ["v2"])
    page.wait_for_function("() => document.activeElement && document.activeElement.dataset.version === 'v2'")

    # a variable's history: x changed in v1 (added), v2, v3 and v5; v4 holds v1's x again (its parent)
    panel.locator(".jp-mv-var-picker select").select_option("x")
    panel.locator(".mv-var-history[data-name='x']").wait_for()
    wait_shown(page, f"{nodes}.mv-var-hl", ["v5", "v3", "v2", "v1"])
    assert shown(page, f"{PANEL} .mv-var-change") == ["v1", "v2", "v3", "v5"]
    assert panel.locator(".mv-var-history .mv-var-point").count() == 5  # x is a number: its chart, a point a version
    for want in ("v1", "v2", "v3", "v5"):
        panel.locator(".mv-var-next").click()
        wait_shown(page, f"{nodes}.mv-var-current", [want])
        panel.locator(f".mv-version-details[data-version='{want}']").wait_for()  # and it is selected
    assert panel.locator(".mv-var-next").is_disabled()
    lp.screenshot("3-variable-history-x")
    panel.locator(".mv-var-prev").click()
    wait_shown(page, f"{nodes}.mv-var-current", ["v3"])
    page.keyboard.press("Alt+ArrowLeft")  # the keyboard steps too
    wait_shown(page, f"{nodes}.mv-var-current", ["v2"])

    # lr: set in v1, changed in v3 and on the branch in v4 (against v1, not v3)
    panel.locator(".jp-mv-var-picker select").select_option("lr")
    panel.locator(".mv-var-history[data-name='lr']").wait_for()
    wait_shown(page, f"{nodes}.mv-var-hl", ["v4", "v3", "v1"])
    # a metric
    panel.locator(".jp-mv-var-picker select").select_option("metric:acc")
    panel.locator(".mv-var-history[data-name='acc']").wait_for()
    wait_shown(page, f"{nodes}.mv-var-hl", ["v5", "v4", "v3", "v2", "v1"])
    # the table marks the same versions
    panel.locator(".jp-mv-view-table").click()
    panel.locator(".jp-mv-var-picker select").select_option("lr")
    wait_shown(page, f"{PANEL} tr.mv-row.mv-var-hl", ["v4", "v3", "v1"])
    lp.screenshot("4-table-variable-history-lr")


WIDGET_CELLS = [
    "%load_ext jupyter_mv\nx = 1\nlr = 0.1\n%mv_snapshot -m base -t start",
    # four automatic versions (x = 10..13), then a manual one: v2..v5 auto, v6
    "from jupyter_mv import api\nfor i in range(4):\n    x = 10 + i\n    api.take_snapshot(kind='auto')\nx = 2\n%mv_snapshot -m two",
    "%mv_restore v1\nlr = 0.3\n%mv_snapshot -m branch -n tuned",
    "%mv_log",
]


def test_widget_graph_in_the_notebook(lab, lab_page):
    lp, page = lab_page, lab_page.page
    lab.write_notebook("widget_graph.ipynb", WIDGET_CELLS)
    lp.open("widget_graph.ipynb")
    for i in range(len(WIDGET_CELLS)):
        lp.run_cell(i)
    log = page.locator(".mv-history")
    log.locator("tr.mv-row[data-version='v7']").wait_for()
    log.locator("button.mv-view-graph").click()
    nodes = ".mv-history .mv-graph-node"
    # the run of plain automatic versions v2..v5 is one row
    wait_shown(page, nodes, ["v7", "v6", "v1"])
    fold = log.locator(".mv-graph-fold")
    assert "4 automatic versions v2–v5" in fold.inner_text()
    assert lanes(log) == 2
    assert "tuned" in log.locator(".mv-graph-node[data-version='v7']").inner_text()
    assert "start" in log.locator(".mv-graph-node[data-version='v1']").inner_text()
    lp.screenshot("1-widget-graph-folded", full_page=True)
    fold.click()
    wait_shown(page, nodes, ["v7", "v6", "v5", "v4", "v3", "v2", "v1"])
    log.locator(".mv-graph-refold").click()
    wait_shown(page, nodes, ["v7", "v6", "v1"])

    # two nodes (tick boxes) -> Diff
    log.locator(".mv-graph-node[data-version='v6']").click()
    log.locator(".mv-details h3", has_text="v6").wait_for()
    log.locator(".mv-graph-node[data-version='v7'] input.mv-row-pick").check()
    wait_shown(page, f"{nodes}.mv-selected", ["v7", "v6"])
    log.locator("button.mv-diff").click()
    log.locator(".mv-message.mv-msg-ok", has_text="diff v6 → v7").wait_for()
    log.locator(".mv-diff-panel .mv-variables").wait_for()
    lp.screenshot("2-widget-diff", full_page=True)

    # x's history: every version but v7 (which holds v1's x, like its parent); highlighted ones unfold
    log.locator("select.mv-var-pick").select_option("x")
    wait_shown(page, f"{nodes}.mv-var-hl", ["v6", "v5", "v4", "v3", "v2", "v1"])
    log.locator(".mv-var-next").click()
    wait_shown(page, f"{nodes}.mv-var-current", ["v1"])
    log.locator(".mv-var-next").click()
    wait_shown(page, f"{nodes}.mv-var-current", ["v2"])
    log.locator(".mv-var-prev").click()
    wait_shown(page, f"{nodes}.mv-var-current", ["v1"])
    log.locator(".mv-details h3", has_text="v1").wait_for()
    assert log.locator(".mv-var-history .mv-var-point").count() == 7
    lp.screenshot("3-widget-variable-history", full_page=True)
    log.locator("select.mv-var-pick").select_option("lr")
    wait_shown(page, f"{nodes}.mv-var-hl", ["v7", "v1"])
    # in the table too: its rows are marked, and stepping selects (the kernel side picks the row)
    log.locator("button.mv-view-table").click()
    wait_shown(page, ".mv-history tr.mv-row.mv-var-hl", ["v7", "v1"])
    log.locator(".mv-var-next").click()
    wait_shown(page, ".mv-history tr.mv-row.mv-selected", ["v1"])
    wait_shown(page, ".mv-history tr.mv-row.mv-var-current", ["v1"])
    log.locator(".mv-var-next").click()
    wait_shown(page, ".mv-history tr.mv-row.mv-selected", ["v7"])
    lp.screenshot("4-widget-table-variable-history", full_page=True)
