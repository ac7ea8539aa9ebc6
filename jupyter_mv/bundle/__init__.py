"""Bundles: one version of one notebook as a single `.mvz` file (a zip) a colleague can import and
reproduce, and the validating importer that refuses anything hostile before writing a byte.

One concern a module:

    layout.py      the format: member names, schema, the content hash, requirements.txt
    notebook.py    the notebook member: cells -> nbformat 4 notebook and back
    exporting.py   export(): a version -> a bundle file (credentials withheld, skops for estimators)
    validation.py  read(): a bundle checked completely (names, sizes, checksums, schema, codecs)
    importing.py   import_(): a checked bundle -> a version with origin "imported"
    identity.py    whether a bundle's (or remote's) version is one held already: the global id it
                   claims is believed only when the content verifies

Importing trusts nothing in the file: member names, sizes (declared and decompressed), checksums,
the schema version, blob ids (re-hashed) and codec names are all checked first; only then are
blobs written (deduplicated by the BlobStore) and the version committed with origin "imported".
Nothing is ever unpickled here: whether a variable is safe is recomputed from its codec, so
restore refuses pickle-based ones unless the user trusts the bundle.
"""

from __future__ import annotations

from .exporting import bundle_size, export
from .importing import ImportResult, import_
from .layout import (EXTENSION, FORMAT, MANIFEST, NOTEBOOK, REQUIREMENTS, SCHEMA, manifest_record, requirements_txt,
                     version_hash)
from .notebook import cells_of, notebook_of
from .validation import (MAX_BYTES, MAX_CHUNK, MAX_NOTEBOOK, MAX_REQUIREMENTS, Bundle, check_manifest,
                         check_notebook, read)

__all__ = ["export", "import_", "read", "Bundle", "ImportResult", "notebook_of", "version_hash",
           "SCHEMA", "MAX_BYTES", "bundle_size", "cells_of", "requirements_txt", "FORMAT", "EXTENSION",
           "MANIFEST", "NOTEBOOK", "REQUIREMENTS", "MAX_CHUNK", "MAX_NOTEBOOK", "MAX_REQUIREMENTS",
           "check_manifest", "check_notebook", "manifest_record"]
