"""Live handles: objects that stand for something outside the process's memory (an open file, a
socket, a database connection, a lock, a thread, a queue, a subprocess, a generator's position).
Pickling one either fails or, worse, stores a stand-in (cloudpickle turns an open file into a
StringIO of its contents), so a variable that holds one at any depth is skipped with the path to it.

`kind` is called by the pickler for every object it reduces, so it answers from a per-type cache;
`path_to` walks the object graph only after pickling has failed, to say where the culprit sits."""

from __future__ import annotations

import sys
import types
from collections import deque

_KINDS: dict[type, tuple[str, str] | None] = {}  # type -> (what, hint), or None for ordinary types


# (module, classes, label): connections and cursors of the database drivers notebooks use; consulted
# only when the driver is imported. Others (holding a socket or a lock) are caught through those.
_DATABASES = (
    ("sqlite3", ("Connection", "Cursor", "Blob"), "sqlite3"),
    ("psycopg2.extensions", ("connection", "cursor"), "psycopg2"),
    ("psycopg", ("Connection", "Cursor", "AsyncConnection", "AsyncCursor"), "psycopg"),
    ("pymysql.connections", ("Connection",), "PyMySQL"),
    ("duckdb", ("DuckDBPyConnection",), "DuckDB"),
    ("sqlalchemy.engine", ("Engine", "Connection"), "SQLAlchemy"),
    ("pymongo", ("MongoClient",), "pymongo"),
    ("redis", ("Redis",), "redis"),
)


def _classify(t: type) -> tuple[str, str] | None:
    """(what, hint) when instances of `t` are live handles. Only modules already imported are
    consulted: a type cannot derive from a class whose module was never loaded, so the per-type
    cache stays right when a module is imported later."""
    import _thread
    import io
    import threading

    def sub(mod: str, *names: str) -> bool:
        m = sys.modules.get(mod)
        return m is not None and any(isinstance(getattr(m, n, None), type) and issubclass(t, getattr(m, n))
                                     for n in names)

    if issubclass(t, io.IOBase) and not issubclass(t, (io.BytesIO, io.StringIO)):
        # in-memory BytesIO/StringIO pickle exactly (contents and position); everything else is a file
        return "an open file", "store its path (or its contents) instead and reopen it after a restore"
    if sub("socket", "socket"):
        return "an open socket", "reconnect after a restore"
    for mod, names, label in _DATABASES:
        if sub(mod, *names):
            return f"a database connection ({label})", "store how to connect (not the password) and reconnect after a restore"
    if sub("http.client", "HTTPConnection"):
        return "an open HTTP connection", "reconnect after a restore"
    if issubclass(t, (types.GeneratorType, types.AsyncGeneratorType, types.CoroutineType)):
        return "a generator or coroutine", "its position cannot be saved; store the data it yields"
    if issubclass(t, threading.Thread):
        return "a thread", "threads cannot be saved; store what they compute"
    if issubclass(t, (_thread.LockType, _thread.RLock, threading.Condition, threading.Semaphore,
                      threading.Event, threading.Barrier)):
        return "a lock", "locks belong to the running process; create a new one after a restore"
    if sub("queue", "Queue", "SimpleQueue") or sub("multiprocessing.queues", "Queue", "SimpleQueue") or sub(
            "asyncio", "Queue"):
        return "a queue", "queues belong to the running process; store the items instead"
    if sub("subprocess", "Popen"):
        return "a subprocess", "a running process cannot be saved; store its command or its output"
    if sub("mmap", "mmap"):
        return "a memory-mapped file", "store its path and map it again after a restore"
    if sub("multiprocessing.pool", "Pool") or sub("concurrent.futures", "Executor"):
        return "a worker pool", "pools belong to the running process; create a new one after a restore"
    if sub("asyncio", "AbstractEventLoop", "Future", "Handle"):
        return "an event loop object", "it belongs to the running process"
    return None


def kind(obj) -> tuple[str, str] | None:
    """(what, hint) when `obj` is a live handle, else None. `what` names the object
    (`an open file 'data.txt'`); `hint` says what to store instead."""
    t = type(obj)
    try:
        k = _KINDS[t]
    except KeyError:
        if len(_KINDS) > 20_000:  # classes redefined cell after cell must not be kept alive forever
            _KINDS.clear()
        k = _KINDS[t] = _classify(t)
    if k is None:
        return None
    what, hint = k
    if what == "an open file":
        name = getattr(obj, "name", None)
        if getattr(obj, "closed", False):
            what = "a closed file"
        if isinstance(name, (str, bytes)) and name:
            what += f" {name!r}" if isinstance(name, str) else f" {name.decode(errors='replace')!r}"
    return what, hint


def memmap_note(m) -> str:
    """The note for a numpy memmap: stored as the bytes it maps, restored as an in-memory ndarray."""
    name = getattr(m, "filename", None)
    of = f" of {str(name)!r}" if name else ""
    return (f"a numpy memmap{of}: stored as its data ({m.nbytes} bytes); it comes back as an ordinary "
            "in-memory array, not mapped to the file")


MAX_VISITS = 200_000  # objects looked at when searching for a handle's path


def path_to(root, target) -> str | None:
    """The path from `root` to the object `target` (compared by identity) in Python syntax, e.g.
    `.loader.fh` or `['cfg'][0].conn`; "" when `root` is `target`; None when not found within
    MAX_VISITS objects. Breadth first, so the shortest path is given; attributes, slots, container
    items, closures and, for other objects, the state they pickle (`__reduce_ex__`) are followed."""
    if root is target:
        return ""
    seen = {id(root)}
    todo = deque([(root, "")])
    visits = 0
    while todo and visits < MAX_VISITS:
        obj, path = todo.popleft()
        visits += 1
        for step, child in _children(obj):
            if child is target:
                return path + step
            if id(child) in seen or _atomic(child):
                continue
            seen.add(id(child))
            todo.append((child, path + step))
    return None


_ATOMIC = (str, bytes, bytearray, int, float, complex, bool, type(None), range, types.ModuleType)


def _atomic(obj) -> bool:
    if isinstance(obj, _ATOMIC):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray) and not obj.dtype.hasobject


def _children(obj):
    """(step, child) pairs, step in Python syntax."""
    try:
        if isinstance(obj, dict):
            for k, v in list(obj.items()):
                yield f"[{_key(k)}]", v
                if not _atomic(k):
                    yield f".keys()[{_key(k)}]", k
            return
        if isinstance(obj, (list, tuple, deque)):
            for i, v in enumerate(list(obj)):
                yield f"[{i}]", v
            return
        if isinstance(obj, (set, frozenset)):
            for v in list(obj):
                yield " (a set member)", v
            return
        np = sys.modules.get("numpy")
        if np is not None and isinstance(obj, np.ndarray):  # object arrays
            for i, v in enumerate(obj.ravel(order="K").tolist()):
                yield f".flat[{i}]", v
            return
        if isinstance(obj, types.FunctionType):
            for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ()):
                try:
                    yield f" (closure variable {name})", cell.cell_contents
                except ValueError:  # empty cell
                    pass
            g = obj.__globals__
            for name in obj.__code__.co_names:
                if name in g:
                    yield f".__globals__[{name!r}]", g[name]
            return
        found = False
        d = getattr(obj, "__dict__", None)
        if isinstance(d, dict):
            found = True
            for k, v in list(d.items()):
                yield (f".{k}" if isinstance(k, str) and k.isidentifier() else f".__dict__[{k!r}]"), v
        for cls in type(obj).__mro__:
            slots = cls.__dict__.get("__slots__", ())
            for s in ([slots] if isinstance(slots, str) else slots):
                if s in ("__dict__", "__weakref__"):
                    continue
                found = True
                try:
                    yield f".{s}", getattr(obj, s)
                except AttributeError:
                    pass
        t = type(obj)
        if isinstance(obj, type) or found and t.__reduce_ex__ is object.__reduce_ex__ and (
                t.__reduce__ is object.__reduce__ and getattr(t, "__getstate__", None) is getattr(
                    object, "__getstate__", None)):
            return  # a plain class: its __dict__/slots are what it pickles
        # anything else: what pickling would save of it
        rv = obj.__reduce_ex__(5)
        if isinstance(rv, tuple):
            args = rv[1] if len(rv) > 1 else ()
            for i, a in enumerate(args if isinstance(args, tuple) else ()):
                yield f" (constructor argument {i})", a
            if len(rv) > 2 and rv[2] is not None:
                yield " (pickled state)", rv[2]
    except Exception:  # a broken __dict__/__reduce_ex__ only stops the search below this object
        return


def _key(k) -> str:
    r = repr(k)
    return r if len(r) <= 40 else r[:39] + "…"
