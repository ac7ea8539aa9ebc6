"""Versions of other notebooks in the same store — an imported bundle above all — are reachable from
any notebook: `NB:REF` and `--notebook NB` in every magic that takes a REF, `%mv_log --all`, and
`%mv_import` printing the exact ref to use next. Real IPython shells, real stores, the real CLI."""

from __future__ import annotations

import numpy as np
import pytest
from IPython.core.error import UsageError

from jupyter_mv import api
from mvtest import cli_in_process

A = "projects/churn.ipynb"


def usage_error(shell, magic: str, line: str) -> str:
    with pytest.raises(UsageError) as e:
        shell.run_line_magic(magic, line)
    msg = str(e.value)
    assert "\n" not in msg.strip() and msg.startswith(f"%{magic}:"), msg
    return msg


@pytest.fixture
def imported(shell, run, tmp_path, monkeypatch, capsys):
    """Notebook A exports v1 (tagged baseline) from one store; a colleague's kernel, whose notebook is
    B, in another directory and store, imports it. Returns the colleague's import output."""
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", A)
    run("import numpy as np\nX_test = np.arange(12.0).reshape(3, 4)\nC = 0.5")
    run('%mv_snapshot X_test C -m "C=0.5" -t baseline  # first')
    run("X_test = X_test * 2")
    run("%mv_snapshot X_test C")
    run(f"%mv_export v1 {tmp_path / 'churn.mvz'}")
    colleague = tmp_path / "colleague"
    colleague.mkdir()
    monkeypatch.chdir(colleague)
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "analysis/B.ipynb")
    api.set_session(None)
    shell.run_line_magic("unload_ext", "jupyter_mv")
    shell.run_line_magic("load_ext", "jupyter_mv")
    for n in ("X_test", "C"):
        shell.user_ns.pop(n)
    capsys.readouterr()
    run(f"%mv_import {tmp_path / 'churn.mvz'}")
    return capsys.readouterr().out


def test_import_prints_the_ref_to_use(imported):
    lines = imported.strip().splitlines()
    assert lines[0].startswith(f"imported v1 of {A}: 2 variables")
    assert lines[1].startswith(f"restore with %mv_restore {A}:v1 X_test")
    assert f"%mv_show {A}:v1" in lines[1]


def test_imported_version_from_another_notebook(imported, shell, run, capsys):
    assert api.current_notebook() == "analysis/B.ipynb"
    # what the colleague first meets: their own notebook has no versions, and the messages say where to look
    run("%mv_log")
    out = capsys.readouterr().out
    assert f"this store holds versions of {A}: %mv_log --all, or %mv_log --notebook {A}" in out
    assert "No versions yet" not in out  # no contradicting "take one with %mv_snapshot" below it
    msg = usage_error(shell, "mv_restore", "v1 X_test")
    assert f"e.g. {A}:v1" in msg
    msg = usage_error(shell, "mv_restore", "baseline X_test")
    assert f"{A}:baseline" in msg

    run("%mv_log --all")
    out = capsys.readouterr().out
    assert A in out and "baseline" in out and "C=0.5" in out
    run(f"%mv_log --notebook {A}")
    assert "baseline" in capsys.readouterr().out

    run(f"%mv_show {A}:v1")
    out = capsys.readouterr().out
    assert "X_test" in out and f"notebook {A}" in out
    run("%mv_show baseline --notebook churn.ipynb")  # a unique tail of the path names the notebook too
    assert "X_test" in capsys.readouterr().out

    run(f"%mv_restore {A}:v1 X_test  # the imported array")
    assert f"restored X_test from {A}:v1" in capsys.readouterr().out
    assert np.array_equal(shell.user_ns["X_test"], np.arange(12.0).reshape(3, 4))
    run("%mv_restore baseline C --notebook churn.ipynb")
    assert shell.user_ns["C"] == 0.5

    run("X_test = X_test + 1")
    capsys.readouterr()
    run(f"%mv_diff {A}:v1")  # against the current state of this kernel
    out = capsys.readouterr().out
    assert out.startswith(f"{A}:v1 against the current state of analysis/B.ipynb\n")
    assert "diff v1 -> current" in out and "X_test" in out
    run(f"%mv_diff {A}:v1 {A}:baseline")
    assert "are the same version" in capsys.readouterr().out

    run(f"%mv_tag {A}:v1 shared")
    assert api.resolve("shared", A).n == 1
    # this notebook's own history is untouched, and its first snapshot is its v1
    run("%mv_snapshot X_test")
    assert [v.label for v in api.versions()] == ["v1"] and api.versions()[0].notebook == "analysis/B.ipynb"
    run("%mv_diff v1")
    capsys.readouterr()
    run(f"%mv_diff {A}:v1 v1")  # one ref in each notebook
    out = capsys.readouterr().out
    assert out.startswith(f"{A}:v1 against analysis/B.ipynb:v1\n") and "diff v1 -> v1" in out


def test_wrong_notebook_names(imported, shell):
    msg = usage_error(shell, "mv_show", "nosuch.ipynb:v1")
    assert "no notebook 'nosuch.ipynb'" in msg and A in msg
    msg = usage_error(shell, "mv_show", "v1 --notebook nosuch.ipynb")
    assert "no notebook 'nosuch.ipynb'" in msg
    msg = usage_error(shell, "mv_show", f"{A}:")
    assert "but no version" in msg
    msg = usage_error(shell, "mv_show", f"{A}:v7")
    assert "no version 'v7'" in msg and "v1..v1" in msg
    msg = usage_error(shell, "mv_log", f"--all --notebook {A}")
    assert "not both" in msg


def test_ambiguous_notebook_tail(shell, run, monkeypatch):
    for nb in ("a/x.ipynb", "b/x.ipynb"):
        monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", nb)
        api.set_notebook(nb)
        run("v = 1")
        run("%mv_snapshot v")
    msg = usage_error(shell, "mv_show", "x.ipynb:v1")
    assert "ambiguous" in msg and "a/x.ipynb" in msg and "b/x.ipynb" in msg
    shell.run_line_magic("mv_show", "b/x.ipynb:v1")


def test_every_ref_magic_accepts_notebook(shell):
    for magic in ("mv_restore", "mv_show", "mv_diff", "mv_tag", "mv_export", "mv_log"):
        doc = shell.magics_manager.magics["line"][magic].__doc__
        assert "--notebook NB" in doc, magic
    for magic in ("mv_restore", "mv_show", "mv_diff", "mv_tag", "mv_export"):
        assert "NB:REF" in shell.magics_manager.magics["line"][magic].__doc__, magic


def test_imported_labels_never_shadow_local_ones(shell, run, tmp_path, monkeypatch, capsys):
    """An import keeps its name and tags only where they pick no other version here."""
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "n.ipynb")
    run("a = 1")
    run("%mv_snapshot a -n good -t best")
    run(f"%mv_export v1 {tmp_path / 'n.mvz'}")
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    api.set_session(None)
    shell.run_line_magic("unload_ext", "jupyter_mv")
    shell.run_line_magic("load_ext", "jupyter_mv")
    run("a = 2")
    run("%mv_snapshot a -n best -t good")  # here, 'best' is a name and 'good' a tag
    capsys.readouterr()
    run(f"%mv_import {tmp_path / 'n.mvz'}")
    out = capsys.readouterr().out
    assert "name 'good' not kept" in out and "best (already a version name here)" in out
    assert api.resolve("good").n == 1 and api.resolve("best").n == 1  # still the local v1
    imported = api.resolve("v2")
    assert imported.name == "" and imported.tags == ()


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_ref_forms(imported, tmp_path):
    colleague = tmp_path / "colleague"
    r = cli_in_process("log", "--all", cwd=colleague)
    assert r.returncode == 0 and A in r.stdout
    r = cli_in_process("show", f"{A}:baseline", cwd=colleague)
    assert r.returncode == 0, r.stderr
    assert "X_test" in r.stdout
    r = cli_in_process("show", "v1", "--notebook", "churn.ipynb", cwd=colleague)
    assert r.returncode == 0, r.stderr
    r = cli_in_process("diff", f"{A}:v1", cwd=colleague)  # B: latest of A's notebook, here v1 itself
    assert r.returncode == 0 and "same version" in r.stdout
    r = cli_in_process("export", f"{A}:v1", tmp_path / "again.mvz", cwd=colleague)
    assert r.returncode == 0, r.stderr


def test_cli_store_accepts_the_notebook_folder(imported, tmp_path):
    colleague = tmp_path / "colleague"
    r = cli_in_process("--store", colleague, "log", "--all", cwd=tmp_path)  # the folder holding .jupyter_mv
    assert r.returncode == 0 and A in r.stdout, r.stderr
    r = cli_in_process("--store", colleague / ".jupyter_mv", "log", "--all", cwd=tmp_path)
    assert r.returncode == 0 and A in r.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli_in_process("--store", empty, "log", cwd=tmp_path)
    assert r.returncode == 1
    line = r.stderr.strip()
    assert "\n" not in line and "--store wants the .jupyter_mv folder (or the folder holding it" in line
    assert "pass --store" not in line
    assert not (empty / ".jupyter_mv").exists() and not (empty / "store.db").exists()


def test_cli_import_prints_the_ref(tmp_path, shell, run, monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", A)
    run("X_test = [1, 2]")
    run("%mv_snapshot X_test")
    run(f"%mv_export v1 {tmp_path / 'b.mvz'}")
    other = tmp_path / "o"
    other.mkdir()
    r = cli_in_process("import", tmp_path / "b.mvz", cwd=other)
    assert r.returncode == 0, r.stderr
    assert f"its ref: {A}:v1 (jupyter-mv show {A}:v1; in a notebook: %mv_restore {A}:v1 X_test)" in r.stdout


def test_cli_several_notebooks_needs_a_choice(imported, tmp_path, shell, run):
    colleague = tmp_path / "colleague"
    run("y = 1")
    run("%mv_snapshot y")  # analysis/B.ipynb now has a version too
    r = cli_in_process("show", "v1", cwd=colleague)
    assert r.returncode == 1 and "--notebook NB or write the ref as NB:REF" in r.stderr
    r = cli_in_process("show", "analysis/B.ipynb:v1", cwd=colleague)
    assert r.returncode == 0 and "y" in r.stdout


# -- real kernels: `import jupyter_mv as mv` alone registers the magics ----------------------------
def _kernel_run(cells, cwd, env_name, monkeypatch):
    import os
    import sys

    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PATH", f"{sys.prefix}/bin:" + os.environ.get("PATH", ""))
    monkeypatch.setenv("JPY_SESSION_NAME", str(cwd / env_name))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src, id=cid) for cid, src in cells]
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    out = {}
    for c in nb.cells:
        parts = []
        for o in c.outputs:
            if o.output_type == "stream":
                parts.append(o.text)
            elif o.output_type in ("execute_result", "display_data"):
                parts.append(o.data.get("text/plain", ""))
        out[c.id] = "".join(parts)
    return out


@pytest.mark.kernel
@pytest.mark.slow
def test_bundle_from_a_differently_named_notebook_in_real_kernels(tmp_path, monkeypatch):
    a_dir = tmp_path / "alice"
    (a_dir / "projects").mkdir(parents=True)
    out = _kernel_run([
        ("imp", "import jupyter_mv as mv  # no %load_ext: the import registers the magics"),
        ("data", "import numpy as np\nX_test = np.linspace(0, 1, 7)\nC = 2.0"),
        ("snap", '%mv_snapshot X_test C -m "C=2" -t baseline  # v1, shared with bob'),
        ("exp", f"%mv_export baseline {tmp_path / 'churn.mvz'}  # one file"),
    ], a_dir, "projects/churn.ipynb", monkeypatch)
    assert out["snap"].startswith("v1  C=2  2 variables  ") and "tags: baseline" in out["snap"]
    assert "exported v1 of projects/churn.ipynb" in out["exp"]

    b_dir = tmp_path / "bob"
    b_dir.mkdir()
    out = _kernel_run([
        ("imp", "import jupyter_mv as mv"),
        ("import", f"%mv_import {tmp_path / 'churn.mvz'}"),
        ("log", "%mv_log --all"),
        ("show", f"%mv_show {A}:v1"),
        ("restore", f"%mv_restore {A}:v1 X_test  # the shared test set"),
        ("check", "print(X_test.tolist())"),
        ("change", "X_test = X_test * 3"),
        ("diff", f"%mv_diff {A}:baseline"),
        ("api", f"print(mv.load('{A}:baseline', 'C'), mv.history(all=True)['notebook'].tolist())"),
    ], b_dir, "report.ipynb", monkeypatch)
    assert f"imported v1 of {A}" in out["import"]
    assert f"restore with %mv_restore {A}:v1 X_test" in out["import"]
    assert A in out["log"] and "baseline" in out["log"]
    assert "X_test" in out["show"] and f"notebook {A}" in out["show"]
    assert f"restored X_test from {A}:v1" in out["restore"]
    assert out["check"].strip() == str(np.linspace(0, 1, 7).tolist())
    assert "diff v1 -> current" in out["diff"] and "X_test" in out["diff"]
    assert out["api"].strip() == f"2.0 ['{A}']"


def test_cli_import_into_a_notebook_folder_creates_its_store_beside(tmp_path, shell, run, monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", A)
    run("X_test = [1, 2]")
    run("%mv_snapshot X_test")
    run(f"%mv_export v1 {tmp_path / 'b.mvz'}")
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "analysis.ipynb").write_text("{}")
    r = cli_in_process("--store", folder, "import", tmp_path / "b.mvz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (folder / ".jupyter_mv" / "store.db").exists() and not (folder / "store.db").exists()
    empty = tmp_path / "fresh-store"
    empty.mkdir()
    r = cli_in_process("--store", empty, "import", tmp_path / "b.mvz", cwd=tmp_path)
    assert r.returncode == 0 and (empty / "store.db").exists()  # an empty folder is the store itself


def test_import_hint_says_trust_only_when_it_is_needed(shell, run, tmp_path, monkeypatch, capsys):
    """A bundle whose only variable is a scikit-learn model (skops, passes the audit): the hint names
    the restore without --trust, and that restore works; one holding only a notebook-defined object
    says --trust."""
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", A)
    run("import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "clf = LogisticRegression().fit(np.arange(20.0).reshape(10, 2), [0, 1] * 5)\n"
        "class Box:\n    pass\nbox = Box()")
    run("%mv_snapshot clf")
    run("%mv_snapshot box")
    run(f"%mv_export v1 {tmp_path / 'model.mvz'}")
    run(f"%mv_export v2 {tmp_path / 'box.mvz'}")
    colleague = tmp_path / "colleague"
    colleague.mkdir()
    monkeypatch.chdir(colleague)
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "analysis/B.ipynb")
    api.set_session(None)
    # the colleague's kernel: a session keeps the store it started with, whatever os.chdir does later
    shell.run_line_magic("unload_ext", "jupyter_mv")
    shell.run_line_magic("load_ext", "jupyter_mv")
    shell.user_ns.pop("clf")
    capsys.readouterr()
    run(f"%mv_import {tmp_path / 'model.mvz'}")
    hint = capsys.readouterr().out.strip().splitlines()[1]
    assert hint.startswith(f"restore with %mv_restore {A}:v1 clf ") and "--trust" not in hint, hint
    run(f"%mv_restore {A}:v1 clf")
    assert shell.user_ns["clf"].predict([[0.0, 1.0]]).shape == (1,)
    capsys.readouterr()
    run(f"%mv_import {tmp_path / 'box.mvz'}")
    hint = capsys.readouterr().out.strip().splitlines()[1]
    assert hint.startswith(f"restore with %mv_restore {A}:v2 box --trust"), hint


def test_cli_with_several_notebooks_says_how_to_choose(shell, run, tmp_path, monkeypatch):
    """`log` takes no REF, so with several notebooks it points to --notebook and --all; commands
    taking a REF point to --notebook and NB:REF."""
    monkeypatch.chdir(tmp_path)
    for nb in ("a.ipynb", "b.ipynb"):
        monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", nb)
        api.set_session(None)
        run("x = 1")
        run("%mv_snapshot x")
    r = cli_in_process("log", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.strip().endswith("choose one with --notebook NB or list them all with --all")
    assert "\n" not in r.stderr.strip()
    r = cli_in_process("show", "v1", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.strip().endswith("choose one with --notebook NB or write the ref as NB:REF")
    assert cli_in_process("log", "--all", cwd=tmp_path).returncode == 0
