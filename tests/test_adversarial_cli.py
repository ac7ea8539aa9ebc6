"""An adversarial new user of the CLI and the magics, after the kinds of bugs users of DVC, MLflow,
nbdime, %store and Kishu reported: a store locked by another process, odd paths and arguments, bad
environment values. Each failure must be one readable line (CLI: exit code + one stderr line; magics:
UsageError), never "internal error" or a traceback, and nothing already stored may be lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from IPython.core.error import UsageError

import jupyter_mv as mv
from jupyter_mv.store import db as dbmod
from mvtest import cli_in_process, run_cell


def _one_line_error(r, code=1):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert err and "\n" not in err, err
    assert "internal error" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def versions(session, tmp_path, monkeypatch):
    """Three versions of 'nb.ipynb' (v2 tagged 'base') in tmp_path/.jupyter_mv."""
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "nb.ipynb")
    for i in range(3):
        session.namespace.update(x=np.arange(10 + i))
        mv.snapshot("x", message=f"m{i}", tags=["base"] if i == 1 else [])
    monkeypatch.delenv("JUPYTER_MV_NOTEBOOK")
    mv._api.set_session(None)
    return tmp_path / ".jupyter_mv"


class _Locker:
    """Another process holding the store's database locked (`sql` run first) until closed."""

    def __init__(self, db_path, sql="BEGIN IMMEDIATE"):
        code = textwrap.dedent(f"""
            import sqlite3, sys, time
            c = sqlite3.connect({str(db_path)!r}, isolation_level=None)
            for s in {sql!r}.split(';'):
                c.execute(s)
            print('locked', flush=True)
            sys.stdin.read()
            """)
        self.p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        assert self.p.stdout.readline().strip() == "locked"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.p.stdin.close()
        self.p.wait(10)


@pytest.fixture
def short_busy(monkeypatch):
    monkeypatch.setattr(dbmod, "BUSY_SECONDS", 0.5)


def test_cli_write_on_locked_store_is_one_line(versions, tmp_path, short_busy):
    """Another writer holding store.db past the busy wait: "database is locked" never surfaces raw, and
    the write is refused whole (no remote recorded), later writes work."""
    with _Locker(versions / "store.db"):
        err = _one_line_error(cli_in_process("remote", "add", "o", str(tmp_path / "rem"), cwd=tmp_path))
        assert "locked by another process" in err and "retry" in err
        assert "OperationalError" not in err
        assert "v3" in cli_in_process("log", cwd=tmp_path).stdout  # WAL: readers still read
    assert "no remotes" in cli_in_process("remote", cwd=tmp_path).stdout
    r = cli_in_process("remote", "add", "o", str(tmp_path / "rem"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_cli_read_on_exclusively_locked_store_is_one_line(versions, tmp_path, short_busy):
    sql = "PRAGMA locking_mode=EXCLUSIVE;BEGIN EXCLUSIVE;CREATE TABLE zz (a)"
    with _Locker(versions / "store.db", sql):
        for argv in (["log"], ["show", "v1"], ["verify"]):
            err = _one_line_error(cli_in_process(*argv, cwd=tmp_path))
            assert "locked by another process" in err, err
            assert "backup" not in err  # a lock is no damage: no advice to restore the file
    assert "v3" in cli_in_process("log", cwd=tmp_path).stdout


def test_magics_on_locked_store_lose_nothing(shell, short_busy):
    run_cell(shell, "import numpy as np\nw = np.arange(5)")
    shell.run_line_magic("mv_snapshot", "w -m one")
    root = mv._api.session().store().root
    run_cell(shell, "w = w + 1")
    with _Locker(root / "store.db"):
        for magic, line in (("mv_snapshot", "w -m two"), ("mv_tag", "v1 best")):
            with pytest.raises(UsageError) as e:
                shell.run_line_magic(magic, line)
            msg = str(e.value)
            assert "\n" not in msg and "locked by another process" in msg and "internal error" not in msg, msg
    shell.run_line_magic("mv_snapshot", "w -m two")
    vs = mv.versions()
    assert [v.message for v in vs] == ["one", "two"] and [v.n for v in vs] == [1, 2]
    run_cell(shell, "w = None")
    shell.run_line_magic("mv_restore", "v2 w")
    assert shell.user_ns["w"].tolist() == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("argv, bound", [(["log", "-n", "-5"], "at least 1"), (["log", "-n", "0"], "at least 1"),
                                         (["gc", "--keep-auto", "-1"], "at least 0"),
                                         (["log", "-n", "many"], "not a whole number")])
def test_cli_counts_out_of_range_are_refused(versions, tmp_path, argv, bound):
    """`log -n -5` printed nothing with exit 0 (a slice from the end); counts are checked at parse time."""
    err = _one_line_error(cli_in_process(*argv, cwd=tmp_path), code=2)
    assert bound in err and argv[1] in err, err


def test_magic_counts_out_of_range_are_refused(shell):
    for magic, line in (("mv_log", "-n -2"), ("mv_auto", "on --keep 0")):
        with pytest.raises(UsageError, match="at least 1"):
            shell.run_line_magic(magic, line)
    assert not mv._api.session().auto_on


BAD = b"d\xff".decode("utf-8", "surrogateescape")  # how Python hands over a non-UTF-8 argv word (PEP 383)


@pytest.mark.parametrize("argv", [["show", BAD], ["log", "--notebook", BAD], ["diff", "v1", BAD],
                                  ["export", BAD, "out.mvz"], ["remote", "add", BAD, "rem"]])
def test_cli_text_argument_not_utf8_is_refused(versions, tmp_path, argv):
    err = _one_line_error(cli_in_process(*argv, cwd=tmp_path), code=2)
    assert "not UTF-8" in err and "UnicodeEncodeError" not in err, err
    assert not (tmp_path / "out.mvz").exists()


def test_cli_path_not_utf8_still_works(versions, tmp_path):
    """A file name that is not UTF-8 is legal on POSIX: export/import and --store keep working with one."""
    d = tmp_path / BAD
    d.mkdir()
    r = cli_in_process("export", "v1", str(d / "b.mvz"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (d / "b.mvz").stat().st_size > 0
    r = cli_in_process("--store", str(tmp_path), "log", cwd=d)
    assert r.returncode == 0 and "v3" in r.stdout, r.stderr


def test_cli_surrogates_reaching_text_is_one_line():
    from jupyter_mv import cli
    try:
        ("reproduce " + BAD).encode("utf-8")
    except UnicodeEncodeError as e:
        line, code = cli._error_answer("reproduce", e)
    assert code == 1 and "not UTF-8" in line and "internal error" not in line, line


def test_env_notebook_not_utf8_is_one_line(shell, monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "n" + BAD[1:] + ".ipynb")
    run_cell(shell, "z = 1")
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("mv_snapshot", "z")
    msg = str(e.value)
    assert "JUPYTER_MV_NOTEBOOK" in msg and "not UTF-8" in msg and "internal error" not in msg, msg
    monkeypatch.delenv("JUPYTER_MV_NOTEBOOK")
    shell.run_line_magic("mv_snapshot", "z")
    assert len(mv.versions()) == 1


def test_magic_expanded_surrogate_is_one_line(shell):
    run_cell(shell, "z = 1\nbad = chr(0xdcff)")
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("mv_snapshot", "z -m {bad}")
    assert "not UTF-8" in str(e.value) and "internal error" not in str(e.value), str(e.value)


@pytest.fixture
def full_disk(tmp_path):
    """A 4 MB tmpfs at tmp_path/small and a function filling it (mounting needs root; CI runs as root, as
    test_reliability's disk-full test needs too)."""
    import contextlib
    import os
    import shutil

    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (CI runs as root)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    assert r.returncode == 0, f"root cannot mount a tmpfs here: {r.stderr}"

    def fill():
        with open(mnt / "filler", "wb") as f, contextlib.suppress(OSError):
            f.write(b"\0" * shutil.disk_usage(mnt).free)
            f.flush()
            os.fsync(f.fileno())
        assert shutil.disk_usage(mnt).free < 64 * 1024
    try:
        yield mnt, fill
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_store_stays_readable_and_writable_again(full_disk, shell, monkeypatch):
    """On a full disk SQLite cannot even create store.db-shm: every command said "cannot be opened (disk
    I/O error) ... restore the file from a backup" and the versions were unreachable. Now browsing and
    exporting work, writes are one "no space" line, and the same kernel snapshots once space is freed."""
    mnt, fill = full_disk
    monkeypatch.chdir(mnt)
    shell.run_line_magic("unload_ext", "jupyter_mv")  # a kernel started in mnt (its store is there)
    shell.run_line_magic("load_ext", "jupyter_mv")
    run_cell(shell, "import numpy as np\nq = np.arange(100)")
    shell.run_line_magic("mv_snapshot", "q -m before")
    mv._api.session().close()  # as a new kernel: its first open meets the full disk
    mv._api.set_session(None)
    fill()
    r = cli_in_process("log", "--all", cwd=mnt)
    assert r.returncode == 0 and "before" in r.stdout, r.stderr
    out = mnt.parent / "out.mvz"
    r = cli_in_process("export", "v1", str(out), cwd=mnt)
    assert r.returncode == 0 and out.stat().st_size > 0, r.stderr
    err = _one_line_error(cli_in_process("remote", "add", "o", str(mnt.parent / "rem"), cwd=mnt))
    assert "no space" in err and "backup" not in err, err
    run_cell(shell, "q = q + 1")
    for _ in range(2):
        with pytest.raises(UsageError, match="no space left") as e:
            shell.run_line_magic("mv_snapshot", "q -m during")
        assert "\n" not in str(e.value) and "internal error" not in str(e.value)
    assert [v.message for v in mv.versions()] == ["before"]
    (mnt / "filler").unlink()
    shell.run_line_magic("mv_snapshot", "q -m after")
    assert [v.message for v in mv.versions()] == ["before", "after"]
    assert cli_in_process("verify", cwd=mnt).returncode == 0


def test_interrupt_during_pre_cell_recording_stops_the_cell(shell, monkeypatch, capsys):
    """Ctrl-C while the %mv_undo journal records the variables (seconds for a large model) was swallowed by
    IPython's callback runner: "Error in callback ..." and a traceback, then the cell ran anyway (a
    snapshot the user meant to stop was taken). Now the cell is stopped before it runs; the next runs."""
    from jupyter_mv import api

    run_cell(shell, "import numpy as np\nw = np.arange(3)")
    shell.run_line_magic("mv_snapshot", "w -m one")
    real = api.undo_checkpoint
    calls = []

    def interrupted_once(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(api, "undo_checkpoint", interrupted_once)
    capsys.readouterr()
    result = shell.run_cell("w = w + 100\nget_ipython().run_line_magic('mv_snapshot', 'w -m two')", store_history=True)
    out = capsys.readouterr()
    assert isinstance(result.error_in_exec, KeyboardInterrupt), result
    assert "Error in callback" not in out.out + out.err
    assert shell.user_ns["w"].tolist() == [0, 1, 2]  # nothing of the cell ran
    assert [v.message for v in mv.versions()] == ["one"]
    run_cell(shell, "w = w + 1")  # the next cell runs normally, and undo takes it back
    assert shell.user_ns["w"].tolist() == [1, 2, 3]
    shell.run_line_magic("mv_undo", "")
    assert shell.user_ns["w"].tolist() == [0, 1, 2]


def test_interrupt_during_auto_snapshot_is_one_line(shell, monkeypatch, capsys):
    from jupyter_mv import api

    shell.run_line_magic("mv_auto", "on")
    monkeypatch.setattr(api, "auto_snapshot", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    capsys.readouterr()
    result = shell.run_cell("v = 41 + 1", store_history=True)
    out = capsys.readouterr()
    assert result.success and shell.user_ns["v"] == 42
    assert "Error in callback" not in out.out + out.err and "Traceback" not in out.out + out.err
    lines = [ln for ln in out.err.splitlines() if "interrupted" in ln]
    assert len(lines) == 1 and "no version" in lines[0], out.err


def test_bad_undo_depth_env_is_one_line_not_a_traceback_per_cell(shell, monkeypatch, capsys):
    """JUPYTER_MV_UNDO_DEPTH=abc made every cell print IPython's "Error in callback" and a traceback."""
    monkeypatch.setenv("JUPYTER_MV_UNDO_DEPTH", "abc")
    capsys.readouterr()
    for i in range(3):
        assert shell.run_cell(f"k = {i}", store_history=True).success
    out = capsys.readouterr()
    assert "Error in callback" not in out.out + out.err and "Traceback" not in out.out + out.err
    lines = [ln for ln in out.err.splitlines() if "JUPYTER_MV_UNDO_DEPTH" in ln]
    assert len(lines) == 1 and "whole number of cells" in lines[0], out.err
    with pytest.raises(UsageError, match="JUPYTER_MV_UNDO_DEPTH"):
        shell.run_line_magic("mv_undo", "")


def test_bad_auto_keep_env_makes_no_version(shell, monkeypatch, capsys):
    """JUPYTER_MV_AUTO_KEEP=x: the auto-snapshot said it failed, yet had committed a version."""
    run_cell(shell, "a = 1")
    shell.run_line_magic("mv_snapshot", "a -m manual")
    shell.run_line_magic("mv_auto", "on")
    monkeypatch.setenv("JUPYTER_MV_AUTO_KEEP", "x")
    capsys.readouterr()
    assert shell.run_cell("a = 2", store_history=True).success
    err = capsys.readouterr().err
    assert "auto-snapshot failed" in err and "JUPYTER_MV_AUTO_KEEP" in err, err
    assert [v.message for v in mv.versions()] == ["manual"]


def test_export_never_overwrites_the_store_or_a_non_bundle(versions, tmp_path):
    """`jupyter-mv export v1 .jupyter_mv/store.db` replaced the database (every version lost) and
    `export v1 notes.txt` / `%mv_export v1 analysis.ipynb` replaced the user's file without a word."""
    notes = tmp_path / "analysis.ipynb"
    notes.write_text('{"cells": []}')
    (tmp_path / "link.mvz").symlink_to(versions / "store.db")
    for target in (".jupyter_mv/store.db", ".jupyter_mv/blobs.mvz", "link.mvz", "analysis.ipynb"):
        err = _one_line_error(cli_in_process("export", "v1", target, cwd=tmp_path))
        assert ("inside the store" in err) or ("not a jupyter_mv bundle" in err), err
    assert notes.read_text() == '{"cells": []}'
    r = cli_in_process("log", cwd=tmp_path)
    assert r.returncode == 0 and "v3" in r.stdout, r.stderr
    # an existing bundle is replaced, as a re-export expects
    for ref in ("v1", "v2"):
        assert cli_in_process("export", ref, "b.mvz", cwd=tmp_path).returncode == 0
    assert "v2" in cli_in_process("export", "v2", "b.mvz", cwd=tmp_path).stdout


def test_magic_export_over_the_notebook_is_refused(shell, tmp_path):
    nb = tmp_path / "work.ipynb"
    nb.write_text("my notebook")
    run_cell(shell, "e = 5")
    shell.run_line_magic("mv_snapshot", "e")
    with pytest.raises(UsageError, match="not a jupyter_mv bundle") as e:
        shell.run_line_magic("mv_export", "v1 work.ipynb")
    assert "\n" not in str(e.value)
    assert nb.read_text() == "my notebook"


def test_reproduce_report_never_overwrites_a_non_report(versions, tmp_path):
    nb = tmp_path / "analysis.ipynb"
    nb.write_text("precious")
    assert cli_in_process("export", "v1", "b.mvz", cwd=tmp_path).returncode == 0
    for target in ("analysis.ipynb", ".jupyter_mv/report.html"):
        err = _one_line_error(cli_in_process("reproduce", "b.mvz", "--report", target, cwd=tmp_path))
        assert "nothing was run" in err or "inside a jupyter_mv store" in err, err
    assert nb.read_text() == "precious"


@pytest.mark.parametrize("uri", ["", "  "])
def test_mlflow_push_empty_tracking_uri_is_refused(versions, tmp_path, uri):
    """`--tracking-uri ""` fell back to MLflow's default and created mlflow.db in the working directory."""
    err = _one_line_error(cli_in_process("mlflow", "push", "v1", "--tracking-uri", uri, cwd=tmp_path), code=2)
    assert "tracking URI is empty" in err, err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_damaged_store_database_pages_are_named_one_line(versions, tmp_path):
    """Each page of store.db overwritten in turn: every command answers in one line, never "internal
    error"; verify exits 3 and, when the database itself is damaged, does not promise that "the others
    restore normally" nor tell the user to run verify (it was verify's own advice), and its DAMAGED line is
    one line (quick_check's report had a newline in it)."""
    import shutil

    db = versions / "store.db"
    c = dbmod.sqlite3.connect(db)
    busy, _, _ = c.execute("pragma wal_checkpoint(TRUNCATE)").fetchone()
    c.close()
    wal = versions / "store.db-wal"
    assert busy == 0 and (not wal.exists() or wal.stat().st_size == 0)  # every page is in store.db
    pristine = db.read_bytes()
    pages = len(pristine) // 4096
    assert pages > 8
    seen_damage = 0
    for page in range(1, pages):
        case = tmp_path / f"p{page}"
        shutil.copytree(versions, case / ".jupyter_mv")
        with open(case / ".jupyter_mv" / "store.db", "r+b") as f:
            f.seek(page * 4096)  # the page's b-tree header and its first cells
            f.write(b"\xde\xad\xbe\xef" * 256)
        v = cli_in_process("verify", cwd=case)
        assert v.returncode in (0, 1, 3), (page, v.stdout, v.stderr)
        err = v.stderr.strip()
        assert "\n" not in err and "internal error" not in err and "run `jupyter-mv verify`" not in err, (page, err)
        db_damage = [ln for ln in v.stdout.splitlines() if ln.startswith("DAMAGED  database")]
        if db_damage:
            seen_damage += 1
            assert v.returncode == 3 and "the others restore normally" not in err and "damaged" in err, (page, err)
            assert "backup" in err
        for argv in (["log"], ["show", "v1"], ["diff", "v1", "v3"]):
            r = cli_in_process(*argv, cwd=case)
            if r.returncode:
                e = _one_line_error(r)
                assert "damaged" in e or "cannot" in e, (page, argv, e)
    assert seen_damage >= 3, "no page damage was detected: the test did not test anything"


def test_chdir_in_a_cell_keeps_the_notebooks_history(shell, tmp_path):
    """`os.chdir('data')` in a cell (common before reading files) made the next snapshot start a second
    history in data/.jupyter_mv: %mv_log showed only it and `%mv_restore v1 x` restored the wrong v1."""
    (tmp_path / "data").mkdir()
    run_cell(shell, "x = 1")
    shell.run_line_magic("mv_snapshot", "x -m one")
    run_cell(shell, "import os\nos.chdir('data')\nx = 2")
    shell.run_line_magic("mv_snapshot", "x -m two")
    assert [v.message for v in mv.versions()] == ["one", "two"]
    assert not (tmp_path / "data" / ".jupyter_mv").exists()
    shell.run_line_magic("mv_restore", "v1 x")
    assert shell.user_ns["x"] == 1
    r = cli_in_process("log", cwd=tmp_path)
    assert "one" in r.stdout and "two" in r.stdout, r.stderr


def test_relative_store_setting_is_taken_from_where_the_session_first_used_it(shell, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("JUPYTER_MV_STORE", "stores/main")
    run_cell(shell, "x = 1")
    shell.run_line_magic("mv_snapshot", "x -m one")
    monkeypatch.chdir(tmp_path / "data")
    shell.run_line_magic("mv_snapshot", "x -m two")
    assert [v.message for v in mv.versions()] == ["one", "two"]
    assert (tmp_path / "stores" / "main" / "store.db").exists()
    assert not (tmp_path / "data" / "stores").exists()


def test_mlflow_push_to_a_server_that_is_not_there_fails_fast(versions, tmp_path, monkeypatch):
    """MLflow's default 7 retries with backoff left a wrong port hanging for minutes; now a few seconds and
    one line saying what to check (a password in the URI is not shown)."""
    import time

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    t = time.monotonic()
    err = _one_line_error(cli_in_process("mlflow", "push", "v1", "--tracking-uri", "http://bob:s3cret@127.0.0.1:9",
                                         cwd=tmp_path))
    assert time.monotonic() - t < 40
    assert "cannot reach the tracking server http://127.0.0.1:9" in err and "s3cret" not in err, err
    import os
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the cap lasted the push only


def test_unreachable_fsspec_remote_is_an_error_not_an_empty_remote(versions, tmp_path):
    """fsspec's HTTP find() answers [] when the host refuses: `remote add http://host:WRONG_PORT/x` was
    recorded, and `remote ls` / `pull` said "0 versions" / nothing new instead of an error."""
    url = "http://127.0.0.1:9/team"
    err = _one_line_error(cli_in_process("remote", "add", "h", url, cwd=tmp_path))
    assert "Cannot connect" in err or "cannot" in err.lower(), err
    assert "no remotes" in cli_in_process("remote", cwd=tmp_path).stdout
    c = dbmod.sqlite3.connect(versions / "store.db")  # recorded when the server still answered
    with c:
        c.execute("insert into remotes (name, url, is_default, conditional, added) values ('h', ?, 1, 0, 'x')",
                  (url,))
    c.close()
    for argv in (["remote", "ls"], ["pull"]):
        err = _one_line_error(cli_in_process(*argv, cwd=tmp_path))
        assert "127.0.0.1:9" in err and "0 versions" not in err, (argv, err)


def test_store_removed_while_the_kernel_runs_is_not_written_into_the_void(shell, tmp_path):
    """`rm -rf .jupyter_mv` (git clean) while the kernel ran: the next snapshot printed "v2 ... stored" into
    the unlinked database, shown by %mv_log and gone when the kernel exited. Now it is written to a new
    store there (with a warning), readable by the CLI and intact."""
    import shutil
    import warnings

    run_cell(shell, "import numpy as np\nx = np.arange(50_000.0)")
    shell.run_line_magic("mv_snapshot", "x -m one")
    shutil.rmtree(tmp_path / ".jupyter_mv")
    run_cell(shell, "x = x + 1")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        shell.run_line_magic("mv_snapshot", "x -m two")
    assert any("was removed" in str(m.message) for m in w), [str(m.message) for m in w]
    r = cli_in_process("log", cwd=tmp_path)
    assert r.returncode == 0 and "two" in r.stdout, r.stderr
    assert cli_in_process("verify", cwd=tmp_path).returncode == 0
    run_cell(shell, "x = None")
    shell.run_line_magic("mv_restore", "latest x")
    assert shell.user_ns["x"][0] == 1.0


def test_warnings_point_at_the_users_line_not_ours(tmp_path):
    """A jupyter_mv warning raised under a magic or an API call names the user's cell line (Python
    prints that line beside it), never a line of jupyter_mv or IPython."""
    script = tmp_path / "t.ipy"
    script.write_text("%load_ext jupyter_mv\nx = 1\n%mv_snapshot\nimport shutil; shutil.rmtree('.jupyter_mv')\n"
                      "%mv_snapshot\nimport jupyter_mv as mv, threading\nlk = threading.Lock()\n"
                      "v = mv.snapshot(['lk', 'x'])\n")
    r = subprocess.run([sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor", str(script)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert "was removed since this kernel opened it" in out and "skipped 'lk'" in out, out
    assert "jupyter_mv/" not in out and "IPython/core" not in out and "site-packages" not in out, out
    assert "run_line_magic('mv_snapshot', '')" in out and "v = mv.snapshot(['lk', 'x'])" in out, out


def test_api_arguments_of_the_wrong_type_are_one_line(tmp_path, monkeypatch):
    """The Python API answers a wrong type with a UsageError naming the argument, never a raw TypeError or
    AttributeError; a list of names works where several names do, and a single name string is one name
    (not its letters)."""
    from jupyter_mv import api
    from jupyter_mv.errors import UsageError
    monkeypatch.chdir(tmp_path)
    ns = {"clf": {"C": 1.0}, "X": [1, 2]}
    api.set_session(api.Session(namespace=ns))
    try:
        v = api.snapshot(["clf", "X"])
        assert sorted(x.name for x in api.session().store().variables(v)) == ["X", "clf"]
        ns["clf"] = None
        assert api.restore(v.label, "clf") == ["clf"] and ns["clf"] == {"C": 1.0}
        for call, words in [(lambda: api.snapshot("clf", tags=5), "tags must be"),
                            (lambda: api.snapshot("clf", tags=[1]), "tags must be strings"),
                            (lambda: api.snapshot(5), "variable names are strings"),
                            (lambda: api.snapshot("clf", eval=5), "eval must be"),
                            (lambda: api.restore(v.label, 5), "names must be"),
                            (lambda: api.restore(v.label, ["clf", 3]), "names must be strings"),
                            (lambda: api.restore(v.label, prefix=5), "prefix must be a string")]:
            with pytest.raises(UsageError, match=words):
                call()
    finally:
        api.set_session(None)
