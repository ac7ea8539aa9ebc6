"""Where everything lives on a remote, and the formats of its objects. One module, so push, pull and
gc agree; docs/sharing.md explains it for users.

Keys, relative to the remote's URL (s3://bucket/projects/churn, file:///srv/models, ...):

    chunks/<id[:2]>/<blob id>      one chunk larger than PACK_MAX bytes, alone. Its body is the chunk's
                                   stored entry: a 2-byte header, b"Mr" (raw bytes follow) or b"Mz" (zstd
                                   frame follows) — the local blob file format (store/blobs.py)
    packs/<sha256>.pack            small chunks grouped (a version of 3,000 small arrays is a few objects,
                                   not 3,000): PACK_MAGIC, then entries (header + body, as above) back to
                                   back — the local pack file format. Named by the sha256 of its bytes
    packs/<sha256>.idx             that pack's index, JSON {"format": PACK_INDEX, "pack": "<sha256>.pack",
                                   "entries": [[blob id, offset, length], ...]}; written after its pack, so
                                   an index always names a complete pack
    files/<sha256>                 a version's notebook.ipynb and requirements.txt, keyed by the sha256 of
                                   their bytes
    versions/<gid>.json            a version's manifest (VERSION_FORMAT below); gid is its global id (32 hex
                                   digits, a UUID4 given when the version was made). Written last, and
                                   create-only: it exists only once everything it references is on the
                                   remote, and it never changes
    tags/<nb key>/<tag key>.json   a tag of the team's: {"format": TAG_FORMAT, "notebook", "tag", "gid",
                                   "by", "at"}; keys are sha256 prefixes of the notebook path and the tag
                                   (any text is a safe key). Created create-only, moved with If-Match
    leases/...                     pushes in progress, for remote gc (remotes/gc.py owns this prefix)

Every object except tags and leases is content-addressed or immutable and written once with a
create-only write (`If-None-Match: *`): a second writer of the same key gets RemoteExists, which
push treats as "already there". Pushing again sends only what is missing: it looks up the version
manifest first (HEAD), then which chunks and packs the remote already holds.

A version manifest (versions/<gid>.json):

    {"format": VERSION_FORMAT, "schema": 1, "gid": "<32 hex>", "author": "who made it",
     "pushed_by": "who pushed it", "pushed_at": ISO 8601 UTC, "parent_gid": "<gid>" | null,
     "bundle": {...},          # exactly a bundle's manifest.json (bundle.py, schemas/bundle.schema.json):
                               # the version record, environment, variables and their buffer manifests,
                               # what was withheld, and `members` with the size and sha256 of
                               # notebook.ipynb, requirements.txt and each chunk as blobs/<blob id>
     "locations": {"<blob id>": ["chunks/ab/<blob id>"] | ["packs/<sha256>.pack", offset, length]},
     "objects": [every key above it references, sorted]}   # what remote gc marks

Pull validates the `bundle` part with the bundle importer's own checks and re-hashes every chunk
(xxh3-128 of its id and the sha256 of `members`), so a pulled version is exactly as safe as an
imported bundle.
"""

from __future__ import annotations

import hashlib
import re

import zstandard

from ..errors import CorruptBlob
from ..store import blobs as blobmod

VERSION_FORMAT = "jupyter_mv.remote-version"
TAG_FORMAT = "jupyter_mv.remote-tag"
PACK_INDEX = "jupyter_mv.remote-pack-index"
SCHEMA = 1

PACK_MAGIC = blobmod.PACK_MAGIC
RAW, ZSTD = blobmod.RAW, blobmod.ZSTD
PACK_TARGET = 8 << 20  # bytes of small chunks per remote pack: few objects, each still quick to fetch again
MAX_MANIFEST = 256 * 1024**2  # a version manifest larger than this is refused (like a bundle's)
MAX_INDEX = 64 * 1024**2

GID = re.compile(r"[0-9a-f]{32}")
BLOB_ID = re.compile(r"[0-9a-f]{32}-[0-9a-f]{1,15}")
_SHA = re.compile(r"[0-9a-f]{64}")
PACK_KEY = re.compile(r"packs/([0-9a-f]{64})\.pack")
CHUNK_KEY = re.compile(r"chunks/([0-9a-f]{2})/([0-9a-f]{32}-[0-9a-f]{1,15})")


def version_key(gid: str) -> str:
    return f"versions/{gid}.json"


def gid_of_key(key: str) -> str | None:
    """The gid of a versions/<gid>.json key, or None for any other key."""
    m = re.fullmatch(r"(?:.*/)?versions/([0-9a-f]{32})\.json", key)
    return m.group(1) if m else None


def chunk_key(bid: str) -> str:
    return f"chunks/{bid[:2]}/{bid}"


def pack_key(sha: str) -> str:
    return f"packs/{sha}.pack"


def index_key(pack: str) -> str:
    """The index object of pack key `pack` (packs/<sha>.pack -> packs/<sha>.idx)."""
    return pack[: -len(".pack")] + ".idx"


def file_key(sha: str) -> str:
    return f"files/{sha}"


def tag_key(notebook: str, tag: str) -> str:
    return f"tags/{_short(notebook)}/{_short(tag)}.json"


def _short(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def relative(key: str) -> str:
    """A listed key relative to the remote's root: backends list full paths under a prefix."""
    for top in ("versions/", "packs/", "chunks/", "files/", "tags/", "leases/"):
        i = key.find(top)
        if i == 0 or (i > 0 and key[i - 1] == "/"):
            return key[i:]
    return key


def is_sha256(text) -> bool:
    return isinstance(text, str) and bool(_SHA.fullmatch(text))


# -- chunk entries -------------------------------------------------------------------------------
_LOCAL = __import__("threading").local()


def encode_entry(data) -> bytes:
    """A chunk as stored on the remote: b"Mz" + zstd frame when that is at least 5% smaller (a
    sample decides first), else b"Mr" + the bytes."""
    mv = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else memoryview(data)
    if len(mv) >= 512:
        cctx = getattr(_LOCAL, "cctx", None)
        if cctx is None:
            cctx = _LOCAL.cctx = zstandard.ZstdCompressor(level=1)
        sample = mv[:65536]
        if len(cctx.compress(sample)) <= 0.9 * len(sample):
            out = cctx.compress(mv)
            if len(out) < 0.95 * len(mv):
                return ZSTD + out
    return RAW + bytes(mv)


def decode_entry(bid: str, entry) -> bytes:
    """The chunk `bid` from its stored entry, checked against its id (size and xxh3-128). Raises
    CorruptBlob saying what is wrong. Decompression is bounded by the size the id states, so a
    hostile entry cannot inflate past it."""
    size = blobmod.blob_size(bid)
    entry = memoryview(entry)
    header, body = bytes(entry[:2]), entry[2:]
    if header == RAW:
        data = bytes(body)
    elif header == ZSTD:
        try:
            data = zstandard.ZstdDecompressor().decompress(body, max_output_size=size)
        except zstandard.ZstdError as e:
            raise CorruptBlob(bid, f"cannot decompress ({e})") from None
    else:
        raise CorruptBlob(bid, "unknown entry header")
    if len(data) != size:
        raise CorruptBlob(bid, f"holds {len(data)} bytes, its id says {size}")
    if blobmod.blob_id(data) != bid:
        raise CorruptBlob(bid, "content does not match its hash")
    return data
