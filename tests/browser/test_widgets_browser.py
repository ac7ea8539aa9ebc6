"""The widgets in a real JupyterLab and headless Chromium: snapshot twice, %mv_log, click v1 and
Restore, check the kernel has v1's value again, then Diff and check the changed param is shown.

Needs Debian's chromium (/usr/bin/chromium) and Python playwright; never downloads a browser.
The lab and browser fixtures are private to this file (no shared browser conftest existed yet).
Screenshots go to test-artifacts/widgets/ (or $JUPYTER_MV_ARTIFACTS)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("JUPYTER_MV_CHROMIUM", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("JUPYTER_MV_ARTIFACTS", REPO / "test-artifacts")) / "widgets"
TOKEN = "jupyter-mv-widgets-test"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]

CELLS = [
    "%load_ext jupyter_mv\nx = 1\nlr = 0.1\n%mv_snapshot -m first --metrics \"{'acc': 0.5}\"",
    "x = 2\nlr = 0.2\n%mv_snapshot -m second --metrics \"{'acc': 0.7}\"",
    "%mv_log",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api")
    root = tmp_path_factory.mktemp("lab")
    (root / "work").mkdir()
    settings = root / "settings"
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None,
                     "id": f"cell{i}"} for i, c in enumerate(CELLS)],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (root / "work" / "widgets.ipynb").write_text(json.dumps(nb))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MV_", "JPY_"))}
    env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(root / "workspaces")
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root / 'work'}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=False"],
        cwd=root / "work", env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail("JupyterLab did not start:\n" + (root / "lab.log").read_text()[-3000:])
            time.sleep(0.3)
    yield {"url": url, "root": root / "work"}
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(30_000)
        pg.goto(f"{lab['url']}/lab/tree/widgets.ipynb?token={TOKEN}")
        pg.wait_for_selector(".jp-Notebook .jp-Cell")
        pg.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=60_000)
        yield pg
        browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def run_code(page, code: str) -> None:
    """Append a cell with `code` at the end of the notebook and run it."""
    page.evaluate("""async (code) => {
        const app = window.jupyterapp;
        const panel = app.shell.currentWidget;
        const nb = panel.content;
        nb.activeCellIndex = nb.widgets.length - 1;
        await app.commands.execute('notebook:insert-cell-below');
        nb.activeCell.model.sharedModel.setSource(code);
        await app.commands.execute('notebook:run-cell');
    }""", code)


def test_log_restore_and_diff_in_jupyterlab(page):
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    log = page.locator(".mv-history")
    row1 = log.locator("tr.mv-row[data-version='v1']")
    row1.wait_for()
    page.wait_for_selector(".mv-history tr.mv-row[data-version='v2']")
    shot(page, "01-mv-log")

    row1.click()
    page.wait_for_selector(".mv-history .mv-details h3:has-text('v1')")
    page.locator(".mv-history button.mv-restore", has_text="Restore").first.click()
    page.wait_for_selector(".mv-history .mv-message.mv-msg-ok:has-text('restored')")
    assert "from v1" in log.locator(".mv-message").inner_text()
    shot(page, "02-restored-v1")

    run_code(page, "print('X_IS', x, 'LR_IS', lr)")
    out = page.locator(".jp-OutputArea-output:has-text('X_IS')")
    out.wait_for()
    assert "X_IS 1 LR_IS 0.1" in out.inner_text()

    log.locator("tr.mv-row[data-version='v1'] input.mv-row-pick").check()
    log.locator("tr.mv-row[data-version='v2'] input.mv-row-pick").check()
    page.wait_for_function("document.querySelectorAll('.mv-history tr.mv-selected').length === 2")
    log.locator("button.mv-diff", has_text="Diff").click()
    params = log.locator(".mv-diff-panel .mv-params")
    params.wait_for()
    text = params.inner_text()
    assert "lr" in text and "0.1" in text and "0.2" in text
    shot(page, "03-diff")

    run_code(page, "%mv_diff v1 v2")
    dw = page.locator(".mv-diff-widget .mv-params")
    dw.wait_for()
    assert "lr" in dw.inner_text()
    shot(page, "04-mv-diff")
