"""Content-addressed blob files: chunked, hashed, compressed when it pays, written durably."""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

import xxhash
import zstandard

from ..errors import CorruptBlob, NoSpace, StoreError

CHUNK = int(os.environ.get("JUPYTER_MV_CHUNK", 4 * 1024 * 1024))
RAW, ZSTD = b"Mr", b"Mz"  # 2-byte header of every blob file
_SAMPLE = 64 * 1024
# hashing holds the GIL but file I/O and zstd release it: twice the cores keeps the disk busy
_WORKERS = max(4, min(16, 2 * (os.cpu_count() or 2)))
INLINE = 2048  # buffers smaller than this live in the manifest, not in a file of their own


def blob_id(data) -> str:
    """Content address: xxh3-128 of the bytes plus their length."""
    return f"{xxhash.xxh3_128_hexdigest(data)}-{len(data):x}"


def blob_size(bid: str) -> int:
    return int(bid.rsplit("-", 1)[1], 16)


def _compress(data: memoryview) -> bytes | None:
    """zstd-compress `data`, or None when it does not pay (random floats gain ~6%)."""
    if len(data) < 512:
        return None
    cctx = zstandard.ZstdCompressor(level=1)
    sample = data[:_SAMPLE]
    if len(cctx.compress(sample)) > 0.9 * len(sample):
        return None
    out = cctx.compress(data)
    return out if len(out) < 0.95 * len(data) else None


class BlobStore:
    """Blob files under `root/blobs/ab/<id>`; one file per chunk, never rewritten."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.dir = self.root / "blobs"
        self.tmp = self.root / "tmp"
        self._lockfile = self.root / "gc.lock"
        self._pool: ThreadPoolExecutor | None = None

    # -- paths ---------------------------------------------------------------------------------
    def path(self, bid: str) -> Path:
        if len(bid) < 34 or not all(c in "0123456789abcdef-" for c in bid):
            raise StoreError(f"malformed blob id {bid!r}")
        return self.dir / bid[:2] / bid

    def exists(self, bid: str) -> bool:
        return self.path(bid).exists()

    def all_ids(self) -> Iterable[str]:
        if not self.dir.exists():
            return
        for sub in sorted(self.dir.iterdir()):
            if sub.is_dir():
                for f in sorted(sub.iterdir()):
                    if not f.name.startswith("."):
                        yield f.name

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="jupyter_mv")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- locking against gc --------------------------------------------------------------------
    @contextlib.contextmanager
    def _flock(self, mode: int):
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lockfile, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"the store at {self.root} is not writable ({e.strerror or e}): snapshots and gc "
                             "need write access (browsing and restoring still work)") from None
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def writing(self):
        """Held by a snapshot from its first blob write to its commit: gc waits for it."""
        return self._flock(fcntl.LOCK_SH)

    def collecting(self):
        """Held by gc: no snapshot is between writing blobs and committing them."""
        return self._flock(fcntl.LOCK_EX)

    # -- writing -------------------------------------------------------------------------------
    def _stage(self, data: memoryview) -> tuple[str, Path | None, int]:
        """Hash one chunk; if the store lacks it, write it to a temp file (not yet durable).
        Returns (blob id, temp file or None, bytes it will add)."""
        bid = blob_id(data)
        if self.path(bid).exists():
            return bid, None, 0
        packed = _compress(data)
        header, body = (RAW, data) if packed is None else (ZSTD, packed)
        tmp = self.tmp / f"{bid}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            with open(tmp, "wb") as f:
                f.write(header)
                f.write(body)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _write_error(e, tmp) from None
        return bid, tmp, len(header) + len(body)

    @staticmethod
    def _fsync_file(path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)  # any descriptor flushes the file's data
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise _write_error(e, path) from None

    def add_chunk(self, data, bid: str) -> int:
        """Durably add one chunk under its id (imports), unless present; returns the bytes added.
        Call sync_dirs() with the added ids before committing metadata that references them."""
        if blob_id(data) != bid:
            raise CorruptBlob(bid, "content does not match its id")
        self.tmp.mkdir(parents=True, exist_ok=True)
        _, tmp, added = self._stage(memoryview(data))
        if tmp is None:
            return 0
        try:
            self._fsync_file(tmp)
            path = self.path(bid)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _write_error(e, tmp) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return added

    def sync_dirs(self, ids) -> None:
        """fsync the directories of these blobs (and the blobs directory): their names are durable."""
        dirs = {self.path(b).parent for b in ids}
        if dirs:
            dirs.add(self.dir)
            list(self.pool.map(_fsync_dir, dirs))

    @staticmethod
    def plan(buffers: list) -> list[dict]:
        """The manifests `put` would record for these buffers, without writing anything."""
        out = []
        for buf in buffers:
            mv = _bytes_view(buf)
            if len(mv) < INLINE:
                out.append({"n": len(mv), "c": [], "i": base64.b64encode(mv).decode()})
            else:
                out.append({"n": len(mv), "c": [blob_id(mv[o: o + CHUNK]) for o in range(0, len(mv), CHUNK)]})
        return out

    def put(self, buffers: list, progress: Callable[[int], None] | None = None) -> tuple[list[dict], int]:
        """Store buffers chunk by chunk. Returns one manifest per buffer and the bytes added.

        A manifest is {"n": nbytes, "c": [chunk ids]} (or {"n", "i": base64} for a small buffer).
        Three phases, each parallel: hash every chunk and write the missing ones to temp files; fsync
        them (the kernel has been writing back meanwhile, so these mostly wait on I/O already under
        way); rename them into place and fsync the directories. Only durable files get a blob's name.
        """
        self.tmp.mkdir(parents=True, exist_ok=True)
        jobs = []  # (buffer index, future)
        manifests = [{"n": 0, "c": []} for _ in buffers]
        for i, buf in enumerate(buffers):
            mv = _bytes_view(buf)
            manifests[i]["n"] = len(mv)
            if len(mv) < INLINE:
                manifests[i]["i"] = base64.b64encode(mv).decode()
                continue
            for off in range(0, len(mv), CHUNK):
                jobs.append((i, self.pool.submit(self._stage, mv[off: off + CHUNK])))
        new = 0
        staged: dict[str, Path] = {}
        done = False
        try:
            for i, fut in jobs:
                bid, tmp, added = fut.result()
                manifests[i]["c"].append(bid)
                if tmp is not None:
                    if bid in staged:  # the same new chunk twice in this snapshot
                        tmp.unlink()
                    else:
                        staged[bid] = tmp
                        new += added
                if progress:
                    progress(blob_size(bid))
            list(self.pool.map(self._fsync_file, staged.values()))
            dirs = set()
            for bid, tmp in staged.items():
                path = self.path(bid)
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, path)
                dirs.add(path.parent)
            if dirs:
                dirs.add(self.dir)
                list(self.pool.map(_fsync_dir, dirs))
            done = True
        except OSError as e:
            raise _write_error(e, self.dir) from None
        finally:
            if not done:  # no temp file outlives a failed put (renamed ones are blobs, kept for dedup)
                for _, fut in jobs:
                    fut.cancel()
                for _, fut in jobs:
                    if fut.cancelled() or fut.exception() is not None:
                        continue
                    tmp = fut.result()[1]
                    if tmp is not None:
                        with contextlib.suppress(OSError):
                            tmp.unlink()
        return manifests, new

    # -- reading -------------------------------------------------------------------------------
    def read_into(self, bid: str, out: memoryview) -> None:
        """Fill `out` (exactly the chunk's size) with the chunk's bytes, checking the hash."""
        size = blob_size(bid)
        if len(out) != size:
            raise CorruptBlob(bid, "size does not match its manifest")
        try:
            with open(self.path(bid), "rb") as f:
                header = f.read(2)
                if header == RAW:
                    got = f.readinto(out)
                    if got != size or f.read(1):
                        raise CorruptBlob(bid, "truncated or overlong file")
                elif header == ZSTD:
                    reader = zstandard.ZstdDecompressor().stream_reader(f)
                    got = 0
                    try:
                        while got < size:
                            n = reader.readinto(out[got:])
                            if not n:
                                break
                            got += n
                    except zstandard.ZstdError as e:
                        raise CorruptBlob(bid, f"cannot decompress ({e})") from None
                    if got != size:
                        raise CorruptBlob(bid, "decompressed to the wrong size")
                else:
                    raise CorruptBlob(bid, "unknown file header")
        except FileNotFoundError:
            raise CorruptBlob(bid, "file is missing") from None
        except OSError as e:
            raise CorruptBlob(bid, f"cannot read file ({e.strerror or e})") from None
        if blob_id(out) != bid:
            raise CorruptBlob(bid, "content does not match its hash")

    def read_buffer(self, manifest: dict, out: memoryview | None = None) -> memoryview:
        """Reassemble one buffer from its chunks, straight into `out` (allocated when None)."""
        n = manifest["n"]
        if out is None:
            out = _empty(n)
        if "i" in manifest:
            data = base64.b64decode(manifest["i"])
            if len(data) != n:
                raise CorruptBlob("inline" + "0" * 30, "inline data does not match its size")
            out[:] = data
            return out
        chunks = manifest["c"]
        sizes = [blob_size(bid) for bid in chunks]
        if sum(sizes) != n:
            raise CorruptBlob(chunks[0] if chunks else "0" * 34, "chunks do not add up to the buffer")
        if len(chunks) == 1:  # no pool round trip for the many one-chunk buffers of a model
            self.read_into(chunks[0], out)
            return out
        futs, off = [], 0
        for bid, size in zip(chunks, sizes):
            futs.append(self.pool.submit(self.read_into, bid, out[off: off + size]))
            off += size
        for f in futs:
            f.result()
        return out

    def check(self, bid: str) -> str | None:
        """Re-hash one blob; None when intact, else what is wrong."""
        try:
            self.read_into(bid, memoryview(bytearray(blob_size(bid))))
        except CorruptBlob as e:
            return e.reason
        return None

    def stored_size(self, bid: str) -> int:
        try:
            return self.path(bid).stat().st_size
        except FileNotFoundError:
            return 0

    def delete(self, bid: str) -> int:
        path = self.path(bid)
        try:
            size = path.stat().st_size
            path.unlink()
            return size
        except FileNotFoundError:
            return 0

    def clean_tmp(self) -> None:
        """Remove temp files left by a crashed writer (only when no writer holds the lock)."""
        if self.tmp.exists():
            for f in self.tmp.iterdir():
                with contextlib.suppress(OSError):
                    f.unlink()


_MMAP_FROM = 16 << 20


def _write_error(e: OSError, path: Path) -> Exception:
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return NoSpace("no space left on the store's disk; free some space and snapshot again "
                       "(earlier versions are intact)")
    return StoreError(f"cannot write {path}: {e.strerror or e}")


def _empty(n: int) -> memoryview:
    """A writable buffer of n bytes for a restore to fill. Not zero-filled by us (every byte gets
    written). Large ones are anonymous mappings with ordinary pages: numpy asks for transparent huge
    pages, which on a busy machine stall in compaction (0.1 s to 2.3 s for the same 512 MB here)."""
    if n >= _MMAP_FROM:
        import mmap

        return memoryview(mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS))
    import numpy as np

    return memoryview(np.empty(n, dtype=np.uint8))


def _bytes_view(buf) -> memoryview:
    mv = memoryview(buf)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B") if mv.c_contiguous else memoryview(mv.tobytes())
    return mv


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
