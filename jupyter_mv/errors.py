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
    """Restoring would unpickle data from an imported bundle the user has not trusted."""


class BundleError(MVError):
    """A bundle (.mvz) cannot be written, or is refused on import: damaged, hostile or unknown."""
