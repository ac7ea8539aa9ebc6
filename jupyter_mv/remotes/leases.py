"""Push leases and the gc lock on a remote: how `remote gc` never deletes what someone is pushing.

DVC's `gc --cloud` deleted data other people were pushing or had just pushed (its issues #1300, #3476):
it marks from the local workspace and sweeps everything else at once. Here a push and a gc announce
themselves with objects on the remote and each checks for the other *after* announcing itself, so
on a store with strongly consistent reads and listings (S3 since 2020-12, GCS, Azure, SeaweedFS,
local files) at least one of them sees the other:

    pusher                                      gc
    1. write leases/push/<id>.json              1. write leases/gc.json (create-only: one gc at a time)
    2. read leases/gc.json; if a live gc holds  2. list leases/push/; while a live lease is there,
       it: delete the lease, wait until the gc     wait (expired ones are deleted); then mark (read
       is gone, start again at 1                   every manifest) and sweep
    3. upload data, write the manifest; the lease is refreshed in the background meanwhile
    4. delete the lease

So a gc sweeps only while no push is between 1 and 4; a push that began before the gc is waited for
(its manifest is then marked), one that begins after waits for the gc. Lease and lock bodies are
JSON {"kind", "id", "who", "ttl"}; "live" is judged in the *server's* clock (an object's
Last-Modified) so clocks of team members need not agree: a lease is live while its last refresh
is younger than its ttl. A killed pusher's lease expires after its ttl (default 120 s,
JUPYTER_MV_LEASE_TTL overrides: tests use a few seconds), a killed gc's lock likewise.

    with push_lease(store, who="alice@laptop") as lease:     # waits while a gc sweeps
        ... upload chunks/packs/files ...
        lease.ensure()            # RemoteConflict if the lease lapsed (process paused past its ttl):
        store.put(manifest_key, manifest, mode="create")     #  push again instead of writing this
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import threading
import time
import uuid
from typing import Callable

from ..errors import RemoteConflict, RemoteError, RemoteExists, RemoteMissing
from .objects import ObjectMeta, ObjectStore, _Unsupported

PUSH_PREFIX = "leases/push/"
GC_KEY = "leases/gc.json"
DEFAULT_TTL = 120.0  # seconds
MAX_BODY = 64 * 1024


def lease_ttl() -> float:
    """The lease time-to-live in seconds (at least 1): the `lease_ttl` setting (JupyterMV.lease_ttl,
    default DEFAULT_TTL); JUPYTER_MV_LEASE_TTL overrides it (UsageError, one line, when it is not a
    number of seconds >= 1)."""
    from .. import config

    return float(config.current().lease_ttl)


def default_who() -> str:
    """user@host, the name leases and the gc lock carry (shown when someone has to wait)."""
    try:
        user = os.getlogin()
    except OSError:
        user = os.environ.get("USER") or os.environ.get("USERNAME") or "someone"
    return f"{user}@{socket.gethostname()}"


class _Held:
    """An object on the remote this process keeps alive by rewriting it every ttl/4 seconds."""

    def __init__(self, store: ObjectStore, key: str, body: dict, ttl: float):
        self.store, self.key, self.body, self.ttl = store, key, body, ttl
        self.etag: str | None = None
        self.server_start: _dt.datetime | None = None  # Last-Modified of the first write
        self._last_ok = 0.0  # time.monotonic() just before the last successful (re)write was sent
        self._error: BaseException | None = None
        self._lost: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mono_at_start = 0.0

    def _data(self) -> bytes:
        return json.dumps(self.body, sort_keys=True).encode()

    def create(self) -> None:
        sent = time.monotonic()
        self.etag = self.store.put(self.key, self._data(), mode="create")
        self._last_ok = sent
        meta = self.store.head(self.key)
        self.server_start = meta.modified if meta else _dt.datetime.now(_dt.timezone.utc)
        self._mono_at_start = sent

    def server_now(self) -> _dt.datetime:
        """The server's clock now, estimated from the first write's Last-Modified."""
        return self.server_start + _dt.timedelta(seconds=time.monotonic() - self._mono_at_start)

    def start_refreshing(self) -> None:
        self._thread = threading.Thread(target=self._refresh_loop, name=f"jupyter-mv lease {self.key}",
                                        daemon=True)
        self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            sent = time.monotonic()
            try:
                # If-Match on the last ETag: if the object was removed as expired (this process was
                # paused) or another holder took it over, this one is lost, not silently re-taken
                try:
                    self.etag = self.store.put(self.key, self._data(), mode="overwrite",
                                               if_match=self.etag or None)
                except _Unsupported:
                    self.etag = self.store.put(self.key, self._data(), mode="overwrite")
                self._last_ok = sent
            except (RemoteConflict, RemoteMissing) as exc:
                self._lost = exc
                return
            except RemoteError as exc:  # retried at the next tick; ensure() reports a lapse
                self._error = exc

    def lapsed(self) -> bool:
        """True if this was lost (removed or taken over) or no rewrite succeeded for long enough that
        others may count it as expired (a margin of a quarter ttl, at least 1 s — Last-Modified has
        whole seconds — but at most half the ttl, refreshes coming every quarter)."""
        return self._lost is not None or \
            time.monotonic() - self._last_ok > self.ttl - min(max(1.0, self.ttl / 4), self.ttl / 2)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._lost is None and self.etag is not None:
            # only if it is still ours: a gc lock taken over by another gc stays its
            _delete_if_unchanged(self.store, ObjectMeta(self.key, 0, self.etag or None, self.server_start))


def _read_body(store: ObjectStore, meta: ObjectMeta) -> dict | None:
    if meta.size > MAX_BODY:
        return None
    try:
        body = json.loads(store.get(meta.key))
    except (RemoteMissing, ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _ttl_of(body: dict | None) -> float:
    try:
        ttl = float((body or {}).get("ttl", DEFAULT_TTL))
    except (TypeError, ValueError):
        ttl = DEFAULT_TTL
    return min(max(ttl, 1.0), 24 * 3600.0)


def is_live(meta: ObjectMeta, body: dict | None, server_now: _dt.datetime) -> bool:
    """A lease/lock is live while its last write (server clock) is younger than its ttl."""
    return meta.modified + _dt.timedelta(seconds=_ttl_of(body)) > server_now


class PushLease:
    """A push in progress, held from before its first upload until after its manifest (and tags).
    Use push_lease(); `ensure()` right before writing the manifest."""

    def __init__(self, held: _Held):
        self._held = held
        self.key = held.key

    def ensure(self) -> None:
        """RemoteConflict if this lease lapsed (the process was paused or the remote unreachable for
        longer than the ttl): a gc may have swept meanwhile, so the push must start again (its
        existence checks are then redone) rather than write a manifest."""
        if self._held.lapsed():
            raise RemoteConflict(f"{self._held.store.url}: this push's lease lapsed (no refresh for "
                                 f"{self._held.ttl:.0f} s); a remote gc may have run meanwhile — push again")


@contextlib.contextmanager
def push_lease(store: ObjectStore, *, who: str | None = None, ttl: float | None = None,
               wait: float | None = 3600.0, on_wait: Callable[[str], None] | None = None):
    """Hold a push lease on `store` for the duration of the with-block (see the module docstring).

    Waits while a live gc holds the remote (on_wait(message) is called once, e.g. to print it), up to
    `wait` seconds (None: forever), then RemoteError. A gc lock left by a killed gc is removed once it
    is older than its ttl. Yields a PushLease; the lease is deleted on exit, also on an exception."""
    ttl = lease_ttl() if ttl is None else float(ttl)
    who = who or default_who()
    deadline = None if wait is None else time.monotonic() + wait
    told = False
    while True:
        lid = uuid.uuid4().hex
        held = _Held(store, f"{PUSH_PREFIX}{lid}.json", {"kind": "push", "id": lid, "who": who, "ttl": ttl},
                     ttl)
        held.create()
        gc_meta = store.head(GC_KEY)
        if gc_meta is None:
            break
        body = _read_body(store, gc_meta)
        if not is_live(gc_meta, body, held.server_now()):
            _delete_if_unchanged(store, gc_meta)  # a gc that died: take its lock away, go on
            break
        # a gc is sweeping: step back (it waits for our lease otherwise), wait for it to finish,
        # then announce ourselves again
        clock = held  # its first write's Last-Modified still tells the server's time
        held.release()
        who_gc = (body or {}).get("who", "someone")
        if on_wait and not told:
            on_wait(f"waiting for remote gc by {who_gc} to finish")
            told = True
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise RemoteError(f"{store.url}: a remote gc by {who_gc} held the remote for more than "
                                  f"{wait:.0f} s; try again later")
            time.sleep(min(1.0, max(0.2, ttl / 8)))
            cur = store.head(GC_KEY)
            if cur is None:
                break
            if cur.etag != gc_meta.etag or cur.modified != gc_meta.modified:
                gc_meta, body = cur, _read_body(store, cur)
            if not is_live(cur, body, clock.server_now()):
                break  # its holder stopped refreshing it: the next round removes it
    held.start_refreshing()
    try:
        yield PushLease(held)
    finally:
        held.release()


class GcLock:
    """The remote's gc lock (leases/gc.json), held by one gc at a time and refreshed while held."""

    def __init__(self, store: ObjectStore, *, who: str | None = None, ttl: float | None = None):
        ttl = lease_ttl() if ttl is None else float(ttl)
        self.store = store
        self.id = uuid.uuid4().hex
        self._held = _Held(store, GC_KEY, {"kind": "gc", "id": self.id, "who": who or default_who(),
                                           "ttl": ttl}, ttl)
        self.expired_taken_over = 0

    @property
    def server_start(self) -> _dt.datetime:
        return self._held.server_start

    def server_now(self) -> _dt.datetime:
        return self._held.server_now()

    def acquire(self) -> None:
        """Take the lock. RemoteConflict (one line, naming who and since when) if another live gc
        holds it; a lock whose holder stopped refreshing it (killed) is removed and taken over."""
        for _ in range(3):
            try:
                self._held.create()
                self._held.start_refreshing()
                return
            except RemoteExists:
                meta = self.store.head(GC_KEY)
                if meta is None:
                    continue
                body = _read_body(self.store, meta)
                now = _server_clock(self.store)  # the lock's age, in the server's clock
                if is_live(meta, body, now):
                    raise RemoteConflict(
                        f"{self.store.url}: another remote gc is running (by {(body or {}).get('who', '?')}, "
                        f"last seen {meta.modified:%Y-%m-%d %H:%M:%S} UTC); try again when it is done") from None
                _delete_if_unchanged(self.store, meta)
                self.expired_taken_over += 1
        raise RemoteConflict(f"{self.store.url}: could not take the gc lock; try again")

    def ensure(self) -> None:
        """RemoteConflict if the lock lapsed (pushers may have started since): stop deleting."""
        if self._held.lapsed():
            raise RemoteConflict(f"{self.store.url}: remote gc lost its lock (no refresh for "
                                 f"{self._held.ttl:.0f} s); stopped before deleting more — run it again")

    def release(self) -> None:
        self._held.release()


def _server_clock(store: ObjectStore) -> _dt.datetime:
    """The server's clock: the Last-Modified of an object written for the purpose (then deleted)."""
    key = f"leases/clock-{uuid.uuid4().hex}.json"
    store.put(key, b"{}", mode="overwrite")
    try:
        meta = store.head(key)
    finally:
        with contextlib.suppress(RemoteError):
            store.delete(key)
    return meta.modified if meta else _dt.datetime.now(_dt.timezone.utc)


def _delete_if_unchanged(store: ObjectStore, meta: ObjectMeta) -> None:
    """Delete an expired lease or lock unless it was rewritten meanwhile (If-Match on its ETag; a
    backend without conditional deletes deletes it plainly)."""
    try:
        store.delete(meta.key, if_match=meta.etag) if meta.etag else store.delete(meta.key)
    except (RemoteConflict, RemoteMissing):
        pass
    except RemoteError:
        with contextlib.suppress(RemoteError):
            store.delete(meta.key)


def push_leases(store: ObjectStore) -> list[tuple[ObjectMeta, dict | None]]:
    """The push leases on the remote, with their bodies (None when unreadable)."""
    return [(m, _read_body(store, m)) for m in store.list(PUSH_PREFIX)]
