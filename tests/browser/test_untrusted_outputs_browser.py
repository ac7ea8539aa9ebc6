"""Recorded outputs are untrusted content, in a real JupyterLab and headless Chromium.

Someone sends two bundles of `hostile.ipynb`: v1 with plain outputs, v2 whose recorded outputs try
to run script (an <img onerror>, an SVG with onload and <script>, a <script> and an <iframe srcdoc> in
HTML, an application/javascript output, Markdown with an <img onerror> and a javascript: link, an
inline SVG with <animate onbegin>/<foreignObject>), next to a pandas DataFrame table, a PNG and an
SVG plot. They are imported into the lab's store; then every surface that shows recorded outputs is
opened: the widget's version details, its diff and its Restore outputs, `%mv_restore v2 --outputs`,
the lab sidebar's details, the lab diff tab, and the sidebar's Restore outputs into the notebook's
cells (saved and reopened). Every payload would set `top.__mv_pwned`; it must stay unset, while the
DataFrame still renders as a <table> and the images as images.
Screenshots: test-artifacts/browser/<test>-NN-*.png."""

from __future__ import annotations

import json

import pytest

import hostile_outputs as H

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"
N_RECORDED = len(H.hostile_cells())  # cells cell-0 … cell-7 carry the recorded outputs
LOG_CELL, RESTORE_CELL = N_RECORDED, N_RECORDED + 1


def assert_not_pwned(page, where: str, settle_ms: int = 1200) -> None:
    """No payload ran (they fire on load/error within milliseconds; give them time to)."""
    page.wait_for_timeout(settle_ms)
    flag, title = page.evaluate("() => [window.__mv_pwned ?? null, document.title]")
    assert flag is None and "PWNED" not in title, f"{where}: a recorded output ran script ({flag!r})"


def check_payload_fires(page) -> None:
    """The control: the same payload put into this page the unsafe way does run (so an unset flag
    later means the surfaces held, not that the payload is a dud in this browser)."""
    page.evaluate("(html) => { const d = document.createElement('div'); d.id = 'mv-control'; d.innerHTML = html;"
                  " document.body.append(d); }", H.HTML_IMG_ONERROR)
    page.wait_for_function("() => window.__mv_pwned === 'img-onerror'", timeout=10_000)
    page.evaluate("() => { document.getElementById('mv-control').remove(); delete window.__mv_pwned;"
                  " document.title = 'JupyterLab'; }")


def wait_table(scope) -> None:
    """The DataFrame's table, rendered as a <table> with its values."""
    scope.locator("table", has_text=H.BENIGN_CELL_TEXT).first.wait_for()
    assert scope.locator("table", has_text=H.BENIGN_CELL_TEXT).first.locator("th", has_text="alpha").count() == 1


def loaded_images(scope) -> list:
    """[naturalWidth] of the <img> elements under `scope` (0 = not decodable)."""
    return scope.evaluate_all("els => els.map(e => e.complete ? e.naturalWidth : -1)")


def test_hostile_bundle_runs_no_script_on_any_surface(lab, lab_page, tmp_path):
    lp, page = lab_page, lab_page.page
    H.import_into(lab.root, H.make_bundles(tmp_path / "sender"))
    sources = [src for src, _ in H.hostile_cells()] + ["%load_ext jupyter_mv\n%mv_log", "%mv_restore v2 --outputs"]
    lab.write_notebook(H.NOTEBOOK, sources)
    versions = lab.api(f"jupyter-mv/api/versions?notebook={H.NOTEBOOK}")["versions"]
    assert [(v["id"], v["origin"]) for v in versions] == [("v1", "imported"), ("v2", "imported")]

    lp.open(H.NOTEBOOK)
    check_payload_fires(page)

    # 1. the widget's version details
    lp.run_cell(LOG_CELL)
    log = page.locator(".mv-history")
    log.locator("tr.mv-row[data-version='v2']").click()
    details = log.locator(".mv-details")
    details.locator("h3", has_text="v2").wait_for()
    page.evaluate("() => document.querySelectorAll('.mv-history .mv-details details').forEach(d => d.open = true)")
    wait_table(details)
    assert details.locator(".mv-html h1", has_text="Hostile markdown").count() == 1  # Markdown, rendered
    imgs = loaded_images(details.locator("img.mv-img"))
    assert len(imgs) == 3 and all(w > 0 for w in imgs), imgs  # the PNG and both SVGs, as images
    assert_not_pwned(page, "widget details")
    lp.screenshot("01-widget-details", full_page=True)

    # 2. the widget's diff (images side by side: the hostile SVG among them)
    log.locator("tr.mv-row[data-version='v1'] input.mv-row-pick").check()
    page.wait_for_function("document.querySelectorAll('.mv-history tr.mv-selected').length === 2")
    log.locator("button.mv-diff").click()
    diff = log.locator(".mv-diff-panel")
    diff.locator(".mv-images img").first.wait_for()
    assert all(w > 0 for w in loaded_images(diff.locator(".mv-images img")))
    assert_not_pwned(page, "widget diff")
    lp.screenshot("02-widget-diff", full_page=True)

    # 3. the widget's Restore outputs
    log.locator("tr.mv-row[data-version='v2'] td.mv-col-version").click()
    page.wait_for_function("document.querySelectorAll('.mv-history tr.mv-selected').length === 1")
    log.locator("button.mv-restore-outputs").click()
    replay = log.locator(".mv-replay")
    replay.locator("h4", has_text="Outputs of v2").wait_for()
    wait_table(replay)
    assert_not_pwned(page, "widget Restore outputs")
    lp.screenshot("03-widget-restore-outputs", full_page=True)

    # 4. %mv_restore v2 --outputs: published by the kernel, so JupyterLab renders it as trusted
    lp.run_cell(RESTORE_CELL)
    out = lp.cell(RESTORE_CELL).locator(".jp-OutputArea")
    wait_table(out)
    out.locator(".jp-RenderedHTMLCommon h1", has_text="Hostile markdown").wait_for()  # rendered asynchronously
    assert out.locator(".jp-RenderedHTMLCommon h1", has_text="Hostile markdown").count() == 1
    assert out.locator(".jp-RenderedJavaScript").count() == 0
    assert all(w > 0 for w in loaded_images(out.locator("img[src^='data:']")))
    assert "sanitized" in out.inner_text() and "application/javascript" in out.inner_text()
    assert_not_pwned(page, "%mv_restore --outputs")
    lp.screenshot("04-mv-restore-outputs", full_page=True)

    # 5. the lab sidebar's version details
    page.locator(".jp-SideBar li[data-id='jupyter-mv-versions']").click()
    panel = page.locator(PANEL)
    panel.locator("tr.mv-row[data-version='v2']").click()
    det = panel.locator(".mv-version-details[data-version='v2']")
    det.wait_for()
    wait_table(det)
    # JupyterLab's renderers are asynchronous (markdown is parsed off the DOM): wait for the rendered
    # heading before counting what was rendered
    det.locator(".jp-mv-rendered h1", has_text="Hostile markdown").wait_for()
    assert det.locator(".jp-mv-rendered h1", has_text="Hostile markdown").count() == 1
    assert det.locator(".jp-mv-rendered[data-mime-type='application/javascript']").count() == 0
    imgs = loaded_images(det.locator("img[src^='data:']"))
    assert len(imgs) == 3 and all(w > 0 for w in imgs), imgs  # the PNG and both SVGs
    assert_not_pwned(page, "lab sidebar details")
    lp.screenshot("05-sidebar-details", full_page=True)

    # 6. the lab diff tab
    panel.locator("tr.mv-row[data-version='v1']").click(modifiers=["Control"])
    panel.locator(".jp-mv-action-diff").click()
    tab = page.locator(".jp-mv-diff:visible")
    tab.locator(".mv-diff-row").first.wait_for()
    wait_table(tab)
    assert_not_pwned(page, "lab diff tab")
    lp.screenshot("06-diff-tab", full_page=True)

    # 7. the sidebar's Restore outputs into the notebook's cells: untrusted cells
    page.locator(f".lm-TabBar-tab:has-text('{H.NOTEBOOK}')").first.click()
    panel.locator("tr.mv-row[data-version='v2']").click()
    page.wait_for_function(f"document.querySelectorAll('{PANEL} tr.mv-selected').length === 1")
    # the user's cells are trusted (as after running them): the restore itself must take that away
    page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.forEach(w => { w.model.trusted = true; })")
    panel.locator(".jp-mv-action-restore-outputs").click()
    df_cell = lp.cell(5)
    wait_table(df_cell.locator(".jp-OutputArea"))
    trusted = page.evaluate(f"() => window.jupyterapp.shell.currentWidget.content.widgets.slice(0, {N_RECORDED})"
                            ".map(w => w.model.trusted)")
    assert trusted == [False] * N_RECORDED
    assert page.locator(".jp-NotebookPanel:visible .jp-RenderedJavaScript").count() == 0
    assert_not_pwned(page, "Restore outputs into cells")
    lp.screenshot("07-restored-into-cells", full_page=True)

    # saved and reopened, the notebook still does not trust those outputs
    lp.command("docmanager:save")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    saved = json.loads((lab.root / H.NOTEBOOK).read_text())
    assert "signature" not in saved["metadata"]
    js = [o for c in saved["cells"] for o in c.get("outputs", []) if "application/javascript" in o.get("data", {})]
    assert js and "".join(js[0]["data"]["application/javascript"]) == H.JAVASCRIPT  # restored exactly, untrusted
    lp.open(H.NOTEBOOK)
    wait_table(lp.cell(5).locator(".jp-OutputArea"))
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[0].model.trusted") is False
    assert_not_pwned(page, "the reopened notebook")
    lp.screenshot("08-reopened", full_page=True)


# -- the widget outside JupyterLab -------------------------------------------------------------------
HOST = """async ([esm, state]) => {
  // the anywidget front-end module contract (what Notebook 7, VS Code or Colab give a widget), no Jupyter
  const listeners = {};
  const model = {
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; for (const f of listeners['change:' + k] || []) f(); },
    on: (e, f) => { (listeners[e] = listeners[e] || []).push(f); },
    off: (e, f) => { listeners[e] = (listeners[e] || []).filter((g) => g !== f); },
    save_changes: () => {}, send: () => {},
  };
  const url = URL.createObjectURL(new Blob([esm], { type: 'text/javascript' }));
  const mod = await import(url);
  const el = document.createElement('div');
  document.body.append(el);
  mod.default.render({ model, el });
  document.querySelectorAll('details').forEach((d) => { d.open = true; });
  return typeof window.DOMPurify;
}"""


def test_widgets_sanitize_outside_jupyterlab(page, tmp_path, monkeypatch):
    """The history and diff widgets' own modules in a bare page (no JupyterLab, no rendermime): the
    hostile version's details, replayed outputs and diff run no script; the table and images render."""
    from jupyter_mv import api
    from jupyter_mv.widgets import DiffWidget, HistoryWidget

    monkeypatch.chdir(tmp_path)
    H.import_into(tmp_path, H.make_bundles(tmp_path / "sender"))
    st = api.open_store(tmp_path / ".jupyter_mv")
    try:
        w = HistoryWidget(store=st, notebook=H.NOTEBOOK)
        w.selected = [r["id"] for r in w.rows if r["label"] == "v2"]
        w.act("restore_outputs")
        hist_state = {k: v for k, v in w.get_state().items() if not k.startswith("_")}
        d = DiffWidget(api.diff("v1", "v2", notebook=H.NOTEBOOK, store=st))
        diff_state = {k: v for k, v in d.get_state().items() if not k.startswith("_")}
        esms = (w._esm, d._esm)
        w.close()
        d.close()
    finally:
        st.close()
    page.set_content("<!doctype html><html><head><title>bare page</title></head><body></body></html>")
    check_payload_fires(page)
    page.evaluate("() => { document.title = 'bare page'; }")
    assert page.evaluate(HOST, [esms[0], hist_state]) == "undefined"  # DOMPurify stays private
    details, replay = page.locator(".mv-details"), page.locator(".mv-replay")
    wait_table(details)
    wait_table(replay)
    assert details.locator(".mv-html h1", has_text="Hostile markdown").count() == 1
    imgs = loaded_images(details.locator("img.mv-img"))
    assert len(imgs) == 3 and all(w > 0 for w in imgs), imgs
    page.evaluate(HOST, [esms[1], diff_state])
    imgs = loaded_images(page.locator(".mv-diff-widget .mv-images img"))
    assert imgs and all(w > 0 for w in imgs), imgs
    assert_not_pwned(page, "widgets in a bare page")
