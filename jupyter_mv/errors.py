"""Exceptions raised by jupyter_mv. Adapters turn them into one readable line."""

from __future__ import annotations


class MVError(Exception):
    """Base class: every error jupyter_mv raises on purpose."""


class UsageError(MVError):
    """Bad arguments from the user."""


class UnknownRef(MVError):
    """A version reference (vN, N, tag, name, latest) matches nothing."""


class UnknownVariable(MVError):
    """A variable name is not in the namespace or not in the version."""


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


class CredentialsWithheld(UserWarning):
    """An export or MLflow push left out variables or params holding credentials and masked them in
    texts (message, cell sources, outputs); the message names each. Adapters print it as one line."""
