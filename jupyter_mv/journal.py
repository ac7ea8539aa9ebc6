"""The undo journal: the kernel's variables as they were before each executed cell, so `%mv_undo`
(`api.undo()`) can put them back exactly: variables a cell changed get their earlier value (same
values, types, and the same sharing between variables), names it created are removed.

Why a journal of its own rather than the automatic versions (`%mv_auto on`): those are taken *after*
a cell, only when it changed something, without credential-holding variables, are pruned by
retention, and miss changes made between cells (a restore from the sidebar runs no cell). A record
taken right before the cell is exactly "before the last cell", in auto mode or not.

Storage: a private Store in a temporary directory (mode 0700, removed when the session closes; a
journal whose process died without closing it, a kernel killed with SIGKILL or SIGTERM, is removed by the
next journal opened on the machine: each journal holds an flock(2) on its `lock` file for its lifetime,
and the kernel releases that lock when the process dies, whatever killed it),
written with the store's own chunking: an unchanged variable costs one hash pass and no write, and
consecutive cells that changed nothing share one journal version. Only the last
`config.JupyterMV.undo_depth` cells are kept. Reading back goes through loading.load_each, as a
restore does, so variables that shared objects (codecs.groups) are restored together, still shared.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from . import capture, codecs, config, loading
from .errors import NothingToUndo
from .model import Version
from .store import Store, StoredVariable
from .store.blobs import BlobStore

JOURNAL_NOTEBOOK = "undo journal"
DIR_PREFIX = "jupyter_mv_undo_"
LOCK_NAME = "lock"
# a journal folder without its lock file is one being created right now, or one left by a version of
# jupyter_mv before the lock: the latter are removed once this old (seconds)
UNLOCKED_AGE = 3600
_GC_EVERY = 10  # dropped journal versions between two sweeps of their chunks
# the journal's disk use (a temporary folder): older cells are dropped beyond it (the last one always stays),
# so a training cell run 20 times over a large model does not write 20 copies of its weights to /tmp
MAX_BYTES = 4 * 2**30


@dataclass
class Checkpoint:
    """The variables before one executed cell."""

    label: str  # "In [5]"
    source: str  # the cell's code
    version: Version | None  # the journal version holding them; None when recording failed
    hashes: dict = field(default_factory=dict)  # {name: content hash} of the variables stored
    unstored: dict = field(default_factory=dict)  # {name: why not}: variables the journal cannot hold
    error: str = ""  # why recording failed (version None)
    # the notebook's classes then, by name: a class is stored as its name + definition and restores as the
    # notebook's class of that name, so undoing a redefinition must put the earlier class object itself back
    # (instances made before keep it as their type)
    classes: dict = field(default_factory=dict)
    # imported code bound to a name then (a module, a library function or class): not stored, only referred
    # to, so undoing `np = 5` or `del pd` puts the module back (an import itself is not undone)
    code: dict = field(default_factory=dict)
    added: int = 0  # bytes its recording wrote to the journal (chunks no earlier checkpoint had)
    grads: dict = field(default_factory=dict)  # {name: fingerprint} of torch gradients set then (see _grads)


@dataclass(frozen=True)
class State:
    """The namespace's variables now, hashed as the journal hashes them (nothing written)."""

    hashes: dict
    unstored: dict
    code: dict = field(default_factory=dict)  # {name: id(object)} of imported code bound to a name
    grads: dict = field(default_factory=dict)  # {name: fingerprint} of torch gradients set (see _grads)

    def same_as(self, c: Checkpoint) -> bool:
        # imported code: only names rebound or deleted since count (a new import is not a change undo takes back)
        return (c.version is not None and c.hashes == self.hashes and set(c.unstored) == set(self.unstored)
                and all(self.code.get(n) == id(o) for n, o in c.code.items()) and c.grads == self.grads)


@dataclass(frozen=True)
class Plan:
    """What an undo will do: take back `target`; `passed`: the later cells that changed nothing."""

    target: Checkpoint
    passed: tuple
    now: State


@dataclass(frozen=True)
class UndoResult:
    """What `api.undo()` did. `cell`: the undone cell's label ("In [5]"); `restored`: names set back to
    their earlier value (with the variables they share objects with); `removed`: names the cell created,
    deleted; `failed`: {name: why} of variables that could not be put back (left as they are now);
    `left`: {name: why} of variables the undone cell uses that undo cannot hold (an open file...), left
    as they are; `passed`: labels of later cells that changed no variable; `saved`: the version holding
    the state that was undone (None when it was already the notebook's last version)."""

    cell: str
    source: str
    restored: tuple = ()
    removed: tuple = ()
    failed: dict = field(default_factory=dict)
    left: dict = field(default_factory=dict)
    passed: tuple = ()
    saved: Version | None = None
    saved_label: str = ""
    defined: tuple = ()

    def summary_line(self) -> str:
        first = next((ln.strip() for ln in self.source.splitlines() if ln.strip()), "")
        first = first if len(first) <= 50 else first[:49] + "…"
        parts = []
        if self.restored:
            parts.append(f"restored {', '.join(self.restored)}")
        if self.removed:
            parts.append(f"removed {', '.join(self.removed)}")
        if not parts:
            parts.append("no variable to put back")
        text = f"undid {self.cell}" + (f" ({first})" if first else "") + ": " + "; ".join(parts)
        if self.passed:
            text += f" ({', '.join(self.passed)} changed no variable)"
        if self.saved_label:
            text += f"; the undone state is {self.saved_label}"
        return text


def _hold_lock(path: Path):
    """Open `path` and take an exclusive flock(2) on it, held until the returned file is closed or the
    process dies. None where flock does not exist (Windows): orphans are then left to the OS's temp cleanup."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    # locked under another name, then renamed into place (the lock is the inode's): a sweeper never sees
    # `lock` unlocked in a live journal
    fresh = path.with_name(path.name + ".new")
    f = open(fresh, "a+b")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(fresh, path)
    except OSError:
        f.close()
        raise
    return f


def remove_orphans(base: str | os.PathLike | None = None) -> list[Path]:
    """Remove the journal folders under `base` (default: the temp dir) whose process is gone: this user's
    `jupyter_mv_undo_*` folders whose lock nobody holds (flock(2) locks die with their process, so this
    is right across PID namespaces and after pid reuse), or, with no lock file, unchanged for an hour
    (left by a jupyter_mv before the lock). Never raises. Returns the folders removed."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return []
    removed = []
    try:
        candidates = list(Path(base or tempfile.gettempdir()).glob(DIR_PREFIX + "*"))
    except OSError:
        return removed
    uid = os.getuid()
    for d in candidates:
        try:
            st = d.lstat()
            if not d.is_dir() or d.is_symlink() or st.st_uid != uid:
                continue
            lock = d / LOCK_NAME
            if not lock.exists():
                if time.time() - st.st_mtime > UNLOCKED_AGE:
                    shutil.rmtree(d, ignore_errors=True)
                    removed.append(d)
                continue
            with open(lock, "rb") as f:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # held: its journal is alive
                    continue
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
        except OSError:
            continue
    return removed


def _only_undo(source: str) -> bool:
    """A cell that only undoes: recording before it would only record the state it is about to leave."""
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return bool(lines) and all(re.match(r"(%mv_undo\b|(mv|jupyter_mv|api)\.undo\()", ln) for ln in lines)


class Journal:
    """Checkpoints of one session's variables, oldest first (see the module docstring)."""

    def __init__(self):
        self.entries: list[Checkpoint] = []
        self.recorded = 0  # checkpoints ever taken (to tell "none yet" from "all undone")
        self._dir: Path | None = None
        self._lock = None  # the open, flock'ed `lock` file of _dir (see remove_orphans)
        self._store: Store | None = None
        self._dropped = 0
        self.trimmed_for_size = False  # checkpoints were dropped to stay under MAX_BYTES

    @property
    def store(self) -> Store:
        if self._store is None:
            remove_orphans()
            self._dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))  # 0700: credentials stay private
            self._lock = _hold_lock(self._dir / LOCK_NAME)
            self._store = Store(self._dir / "store")
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        lock, self._lock = getattr(self, "_lock", None), None
        if lock is not None:
            lock.close()
        self.entries.clear()

    # -- recording ---------------------------------------------------------------------------
    def _encode(self, namespace: dict, hidden: set):
        # every candidate, credentials included: the journal is private and undo must not lose them.
        # Warnings a library gives while pickling would repeat before every cell: the journal is silent
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            enc = capture.encode_all(capture.select(namespace, None, hidden))
        buffers, slots = capture.unique_buffers(enc.items)
        return enc, buffers, slots

    def now(self, namespace: dict, hidden: set) -> State:
        """The current variables' hashes, as a checkpoint would record them, writing nothing."""
        enc, buffers, slots = self._encode(namespace, hidden)
        hashes = capture.content_hashes(enc.items, BlobStore.plan(buffers), slots)
        code = {n: id(o) for n, o in _code(namespace, hidden).items()}
        return State(hashes, {sk.name: sk.reason for sk in enc.skipped}, code, _grads(namespace, hashes))

    def record(self, namespace: dict, hidden: set, label: str, source: str) -> None:
        """Record the variables before the cell `label` runs. Never raises: a failure is recorded (undo
        then stops there, saying why) so the user's cell always runs."""
        depth = config.current().undo_depth
        if not depth:
            self.close()
            return
        if _only_undo(source):
            return
        self.recorded += 1
        try:
            entry = self._checkpoint(namespace, hidden, label, source)
        except Exception as e:  # never break the user's cell
            entry = Checkpoint(label, source, None, error=f"{type(e).__name__}: {e}")
        self.entries.append(entry)
        self._trim(depth)

    def _checkpoint(self, namespace: dict, hidden: set, label: str, source: str) -> Checkpoint:
        st = self.store
        enc, buffers, slots = self._encode(namespace, hidden)
        unstored = {sk.name: sk.reason for sk in enc.skipped}
        last = self.entries[-1] if self.entries else None
        with st.blobs.writing():
            manifests, added = st.blobs.put(buffers)
            hashes = capture.content_hashes(enc.items, manifests, slots)
            classes = {n: namespace[n] for n, _ in enc.items if n in namespace and _notebook_class(namespace[n])}
            code = _code(namespace, hidden)
            grads = _grads(namespace, hashes)
            if last is not None and State(hashes, unstored, {n: id(o) for n, o in code.items()}, grads).same_as(last):
                # nothing changed since
                return Checkpoint(label, source, last.version, hashes, unstored, classes=classes, code=code,
                                  grads=grads)
            stored = [StoredVariable(name=n, type_name=e.type_name, codec=e.codec, content_hash=hashes[n],
                                     nbytes=e.nbytes, safe=e.safe, summary={},
                                     manifest={"meta": e.meta, "buffers": [manifests[j] for j in slots[n]]})
                      for n, e in enc.items]
            version = st.commit_version(JOURNAL_NOTEBOOK, stored, kind="auto", message=f"before {label}", env={})
        return Checkpoint(label, source, version, hashes, unstored, classes=classes, code=code, added=added,
                          grads=grads)

    def _trim(self, depth: int) -> None:
        while len(self.entries) > depth:
            self._forget(self.entries.pop(0))
        dropped = False
        while len(self.entries) > 1 and self._bytes() > MAX_BYTES:
            self.trimmed_for_size = True
            dropped = self._forget(self.entries.pop(0), sweep=False) or dropped
        if dropped:  # free the disk now, not after the next _GC_EVERY drops
            self.store.gc()

    def _bytes(self) -> int:
        """What the kept checkpoints take on disk, about: the oldest one's variables whole (their chunks stay
        while it refers to them) plus what each later one added."""
        seen, total = set(), 0
        for e in self.entries:
            v = e.version
            if v is None or v.id in seen:
                continue
            total += e.added if seen else max(v.nbytes, e.added)
            seen.add(v.id)
        return total

    def _forget(self, old: Checkpoint, sweep: bool = True) -> bool:
        """Drop a checkpoint's journal version once no remaining checkpoint shares it (True when dropped)."""
        if old.version is None or any(e.version is not None and e.version.id == old.version.id for e in self.entries):
            return False
        st = self.store
        st.delete_versions([old.version])
        self._dropped += 1
        if sweep and self._dropped % _GC_EVERY == 0:
            st.gc()
        return True

    # -- undoing -----------------------------------------------------------------------------
    def plan(self, namespace: dict, hidden: set) -> Plan:
        """Which cell an undo takes back: the last one that changed a variable. Later cells that changed
        none are passed over (and dropped). Raises NothingToUndo (one line saying why)."""
        depth = config.current().undo_depth
        if not depth and not self.entries:
            raise NothingToUndo("nothing to undo: the undo journal is off (JupyterMV.undo_depth = 0); "
                                "%config JupyterMV.undo_depth = 20 turns it on for the cells run after it")
        now = self.now(namespace, hidden)
        passed = []
        while self.entries:
            e = self.entries[-1]
            if e.version is None:
                raise NothingToUndo(f"cannot undo {e.label}: recording the variables before it failed ({e.error})")
            if not now.same_as(e):
                return Plan(e, tuple(p.label for p in reversed(passed)), now)
            passed.append(self.entries.pop())
        if not self.recorded:
            raise NothingToUndo("nothing to undo: no cell has run since jupyter_mv was loaded")
        kept = f"the last {depth} cells: JupyterMV.undo_depth" if depth else "it is off now: JupyterMV.undo_depth = 0"
        if depth and self.trimmed_for_size:
            kept = (f"the last {depth} cells (JupyterMV.undo_depth), fewer when their variables would take more "
                    f"than {MAX_BYTES / 2**30:g} GiB")
        raise NothingToUndo("nothing to undo: the variables are as they were before every cell the undo journal "
                            f"holds ({kept})")

    def apply(self, plan: Plan, namespace: dict) -> UndoResult:
        """Put the variables back as they were before `plan.target`: changed ones (with their groups)
        restored from the journal, names the cell created removed. Pops the checkpoint."""
        e, now, st = plan.target, plan.now, self.store
        changed = [n for n, h in e.hashes.items() if now.hashes.get(n) != h]
        names = loading.with_groups(st, e.version, changed) if changed else []
        ctx = codecs.DecodeContext()
        ctx.namespace = namespace  # restored notebook functions keep this namespace as their globals
        for n in names:  # an earlier class (redefined or deleted since) is what its name and instances resolve to
            if n in e.classes:
                live = e.classes[n]
                if namespace.get(n) is live:  # the same class, changed in place (K.v = 5): its attributes go back
                    _reset_class(st, e.version, n, live, namespace)
                namespace[n] = live
        objs, failed = loading.load_each(st, e.version, names, True, None, ctx) if names else ({}, {})
        for n, o in objs.items():
            namespace[n] = o
        created = [n for n in [*now.hashes, *now.unstored] if n not in e.hashes and n not in e.unstored
                   and n not in e.code]  # `np = 5`: np gets its module back below, it is not removed
        removed = []
        for n in created:
            if n in namespace:
                del namespace[n]
                removed.append(n)
        rebound = []
        for n, o in e.code.items():  # imported code the cell rebound or deleted (`np = 5`, `del pd`)
            if namespace.get(n, _GONE) is not o:
                namespace[n] = o
                rebound.append(n)
        fails = {n: _reason(x, e.version.label, n) for n, x in failed.items()}
        for n, why in e.unstored.items():
            if n not in namespace:  # gone since, and the journal never held it
                fails[n] = f"the undo journal cannot hold it ({why})"
        cleared = []
        for n in dict.fromkeys([*e.grads, *now.grads]):  # torch gradients (.grad): not stored, only fingerprinted
            before, after = e.grads.get(n), now.grads.get(n)
            if n not in namespace or (before == after and n not in objs):
                continue
            if before is None:  # none were set before the cell (backward() ran in it): unset them again
                if n not in objs:
                    _clear_grads(namespace[n])
                    cleared.append(n)
            else:
                fails[n] = ("its gradients (.grad) from before the cell cannot be put back: the undo journal does "
                            "not keep gradients" + ("" if n in objs else "; they are left as they are"))
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", e.source))
        left = {n: why for n, why in e.unstored.items() if n in namespace and n in words}
        self.entries.pop()
        return UndoResult(e.label, e.source, (*objs, *(n for n in [*rebound, *cleared] if n not in objs)),
                          tuple(removed),
                          fails, left, plan.passed,
                          defined=tuple(n for n in ctx.defined if n not in objs))


def _reset_class(st: Store, version: Version, name: str, live: type, namespace: dict) -> None:
    """Set the attributes of notebook class `live` (changed in place since `version`) back to the ones
    `version` stored for `name`, keeping the class object (instances keep it as their type). The stored
    definition is read with the name absent, so it is not resolved to the live class; methods that did not
    change are kept, changed ones get the namespace as globals and `live` as their `__class__` (super())."""
    import types

    before = set(namespace)
    namespace.pop(name, None)
    ctx = codecs.DecodeContext()
    ctx.namespace = namespace
    try:
        objs, _ = loading.load_each(st, version, [name], True, None, ctx)
    except Exception:  # undo then leaves the class as it is (its value restores as the live class)
        objs = {}
    finally:
        for n in set(namespace) - before:  # what the scratch read defined
            del namespace[n]
        namespace[name] = live
    fresh = objs.get(name)
    if not isinstance(fresh, type) or fresh is live:
        return

    def rebound(f):
        cells = f.__closure__
        if cells is not None:
            cells = tuple(types.CellType(live) if c.cell_contents is fresh else c for c in cells)
        g = types.FunctionType(f.__code__, namespace, f.__name__, f.__defaults__, cells)
        g.__kwdefaults__, g.__qualname__, g.__doc__ = f.__kwdefaults__, f.__qualname__, f.__doc__
        g.__dict__.update(f.__dict__)
        g.__annotations__ = dict(f.__annotations__)
        g.__module__ = f.__module__
        return g

    def same_function(a, b) -> bool:
        return (type(a) is type(b) is types.FunctionType and a.__code__ == b.__code__
                and a.__defaults__ == b.__defaults__ and a.__kwdefaults__ == b.__kwdefaults__)

    skip = {"__dict__", "__weakref__"}
    for k in [k for k in live.__dict__ if k not in fresh.__dict__ and k not in skip]:
        try:
            delattr(live, k)
        except (AttributeError, TypeError):
            pass
    for k, v in fresh.__dict__.items():
        old = live.__dict__.get(k)
        if k in skip or old is v:
            continue
        if type(v) is types.FunctionType:
            if same_function(old, v):
                continue
            v = rebound(v)
        elif type(v) in (staticmethod, classmethod) and type(v.__func__) is types.FunctionType:
            if type(old) is type(v) and same_function(old.__func__, v.__func__):
                continue
            v = type(v)(rebound(v.__func__))
        try:
            setattr(live, k, v)
        except (AttributeError, TypeError):
            pass


_GONE = object()


def _grad_holders(o) -> list:
    """The tensors whose .grad belongs to `o`: itself (a tensor), a module's parameters, an optimizer's."""
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    if isinstance(o, torch.Tensor):
        return [o]
    if isinstance(o, torch.nn.Module):
        return list(o.parameters())
    if isinstance(o, torch.optim.Optimizer):
        return [p for g in o.param_groups for p in g["params"]]
    return []


def _grads(namespace: dict, names) -> dict:
    """{name: xxh3-128 hex of its gradients} of variables holding torch tensors with `.grad` set (a
    backward() changes only these: no variable's stored content). Names with none set are left out."""
    if "torch" not in sys.modules:
        return {}
    import torch
    import xxhash

    out = {}
    for n in names:
        h = None
        for i, t in enumerate(_grad_holders(namespace.get(n))):
            if not t.is_leaf:  # reading a non-leaf's .grad warns (`loss`): only leaves accumulate gradients
                continue
            g = t.grad
            if g is None:
                continue
            h = h or xxhash.xxh3_128()
            b = g.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
            h.update(f"{i}:{g.dtype}:{tuple(g.shape)};".encode())
            h.update(b)  # the tensor's memory itself (no copy for a contiguous CPU tensor)
        if h is not None:
            out[n] = h.hexdigest()
    return out


def _clear_grads(o) -> None:
    for t in _grad_holders(o):
        if t.is_leaf:
            t.grad = None


def _code(namespace: dict, hidden: set) -> dict:
    """{name: object} of the user's names bound to imported code (modules, library functions and
    classes): what capture.is_candidate leaves out of snapshots, referred to rather than stored."""
    return {n: o for n, o in list(namespace.items())
            if n not in hidden and not n.startswith("_") and n not in capture._IPYTHON_NAMES
            and not capture.is_candidate(n, o)}


def _notebook_class(o) -> bool:
    return isinstance(o, type) and getattr(o, "__module__", None) == "__main__"


def _reason(e: Exception, label: str, name: str) -> str:
    text = str(e)
    lead = f"{label} variable {name!r} cannot be restored: "
    return text[len(lead):] if text.startswith(lead) else text
