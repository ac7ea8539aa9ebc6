"""`remote gc`: delete the objects of a remote that no version references any more (data of pushes that
were interrupted before their manifest), without ever deleting what someone is pushing.

    report = gc(open_remote("s3://bucket/team"), grace=timedelta(hours=24))

Mark and sweep, in this order (leases.py has the protocol with pushers):
1. take the gc lock (leases/gc.json, create-only: one gc at a time; a killed gc's lock expires);
2. wait until no live push lease is left (pushes that began before the lock finish and write their
   manifests; new pushes wait for the lock to go; expired leases of killed pushers are deleted);
3. mark: read every version manifest (versions/*.json) and collect its "objects"; a manifest that
   cannot be read or has no such list stops the gc before anything is deleted (its references are
   unknown: deleting could lose them);
4. sweep chunks/, packs/ and files/: delete what is unmarked *and* older than the grace period
   (Last-Modified before the lock's time minus `grace`, both in the server's clock) — the grace
   covers writers that predate leases and stores whose listings lag;
5. abort multipart uploads begun before the same cutoff (a killed push leaves its parts stored,
   and billed, otherwise);
6. release the lock.

Versions, tags and leases themselves are never swept. DVC's `gc --cloud` (issues #1300, #3476 in its
tracker) had neither the grace period nor the leases and deleted data other people had just pushed.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from ..errors import RemoteCorrupt, RemoteError, RemoteMissing, UsageError
from . import leases as _leases
from .objects import TRANSFER_CONCURRENCY, ObjectStore, open_remote

MANIFEST_PREFIX = "versions/"
SWEPT_PREFIXES = ("chunks/", "packs/", "files/")
DEFAULT_GRACE = _dt.timedelta(hours=24)
SWEEP_BATCH = 200  # deletes between two checks that the gc lock is still held

Progress = Callable[[str, int, int], None]  # progress(phase, done, total); total 0 when unknown


@dataclass
class GcReport:
    """What a gc did. Counts of objects; bytes in bytes; seconds of wall time."""

    manifests: int = 0            # version manifests read (marked from)
    referenced: int = 0           # distinct keys they reference
    scanned: int = 0              # objects listed under chunks/, packs/, files/
    deleted: int = 0
    deleted_bytes: int = 0
    kept_young: int = 0           # unreferenced but younger than the grace period: kept
    missing: list[str] = field(default_factory=list)  # referenced but absent (damage, reported)
    aborted_uploads: int = 0
    expired_leases: int = 0       # leases of pushes that died, removed
    waited_seconds: float = 0.0   # waiting for pushes in progress
    seconds: float = 0.0
    dry_run: bool = False

    def summary(self) -> str:
        """One line for the CLI."""
        verb = "would delete" if self.dry_run else "deleted"
        line = (f"{verb} {self.deleted} unreferenced object{'s' if self.deleted != 1 else ''} "
                f"({_human(self.deleted_bytes)}); kept {self.kept_young} younger than the grace period; "
                f"{self.referenced} referenced by {self.manifests} version{'s' if self.manifests != 1 else ''}")
        if self.aborted_uploads:
            line += f"; aborted {self.aborted_uploads} stale upload{'s' if self.aborted_uploads != 1 else ''}"
        if self.expired_leases:
            line += f"; removed {self.expired_leases} expired push lease{'s' if self.expired_leases != 1 else ''}"
        if self.missing:
            line += (f"; WARNING: {len(self.missing)} referenced object{'s are' if len(self.missing) != 1 else ' is'} "
                     f"missing (first: {self.missing[0]})")
        return line


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


_MAX_GRACE = _dt.timedelta(days=36500)  # a century: beyond it the cutoff leaves datetime's range


def parse_grace(text: str | float | int | _dt.timedelta) -> _dt.timedelta:
    """A grace period from "24h", "90m", "2d", "1w", "30s", "0", or (a number, not text) seconds.
    Text other than "0" needs its unit: "--grace 24" would be 24 seconds to someone who meant the
    default's 24 hours, and gc deletes what is older. UsageError naming the accepted forms otherwise
    (also for a negative, non-finite or over-a-century period)."""
    if isinstance(text, _dt.timedelta):
        if text.total_seconds() < 0:
            raise UsageError("--grace cannot be negative")
        return min(text, _MAX_GRACE)
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not math.isfinite(text) or text < 0:
            raise UsageError(f"--grace {text!r}: give a number of seconds of at least 0, or a duration like 24h")
        return _dt.timedelta(seconds=min(float(text), _MAX_GRACE.total_seconds()))
    m = _DURATION.match(str(text))
    if not m:
        raise UsageError(f"--grace {text!r}: give a duration like 24h, 90m, 2d, 1w or 30s")
    n, unit = float(m.group(1)), m.group(2)
    if not unit and n != 0:
        raise UsageError(f"--grace {text!r}: give its unit, e.g. {m.group(1)}h or {m.group(1)}s (s, m, h, d, w)")
    seconds = n * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    if seconds > _MAX_GRACE.total_seconds():
        raise UsageError(f"--grace {text!r}: at most a century (36500d)")
    return _dt.timedelta(seconds=seconds)


def manifest_objects(raw: bytes, key: str) -> list[str]:
    """The keys a version manifest references (its "objects" list, layout.py). RemoteCorrupt if the
    manifest is not JSON or the list is missing or holds anything but keys."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RemoteCorrupt(f"{key} is not a readable version manifest (not JSON)") from None
    objs = doc.get("objects") if isinstance(doc, dict) else None
    if not isinstance(objs, list) or not all(isinstance(o, str) and o for o in objs):
        raise RemoteCorrupt(f"{key} is not a readable version manifest (no list of the objects it references)")
    return objs


def gc(remote: ObjectStore | str, grace: _dt.timedelta | str | float = DEFAULT_GRACE,
       progress: Progress | None = None, *, dry_run: bool = False, wait: float | None = 3600.0,
       who: str | None = None) -> GcReport:
    """Delete the remote's unreferenced chunks/packs/files older than `grace` (a timedelta, a number
    of seconds or "24h"), honouring push leases (see the module docstring). `progress(phase, done,
    total)` is called with phases "waiting", "mark", "sweep". `dry_run`: report what would go,
    delete nothing. `wait`: seconds to wait for pushes in progress (None: forever), then RemoteError.

    Returns a GcReport. Raises RemoteConflict if another gc holds the remote (or this one lost its
    lock), RemoteCorrupt if a manifest cannot be read (nothing is deleted then), RemoteError for
    anything the remote refuses."""
    t0 = time.monotonic()
    grace = parse_grace(grace)
    store = open_remote(remote) if isinstance(remote, str) else remote
    report = GcReport(dry_run=dry_run)
    lock = _leases.GcLock(store, who=who)
    lock.acquire()
    try:
        cutoff = lock.server_start - grace
        # 2. wait for pushes in progress
        waited_from = time.monotonic()
        while True:
            live = 0
            now = lock.server_now()
            for meta, body in _leases.push_leases(store):
                if _leases.is_live(meta, body, now):
                    live += 1
                elif not dry_run:
                    _leases._delete_if_unchanged(store, meta)
                    report.expired_leases += 1
            if not live:
                break
            if progress:
                progress("waiting", live, 0)
            if wait is not None and time.monotonic() - waited_from > wait:
                raise RemoteError(f"{store.url}: {live} push{'es' if live != 1 else ''} still in progress after "
                                  f"{wait:.0f} s; run remote gc again later")
            lock.ensure()
            time.sleep(0.25)
        report.waited_seconds = time.monotonic() - waited_from
        # 3. mark
        referenced: set[str] = set()
        manifests = [m for m in store.list(MANIFEST_PREFIX) if m.key.endswith(".json")]

        def read(meta):
            try:
                return meta, store.get(meta.key)
            except RemoteMissing:
                return meta, None  # versions are never deleted; a vanished one references nothing

        with ThreadPoolExecutor(TRANSFER_CONCURRENCY) as pool:
            for i, (meta, raw) in enumerate(pool.map(read, manifests), 1):
                if raw is not None:
                    referenced.update(manifest_objects(raw, f"{store.url}/{meta.key}"))
                if progress:
                    progress("mark", i, len(manifests))
        report.manifests = len(manifests)
        report.referenced = len(referenced)
        # 4. sweep
        present: set[str] = set()
        candidates = []
        for prefix in SWEPT_PREFIXES:
            for meta in store.list(prefix):
                report.scanned += 1
                present.add(meta.key)
                if meta.key in referenced:
                    continue
                if meta.modified >= cutoff:
                    report.kept_young += 1
                    continue
                candidates.append(meta)
        report.missing = sorted(k for k in referenced
                                if k.startswith(SWEPT_PREFIXES) and k not in present)
        # pack indexes go first, in batches of their own: an index whose pack is gone would tell a
        # later push that chunks are there (push checks, but a gc cut off here leaves the safe state)
        indexes = [m for m in candidates if m.key.endswith(".idx")]
        others = [m for m in candidates if not m.key.endswith(".idx")]
        batches = [indexes[i:i + SWEEP_BATCH] for i in range(0, len(indexes), SWEEP_BATCH)]
        batches += [others[i:i + SWEEP_BATCH] for i in range(0, len(others), SWEEP_BATCH)]
        for batch in batches:
            lock.ensure()  # a lapsed lock lets pushers in: stop deleting
            if not dry_run:
                store.delete_many([m.key for m in batch])
            report.deleted += len(batch)
            report.deleted_bytes += sum(m.size for m in batch)
            if progress:
                progress("sweep", report.deleted, len(candidates))
        # 5. stale multipart uploads
        for up in store.multipart_uploads():
            if up.initiated < cutoff:
                lock.ensure()
                if not dry_run:
                    store.abort_multipart(up)
                report.aborted_uploads += 1
    finally:
        lock.release()
    report.seconds = time.monotonic() - t0
    return report
