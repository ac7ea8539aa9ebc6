"""REST handlers for remotes (issue 14), the lab sidebar's side: which versions of a notebook the store's
default remote holds, and Push / Pull.

GET `remote` reads only the store (its `remotes` registry and the `remote_versions` table push and pull
fill in): no request goes to the remote, so the sidebar can ask on every refresh. POST `push` and POST
`pull` move versions through api.push / api.pull in a worker thread (a transfer may take minutes; the
event loop keeps serving), one transfer at a time per store directory. Push and pull touch only the store,
never a kernel's variables, so they are REST calls like tagging (DESIGN.md: the kernel is for live state).

What is shown: the URL as the registry holds it (never credentials: registry.normalize_url refuses them,
registry.safe_url drops user info and queries once more), errors as their one line (base.error_reply).
"""

from __future__ import annotations

import re
import threading
import time

import tornado.web

from .. import api, redaction
from ..errors import ApiError, MVError
from .base import _Handler
from .location import Location, check_ref

MAX_REFS = 1000
_TRANSFER_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
# transfers in progress: the client's id -> {"store", "op", "done", "total", "t0"} (what GET remote reports)
_running: dict[str, dict] = {}


def _store_lock(loc: Location) -> threading.Lock:
    """One transfer at a time per store from this server: a second click waits for the first instead of
    racing it for the same objects (the push lease and the store's own locks keep a race safe anyway)."""
    with _locks_guard:
        return _locks.setdefault(str(loc.store), threading.Lock())


def _default_remote(st):
    """(remote dict or None, problem or None): the remote push and pull use without --remote."""
    from ..remotes import registry

    rs = registry.remotes(st)
    if not rs:
        return None, "this store has no remote yet: add one with `jupyter-mv remote add NAME URL` " \
                     "(mv.remote_add(name, url))"
    try:
        r = registry.get(st)
    except MVError as e:
        return None, str(e)
    return {"name": r.name, "url": registry.safe_url(r.url), "conditional": r.conditional}, None


def remote_status(st, key: str) -> dict:
    """{"remote": {name, url, conditional} | None, "problem": str | None, "on_remote": [vN ...]}: the versions
    of notebook `key` the store's default remote holds, as `remote_versions` records them (pushed from or
    pulled into this store). Reads the store only."""
    from ..remotes import registry

    remote, problem = _default_remote(st)
    labels: list[str] = []
    if remote is not None:
        there = registry.on_remote(st, remote["url"])
        labels = [v.label for v in api.versions(key, store=st) if v.gid in there]
    return {"remote": remote, "problem": problem, "on_remote": labels}


def _no_remote(loc: Location) -> dict:
    return {"notebook": loc.path, "key": loc.key, "remote": None, "on_remote": [],
            "problem": f"no versions for notebook {loc.path!r} yet (no jupyter_mv store beside it)"}


def _transfer_id(value) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _TRANSFER_ID.fullmatch(value):
        raise ApiError(400, "'transfer' must be 8 to 64 letters, digits, '-' or '_' (an id the client chose)")
    return value


def progress_of(transfer: str, loc: Location) -> dict | None:
    """{"op", "done", "total" (bytes), "seconds", "rate" (bytes/s), "eta" (seconds, None when unknown)} of
    the transfer the client named `transfer`, while it runs on this notebook's store; None otherwise."""
    t = _running.get(transfer)
    if t is None or t["store"] != str(loc.store):
        return None
    seconds = max(time.monotonic() - t["t0"], 1e-6)
    done, total = t["done"], t["total"]
    rate = done / seconds
    eta = (total - done) / rate if rate > 0 and total >= done else None
    return {"op": t["op"], "done": done, "total": total, "seconds": round(seconds, 3), "rate": round(rate, 1),
            "eta": None if eta is None else round(eta, 1)}


class RemoteStatusHandler(_Handler):
    """GET remote?notebook=PATH[&transfer=ID]: the store's default remote (URL without credentials) and which
    of the notebook's versions it holds, from the store alone; with `transfer`, the progress of the push or
    pull the client started under that id (bytes done and total, rate, ETA) while it runs."""

    @tornado.web.authenticated
    async def get(self):
        loc = self.location(self.get_query_argument("notebook", None))
        transfer = _transfer_id(self.get_query_argument("transfer", None))
        reply = await self.with_store(loc, lambda st: {"notebook": loc.path, "key": loc.key, **remote_status(st, loc.key)},
                                      missing=lambda: _no_remote(loc))
        if transfer is not None:
            reply["transfer"] = progress_of(transfer, loc)
        self.reply(reply)


def _refs(data: dict) -> list[str]:
    refs = data.get("versions")
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise ApiError(400, "the 'versions' field is required: a list of version references (vN, a tag, a name)")
    if len(refs) > MAX_REFS:
        raise ApiError(400, f"too many versions in one push ({len(refs)}; at most {MAX_REFS})")
    return [check_ref(r, "versions") for r in refs]


class _Transfer(_Handler):
    """Shared by push and pull: run `work(store)` off the event loop, one transfer per store at a time,
    credential warnings collected as lines of the reply."""

    async def transfer(self, loc: Location, op: str, work) -> dict:
        """`work(store, progress)`; progress(done, total) is reported by GET remote under the body's
        optional "transfer" id while this runs."""
        tid = _transfer_id(self.body().get("transfer"))

        def run(st):
            notes: list[str] = []
            t0 = time.monotonic()
            entry = {"store": str(loc.store), "op": op, "done": 0, "total": 0, "t0": t0}

            def progress(done: int, total: int) -> None:
                entry["done"], entry["total"] = done, total

            if tid is not None:
                _running[tid] = entry
            try:
                with _store_lock(loc), redaction.reported(notes.append):
                    entry["t0"] = time.monotonic()  # waiting for another transfer is not this one's rate
                    out = work(st, progress)
            finally:
                if tid is not None:
                    _running.pop(tid, None)
            out["notes"] = notes + out.get("notes", [])
            out["seconds"] = round(time.monotonic() - t0, 3)
            out["remote"], _ = _default_remote(st) if out.get("remote") is None else (out["remote"], None)
            out["on_remote"] = remote_status(st, loc.key)["on_remote"]
            out["summary"] = _summary(out)
            return out

        return {"notebook": loc.path, "key": loc.key, **await self.with_store(loc, run)}


def _summary(out: dict) -> str:
    """The reply's one line: what moved, how much, how fast."""
    done, already, b, s = out["versions"], out["already"], out["bytes"], out["seconds"]
    verb = "pushed" if out["op"] == "push" else "pulled"
    where = out["remote"]["name"] or out["remote"]["url"] if out.get("remote") else "the remote"
    if done:
        rate = f", {_human(b / s)}/s" if s > 0 and b else ""
        line = f"{verb} {', '.join(done)} {'to' if verb == 'pushed' else 'from'} {where}: {_human(b)} in {s:.1f} s{rate}"
    elif out["op"] == "push":
        line = f"{', '.join(already)} already on {where}: nothing sent" if already else "nothing to push"
    else:
        line = f"nothing new on {where}" + (f" ({len(already)} already here)" if already else "")
    return line


def _human(n: float) -> str:
    from ..model import human_bytes

    return human_bytes(int(n))


class PushHandler(_Transfer):
    """POST push {notebook, versions: [REF ...]}: send those versions to the store's default remote
    (api.push: only what the remote lacks; credentials withheld, named in `notes`)."""

    @tornado.web.authenticated
    async def post(self):
        data = self.body()
        loc = self.location(data.get("notebook"))
        refs = _refs(data)

        settings = self.settings.get("jupyter_mv_config")  # c.JupyterMV.author in jupyter_server_config.py

        def work(st, progress):
            from ..remotes.push import identity

            result = api.push(*refs, notebook=loc.key, store=st, author=identity(settings), progress=progress)
            return {"op": "push", "versions": [v.label for v in result.pushed if v.notebook == loc.key]
                    + [f"{v.notebook}:{v.label}" for v in result.pushed if v.notebook != loc.key],
                    "already": [v.label for v in result.already], "bytes": result.bytes_sent,
                    "lines": result.lines(), "remote": None}

        self.reply(await self.transfer(loc, "push", work))


class PullHandler(_Transfer):
    """POST pull {notebook}: bring in the notebook's versions the default remote holds and this store
    lacks (api.pull: re-hashed, validated, untrusted like an imported bundle)."""

    @tornado.web.authenticated
    async def post(self):
        data = self.body()
        loc = self.location(data.get("notebook"))

        def work(st, progress):
            result = api.pull(notebook=loc.key, store=st, progress=progress, strict=False)
            return {"op": "pull", "versions": [v.label for v in result.pulled],
                    "already": [v.label for v in result.already], "bytes": result.bytes_received,
                    "lines": result.lines(), "remote": None}

        self.reply(await self.transfer(loc, "pull", work))


ROUTES: list[tuple[str, type]] = [
    ("remote", RemoteStatusHandler),
    ("push", PushHandler),
    ("pull", PullHandler),
]
