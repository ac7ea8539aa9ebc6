"""Exceptions raised by jupyter_mv. Adapters turn them into one readable line.

Each class carries what its adapters answer with (the pattern of MLflow's `mlflow/exceptions.py`,
whose MlflowException holds its error code): `status`, the HTTP status of the REST API
(server/handlers.py), and `exit_code`, the exit status of the `jupyter-mv` CLI. The magics raise
IPython's UsageError and the widgets print one line, whatever the class. A subclass inherits both
unless it says otherwise; PathRefused and ApiError set `status` per instance.

    class                 status  exit_code  raised when
    MVError               500     1          any other error jupyter_mv raises on purpose
    UsageError            400     1          bad arguments or values from the user
    UnknownRef            404     1          a version reference matches nothing
    UnknownVariable       404     1          a variable is not in the namespace or the version
    NotStorable           500     1          no codec can store an object (LiveHandle: a live handle)
    StoreError            500     1          the store cannot be opened, read or written
      CorruptBlob, NoSpace, StoreBusy 503      (a damaged blob; a full disk; locked by another writer)
    Untrusted             500     1          restoring would unpickle untrusted data
    BundleError           500     1          a bundle cannot be written, or is refused on import
    DecodeError           500     1          a stored variable cannot be turned back into an object
    PartialRestore        500     1          some variables of a restore failed
    PathRefused           400/403 1          REST: a notebook path or version id the API will not serve
    ApiError              given   1          REST: a request refused by a handler (400, 404, 409, 413)
    RemoteError           500     1          an object-store remote cannot be used (push, pull, clone)
      RemoteMissing 404, RemoteExists 409,     (an object absent; a create-only write found it; a
      RemoteConflict 409, RemoteCorrupt 500     lost If-Match race; downloaded data fails its hash)

CLI exit codes that are not an exception's: EXIT_USAGE (2) for arguments argparse rejects, and
EXIT_DAMAGED (3) when `jupyter-mv verify` finds damaged blobs (a result, not an error).
"""

from __future__ import annotations

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 3


def not_utf8(e: BaseException) -> str | None:
    """For a UnicodeEncodeError over lone surrogates (the bytes of a command-line argument, environment
    variable or file name that are not UTF-8, which Python keeps as U+DC80..U+DCFF: PEP 383), the
    readable reason an adapter prints in its one line; None for any other exception."""
    if not (isinstance(e, UnicodeEncodeError) and "surrogates not allowed" in str(e)):
        return None
    bad = e.object[e.start:e.end] if isinstance(e.object, str) else ""
    return (f"a command-line argument, environment variable or file name holds bytes that are not UTF-8 "
            f"({bad!r}); use UTF-8 text (rename the file, or retype the argument)")


class MVError(Exception):
    """Base class: every error jupyter_mv raises on purpose.

    `status`: the HTTP status the REST API answers with; `exit_code`: the CLI's exit status."""

    status: int = 500
    exit_code: int = EXIT_ERROR


class UsageError(MVError):
    """Bad arguments from the user."""

    status = 400


class UnknownRef(MVError):
    """A version reference (vN, N, tag, name, latest) matches nothing."""

    status = 404


class UnknownVariable(MVError):
    """A variable name is not in the namespace or not in the version."""

    status = 404


class NotStorable(MVError):
    """No codec can store this object."""


class StoreError(MVError):
    """The store on disk cannot be opened, read or written."""


class CorruptBlob(StoreError):
    """A blob file is missing, truncated or does not match its hash."""

    def __init__(self, blob_id: str, reason: str):
        self.blob_id = blob_id
        self.reason = reason
        super().__init__(f"blob {blob_id[:12]} is damaged: {reason}")


class StoreBusy(StoreError):
    """The store's database stayed locked by another writer beyond the busy wait; nothing was written."""

    status = 503


class NoSpace(StoreError):
    """The disk filled up while writing."""


class Untrusted(MVError):
    """Restoring would unpickle data from an imported bundle the user has not trusted.

    `needs` lists what trust would allow, one phrase a variable (`"m would unpickle __main__.Box"`),
    so an adapter without a --trust flag (the widget) can name it and offer the choice itself."""

    def __init__(self, message: str, needs: list[str] | None = None):
        super().__init__(message)
        self.needs = list(needs or [])


class BundleError(MVError):
    """A bundle (.mvz) cannot be written, or is refused on import: damaged, hostile or unknown."""


class LiveHandle(NotStorable):
    """The object holds a handle on the outside world (an open file, socket, database connection, lock,
    thread, queue, subprocess or generator): storing it would be a lie, so the variable is skipped.

    `path` is where the handle sits inside the object, in Python syntax relative to it (`.fh`,
    `['cfg'].conn`, "" for the object itself); `what` says what it is (`an open file 'data.txt'`)."""

    def __init__(self, what: str, path: str = "", obj=None):
        self.what = what
        self.path = path
        self.obj = obj  # the handle itself, so an enclosing codec can give the path from its own root
        super().__init__(f"{path or 'it'}: {what}")


class DecodeError(MVError):
    """A stored variable cannot be turned back into an object here: the module or class that defines
    it is missing or was renamed, or its stored state no longer loads."""


class PartialRestore(MVError):
    """Some variables of a restore came back, others could not be decoded.

    `restored`: the names set in the namespace (with the prefix); `failed`: {name: reason} for the
    others, one readable reason each."""

    def __init__(self, version: str, restored: list[str], failed: dict[str, str]):
        self.version = version
        self.restored = list(restored)
        self.failed = dict(failed)
        listed = "; ".join(f"{n!r}: {r}" for n, r in self.failed.items())
        back = ", ".join(self.restored) if self.restored else "nothing"
        super().__init__(f"{version}: could not restore {len(self.failed)} variable"
                         f"{'s' if len(self.failed) != 1 else ''} ({listed}); restored {back}")


class NothingToUndo(MVError):
    """`undo()` found no executed cell whose changes it could take back (none ran since jupyter_mv was
    loaded, every one was undone already, or the undo journal is off)."""

    status = 409


class PathRefused(MVError):
    """A notebook path or version id the REST API will not serve; `status` is the HTTP status to
    answer (400 malformed or missing, 403 leaving the server root). Raised by server/location.py."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ApiError(MVError):
    """A REST request a handler refuses, answered as JSON with this `status` (e.g. 400 a body that is
    not a JSON object, 404 no store beside the notebook, 409 a conflicting rename, 413 too large)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class RemoteError(MVError):
    """An object-store remote cannot be reached, read or written, or refuses the request. Messages
    name the remote by its URL without credentials (remotes.registry.safe_url)."""


class RemoteMissing(RemoteError):
    """An object the remote should hold is not there."""

    status = 404


class RemoteExists(RemoteError):
    """A create-only write found the key already written (content-addressed objects: usually fine)."""

    status = 409


class RemoteConflict(RemoteError):
    """A conditional write lost a race (If-Match did not match): someone else moved it first."""

    status = 409


class RemoteCorrupt(RemoteError):
    """What the remote sent does not match its hash or fails validation; nothing of it was imported."""


class CredentialsWithheld(UserWarning):
    """An export or MLflow push left out variables or params holding credentials and masked them in
    texts (message, cell sources, outputs); the message names each. Adapters print it as one line."""


class StaleReference(UserWarning):
    """A restore replaced a variable that another variable, left as it is, still refers to (an
    optimizer made after the version still steps the replaced model's parameters). The message names
    both; `%mv_restore` prints it as one line."""
