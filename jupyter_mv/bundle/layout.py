"""The bundle format: one version of one notebook as a single `.mvz` file (a zip).

Layout of a bundle (schema 1, see schemas/bundle.schema.json):

    manifest.json      format, schema, the version (params, metrics, tags, ...), environment,
                       variables with their codec meta and buffer manifests, sha256 + size of
                       every other member
    notebook.ipynb     the version's executed cells as an nbformat 4 notebook (sources, outputs)
    requirements.txt   the exact package versions of the environment it was taken in
    blobs/<blob id>    the raw bytes of every chunk the version's variables reference

The zip container is PKWARE's .ZIP format (APPNOTE) as Python's zipfile writes it (ZIP64 for large
members); notebook.ipynb is nbformat 4 (https://nbformat.readthedocs.io); requirements.txt is pip's
requirements-file format with `==` pins; JSON is RFC 8259 (jsondata).
"""

from __future__ import annotations

import hashlib
import json
import re

from ..model import Version
from ..store import Store

FORMAT = "jupyter_mv.bundle"
SCHEMA = 1
KNOWN_SCHEMAS = (1,)
EXTENSION = ".mvz"

MANIFEST, NOTEBOOK, REQUIREMENTS = "manifest.json", "notebook.ipynb", "requirements.txt"
BLOB_MEMBER = re.compile(r"blobs/([0-9a-f]{32}-[0-9a-f]{1,15})")  # blobs/<xxh3-128 hex>-<size hex>


def version_hash(store: Store, version: Version) -> str:
    """A content hash of a version: its variables' content hashes, params and metrics, as 64 hex
    digits (SHA-256 of their JSON, keys sorted). Written in a bundle's manifest
    (`version.content_hash`) and as the MLflow tag `jupyter_mv.content_hash`, so a version is found
    again wherever it went. Reads only the store's variable records (StoreError if it cannot)."""
    body = {
        "variables": sorted((v.name, v.content_hash) for v in store.variables(version)),
        "params": version.params,
        "metrics": version.metrics,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=repr).encode()).hexdigest()


def requirements_txt(env: dict) -> str:
    """The requirements.txt member for `env` (a store environment: {"python", "platform",
    "packages": {name: version}}): a comment line naming Python and the platform, then one
    `name==version` pin a line sorted by name (pip's requirements-file format)."""
    lines = [f"# environment of a jupyter_mv bundle: Python {env.get('python', '?')} on {env.get('platform', '?')}"]
    lines += [f"{name}=={ver}" for name, ver in sorted((env.get("packages") or {}).items())]
    return "\n".join(lines) + "\n"


def person(text) -> str:
    """`text` as a manifest's author may hold it: control characters (a newline or an escape
    sequence in $JUPYTER_MV_AUTHOR or a git user name) become spaces, at most 200 characters.
    Receivers refuse control characters there (validation.check_manifest, remote manifest.validate)."""
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in str(text or "")).strip()[:200]


def origin_kind(version: Version) -> str:
    """Where the sender's copy came from, as a bundle states it: "local" (made there), "imported" (a
    bundle) or "remote" (pulled; the remote's URL stays home)."""
    return "local" if version.is_local else ("imported" if version.origin == "imported" else "remote")


def manifest_record(store: Store, original: Version, shared, members: dict, author: str = "") -> dict:
    """The bundle manifest (manifest.json) of version `original` in its shareable form `shared`
    (redaction.plan: the version, its variables, what was withheld and the credentials included),
    with `members` {member name: {"size": bytes, "sha256": hex}} (notebook.ipynb,
    requirements.txt, blobs/<blob id>). One builder for bundle export and remote push, so both
    write exactly what bundle.validation.check_manifest accepts. Reads only metadata.

    The version record names the version's global id (`gid`, 32 hex digits), its `author` (the one
    recorded for a version made elsewhere, else `author`: who exports or pushes it), `origin`
    (origin_kind) and, while the sender holds one unverified, the id its own bundle claimed
    (`claimed_gid`). Receivers treat all of them as claims (bundle/identity.py)."""
    from .. import __version__

    version = shared.version
    env = store.environment(version)
    claimed = store.claimed_gid(original)
    return {
        "format": FORMAT,
        "schema": SCHEMA,
        "jupyter_mv": __version__,
        "version": {
            "label": version.label, "n": version.n, "notebook": version.notebook,
            "name": version.name, "message": version.message, "created": version.created,
            "kind": version.kind, "tags": list(version.tags), "params": version.params,
            "metrics": version.metrics, "content_hash": version_hash(store, original),
            "gid": original.gid, "author": person(original.author) or person(author),
            "origin": origin_kind(original), **({"claimed_gid": claimed} if claimed else {}),
        },
        "environment": {
            "python": env.get("python", ""), "implementation": env.get("implementation", ""),
            "platform": env.get("platform", ""), "packages": env.get("packages") or {},
            "git": env.get("git"),
        },
        "variables": [{
            "name": sv.name, "type_name": sv.type_name, "codec": sv.codec,
            "content_hash": sv.content_hash, "nbytes": sv.nbytes, "safe": bool(sv.safe),
            "summary": sv.summary, "manifest": sv.manifest,
            **({"credential": shared.included[sv.name]} if sv.name in shared.included else {}),
        } for sv in shared.variables],
        "withheld": shared.withheld,
        "members": members,
    }
