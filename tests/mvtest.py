"""Test helpers, importable as `from mvtest import ...` (a module name of its own: `conftest` is
ambiguous once a sub-directory has a conftest.py too). conftest.py re-exports them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_cell(ip, source: str):
    """Run a cell and re-raise whatever it raised (IPython only shows it)."""
    result = ip.run_cell(source, store_history=True)
    err = result.error_before_exec or result.error_in_exec
    if err is not None:
        raise err
    return result.result


def _show_shell(ip) -> None:
    """Make `ip` the running shell: get_ipython() finds it and __main__ is its user module."""
    for klass in type(ip)._walk_mro():
        klass._instance = ip
    sys.modules["__main__"] = ip.user_module


def _hide_shell(ip, main) -> None:
    """Outside `shell` tests there is no IPython (get_ipython() is None) and __main__ is the real one
    (multiprocessing's spawn needs it)."""
    type(ip).clear_instance()
    sys.modules["__main__"] = main


def cli(*args, cwd=None, env=None, module: bool = True) -> subprocess.CompletedProcess:
    """Run `jupyter-mv ARGS` in a subprocess (through `python -m jupyter_mv.cli` by default)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MV_", "JPY_SESSION"))}
    e.update(env or {})
    cmd = [sys.executable, "-m", "jupyter_mv.cli", *map(str, args)] if module else list(map(str, args))
    return subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=120)


def cli_in_process(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """`jupyter-mv ARGS` through cli.main() in this process (fast); same result shape as `cli`."""
    import contextlib
    import io

    from jupyter_mv import cli as climod

    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_env = os.getcwd(), dict(os.environ)
    try:
        for k in [k for k in os.environ if k.startswith(("JUPYTER_MV_", "JPY_SESSION"))]:
            del os.environ[k]
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = climod.main([str(a) for a in args])
            except SystemExit as e:  # argparse: --help, --version, bad arguments
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return subprocess.CompletedProcess(["jupyter-mv", *map(str, args)], code, out.getvalue(), err.getvalue())


def store_bytes(root: Path) -> int:
    """Bytes of every file under the store's blob and pack directories."""
    total = 0
    for sub in ("blobs", "packs"):
        d = Path(root) / sub
        total += sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) if d.exists() else 0
    return total


def chunk_ids(root: Path) -> set[str]:
    """Ids of every chunk the store holds: blob files and pack entries (the `packed` index)."""
    import sqlite3

    ids = {f.name for f in blob_files(root)}
    db = Path(root) / "store.db"
    if db.exists():
        conn = sqlite3.connect(db)
        try:
            if conn.execute("select 1 from sqlite_master where name = 'packed'").fetchone():
                ids |= {r[0] for r in conn.execute("select blob_id from packed")}
        finally:
            conn.close()
    return ids


def blob_files(root: Path) -> list[Path]:
    blobs = Path(root) / "blobs"
    return sorted(f for f in blobs.rglob("*") if f.is_file()) if blobs.exists() else []


# -- the reliability figures (README's reliability section quotes them) ---------------------------
RELIABILITY = {"faults_injected": 0, "versions_checked": 0, "versions_lost": 0,
               "hostile_inputs_tried": 0, "hostile_inputs_accepted": 0}


class hostile:
    """Count one hostile input; it counts as accepted unless the block completes (the refusal was
    asserted inside it)."""

    def __enter__(self):
        RELIABILITY["hostile_inputs_tried"] += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            RELIABILITY["hostile_inputs_accepted"] += 1
        return False


def two_stores_in(tmp_path: Path, monkeypatch, notebook: str):
    """Generator for a `two_stores` fixture: (store A, store B), Alice's and Bob's (a colleague's store
    on the same machine) under `tmp_path`, both versioning `notebook`; closed and the session reset after."""
    from jupyter_mv import api
    from jupyter_mv.store import Store

    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", notebook)
    a = Store(tmp_path / "alice" / ".jupyter_mv")
    b = Store(tmp_path / "bob" / ".jupyter_mv")
    yield a, b
    a.close()
    b.close()
    api.set_session(None)


def as_colleague(shell, tmp_path: Path, name: str = "colleague") -> Path:
    """Turn the test's IPython shell into a colleague's: a fresh session in a new working directory
    `tmp_path/name` (so its own store), the extension reloaded. Returns that directory."""
    from jupyter_mv import api
    other = tmp_path / name
    other.mkdir()
    shell.run_line_magic("cd", str(other))
    api.set_session(None)
    shell.run_line_magic("unload_ext", "jupyter_mv")
    shell.run_line_magic("load_ext", "jupyter_mv")
    return other
