"""Browser-test fixtures: a real `jupyter lab` on 127.0.0.1 and headless Debian Chromium driven by
Playwright (sync API). Generic on purpose: the lab extension tests and the widget tests share them.

    def test_something(lab, lab_page):          # lab: the server; lab_page: a LabPage on a fresh page
        lab.write_notebook("nb.ipynb", ["x = 1", "print(x)"])
        lab_page.open("nb.ipynb")              # opens it and waits for the kernel to be Idle
        lab_page.run_cell(1)
        assert "1" in lab_page.cell_output(1)
        lab_page.screenshot("after-run")       # test-artifacts/browser/<test>-after-run.png

Never downloads a browser (no `playwright install`): it launches /usr/bin/chromium
(JUPYTER_MV_CHROMIUM overrides); missing Chromium or Playwright fails them unless JUPYTER_MV_NO_BROWSER=1."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("JUPYTER_MV_ARTIFACTS", REPO / "test-artifacts")) / "browser"
CHROMIUM = os.environ.get("JUPYTER_MV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
TOKEN = "jupyter-mv-browser-tests"
READY_SECONDS = 60


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def jp_asyncio_loop():
    """pytest-jupyter (loaded for the server tests) has an autouse fixture that closes the thread's
    event loop after each test; here that loop is Playwright's, so browser tests get a private one."""
    import asyncio

    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running `jupyter lab`: its base url (ends with /), token and root directory."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path
    settings: Path = field(default=None)

    def write_notebook(self, path: str, sources: list[str], kernel: str = "python3") -> Path:
        """A notebook file under the root with one code cell per source (stable ids: cell-0, cell-1, …)."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3 (ipykernel)", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(src, id=f"cell-{i}") for i, src in enumerate(sources)]
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        return target

    def api(self, path: str):
        """GET a server API path (relative to the base url), JSON-decoded."""
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _serve(tmp_path_factory, app: str):
    """`python -m <app>` (jupyterlab or notebook) on 127.0.0.1, a free port, a fixed token, temporary
    root/settings/workspaces dirs, window.jupyterapp exposed; yields a LabServer, stops it afterwards."""
    base = tmp_path_factory.mktemp(app)
    root, settings, workspaces, runtime, config = (base / d for d in ("root", "settings", "workspaces", "runtime", "config"))
    for d in (root, settings, workspaces, runtime, config):
        d.mkdir()
    notif = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notif.parent.mkdir(parents=True)
    notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MV_", "JPY_"))}
    env.update(JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(workspaces),
               JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_CONFIG_DIR=str(config), PYTHONUNBUFFERED="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    port = free_port()
    app_class = {"jupyterlab": "LabApp", "notebook": "JupyterNotebookApp"}[app]
    cmd = [sys.executable, "-m", app, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
           f"--{app_class}.expose_app_in_browser=True", "--ServerApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = base / ("jupyter-lab.log" if app == "jupyterlab" else f"jupyter-{app}.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}/", TOKEN, root, proc, log, settings)
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if proc.poll() is not None:
            pytest.fail(f"jupyter {app} exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            server.api("api/status")
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"jupyter {app} did not answer within {READY_SECONDS}s:\n{server.log_tail()}")
            time.sleep(0.2)
    yield server
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(log, ARTIFACTS / log.name)


# package scope: torn down when the browser tests end (Playwright's sync API holds an event loop
# that pytest-jupyter's server tests must not meet)
@pytest.fixture(scope="package")
def lab(tmp_path_factory) -> LabServer:
    """`jupyter lab` on 127.0.0.1, a free port, a fixed token, temporary root/settings/workspaces dirs."""
    yield from _serve(tmp_path_factory, "jupyterlab")


@pytest.fixture(scope="package")
def notebook7(tmp_path_factory) -> LabServer:
    """Notebook 7 (`jupyter notebook`, which runs JupyterLab extensions) with the lab fixture's settings."""
    yield from _serve(tmp_path_factory, "notebook")


@pytest.fixture(scope="package")
def browser():
    """Headless Debian Chromium through Playwright. Missing either fails the run (a silent skip would hide
    a broken setup) unless JUPYTER_MV_NO_BROWSER=1 says the browser tests are deliberately off."""
    opted_out = os.environ.get("JUPYTER_MV_NO_BROWSER") == "1"
    if not Path(CHROMIUM).exists():
        (pytest.skip if opted_out else pytest.fail)(
            f"no Chromium at {CHROMIUM} (apt-get install -y chromium; scripts/test.sh does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        (pytest.skip if opted_out else pytest.fail)(
            "playwright is not installed (pip install playwright; never `playwright install`)")
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
    yield b
    b.close()
    pw.stop()


def _artifact_name(request, name: str) -> Path:
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{test}-{name}.png"


@pytest.fixture
def page(browser, request):
    """A fresh browser page (own context: no cookies or storage shared between tests).
    A screenshot is saved when the test fails; console errors are kept in page.console_errors."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(30_000)
    p = context.new_page()
    p.console_errors = []
    p.on("console", lambda m: p.console_errors.append(m.text) if m.type == "error" else None)
    yield p
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        try:
            p.screenshot(path=str(_artifact_name(request, "FAILED")), full_page=True)
            _artifact_name(request, "console").with_suffix(".txt").write_text("\n".join(p.console_errors))
        except Exception:
            pass
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


class LabPage:
    """JupyterLab in a Playwright page: open notebooks, run cells, wait for the kernel, screenshots."""

    def __init__(self, page, lab: LabServer, request):
        self.page = page
        self.lab = lab
        self.request = request

    # -- navigation ------------------------------------------------------------------------------
    def open(self, path: str, wait_idle: bool = True) -> None:
        """Open a notebook (relative to the lab root) in a fresh workspace; wait for its kernel to be Idle."""
        self.page.goto(f"{self.lab.url}lab/tree/{path}?token={self.lab.token}&reset")
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        self.page.wait_for_function("() => window.jupyterapp !== undefined")
        if wait_idle:
            self.wait_idle()

    def command(self, command: str, args: dict | None = None):
        """Execute a JupyterLab command (window.jupyterapp is exposed by the lab fixture)."""
        return self.page.evaluate("([c, a]) => window.jupyterapp.commands.execute(c, a)", [command, args or {}])

    # -- kernel ----------------------------------------------------------------------------------
    def wait_idle(self, timeout: float = 60_000) -> None:
        """Until the current notebook's kernel is connected and Idle (cells sent earlier are dropped)."""
        self.page.wait_for_function(
            """() => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const ctx = w && w.sessionContext;
                const k = ctx && ctx.session && ctx.session.kernel;
                return !!k && k.connectionStatus === 'connected' && k.status === 'idle' && !ctx.pendingInput;
            }""",
            timeout=timeout,
        )
        self.page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                                    ".jp-StatusBar-TextItem:has-text('Idle')", timeout=timeout)

    # -- cells -----------------------------------------------------------------------------------
    def cell(self, index: int):
        return self.page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)

    def set_cell(self, index: int, source: str) -> None:
        """Replace a cell's source through the notebook model (no editor auto-indent or bracket closing)."""
        self.page.evaluate(
            "([i, s]) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.sharedModel.setSource(s)",
            [index, source],
        )

    def run_cell(self, index: int, timeout: float = 60_000) -> None:
        """Select the cell, run it (as Shift-Enter would, without moving on) and wait for the kernel."""
        self.page.evaluate("(i) => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i; }", index)
        count_before = self.cell(index).locator(".jp-InputPrompt").inner_text()
        self.command("notebook:run-cell")
        self.page.wait_for_function(
            """([i, before]) => {
                const cell = window.jupyterapp.shell.currentWidget.content.widgets[i];
                const p = cell.node.querySelector('.jp-InputPrompt');
                const t = p ? p.textContent : '';
                return t !== before && !t.includes('*') && /\\d/.test(t);
            }""",
            arg=[index, count_before],
            timeout=timeout,
        )
        self.wait_idle(timeout)

    def run_all(self, timeout: float = 120_000) -> None:
        n = self.cell_count()
        for i in range(n):
            if self.page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.type", i) == "code":
                self.run_cell(i, timeout)

    def cell_count(self) -> int:
        return self.page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length")

    def cell_output(self, index: int) -> str:
        return self.cell(index).locator(".jp-OutputArea").inner_text()

    # -- dialogs and artifacts -------------------------------------------------------------------
    def answer_dialog(self, text: str | None = None, accept: bool = True) -> None:
        dialog = self.page.locator(".jp-Dialog")
        dialog.wait_for()
        if text is not None:
            dialog.locator("input").first.fill(text)
        dialog.locator(".jp-mod-accept" if accept else ".jp-mod-reject").first.click()
        dialog.wait_for(state="detached")

    def screenshot(self, name: str, full_page: bool = False) -> Path:
        path = _artifact_name(self.request, name)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def lab_page(page, lab, request) -> LabPage:
    return LabPage(page, lab, request)


@pytest.fixture
def notebook7_page(page, notebook7, request) -> LabPage:
    """A LabPage against the Notebook 7 server (its `open` is JupyterLab's: open Notebook 7's
    /notebooks/<path> page directly)."""
    return LabPage(page, notebook7, request)
