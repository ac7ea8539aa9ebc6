"""The facade every adapter (magics, widgets, server, CLI) calls. Pure Python: no IPython here.

A `Session` holds what a running kernel knows: its namespace, the notebook it belongs to, the
cells it executed and the version its state descends from."""

from __future__ import annotations

import atexit
import dataclasses
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterable

from . import capture, config, credentials, jsondata, loading
from . import journal as undo_journal
from .diffing import compute as compute_diff
from .diffview import Diff
from .errors import PartialRestore, StaleReference, UnknownRef, UnknownVariable, UsageError
from .model import Cell, Skipped, SnapshotResult, Version
from .progress import for_bytes as _progress  # presentation lives in progress.py; api only ticks
from .store import Store, StoredVariable, default_root


class Session:
    """The state of one kernel (or plain interpreter) using jupyter_mv."""

    def __init__(self, namespace: dict | None = None, cell_log: capture.CellLog | None = None,
                 hidden: Iterable[str] = ()):
        self.namespace = namespace if namespace is not None else sys.modules["__main__"].__dict__
        self.cell_log = cell_log
        self.hidden = set(hidden)
        self.told_notebook: str | None = None  # set by the frontend (lab extension)
        self.heads: dict[tuple, int] = {}  # (store root, notebook) -> version number the state descends from
        self.listeners: list[Callable[[Version], None]] = []
        # the variables of this session's last snapshot, per (store root, notebook): lets the next
        # snapshot reuse summaries of unchanged variables and lets auto mode skip no-op cells
        self.records: dict[tuple, dict[str, StoredVariable]] = {}
        self.auto_on = False
        self._auto_keep: int | None = None  # `%mv_auto on --keep N` of this session (None: the setting)
        self.warned: set = set()  # (name, type) pairs auto mode already warned about
        self.unloadable: dict[str, str] = {}  # content hash -> why it failed its trial load
        self.restore_defined: list[str] = []  # names the last restore defined for the code it restored
        self.restore_stale: list = []  # (name, replaced name) of variables left referring to replaced objects
        self.journal = undo_journal.Journal()  # the variables before each executed cell, for undo()
        # True while a cell runs (the magics' hooks say so); a restore outside one (the sidebar, a widget)
        # records the variables before it in the journal itself, so undo() can take it back too
        self.in_cell = True
        self._stores: dict[Path, Store] = {}
        self._lock = threading.RLock()
        # the default store, per value of the `store` setting, where this session first met it: a cell's
        # os.chdir('data') silently started a second history in data/.jupyter_mv (and `%mv_restore v1` then
        # restored that one's v1). "" (no setting) is pinned now: the kernel starts in the notebook's folder
        try:
            self._roots: dict[str, Path] = {"": (Path.cwd() / ".jupyter_mv").absolute()}
        except OSError:  # the working directory was removed
            self._roots = {}

    @property
    def auto_keep(self) -> int | None:
        """Automatic versions kept (None: all): this session's `--keep N`, else config.JupyterMV.auto_keep
        (env JUPYTER_MV_AUTO_KEEP; 0 keeps all), read at each automatic snapshot."""
        if self._auto_keep is not None:
            return self._auto_keep
        return config.current().auto_keep or None

    @auto_keep.setter
    def auto_keep(self, keep: int | None) -> None:
        self._auto_keep = keep

    # -- store and notebook ------------------------------------------------------------------
    def store(self, path: str | os.PathLike | None = None) -> Store:
        if path:
            root = Path(path).expanduser().absolute()
        else:
            given = config.current().store
            root = self._roots.get(given)
            if root is None:
                root = self._roots[given] = default_root().absolute()
        with self._lock:
            st = self._stores.get(root)
            if st is not None and st.replaced():
                # deleted or replaced behind this kernel's back: writing on would go to an unlinked file
                # (a "saved" version gone when the kernel exits); open what is there now, or a new store
                import warnings

                gone = not (root / "store.db").exists()
                st.close()
                st = None
                warnings.warn(f"jupyter_mv: the store {root} was {'removed' if gone else 'replaced'} since this "
                              f"kernel opened it; {'starting a new one there' if gone else 'using the file there now'}",
                              stacklevel=_outside_package())
            if st is None:
                st = self._stores[root] = Store(root)
            return st

    def notebook(self, store: Store) -> str:
        return capture.notebook_path(self.namespace, self.told_notebook, store.root.parent)

    def close(self) -> None:
        self.journal.close()
        for st in self._stores.values():
            st.close()
        self._stores.clear()


def _strings(values, what: str) -> list[str]:
    """`values` (any iterable of strings) as a list; UsageError naming `what` for anything else."""
    try:
        out = list(values)
    except TypeError:
        raise UsageError(f"{what} must be a list of strings, got {type(values).__name__}") from None
    bad = [x for x in out if not isinstance(x, str)]
    if bad:
        raise UsageError(f"{what} must be strings, got {type(bad[0]).__name__} {bad[0]!r}")
    return out


def _outside_package() -> int:
    """The `stacklevel` that points a warning at the first caller outside jupyter_mv and the IPython
    machinery running a magic (the user's cell or script), so the line Python shows beside it is theirs."""
    import sys
    inner = ("jupyter_mv", "IPython", "ipykernel", "decorator")
    f, level = sys._getframe(1), 1
    while f is not None and (str(f.f_globals.get("__name__", "")).split(".")[0] in inner
                             or f.f_code.co_filename.startswith("<decorator")):
        f, level = f.f_back, level + 1
    return level


_session: Session | None = None
_session_factory: Callable[[], Session] | None = None


def session() -> Session:
    """The current session: the kernel's when the extension is loaded, else the interpreter's."""
    global _session
    if _session is None:
        _session = _session_factory() if _session_factory else Session()
    return _session


def set_session(s: Session | None) -> None:
    global _session
    if _session is not None and _session is not s:
        _session.close()
    _session = s


atexit.register(lambda: _session and _session.close())


# -- snapshot ----------------------------------------------------------------------------------
# how a snapshot hashes its variables lives in capture.py (undo.py hashes the same way)
_content_hash, _unique_buffers, _hashes = capture.content_hash, capture.unique_buffers, capture.content_hashes


def take_snapshot(names: Iterable[str] = (), *, message: str = "", name: str = "", tags: Iterable[str] = (),
                  params: dict | None = None, metrics: dict | None = None, kind: str = "manual",
                  store: Store | None = None, execution_count: int | None = None,
                  evals: Iterable[str] = (), skip_unchanged: bool = False) -> SnapshotResult:
    """Snapshot and report what was skipped (the magic prints it; `snapshot()` warns). `evals`: names
    of eval tables (evals.py); stored too when other variables are named. `skip_unchanged`: make no
    version (result.version None) when the variables equal this session's last snapshot, as an
    automatic snapshot does."""
    s = session()
    st = store or s.store()
    names = list(names)
    evals = [evals] if isinstance(evals, str) else list(evals or ())
    if evals:  # a missing one fails before anything is written, as a named variable does
        capture.select(s.namespace, evals, s.hidden)
        if names:
            names += [e for e in evals if e not in names]
    metrics = _check_metrics(metrics)
    message = "" if message is None else str(message)  # a Path or a number as a message is its text
    if params is not None and not isinstance(params, dict):
        raise UsageError(f"params must be a dict, got {type(params).__name__}")
    tags = list(tags)
    if name or tags:  # a refused name or tag fails before any data is written
        st.check_new_labels(s.notebook(st), name, tags)
    pairs = capture.select(s.namespace, names, s.hidden)
    pairs, shell_skipped = capture.shell_own(pairs, s.hidden)  # `%mv_snapshot In Out`: named, not stored
    # credentials: kept (marked) only when named, never silently by an argument-less snapshot
    pairs, held, cred_skipped = capture.withhold_credentials(pairs, named=bool(names))
    cred_skipped = shell_skipped + cred_skipped
    enc = capture.encode_all(pairs, evals)
    more = capture.companions(s.namespace, pairs, enc, s.hidden) if names else []
    if more:  # variables sharing objects with the named ones are stored with them (codecs.groups)
        extra, held_more, more_skipped = capture.withhold_credentials([(n, o) for n, o, _ in more], named=False)
        pairs, held = pairs + extra, {**held, **held_more}
        cred_skipped = cred_skipped + more_skipped
        enc = capture.encode_all(pairs, evals)
        enc.notes.extend(note for n, _, note in more if n in dict(extra))
    enc.skipped[:0] = cred_skipped
    metrics = {**capture.eval_metrics(enc), **metrics}  # eval tables' mean scores; given metrics win
    all_params = capture.auto_params(s.namespace, enc, s.hidden, metrics)
    all_params.update(params or {})
    for k in metrics:  # a value recorded as a metric is shown once, as the metric
        all_params.pop(k, None)
    for k in capture.credential_params(all_params):  # params are shown everywhere and exported
        del all_params[k]
        enc.skipped.append(Skipped(f"param {k}", "holds a credential: not recorded as a param"))
    # read before anything is written: a bad JUPYTER_MV_AUTO_KEEP is refused with no version made,
    # not after committing one while saying the auto-snapshot failed
    keep = s.auto_keep if kind == "auto" else None
    nb = s.notebook(st)
    head_key = (st.root, nb)
    previous = s.records.get(head_key, {})
    buffers, slots = _unique_buffers(enc.items)
    total = sum(memoryview(b).nbytes for b in buffers)
    bar, tick = _progress(total, "snapshot")
    try:
        with st.blobs.writing():
            # hashing every chunk is the change detection: unchanged chunks are found on disk and
            # not written again, so an unchanged variable costs one hash pass and no I/O
            manifests, new_bytes = st.blobs.put(buffers, tick)
            stored = []
            hashes = _hashes(enc.items, manifests, slots)
            for vname, e in enc.items:
                ms = [manifests[j] for j in slots[vname]]
                h = hashes[vname]
                prev = previous.get(vname)
                if prev is not None and prev.content_hash == h:
                    # no trial load: this content loaded back before
                    summary = capture.reuse_summary(prev.summary, e, held.get(vname, ()))
                else:
                    # what pickles may still not unpickle (a broken __setstate__): found now, not at
                    # the restore months later. Cheap: the big buffers are views, not copies
                    why = s.unloadable.get(h) or capture.trial_load(e)
                    if why:
                        s.unloadable[h] = why
                        enc.skipped.append(Skipped(vname, f"{e.type_name}: it pickles but does not load back, "
                                                          f"so it is not stored ({why})"))
                        continue
                    summary = {**e.summary, **(e.summarize() if e.summarize else {})}
                    if vname in held:
                        summary = capture.mask_summary(summary, held[vname])
                stored.append(StoredVariable(
                    name=vname, type_name=e.type_name, codec=e.codec, content_hash=h,
                    nbytes=e.nbytes, safe=e.safe, summary=summary, manifest={"meta": e.meta, "buffers": ms},
                    credential=tuple(dict.fromkeys(f.where for f in held.get(vname, ()))),
                ))
            if (kind == "auto" or skip_unchanged) and previous and {v.name: v.content_hash for v in stored} == {
                    n: v.content_hash for n, v in previous.items()}:
                return SnapshotResult(None, tuple(enc.skipped), tuple(enc.notes))  # the cell changed no variable
            parent = s.heads.get(head_key)
            if parent is None:
                latest = st.versions(nb, limit=1)
                parent = latest[0].n if latest else None
            cells = s.cell_log.cells() if s.cell_log else []
            version = st.commit_version(
                nb, stored, cells=cells, params=all_params, metrics=metrics, tags=list(tags), message=message,
                name=name, kind=kind, parent=parent, env=capture.environment(st.root.parent), new_bytes=new_bytes,
                execution_count=execution_count,
            )
    finally:
        if bar is not None:
            bar.close()
    s.heads[head_key] = version.n
    s.records[head_key] = {v.name: v for v in stored}
    if keep is not None:
        apply_retention(st, nb, keep)
    for fn in list(s.listeners):
        try:
            fn(version)
        except Exception:  # a broken listener (a closed widget) must not fail the snapshot
            pass
    return SnapshotResult(version, tuple(enc.skipped), tuple(enc.notes), _shared_bytes(st, version, stored))


def _shared_bytes(st: Store, version: Version, stored: list[StoredVariable]) -> int:
    """Bytes of the variables `version` holds unchanged from its parent: stored once, referenced again
    (what the summary line reports, so "0 B new" does not read as "nothing saved")."""
    if version.parent is None:
        return 0
    try:
        before = {x.name: x.content_hash for x in st.variables(st.resolve(version.notebook, version.parent))}
    except Exception:  # the parent was dropped meanwhile (retention): nothing to report
        return 0
    return sum(v.nbytes for v in stored if before.get(v.name) == v.content_hash)


def auto(on: bool = True, keep: int | None = None) -> None:
    """Snapshot automatically after every executed cell (only changed variables are written).
    `keep`: keep only the last N automatic versions (tagged, named and manual ones are always kept)."""
    if keep is not None and keep < 1:
        raise UsageError(f"keep must be at least 1, got {keep}")
    s = session()
    s.auto_on = bool(on)
    s.auto_keep = keep


def auto_snapshot(source: str, execution_count: int | None) -> SnapshotResult | None:
    """Called after a cell ran in auto mode: a version attached to that execution, or None when the
    cell changed nothing. Skipped variables are warned about once per session."""
    s = session()
    first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    label = f"In [{execution_count}]" if execution_count is not None else "cell"
    result = take_snapshot(message=f"auto after {label}: {first[:60]}", kind="auto",
                           execution_count=execution_count)
    fresh = [sk for sk in result.skipped if (sk.name, sk.reason) not in s.warned]
    s.warned.update((sk.name, sk.reason) for sk in result.skipped)
    notes = [n for n in result.notes if (n.name, n.reason) not in s.warned]
    s.warned.update((n.name, n.reason) for n in result.notes)
    return SnapshotResult(result.version, tuple(fresh), tuple(notes))


def apply_retention(st: Store, notebook: str, keep: int) -> int:
    """Drop all but the last `keep` automatic versions of a notebook that carry no tag or name.
    Their blobs go at the next gc; children are re-parented."""
    autos = [v for v in st.versions(notebook) if v.kind == "auto" and not v.tags and not v.name]
    doomed = autos[:-keep] if keep else autos
    return st.delete_versions(doomed)


def _check_metrics(metrics) -> dict:
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise UsageError(f"metrics must be a dict of numbers, got {type(metrics).__name__}")
    out = {}
    for k, v in metrics.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            raise UsageError(f"metric {k!r} is not a number ({type(v).__name__})") from None
        except OverflowError:  # an int beyond a float's range (metrics are stored as floats)
            raise UsageError(f"metric {k!r} is too large to store as a float (over 1.8e308)") from None
    return out


def snapshot(*names: str, message: str = "", name: str = "", tags: Iterable[str] = (),
             params: dict | None = None, metrics: dict | None = None,
             eval: str | Iterable[str] | None = None) -> Version:
    """New version of the current notebook: the named variables, or every storable one.

    Params: `params` plus the stored models' hyperparameters and UPPER_CASE scalar constants of the
    namespace (a key of `metrics` is not repeated). A variable holding a credential is stored (and
    marked) only when named; otherwise it is skipped, like an unstorable one, with a UserWarning
    naming it. A param whose value is a credential is not recorded (warned too).

    `eval`: the name (or names) of eval tables — DataFrames of one row per example with an id column
    and score columns; tables with an id and score-named columns, or named `eval_*`, are found without
    it. Their mean scores become metrics `<var>.<score>`, their dataset hash the param `<var>.dataset`;
    UsageError when a named one is not a DataFrame with an example id and a numeric score column.

    `names` may also be given as one list, tuple or set of names (`snapshot(["clf", "X"])`); a name
    that is not a string is a UsageError."""
    if isinstance(tags, str):
        tags = [tags]
    tags = _strings(tags, "tags")
    if eval is not None and not isinstance(eval, str):
        eval = _strings(eval, "eval")
    if len(names) == 1 and isinstance(names[0], (list, tuple, set, frozenset)):
        names = tuple(sorted(names[0]) if isinstance(names[0], (set, frozenset)) else names[0])
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise UsageError(f"variable names are strings, got {type(bad[0]).__name__} {bad[0]!r}: "
                         "pass names, as in snapshot('clf', 'X') or snapshot(['clf', 'X'])")
    result = take_snapshot(names, message=message, name=name, tags=tags, params=params, metrics=metrics,
                           evals=eval or ())
    for sk in result.skipped:
        warnings.warn(f"jupyter_mv: skipped {sk.name!r}: {sk.reason}", stacklevel=_outside_package())
    for note in result.notes:
        warnings.warn(f"jupyter_mv: {note.reason}", stacklevel=_outside_package())
    return result.version


# -- reading -----------------------------------------------------------------------------------
def _notebook(notebook: str | None, st: Store) -> str:
    return notebook if notebook is not None else session().notebook(st)


def resolve(ref, notebook: str | None = None, store: Store | None = None) -> Version:
    """The Version REF names: vN, N, a tag, a name, latest or latest~K of `notebook` (default: this
    session's), or NB:REF of notebook NB in the store. Raises UnknownRef (one line, saying what exists)."""
    st = store or session().store()
    return st.resolve(_notebook(notebook, st), ref)


def notebooks(store: Store | None = None) -> list[str]:
    """The notebook paths that have versions in the store, as recorded (relative to its parent)."""
    return (store or session().store()).notebooks()


def find_notebook(text: str, store: Store | None = None) -> str:
    """The recorded notebook path `text` names (the path, or a unique trailing part such as
    `churn.ipynb` for `projects/churn.ipynb`); UnknownRef naming the notebooks there otherwise."""
    st = store or session().store()
    found = st.find_notebook(str(text).strip())
    if found is None:
        nbs = st.notebooks()
        raise UnknownRef(f"no notebook {text!r} in the store at {st.root} "
                         f"(notebooks here: {', '.join(nbs[:5]) or 'none'})")
    return found


def versions(notebook: str | None = None, all: bool = False, store: Store | None = None,
             auto: bool = True,
             reveal: bool = False) -> list[Version]:
    """Versions oldest first; `auto=False` hides automatic (per-cell) versions.
    Credentials in params, messages, names and tags are masked (`sk-…****`) unless `reveal`."""
    st = store or session().store()
    vs = st.versions(None if all else _notebook(notebook, st))
    vs = vs if auto else [v for v in vs if v.kind != "auto"]
    return vs if reveal else [credentials.mask_version(v) for v in vs]


def history(all: bool = False, notebook: str | None = None, store: Store | None = None, auto: bool = True):
    """pandas DataFrame, one row a version, oldest first (`auto=False` hides automatic versions)."""
    import pandas as pd

    rows = []
    for v in versions(notebook, all, store, auto):
        row = {
            "version": v.label, "name": v.name, "message": v.message, "created": pd.Timestamp(v.created),
            "tags": list(v.tags), "params": dict(v.params), "metrics": dict(v.metrics),
            "variables": list(v.variables), "bytes": v.nbytes, "parent": f"v{v.parent}" if v.parent else None,
            "kind": v.kind,
        }
        if all:
            row["notebook"] = v.notebook
        rows.append(row)
    cols = ["version", "name", "message", "created", "tags", "params", "metrics", "variables", "bytes",
            "parent", "kind"] + (["notebook"] if all else [])
    return pd.DataFrame(rows, columns=cols)


def load(ref, name: str, trust: bool = False, notebook: str | None = None, store: Store | None = None,
         into=None):
    """One variable of a version, without touching the namespace.

    `into`: a live torch module of the same architecture; the stored module's weights are copied
    into it in place (nothing is unpickled, so no trust is needed even for an imported version)
    and it is returned. UsageError names missing/unexpected keys or shape/dtype mismatches."""
    st = store or session().store()
    v = resolve(ref, notebook, st)
    if into is not None:
        return loading.load_weights(st, v, name, into)
    return loading.load(st, v, [name], trust)[name]


def restore(ref, names: Iterable[str] | None = None, prefix: str = "", trust: bool = False,
            store: Store | None = None, notebook: str | None = None) -> list[str]:
    """Put a version's variables (all, or the named ones) back into the namespace; returns the names set.
    A named variable comes back with the variables it shares objects with (codecs.groups), so the
    list can be longer than `names`; `prefix` applies to all of them. Notebook functions restored
    use this namespace as their globals; names they needed that it lacked are defined in it and
    listed in `session().restore_defined`.
    Each variable is restored on its own: when some cannot be (damaged data, a class renamed since),
    the others are still set and PartialRestore is raised (`.restored`: names set, `.failed`:
    {name: reason}); when the only variable asked for fails, its own error (StoreError, DecodeError).
    `ref` may name another notebook's version (`NB:vN`, or `notebook=NB`)."""
    s = session()
    st = store or s.store()
    v = resolve(ref, notebook, st)
    if isinstance(names, str):
        names = [names]
    names = _strings(names, "names") if names else None
    if not isinstance(prefix, str):
        raise UsageError(f"prefix must be a string, got {type(prefix).__name__}")
    if prefix and not (prefix.isidentifier() or prefix.rstrip("_").isidentifier() or prefix == "_"):
        raise UsageError(f"bad prefix {prefix!r}: it must start a valid Python name")
    total = sum(x.nbytes for x in st.variables(v) if names is None or x.name in names)
    bar, tick = _progress(total, "restore")
    # notebook functions restored read and write this namespace; globals they need that it lacks
    # are defined in it (codecs.notebook) and listed in session().restore_defined
    ctx = loading.codecs.DecodeContext()
    ctx.namespace = s.namespace
    if not s.in_cell:  # no cell recorded the variables before this restore: record them here
        s.journal.record(s.namespace, s.hidden, f"the restore of {v.label}", "")
    try:
        objs, failed = loading.load_each(st, v, names, trust, tick, ctx)
    finally:
        if bar is not None:
            bar.close()
    s.restore_defined = [n for n in ctx.defined if n not in objs]
    # variables left as they are that still refer to an object this restore replaces (an optimizer
    # made after the version, an alias): named, since they no longer share with the restored one
    replaced = {n: s.namespace[n] for n in objs if not prefix and n in s.namespace and s.namespace[n] is not objs[n]}
    s.restore_stale = capture.stale_references(s.namespace, replaced, s.hidden) if replaced else []
    out = []
    for n, o in objs.items():
        s.namespace[prefix + n] = o
        out.append(prefix + n)
    for n, via in s.restore_stale:
        warnings.warn(f"jupyter_mv: {n} still refers to the {via} this restore replaced, not to the restored "
                      f"one; restore {n} too (if {v.label} has it) or recreate it", StaleReference,
                      stacklevel=_outside_package())
    if names is None and not prefix:
        # the state now descends from v: the next snapshot's parent (a branch when v is not the newest)
        s.heads[(st.root, v.notebook)] = v.n
        if not failed:  # and it is what an automatic snapshot compares with: a cell changing nothing
            # after the restore makes no copy of v
            s.records[(st.root, v.notebook)] = {x.name: st.stored_variable(v, x.name) for x in st.variables(v)}
    if failed:
        if not out and len(failed) == 1:  # nothing partial about it: the one variable's own error
            raise next(iter(failed.values()))
        raise PartialRestore(v.label, out, {n: _reason(e, v.label, n) for n, e in failed.items()})
    return out


def undo_checkpoint(source: str, label: str) -> None:
    """Record the variables before a cell runs (the magics' pre-cell hook calls it), so undo() can put
    them back; a cell that only undoes is not recorded. Never raises (see undo.Journal.record)."""
    s = session()
    s.journal.record(s.namespace, s.hidden, label, source)


def undo() -> "undo_journal.UndoResult":
    """Put the variables back as they were before the last executed cell that changed any: variables it
    changed get their earlier value (same values and types; variables that shared objects still share
    them), names it created are removed; the notebook's code is not touched. Call again to walk further
    back (up to config.JupyterMV.undo_depth cells). The state being undone is kept as a version of this
    notebook first (`result.saved`; none is made when it equals the last version), so nothing is lost.

    Returns undo.UndoResult (`summary_line()` is what %mv_undo prints). Raises NothingToUndo (one line)
    when no recorded cell changed a variable, and the store's errors when the undone state cannot be
    saved (then nothing is changed)."""
    s = session()
    plan = s.journal.plan(s.namespace, s.hidden)
    st = s.store()
    nb = s.notebook(st)
    names = [n for n, _ in capture.select(s.namespace, None, s.hidden)]
    first = next((ln.strip() for ln in plan.target.source.splitlines() if ln.strip()), "")
    # named, so variables holding a credential are kept (marked) rather than lost with the undone state
    res = take_snapshot(names, message=f"undone: state after {plan.target.label}: {first[:60]}",
                        skip_unchanged=True)
    saved = res.version
    label = saved.label if saved else (f"v{s.heads[(st.root, nb)]}" if (st.root, nb) in s.heads else "")
    result = s.journal.apply(plan, s.namespace)
    s.restore_defined = list(result.defined)
    # the state descends from the version that holds exactly these variables, if one of the last does
    back = dict(plan.target.hashes)
    for v in reversed(st.versions(nb)[-50:]):
        if {x.name: x.content_hash for x in st.variables(v)} == back:
            s.heads[(st.root, nb)] = v.n
            # what the next automatic snapshot compares with: a cell changing nothing makes no version
            s.records[(st.root, nb)] = {x.name: st.stored_variable(v, x.name) for x in st.variables(v)}
            break
    return dataclasses.replace(result, saved=saved, saved_label=label)


def _reason(e: Exception, label: str, name: str) -> str:
    """The error's text without the "vN variable 'x' ..." lead that PartialRestore already gives."""
    text = str(e)
    for lead in (f"{label} variable {name!r} cannot be restored: ", f"{label} variable {name!r} "):
        if text.startswith(lead):
            return text[len(lead):]
    return text


def outputs(ref, store: Store | None = None, notebook: str | None = None) -> list[Cell]:
    """The cells (with their outputs) recorded in a version."""
    st = store or session().store()
    return [credentials.mask_cell(c, prose_source=True)[0] for c in st.cells(resolve(ref, notebook, st))]


def diff(a=None, b=None, notebook: str | None = None, store: Store | None = None) -> Diff:
    """Structured diff of two versions; defaults: the last two (or A against the latest)."""
    st = store or session().store()
    nb = _notebook(notebook, st)
    if a is None and b is None:
        vs = st.versions(nb, limit=2)
        if len(vs) < 2:
            raise UsageError(f"notebook {nb!r} has {len(vs)} version(s); a diff needs two")
        va, vb = vs
    else:
        va = st.resolve(nb, a)
        vb = st.resolve(nb, b if b is not None else "latest")
    d = compute_diff(va, vb, st.variables(va), st.variables(vb), st.cells(va), st.cells(vb), store=st)
    return credentials.mask_diff(Diff.of(d))  # a diff is for showing: credentials masked


def diff_current(ref, store: Store | None = None, notebook: str | None = None) -> Diff:
    """Diff of a version against the kernel's current state (variables, auto params and cells as a
    snapshot would record them now), without writing anything. B is labelled "current"."""
    from .model import VariableRef
    from .store.blobs import BlobStore

    s = session()
    st = store or s.store()
    va = resolve(ref, notebook, st)
    pairs, _, _ = capture.withhold_credentials(capture.select(s.namespace, [], s.hidden), named=False)
    enc = capture.encode_all(pairs)
    live = []
    # the manifests a snapshot would write, so unchanged variables hash the same
    buffers, slots = _unique_buffers(enc.items)
    hashes = _hashes(enc.items, BlobStore.plan(buffers), slots)
    for vname, e in enc.items:
        summary = {**e.summary, **(e.summarize() if e.summarize else {})}
        live.append(VariableRef(vname, e.type_name, e.codec, hashes[vname], e.nbytes, summary, e.safe))
    params = capture.auto_params(s.namespace, enc, s.hidden)
    vb = Version(id=-1, n=0, notebook=va.notebook, created="", params=params,
                 metrics=capture.eval_metrics(enc),  # the metrics a snapshot would record by itself
                 variables=tuple(v.name for v in live))
    d = compute_diff(va, vb, st.variables(va), live, st.cells(va), s.cell_log.cells() if s.cell_log else [])
    return credentials.mask_diff(Diff(a=d.a, b="current", notebook=d.notebook, params=d.params,
                                      metrics=d.metrics, variables=d.variables, cells=d.cells))


def tag(ref, tag_name: str, remove: bool = False, store: Store | None = None,
        notebook: str | None = None) -> Version:
    """Tag version REF (tagging again moves the tag); UsageError for a tag that could not be reached
    as a REF or that is another version's name. The version returned is for showing: credentials masked."""
    st = store or session().store()
    v = resolve(ref, notebook, st)
    if remove and str(tag_name).strip() not in v.tags:  # removing nothing must not read as done
        has = ", ".join(credentials.mask_json(t) for t in v.tags) or "none"
        raise UsageError(f"{v.label} has no tag {credentials.mask_json(str(tag_name))!r} to remove (its tags: {has})")
    st.tag(v, tag_name, remove=remove)
    return credentials.mask_version(st.version_by_id(v.id))


def show(ref, notebook: str | None = None, store: Store | None = None) -> dict:
    """Everything recorded about one version, JSON-serialisable. Each variable's `credential` lists
    where it holds a credential (`["client.api_key"]`, empty when none); credentials are masked."""
    st = store or session().store()
    v = resolve(ref, notebook, st)
    d = v.to_dict()
    d["variables"] = [{"name": x.name, "type": x.type_name, "codec": x.codec, "bytes": x.nbytes,
                       "hash": x.content_hash, "safe": x.safe, "summary": x.summary,
                       "credential": list(x.credential)} for x in st.variables(v)]
    d["cells"] = [c.to_dict() for c in st.cells(v)]
    d["environment"] = st.environment(v)
    return credentials.mask_details(d)  # what is shown: credentials masked


_NUMERIC_TYPES = ("builtins.int", "builtins.float")


def _scalar_value(ref) -> float | int | None:
    """A stored int/float (Python or numpy scalar) as a number, read from its summary's repr (exact:
    repr round-trips); None for anything else (bool is no quantity to chart)."""
    t = ref.type_name
    if not (t in _NUMERIC_TYPES or (t.startswith("numpy.") and ("int" in t or "float" in t))):
        return None
    text = str(ref.summary.get("repr", ""))
    inner = text[text.index("(") + 1: -1] if text.endswith(")") and "(" in text else text  # np.float64(0.25)
    try:
        return int(inner) if "int" in t else float(inner)
    except ValueError:
        return None


def variable_history(name: str, notebook: str | None = None, store: Store | None = None,
                     kind: str | None = None, versions: list[Version] | None = None) -> dict:
    """Where variable (or metric) `name` changed among `notebook`'s versions, each compared with its
    parent version (so along a branch: a version taken after restoring v1 is compared with v1).

    Returns a JSON-ready dict (schemas/variable-history.schema.json): `kind` "variable" | "metric";
    `changes`, oldest first, one {"id": "vN", "change", "type", "text"} per version where it changed:
    "added" (stored, its parent did not store it, or it has no parent), "changed" (its content hash, or
    a metric's value, differs from the parent's), "removed" (the parent stored it, this version does not:
    deleted, or a snapshot that named other variables); `values`: {"id", "value"} for every version
    holding it as a number (ints, floats, numpy scalars, metrics), oldest first, [] otherwise.
    `kind=None` looks for a variable first, then a metric. Raises UnknownVariable (one line naming
    what exists) when no version has it, UsageError for another `kind`. `versions`: the notebook's
    versions, all of them oldest first, when the caller has them loaded (saves reading them again)."""
    if kind not in (None, "variable", "metric"):
        raise UsageError(f"bad kind {kind!r}: use 'variable' or 'metric'")
    st = store or session().store()
    nb = _notebook(notebook, st)
    vs = list(versions) if versions is not None else st.versions(nb)
    held = {} if kind == "metric" else st.variable_across(nb, name)
    if kind == "metric" or (not held and kind is None):
        if any(name in v.metrics for v in vs):
            kind = "metric"
            held = {}
        elif kind == "metric":
            raise UnknownVariable(f"no version of {nb} has a metric {name!r} (metrics: "
                                  f"{', '.join(sorted({k for v in vs for k in v.metrics})[:10]) or 'none'})")
    if kind is None or kind == "variable":
        if not held:
            names = sorted({n for v in vs for n in v.variables})
            metrics = sorted({k for v in vs for k in v.metrics})
            raise UnknownVariable(f"no version of {nb} has a variable {name!r} (variables: {', '.join(names[:10]) or 'none'}"
                                  + (f"; metrics: {', '.join(metrics[:10])}" if metrics else "") + ")")
        kind = "variable"
    by_n = {v.n: v for v in vs}

    def same(a, b) -> bool:  # metrics: NaN equals NaN (an unchanged NaN loss is no change)
        return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)

    changes, values = [], []
    for v in vs:
        parent = by_n.get(v.parent) if v.parent else None
        if kind == "metric":
            has, had = name in v.metrics, parent is not None and name in parent.metrics
            now = v.metrics.get(name)
            differs = has and had and not same(now, parent.metrics[name])
            typ, text, number = "", jsondata.value_text(now) if has else "", now if has else None
        else:
            ref, before = held.get(v.id), held.get(parent.id) if parent is not None else None
            has, had = ref is not None, before is not None
            differs = has and had and (ref.content_hash != before.content_hash or ref.type_name != before.type_name)
            typ = ref.type_name if has else before.type_name if had else ""
            shown = has and not ref.credential  # a value holding a credential is never shown
            text = credentials.mask_json(str(ref.summary.get("repr", ""))[:80]) if shown else ""
            number = _scalar_value(ref) if shown else None
        change = "added" if has and not had else "removed" if had and not has else "changed" if differs else None
        if change:
            changes.append({"id": v.label, "change": change, "type": typ, "text": text})
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            values.append({"id": v.label, "value": number})
    return {"notebook": nb, "name": name, "kind": kind, "changes": changes, "values": values}


def warm_up() -> None:
    """Open the store now if one exists (never create one), so the first magic pays no connection
    setup. Failures are left for the first real use to report."""
    root = default_root()
    if (root / "store.db").exists():
        try:
            session().store(root)
        except Exception:
            pass


def set_notebook(path: str | None) -> None:
    """Tell the session which notebook it runs (the lab extension does this when a session starts
    or the notebook is renamed). An absolute path, or one relative to the kernel's directory."""
    session().told_notebook = path or None


def current_notebook(store: Store | None = None) -> str:
    """The notebook key versions are recorded under (relative to the store's parent directory)."""
    s = session()
    return s.notebook(store or s.store())


def open_store(path: str | os.PathLike | None = None) -> Store:
    """A Store for `path` (default: JUPYTER_MV_STORE or ./.jupyter_mv). The caller closes it."""
    return Store(path)


# -- sharing: bundles, reproduce, MLflow ---------------------------------------------------------
def export(ref, path: str | os.PathLike, notebook: str | None = None, store: Store | None = None,
           include_secrets: bool = False) -> Path:
    """Write version REF as one bundle file (.mvz) a colleague can import and reproduce.

    Credentials are withheld (variables and params left out, texts masked) with one
    `errors.CredentialsWithheld` warning naming each item; `include_secrets=True` ships them."""
    from . import bundle

    st = store or session().store()
    v = resolve(ref, notebook, st)
    bar, tick = _progress(bundle.bundle_size(st, v), "export")
    try:
        return bundle.export(st, v, path, tick, include_secrets=include_secrets)
    finally:
        if bar is not None:
            bar.close()


def import_bundle(path: str | os.PathLike, store: Store | None = None):
    """Check a bundle and add its version to the store (origin "imported"); returns an ImportResult.
    Nothing is unpickled; restoring its pickle-based variables later needs trust=True."""
    from . import bundle

    st = store or session().store()
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    bar, tick = _progress(size * 2, "import")  # every blob is read twice: checked, then written
    try:
        return bundle.import_(st, path, progress=tick)
    finally:
        if bar is not None:
            bar.close()


def to_mlflow(ref, tracking_uri: str | None = None, experiment: str | None = None,
              register: str | None = None, variable: str | None = None, notebook: str | None = None,
              trust: bool = False, store: Store | None = None, include_secrets: bool = False) -> dict:
    """Log version REF as an MLflow run (and, with `register`, a Model Registry version).
    Credentials are withheld as in `export` unless `include_secrets=True`."""
    from . import mlflow_bridge

    st = store or session().store()
    v = resolve(ref, notebook, st)
    return mlflow_bridge.push(st, v, tracking_uri=tracking_uri, experiment=experiment, register=register,
                              variable=variable, trust=trust, include_secrets=include_secrets)


# -- remotes: push, pull, clone (jupyter_mv/remotes/) ---------------------------------------------
def remote_add(name: str, url: str, default: bool | None = None, store: Store | None = None):
    """Record remote NAME at URL (s3://BUCKET/PREFIX, gs://, az://, file:///PATH, or another fsspec URL)
    and probe whether it honours conditional writes; the first remote becomes the default. A URL holding
    credentials is refused (UsageError): they come from AWS_* variables and ~/.aws. Returns a
    remotes.registry.Remote; RemoteError when the remote cannot be reached."""
    from .remotes import registry

    return registry.add(store or session().store(), name, url, default=default)


def remote_remove(name: str, store: Store | None = None):
    """Forget remote NAME (nothing on the remote changes)."""
    from .remotes import registry

    return registry.remove(store or session().store(), name)


def remotes(store: Store | None = None) -> list:
    """The store's remotes (remotes.registry.Remote: name, url, default, conditional), by name."""
    from .remotes import registry

    return registry.remotes(store or session().store())


def _open_remote(st: Store, remote: str | None, reading: bool = False):
    """(registry.Remote, its ObjectStore). `reading` (ls, pull, gc): a file:// remote's missing folder is
    an error, not an empty remote (registry.check_readable)."""
    from .remotes import registry
    from .remotes.objects import open_remote

    r = registry.get(st, remote)
    if reading:
        registry.check_readable(r.url)
    return r, open_remote(r.url)


def remote_ls(remote: str | None = None, notebook: str | None = None, store: Store | None = None) -> list[dict]:
    """The versions on REMOTE (default: the default remote), oldest first per notebook: one dict each
    (gid, notebook, label, name, message, created, tags, remote_tags, author, pushed_by, pushed_at,
    bytes, variables, problem, here: this store's label of it or None). Credentials masked.
    `notebook`: its path or a unique trailing part; UsageError when the remote has other notebooks
    but none it names."""
    from .remotes import pull as pull_mod

    st = store or session().store()
    _, obj = _open_remote(st, remote, reading=True)
    try:
        found = pull_mod.listing(obj, notebook, strict=True)
    finally:
        obj.close()
    out = []
    for rv in found:
        d = rv.to_dict()  # what is shown: credentials masked
        d["message"], d["name"] = credentials.mask_json(d["message"]), credentials.mask_json(d["name"])
        d["tags"] = [credentials.mask_json(t) for t in d["tags"]]
        d["remote_tags"] = [credentials.mask_json(t) for t in d["remote_tags"]]
        here = st.version_by_gid(rv.gid)
        d["here"] = here.label if here is not None else None
        out.append(d)
    return out


def remote_gc(remote: str | None = None, grace="24h", dry_run: bool = False, progress=None,
              store: Store | None = None):
    """Delete the objects on REMOTE (default: the default remote) that no version manifest references
    and that are older than `grace` ("24h", "90m", "2d", a number of seconds or a timedelta), after
    waiting for pushes in progress (push leases; remotes/gc.py has the protocol). `dry_run`: delete
    nothing. `progress(phase, done, total)`. Returns a remotes.gc.GcReport (`summary()` is one line).
    Raises UsageError (a bad grace), RemoteConflict (another gc is running), RemoteCorrupt (a manifest
    cannot be read: nothing is deleted), RemoteError."""
    from .remotes import gc as gc_mod

    st = store or session().store()
    grace = gc_mod.parse_grace(grace)
    _, obj = _open_remote(st, remote, reading=True)
    try:
        return gc_mod.gc(obj, grace=grace, progress=progress, dry_run=dry_run)
    finally:
        obj.close()


def push(*refs, notebook: str | None = None, all: bool = False, remote: str | None = None,
         include_secrets: bool = False, store: Store | None = None, author: str | None = None,
         progress: Callable[[int, int], None] | None = None, force_tags: bool = False):
    """Send versions to REMOTE (default: the default remote): the REFs named, else every version of
    `notebook` (default: this session's), or of every notebook with `all=True`. Only what the remote
    lacks is sent; a version's manifest is written after all it references. Credentials are withheld
    as in `export` (a CredentialsWithheld warning names them) unless `include_secrets=True`. Returns a
    remotes.push.PushResult (`lines()` describes it). Raises RemoteError, RemoteConflict (a tag moved
    by someone else meanwhile), UnknownRef, UsageError. `author`: who pushes (default: the `author`
    setting, JUPYTER_MV_AUTHOR, else the git user, else user@host). `progress(done_bytes, total_bytes)`:
    called as data is handled (beside the CLI/magic progress bar), e.g. by the server for the lab's sidebar.
    An existing tag on the remote is moved only when the local tag was set after this store last saw the
    team's (a pull); otherwise it is left and a note in `lines()` says why, unless `force_tags=True`."""
    from .remotes import push as push_mod

    st = store or session().store()
    refs = _ref_args(refs)
    if all and refs:
        raise UsageError("give REFs or all=True (--all), not both")
    if all:
        vs = st.versions()
    elif refs:
        vs = [resolve(r, notebook, st) for r in refs]
    else:
        vs = st.versions(_notebook(notebook, st))
    r, obj = _open_remote(st, remote)
    total = sum(v.nbytes for v in vs)
    bar, tick = _progress(total, "push")
    tick = _reporting(tick, progress, total)
    try:
        return push_mod.push(st, vs, obj, include_secrets=include_secrets, progress=tick,
                             conditional=r.conditional, author=author, force_tags=force_tags)
    finally:
        if bar is not None:
            bar.close()
        obj.close()


def _ref_args(refs: tuple) -> tuple:
    """push/pull REFs given one by one or as one list (`mv.pull(["v1", "best"])`); anything else than
    a str or int (a label, id, tag or name) is a UsageError naming it, not "no version '[...]'"."""
    out = []
    for r in refs:
        for one in (r if isinstance(r, (list, tuple, set)) else [r]):
            if isinstance(one, Version):  # push resolves it as is; pull asks for its global id
                out.append(one)
                continue
            if not isinstance(one, (str, int)) or isinstance(one, bool):
                raise UsageError(f"a REF is a version label, id, tag or name, not {type(one).__name__} {one!r}")
            out.append(one)
    return tuple(out)


def pull(*refs, notebook: str | None = None, remote: str | None = None, store: Store | None = None,
         progress: Callable[[int, int], None] | None = None, strict: bool = True):
    """Import versions from REMOTE (default: the default remote) this store lacks: all of them, those
    of `notebook`, or the REFs named (a global id or a prefix of one, a remote tag, a name, or a vN
    unique there). Pulled versions are untrusted like imported bundles (restoring pickled variables
    needs trust=True) and take the next free numbers of their notebooks. Returns a
    remotes.pull.PullResult; raises RemoteCorrupt naming the object and chunk when a version's data is
    missing or damaged on the remote (nothing of that version is imported; the others are).
    `progress(done_bytes, total_bytes)`: as for `push`. `notebook`: its path or a unique trailing
    part; with `strict` (the default) a UsageError when the remote has other notebooks but none it
    names, else nothing is pulled (the sidebar's Pull of a notebook nobody pushed)."""
    from .errors import RemoteCorrupt
    from .remotes import pull as pull_mod

    st = store or session().store()
    refs = tuple(r.gid if isinstance(r, Version) else r for r in _ref_args(refs))
    _, obj = _open_remote(st, remote, reading=True)
    try:
        found = pull_mod.listing(obj, notebook, strict=strict)
        chosen = pull_mod.select(found, list(refs), registry_url(obj)) if refs else found
        total = sum(rv.bytes for rv in chosen if st.version_by_gid(rv.gid) is None)
        bar, tick = _progress(total, "pull")
        tick = _reporting(tick, progress, total)
        try:
            result = pull_mod.pull(st, obj, list(refs), notebook, progress=tick, found=found)
        finally:
            if bar is not None:
                bar.close()
    finally:
        obj.close()
    if result.failed:
        raise _refusal(result)
    return result


def _refusal(result):
    """RemoteCorrupt for a pull that refused versions: the first named, how many others were refused
    and pulled; `.result` holds the PullResult (what was pulled, under which local labels)."""
    from .errors import RemoteCorrupt

    first = next(iter(result.failed.values()))
    others = len(result.failed) - 1
    more = [f"{others} other version{'s' if others != 1 else ''} refused"] if others else []
    if result.pulled:
        more.append(f"{len(result.pulled)} other version{'s' if len(result.pulled) != 1 else ''} pulled")
    err = RemoteCorrupt(first + (f" ({'; '.join(more)})" if more else ""))
    err.result = result
    return err


def _reporting(tick, progress, total: int):
    """`tick(n)` (the progress bar's, or None) that also calls `progress(done, total)` with the running
    count; transfer workers tick from several threads, hence the lock."""
    if progress is None:
        return tick
    import threading

    lock, done = threading.Lock(), [0]
    progress(0, total)

    def both(n: int) -> None:
        with lock:
            done[0] += n
            now = done[0]
        if tick is not None:
            tick(n)
        progress(now, total)

    return both


def registry_url(obj) -> str:
    from .remotes import registry

    return registry.safe_url(obj.url)


def clone(url: str, directory: str | os.PathLike):
    """A new store in DIRECTORY/.jupyter_mv with every version on the remote at URL, which it keeps as
    its default remote "origin". Returns a remotes.pull.PullResult; raises as `pull`, and UsageError
    when DIRECTORY already holds a store with versions."""
    from .errors import RemoteCorrupt
    from .remotes import pull as pull_mod

    st, result = pull_mod.clone(url, directory)
    st.close()
    if result.failed:
        raise _refusal(result)
    return result
