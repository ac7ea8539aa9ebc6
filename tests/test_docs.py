"""Every code block of README.md and docs/*.md runs as written, in order, in a fresh kernel (the habit of
sqlite-utils' test_docs.py): the documentation cannot drift from the product again.

- ```python blocks of one document become the cells of one notebook, executed by nbclient in a fresh
  kernel in an empty folder; a block that raises fails the test and names the document and the block.
- ```bash blocks: each `jupyter-mv …` line runs in that folder, after the python blocks before it;
  it must exit 0 unless the line ends with `# exit N`. The setup commands (`scripts/…`, `pip install`)
  are what CI itself runs, so they are not repeated here.
- Other fences (```text, ```json, no language) are output or formats, not code.
- Images the docs show are committed files, never links into the git-ignored test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mvtest import REPO

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
SETUP = ("scripts/", "pip install", "pip_install", "cd ", "git clone", "bash .ci/run", "jupyter lab",
         "jupyter notebook", "jupyter server extension", "jupyter labextension", "npm ", "jlpm ", "apt-get ")


def blocks(path: Path) -> list[tuple[str, str, int]]:
    """(language, code, line number) of each fenced block, in document order."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        out.append((m.group(1).lower(), m.group(2), text.count("\n", 0, m.start()) + 1))
    return out


def _steps(path: Path) -> list[tuple[str, str, int]]:
    steps = []
    for lang, code, line in blocks(path):
        if lang in ("python", "py", "ipython"):
            steps.append(("python", code, line))
        elif lang in ("bash", "sh", "shell", "console"):
            for ln in code.splitlines():
                if lang == "console":  # a transcript: commands start with "$ ", the rest is their output
                    if not ln.startswith("$ "):
                        continue
                s = ln.strip().removeprefix("$ ")
                if s.startswith("jupyter-mv ") or s.startswith("jupyter mv "):
                    steps.append(("cli", s, line))
                elif s and not s.startswith("#") and not s.startswith(SETUP):
                    raise AssertionError(f"{path.name}:{line}: a bash line the docs test does not know how to "
                                         f"run: {s!r} (run it, or make it a setup command)")
    return steps


def _expected_exit(cmd: str) -> tuple[str, int]:
    m = re.search(r"#\s*exit\s+(\d+)\s*$", cmd)
    return (cmd[: m.start()].rstrip(), int(m.group(1))) if m else (re.sub(r"\s+#.*$", "", cmd), 0)


def _env(cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MV_", "JPY_SESSION"))}
    env["JUPYTER_MV_NOTEBOOK"] = str(cwd / "churn.ipynb")
    env["MPLBACKEND"] = "Agg"
    return env


def _run_doc(path: Path, cwd: Path) -> None:
    steps = _steps(path)
    env = _env(cwd)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits it
    try:
        client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False,
                                resources={"metadata": {"path": str(cwd)}})
        with client.setup_kernel():
            for kind, code, line in steps:
                where = f"{path.relative_to(REPO)} (block at line {line})"
                if kind == "python":
                    cell = nbformat.v4.new_code_cell(code)
                    nb.cells.append(cell)
                    try:
                        client.execute_cell(cell, len(nb.cells) - 1)
                    except CellExecutionError as e:
                        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
                        pytest.fail(f"{where} failed:\n{code}\n{plain[-3000:]}")
                    errs = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"
                            and ("Traceback" in o.text or "UsageError" in o.text)]
                    assert not errs, f"{where} printed an error:\n{errs[0].text}"
                else:
                    cmd, want = _expected_exit(code)
                    argv = shlex.split(cmd)
                    argv = argv[2:] if argv[:2] == ["jupyter", "mv"] else argv[1:]
                    r = subprocess.run([sys.executable, "-m", "jupyter_mv.cli", *argv], cwd=cwd, env=env,
                                       capture_output=True, text=True, timeout=300)
                    assert r.returncode == want, (f"{where}: `{cmd}` exited {r.returncode} (expected {want})\n"
                                                  f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_code_blocks_run_in_order(doc, tmp_path):
    steps = _steps(doc)
    if doc.name == "README.md":
        assert sum(1 for k, _, _ in steps if k == "python") >= 3, "the README lost its examples"
    if not steps:
        return  # a document without code: nothing to run (asserted non-empty for the README above)
    _run_doc(doc, tmp_path)


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_images_are_committed_files(doc):
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text):
        if re.match(r"https?:|data:", target):
            continue
        assert "test-artifacts" not in target, f"{doc.name} links an image into git-ignored test-artifacts/: {target}"
        f = (doc.parent / target).resolve()
        assert f.is_file(), f"{doc.name} shows a missing image: {target}"
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(f)], cwd=REPO, capture_output=True)
        assert tracked.returncode == 0 or not (REPO / ".git").exists(), f"{doc.name}: {target} is not committed"


def test_the_parser_sees_fences():
    sample = REPO / "README.md"
    langs = {lang for lang, _, _ in blocks(sample)}
    assert "python" in langs and "bash" in langs
