"""The SQLite metadata file: WAL mode, busy waits, immediate write transactions, migrations."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from pathlib import Path

import sqlite_utils

from ..errors import StoreBusy, StoreError
from .migrations import MIGRATIONS

BUSY_SECONDS = 120.0


def writable_dir(d: Path) -> bool:
    """False on a read-only mount or a directory we may not write (root passes permission checks,
    not read-only mounts)."""
    try:
        if os.statvfs(d).f_flag & os.ST_RDONLY:
            return False
    except OSError:
        return False
    return os.access(d, os.W_OK)


def _open_readonly(path: Path) -> sqlite3.Connection:
    """Read a store we cannot write. WAL readers want a -shm file; without one (a read-only mount),
    read the file as immutable, which is exact when no WAL content is pending."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_SECONDS, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute("PRAGMA user_version").fetchone()
        conn.execute("select count(*) from sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise
        return sqlite3.connect(f"file:{path}?immutable=1", uri=True, isolation_level=None,
                               check_same_thread=False)


def disk_full(d: Path, need: int = 256 * 1024) -> bool:
    """True when the file system holding `d` has less than `need` bytes free: SQLite cannot even map its
    WAL index (store.db-shm) there, and fails with a bare "disk I/O error"."""
    try:
        st = os.statvfs(d)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < need


def _open(path: Path, readonly: bool):
    conn = None
    try:
        if readonly:
            conn = _open_readonly(path)
        else:
            conn = sqlite3.connect(str(path), timeout=BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
        db = sqlite_utils.Database(conn, execute_plugins=False)  # plugins: entry-point scan, 20 ms an open
        if not readonly:
            _retry(lambda: conn.execute("PRAGMA journal_mode = wal"))
            conn.execute("PRAGMA synchronous = FULL")
            # after a checkpoint the WAL is cut back to 1 MiB instead of keeping its high-water size (~4 MiB)
            conn.execute("PRAGMA journal_size_limit = 1048576")
        conn.execute("PRAGMA foreign_keys = ON")
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        return db, current
    except BaseException:
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        raise


def connect(path: Path, readonly: bool = False) -> sqlite_utils.Database:
    """Open (and create or migrate) the metadata database at `path`. A store on a read-only mount
    or in a directory we may not write opens read-only: browsing and restoring work, writes say why not.
    So does one on a full disk (`db.full`): its writes are NoSpace."""
    if not readonly and path.exists() and not writable_dir(path.parent):
        readonly = True
    full = False
    try:
        try:
            db, current = _open(path, readonly)
        except sqlite3.DatabaseError:
            if readonly or not path.exists() or not disk_full(path.parent):
                raise
            # a full disk: the database is intact, only a writer's files cannot grow; browse it read-only
            db, current = _open(path, True)
            readonly = full = True
    except sqlite3.DatabaseError as e:
        if _locked(e):
            raise locked_error(path) from None
        if disk_full(path.parent):
            from ..errors import NoSpace

            raise NoSpace(f"no space left on the disk of the store {path.parent} to open it; free some space "
                          "and try again (the versions in it are intact)") from None
        raise StoreError(f"the store database {path} cannot be opened ({e}); check its permissions and "
                         "disk, or restore the file from a backup") from None
    db.full = full
    db.readonly = readonly
    db.path = path  # named by locked_error
    if current > len(MIGRATIONS):
        raise StoreError(f"the store at {path.parent} was written by a newer jupyter_mv "
                         f"(schema {current}, this one knows {len(MIGRATIONS)}); upgrade jupyter_mv")
    if current < len(MIGRATIONS):
        if readonly:
            raise StoreError(f"the store at {path.parent} needs a schema upgrade; open it writable once")
        migrate(db)
    return db


def migrate(db: sqlite_utils.Database) -> None:
    """Apply pending migrations, each in its own immediate transaction (safe against racing openers)."""
    for number, fn in enumerate(MIGRATIONS, start=1):
        with write(db):
            if db.conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                continue
            fn(db)
            db.conn.execute(f"PRAGMA user_version = {number}")


def _locked(e: BaseException) -> bool:
    return isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e))


def locked_error(path) -> StoreBusy:
    """The one line for SQLite's "database is locked" once the busy wait (BUSY_SECONDS) ran out: another
    writer held the store that long. Nothing of the refused write was committed (SQLite rolls it back)."""
    return StoreBusy(f"the store database {path} stayed locked by another process for {BUSY_SECONDS:g} s (a "
                     "kernel or `jupyter-mv` writing to it, or a program holding it open); nothing was written: "
                     "retry once it has finished, or close the program holding it")


def _retry(fn, seconds: float | None = None):
    # BUSY_SECONDS read at each call, not bound at import, so a test (or a caller) can shorten it
    deadline = time.monotonic() + (BUSY_SECONDS if seconds is None else seconds)
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.25)


def write_error(path, e: sqlite3.DatabaseError) -> StoreError:
    """SQLite's error of a refused write as the StoreError an adapter prints in one line: locked beyond the
    busy wait (StoreBusy), a full disk (NoSpace), else the store cannot be written. The transaction was
    rolled back: nothing of it is visible."""
    from ..errors import NoSpace

    if _locked(e):
        return locked_error(path)
    text = str(e)
    if "full" in text.lower():
        return NoSpace(f"no space left on the disk holding {path}; free some space and try again "
                       "(nothing was written; earlier versions are intact)")
    return StoreError(f"cannot write the store database {path} ({text}); nothing was written: check the "
                      "disk and its permissions, then `jupyter-mv verify`")


def _writable_again(db: sqlite_utils.Database) -> None:
    """A store opened read-only because its disk was full (`db.full`): NoSpace while it still is, else swap
    in a writable connection, so a kernel that opened it then can snapshot once space is freed."""
    from ..errors import NoSpace

    if disk_full(db.path.parent):
        raise NoSpace(f"no space left on the disk of the store {db.path.parent}; free some space and try again "
                      "(nothing was written; browsing and restoring still work)")
    try:
        fresh, _ = _open(db.path, False)
    except sqlite3.DatabaseError as e:
        raise write_error(db.path, e) from None
    old, db.conn = db.conn, fresh.conn
    db.readonly = db.full = False
    with contextlib.suppress(sqlite3.Error):
        old.close()


@contextlib.contextmanager
def write(db: sqlite_utils.Database):
    """One immediate write transaction: all of it commits or none of it does. SQLite errors leave it as
    StoreError (write_error)."""
    if getattr(db, "full", False):
        _writable_again(db)
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield db
        return
    path = getattr(db, "path", "")
    try:
        _retry(lambda: conn.execute("BEGIN IMMEDIATE"))
    except sqlite3.DatabaseError as e:
        raise write_error(path, e) from None
    try:
        yield db
    except BaseException as e:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        if isinstance(e, sqlite3.DatabaseError):
            raise write_error(path, e) from None
        raise
    else:
        try:
            _retry(lambda: conn.execute("COMMIT"))
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.DatabaseError):
                raise write_error(path, e) from None
            raise
