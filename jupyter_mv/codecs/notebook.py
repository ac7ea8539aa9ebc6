"""Notebook-defined code in pickles: functions and classes whose module is `__main__`.

cloudpickle stores them by value with a private copy of the globals they use and, for classes, a
process-wide tracker that makes unpickling *update* an existing class of the same origin. Restored
notebook code must behave as notebook code instead (see README, "Notebook code after a restore"):

- a function is rebuilt with the notebook's namespace as its `__globals__`, so `global counter`
  writes the notebook's `counter` and a helper the user redefined since is the one called. Globals
  it used that the namespace lacks are defined from the stored values (modules, notebook code and
  immutable values only); the restore names them.
- a class is resolved by name: the live class of that name when the notebook has one (instances
  restored are instances of it; it is never modified), else the stored definition is rebuilt (and,
  when restoring into a namespace, defined there under its name).
- the bytes are deterministic across kernels: code objects carry no per-kernel file names
  (`/tmp/ipykernel_<pid>/…`), classes no random tracker ids, and sets of strings are written sorted,
  so identical state has identical content hashes.

Borrowed: the class state (`_class_getstate`/`_class_setstate`, `_make_skeleton_class`/
`_make_skeleton_enum`) is cloudpickle's (cloudpickle/cloudpickle.py, BSD-3-Clause).
"""

from __future__ import annotations

import builtins
import contextlib
import re
import sys
import threading
import types
import typing

_LOCAL = threading.local()
_CODE_CACHE: dict = {}  # id(code) -> (code, normalised code)
_KERNEL_FILE = re.compile(r"ipykernel_\d+")
_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, range, type(Ellipsis))


# -- where restored code lives -----------------------------------------------------------------
@contextlib.contextmanager
def restoring_into(namespace: dict | None, classes: dict | None = None):
    """While decoding: notebook functions get `namespace` as their globals (None: a private dict,
    nothing is changed) and classes are resolved by name in it. Yields the list of names that had
    to be defined in `namespace` (globals or classes the restored code needs that it lacked).
    `classes` ({(qualname, definition): class}, one per restore: DecodeContext.classes) makes every
    variable restored together that names the same stored class get the same class object."""
    prev = getattr(_LOCAL, "state", None)
    prev_classes = getattr(_LOCAL, "classes", None)
    defined: list[str] = []
    _LOCAL.state = (namespace, defined)
    _LOCAL.classes = classes if classes is not None else {}
    try:
        yield defined
    finally:
        _LOCAL.state = prev
        _LOCAL.classes = prev_classes


def _target() -> tuple[dict | None, list]:
    state = getattr(_LOCAL, "state", None)
    return state if state is not None else (None, [])


def _lookup_namespace() -> dict:
    ns, _ = _target()
    return ns if ns is not None else sys.modules["__main__"].__dict__


# -- pickling ----------------------------------------------------------------------------------
def is_notebook_code(o) -> bool:
    return getattr(o, "__module__", None) == "__main__" and (
        type(o) is types.FunctionType or isinstance(o, type))


def reduce(o, definition_ids: set | None = None):
    """A reduce tuple for notebook functions and classes, None for anything else.

    A class is written as its name plus its definition in a pickle of its own: what the definition
    holds (methods, defaults, library sentinels such as `dataclasses.MISSING`) never enters the
    outer pickle's memo, so it neither makes variables look as if they shared state nor needs
    loading when the notebook has a class of that name (`definition_ids` is kept for callers)."""
    if type(o) is types.FunctionType and o.__module__ == "__main__" and o.__globals__.get("__name__") == "__main__":
        # (a library wrapper that copied __module__ from a notebook function, functools.wraps-style,
        # keeps its own module's globals: cloudpickle stores it as before)
        return _reduce_function(o)
    if isinstance(o, type) and o.__module__ == "__main__":
        return _reduce_class(o)
    if type(o) is types.CellType:
        return _reduce_cell(o)
    if isinstance(o, typing.TypeVar) and getattr(o, "__module__", None) == "__main__":
        # cloudpickle writes a notebook TypeVar with a random tracker id (a Generic class's
        # __parameters__ hold it): identical state would hash differently in every kernel
        return (_resolve_typevar, (o.__name__, o.__bound__, o.__constraints__, o.__covariant__,
                                   o.__contravariant__))
    quirk = _QUIRKS.get((type(o).__module__, type(o).__qualname__))
    if quirk is not None:
        return quirk(o)
    transforms = sys.modules.get("matplotlib.transforms")
    if transforms is not None and isinstance(o, transforms.TransformNode):
        return _transform_node(o)
    return None


def _resolve_typevar(name, bound, constraints, covariant, contravariant):
    """The notebook's TypeVar of that name when it has the same definition (so `Box[T]` and `T`
    stay one object after a restore), else a new one."""
    live = _lookup_namespace().get(name)
    if (isinstance(live, typing.TypeVar) and live.__name__ == name and live.__bound__ == bound
            and live.__constraints__ == constraints and live.__covariant__ == covariant
            and live.__contravariant__ == contravariant):
        return live
    tv = typing.TypeVar(name, *constraints, bound=bound, covariant=covariant, contravariant=contravariant)
    ns, defined = _target()
    if ns is not None and name not in ns:  # as for classes: defined under its name, named by restore
        ns[name] = tv
        defined.append(name)
    return tv


def _transform_node(o):
    """matplotlib transforms keep their parents keyed by `id(parent)`: memory addresses in the
    bytes. The keys are renumbered in order (matplotlib only uses them to drop dead parents)."""
    r = o.__reduce_ex__(5)
    if isinstance(r, tuple) and len(r) >= 3 and isinstance(r[2], dict) and isinstance(r[2].get("_parents"), dict):
        state = dict(r[2])
        state["_parents"] = {i: v for i, v in enumerate(state["_parents"].values())}
        return r[:2] + (state,) + r[3:]
    return r


def _callback_registry(o):
    """matplotlib's CallbackRegistry.__getstate__ takes the next id from its counter: every pickle
    would change the figure (and its bytes). The state is the same; the counter is put back."""
    import copyreg
    import itertools

    state = o.__getstate__()
    o._cid_gen = itertools.count(state["_cid_gen"])
    return (copyreg.__newobj__, (type(o),), state)


# library types whose pickling is not a pure function of their state: (module, qualname) -> reducer
def _partial(o):
    """functools.partial's reduction writes its `__dict__`, which CPython creates empty the first
    time anything reads `p.__dict__` (functools.wraps, inspect, matplotlib drawing a figure whose
    callbacks are partials): the same partial would pickle differently before and after. An empty
    dict is written as None, what an untouched partial writes."""
    r = o.__reduce__()
    if len(r) >= 3 and isinstance(r[2], tuple) and len(r[2]) == 4 and r[2][3] == {}:
        r = r[:2] + (r[2][:3] + (None,),) + r[3:]
    return r


_QUIRKS = {("matplotlib.cbook", "CallbackRegistry"): _callback_registry,
           ("functools", "partial"): _partial}


def normalise_code(code: types.CodeType) -> types.CodeType:
    """`code` with a file name that does not depend on the kernel's process id (nested code too)."""
    hit = _CODE_CACHE.get(id(code))
    if hit is not None and hit[0] is code:
        return hit[1]
    consts = tuple(normalise_code(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    name = _KERNEL_FILE.sub("ipykernel", code.co_filename)
    out = code if (name == code.co_filename and consts == code.co_consts) else code.replace(
        co_filename=name, co_consts=consts)
    if len(_CODE_CACHE) > 10000:
        _CODE_CACHE.clear()
    _CODE_CACHE[id(code)] = (code, out)
    return out


def _global_names(code: types.CodeType) -> set:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_names(c)
    return names


def _capturable(v) -> bool:
    """Globals worth carrying for a kernel that lacks them: cheap and free of shared state (a list
    or a model a function reads is a notebook variable of its own, restored by name)."""
    if isinstance(v, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)):
        return True
    if type(v) in _IMMUTABLE:
        return not (type(v) in (str, bytes) and len(v) > 10000)
    if type(v) is tuple:
        return len(v) < 1000 and all(_capturable(x) for x in v)
    return False


def _reduce_function(f):
    g = f.__globals__
    captured = {}
    for n in sorted(_global_names(f.__code__)):
        if n in g and _capturable(g[n]) and g[n] is not f:
            captured[n] = g[n]
    state = {"defaults": f.__defaults__, "kwdefaults": f.__kwdefaults__, "closure": None,
             "dict": dict(f.__dict__), "doc": f.__doc__, "annotations": dict(f.__annotations__),
             "qualname": f.__qualname__, "globals": captured}
    # the cells themselves (see _reduce_cell): closures made by one call (`inc` and `get` over one
    # `nonlocal n`) keep sharing their cell, as they did before the snapshot
    cells = f.__closure__ if f.__closure__ is not None else -1
    return (_make_function, (normalise_code(f.__code__), f.__name__, cells), state, None, None, _set_function)


def _reduce_cell(cell):
    """A closure cell made empty and filled by its state: its memo entry exists before its contents
    are written, so a function in its own closure (a recursive inner function) is no endless loop."""
    try:
        state = (True, cell.cell_contents)
    except ValueError:  # an empty cell (a name assigned later in the enclosing function)
        state = (False, None)
    return (types.CellType, (), state, None, None, _set_cell)


def _set_cell(cell, state):
    if state[0]:
        cell.cell_contents = state[1]


def _make_function(code, name, cells):
    ns, _ = _target()
    if ns is None:
        ns = {"__builtins__": builtins, "__name__": "__main__"}  # a private one: nothing is changed
    if isinstance(cells, int):  # -1: no closure; versions stored before cells were shared: their count
        closure = None if cells < 0 else tuple(types.CellType() for _ in range(cells))
    else:
        closure = tuple(cells)
    return types.FunctionType(code, ns, name, None, closure)


def _set_function(f, state):
    f.__defaults__ = state["defaults"]
    f.__kwdefaults__ = state["kwdefaults"]
    f.__dict__.update(state["dict"])
    f.__doc__ = state["doc"]
    f.__annotations__ = state["annotations"]
    f.__qualname__ = state["qualname"]
    if state["closure"] is not None:  # stored before cells were pickled themselves (_reduce_cell)
        for cell, (full, value) in zip(f.__closure__, state["closure"]):
            if full:
                cell.cell_contents = value
    ns, defined = _target()
    g = f.__globals__
    for n, v in state["globals"].items():
        if n not in g:
            g[n] = v
            if g is ns and n not in defined:
                defined.append(n)


def _inline_class(cls):
    """cloudpickle's by-value reduction of `cls`, deterministic and never touching a live class."""
    from cloudpickle import cloudpickle as cp

    # cloudpickle's reduction, with the tracker id dropped: a random id per class and process would
    # make identical classes hash differently, and a known id makes unpickling overwrite that class
    make, args, state, _, _, _ = cp._dynamic_class_reduce(cls)
    args = tuple(None if i == (5 if make is cp._make_skeleton_enum else 4) else a for i, a in enumerate(args))
    if make is cp._make_skeleton_enum:
        # every member by name, aliases and multi-bit flag members (RWX = 11) included: cloudpickle
        # lists the iteration's members, which for a Flag are the single-bit ones only
        members = {n: m._value_ for n, m in cls.__members__.items()}
        args = args[:3] + (members,) + args[4:]
        if isinstance(state, tuple) and state and isinstance(state[0], dict):
            for n in members:  # members are made by the skeleton; setting them again would fail
                state[0].pop(n, None)
    if isinstance(state, tuple) and state and isinstance(state[0], dict):
        # copyreg caches `__slotnames__` on a class the first time one of its instances is pickled:
        # not part of the definition, and it would change the class's bytes between two snapshots
        state[0].pop("__slotnames__", None)
    return make, args, state, None, None, cp._class_setstate


_MAX_NESTING = 8  # class definitions inside class definitions (a subclass of a notebook class...)


def _definition_pickler():
    import cloudpickle

    class DefinitionPickler(cloudpickle.Pickler):
        def __init__(self, f, cls, depth):
            super().__init__(f, protocol=5)
            self.cls, self.depth, self.sets = cls, depth, SetTable()

        def persistent_id(self, o):
            return self.sets.pid(o)

        def reducer_override(self, o):
            if o is self.cls or (isinstance(o, type) and o.__module__ == "__main__" and self.depth >= _MAX_NESTING):
                return _inline_class(o)
            own = reduce(o) if self.depth < _MAX_NESTING else None
            if own is not None:
                if own[0] is _resolve_class:
                    return (_resolve_class, (o.__qualname__, _definition(o, self.depth + 1)))
                return own
            return super().reducer_override(o)

    return DefinitionPickler


def _definition(cls, depth: int = 0) -> bytes:
    import io

    f = io.BytesIO()
    _definition_pickler()(f, cls, depth).dump(cls)
    return f.getvalue()


def stale_class(cls) -> str | None:
    """Why an instance of notebook class `cls` would not come back as one: the notebook's name for it
    holds another class now (its cell ran again), and restore resolves classes by name (the README's
    "Notebook code after a restore"). None when the name holds `cls` (or no class)."""
    if "." in cls.__qualname__ or "<" in cls.__qualname__:
        return None
    live = _lookup_namespace().get(cls.__qualname__)
    if isinstance(live, type) and live is not cls and live.__module__ == "__main__":
        return (f"holds an instance of an earlier definition of class {cls.__qualname__} (its cell ran again "
                f"since): restored, it is an instance of the class named {cls.__qualname__} in the notebook "
                "then (classes are resolved by name)")
    return None


def _reduce_class(cls):
    return (_resolve_class, (cls.__qualname__, _definition(cls)))


def _resolve_class(qualname: str, definition: bytes):
    live = _lookup_namespace().get(qualname) if "." not in qualname else None
    if isinstance(live, type) and live.__qualname__ == qualname and live.__module__ == "__main__":
        return live  # the notebook's class of that name; never modified, its stored definition unread
    # variables of one restore are decoded one by one, and the name may hold something else now
    # (`K = 3`, a nested class): each rebuilding the definition would give `k` and `K` (or `k1` and
    # `k2`) different classes, `type(k) is K` false. One class per stored definition and restore.
    classes = getattr(_LOCAL, "classes", None)
    if classes is None:
        classes = {}
    key = (qualname, definition)
    cls = classes.get(key)
    if cls is not None:
        return cls
    cls = classes[key] = _DefinitionUnpickler(definition).load()
    ns, defined = _target()
    if ns is not None and "." not in qualname and "<" not in qualname and qualname not in ns:
        ns[qualname] = cls
        defined.append(qualname)
    return cls


class _DefinitionUnpickler:
    def __init__(self, data: bytes):
        import io
        import pickle

        table: dict = {}

        class U(pickle.Unpickler):
            def persistent_load(self, pid):
                s = load_set(pid, table)
                if s is None:
                    raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
                return s

        self.u = U(io.BytesIO(data))

    def load(self):
        return self.u.load()


# -- deterministic sets ------------------------------------------------------------------------
# types whose hash is the same in every process: a set of only these iterates in the same order
# in two kernels that built it alike. Any other element may hash through a string (str, bytes, an
# Enum member hashes its name, a namedtuple or frozen dataclass its fields), which PYTHONHASHSEED
# changes per kernel.
_HASH_FIXED = (int, float, complex, bool, type(None))


def canonical_set(s) -> list | None:
    """The elements of set `s` in a process-independent order when its iteration order may depend
    on string hashing (PYTHONHASHSEED differs per kernel), else None (keep pickle's own path)."""
    if all(type(x) in _HASH_FIXED for x in s):
        return None
    try:
        return sorted(s, key=_order_key)
    except Exception:  # an element's repr is user code; its set keeps pickle's order
        return None


def _order_key(x):
    """A sort key of the same order in every process: by type, then value. Not `sorted(s)`: sets
    compare by inclusion (a partial order: frozensets stayed in hash order) and mixed types raise;
    nor repr() alone for sets and tuples: a nested set's repr is in hash order too."""
    t = type(x)
    if t in (str, bytes, int, float, bool):
        return (t.__name__, x)
    if t is set or t is frozenset:
        return (t.__name__, tuple(sorted(_order_key(e) for e in x)))
    if t is tuple:
        return ("tuple", tuple(_order_key(e) for e in x))
    return (t.__qualname__, repr(x))


class SetTable:
    """Persistent ids for hash-ordered sets, keeping a set shared within one pickle shared."""

    def __init__(self):
        self.ids: dict[int, int] = {}
        self.keep: list = []

    def pid(self, o):
        t = type(o)
        if t is not set and t is not frozenset:
            return None
        k = self.ids.get(id(o))
        if k is not None:
            return ("sr", k)
        items = canonical_set(o)
        if items is None:
            return None
        self.ids[id(o)] = k = len(self.keep)
        self.keep.append(o)
        return ("s", k, t is frozenset, items)


def load_set(pid, table: dict):
    """The set for a persistent id written by SetTable, or None when `pid` is not one."""
    if not isinstance(pid, tuple) or not pid:
        return None
    if pid[0] == "sr" and len(pid) == 2:
        return table[pid[1]]
    if pid[0] == "s" and len(pid) == 4:
        s = (frozenset if pid[2] else set)(pid[3])
        table[pid[1]] = s
        return s
    return None
