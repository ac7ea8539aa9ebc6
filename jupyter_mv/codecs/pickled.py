"""The fallback: pickle protocol 5 through cloudpickle (lambdas and notebook-defined classes by
value), large buffers out of band so they are chunked and deduplicated like arrays. torch tensors
inside the object are kept out of the pickle stream and stored in the safe tensor format.

Restoring this codec unpickles, so it is never done for an imported bundle without trust."""

from __future__ import annotations

import importlib.util
import io
import pickle
import re
import reprlib
import sys

from ..errors import DecodeError, LiveHandle, NotStorable
from . import Encoded, handles, loaded, notebook, type_name

NAMES = ("pickle", "sklearn", "torch.module", "torch.optimizer")


def match(obj) -> bool:
    return True


def _tensor_types():
    if not loaded("torch"):
        return None
    import torch

    return torch.Tensor


def dumps(obj, notes: list | None = None, reach: dict | None = None, refs: dict | None = None,
          ref_objs: dict | None = None):
    """(pickle stream and out-of-band buffers, number of out-of-band buffers, tensors).

    Raises LiveHandle when `obj` holds a live handle at any depth (the path to it included), and
    NotStorable for anything else that cannot be pickled. A numpy memmap is pickled as an ordinary
    array of its data; a line saying so is appended to `notes`. With `reach`, fills it with
    {id: object} of the objects the pickle reached that can hold shared state (see groups.shareable),
    tensors included: what capture uses to find variables that share objects.

    Notebook functions and classes are written by codecs.notebook (bound to the notebook's globals,
    resolved by name), and sets of strings in sorted order, so equal state gives equal bytes.

    A numpy view is written as a view (offset, strides) of the array it views when that array is a
    variable of `ref_objs` ({name: object} stored in its own codec, see codecs.groups) or an array
    owning its memory written earlier in this pickle, so a restore keeps them sharing memory."""
    import cloudpickle

    oob: list = []
    arrays: dict = {}  # array_key -> [arrays written whole that own that memory, or variables of ref_objs]
    roots: dict = {}  # array_key of the arrays views were taken from: reached, so variables over them group
    tensors: list = []  # (uid, tensor)
    index: dict[int, int] = {}
    tensor_type = _tensor_types()
    np = sys.modules.get("numpy")
    memmap = np.memmap if np is not None else None
    if np is not None and ref_objs:
        from .groups import array_key

        for a in ref_objs.values():
            if type(a) is np.ndarray:
                arrays.setdefault(next(iter(array_key(a))), []).append(a)
    last = [None]  # the object being reduced when pickling failed: the likely culprit

    sets = notebook.SetTable()
    definitions: set = set()  # ids of what notebook class definitions hold: not shared state
    singletons = _singletons()

    class Pickler(cloudpickle.Pickler):
        def persistent_id(self, o):
            if refs and id(o) in refs:  # another variable, stored in its own (safe) codec: by name
                return ("v", refs[id(o)])
            if tensor_type is not None and isinstance(o, tensor_type):
                k = id(o)
                if k not in index:
                    index[k] = len(tensors)
                    tensors.append(o)
                return ("t", index[k])
            return sets.pid(o)

        def reducer_override(self, o):
            # called for every object that is not a plain int/str/list/dict..., before cloudpickle's
            # own reducers (which would store an open file as a StringIO of its contents): the handle
            # check costs one dict lookup per object and no traversal of its own
            live = handles.kind(o)
            if live is not None:
                raise _Handle(o, live)
            if memmap is not None and isinstance(o, memmap):
                if notes is not None:
                    notes.append((o, handles.memmap_note(o)))
                return np.asarray(o).__reduce_ex__(5)
            if np is not None and type(o) is np.ndarray and not o.dtype.hasobject:
                from .groups import array_key, view_into

                key = array_key(o)
                if o.base is not None:
                    roots.update(key)
                    for b in arrays.get(next(iter(key)), ()):
                        spec = view_into(b, o)
                        if spec is not None:  # shares memory with an array written (or stored) whole
                            return _array_view, (b, *spec)
                elif not key or next(iter(key)) not in arrays:  # owns its memory: later views refer to it
                    arrays.setdefault(next(iter(key)), []).append(o)
            if type(o) is memoryview:
                return _reduce_memoryview(o, notes)
            last[0] = o
            ref = singletons.get(id(o))
            if ref is not None and ref[2] is o:  # a process-wide object: by reference, never a copy
                definitions.add(id(o))  # and not state that ties the variables reaching it together
                return getattr, (importlib.import_module(ref[0]), ref[1])
            own = notebook.reduce(o, definitions)
            if own is not None:
                if notes is not None and isinstance(o, type):
                    stale = notebook.stale_class(o)
                    if stale:
                        notes.append((o, stale))
                return own
            return super().reducer_override(o)

    f = io.BytesIO()
    try:
        pickler = Pickler(f, protocol=5, buffer_callback=oob.append)
        pickler.dump(obj)
        if reach is not None:
            from .groups import shareable

            reach.update((k, o) for k, (_, o) in pickler.memo.copy().items()
                         if k not in definitions and shareable(o))
            reach.update((id(t), t) for t in tensors)
            # a view's base (`d = {'v': a[2:5]}`): the tensor whose storage it shares, maybe a variable
            reach.update((id(t._base), t._base) for t in tensors if getattr(t, "_base", None) is not None)
            from .groups import storage_key

            for t in tensors:  # a tensor variable over the same storage: they are stored together
                reach.update(storage_key(t))
            reach.update(roots)  # likewise an array variable over the memory of a pickled view
            reach.update((id(s), s) for s in sets.keep)
    except _Handle as h:
        what, hint = h.kind
        path = handles.path_to(obj, h.obj)
        raise LiveHandle(f"{what}: {hint}", " (somewhere inside)" if path is None else path, h.obj) from None
    except RecursionError:
        raise NotStorable("too deeply nested to pickle") from None
    except Exception as e:  # pickling raises many types (TypeError, PicklingError, AttributeError...)
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        path = handles.path_to(obj, last[0]) if last[0] is not None else None
        where = f" (at {path})" if path else ""
        raise NotStorable(f"cannot be pickled: {msg}{where}") from None
    finally:
        last[0] = None
    buffers = [f.getbuffer()]
    for pb in oob:
        raw = pb.raw()  # contiguous view, no copy
        buffers.append(raw)
    return buffers, len(oob), tensors


def _array_view(base, descr, shape, offset, strides, readonly):
    """A numpy view into `base` (see dumps): the view codecs.groups restores for array variables."""
    from .groups import decode_link

    return decode_link({"view": {"of": "", "offset": offset, "strides": strides, "readonly": readonly},
                        "descr": descr, "shape": shape}, None, base=base)


def _reduce_memoryview(m, notes: list | None):
    """cloudpickle writes a memoryview as `bytes` of its data: it came back a bytes object, another
    type. It is rebuilt as a memoryview with its format, shape and read-only flag over a copy of its
    data; what that cannot keep is noted (viewing a mutable object: writes no longer reach it)."""
    data = m.tobytes()
    fmt, shape = m.format, tuple(m.shape or ())
    try:
        memoryview(data).cast(fmt, shape) if m.ndim != 1 or fmt != "B" else None
    except (TypeError, ValueError):
        fmt, shape = "B", (len(data),)
        if notes is not None:
            notes.append((m, f"a memoryview of format {m.format!r}: restored as a memoryview of its bytes"))
    if notes is not None and m.obj is not None and not isinstance(m.obj, bytes):
        notes.append((m, f"a memoryview over {type(m.obj).__name__} data: restored it views a copy of the data, "
                         "so writes no longer reach that object"))
    return _memoryview, (data, fmt, list(shape), bool(m.readonly))


def _memoryview(data, fmt, shape, readonly):
    m = memoryview(bytes(data) if readonly else bytearray(data))
    return m if (fmt == "B" and len(shape) == 1) else m.cast(fmt, shape)


# Process-wide objects that objects hold a reference to, and whose identity is the point: numpy's
# global RandomState (what `np.random.seed` seeds; scipy's frozen distributions and objects built with
# `check_random_state(None)` hold it) and the `random` module's. Pickled by value they come back as a
# private copy, so `np.random.seed(0); dist.rvs()` silently stops being reproducible after a restore.
_SINGLETONS = (("numpy.random.mtrand", "_rand"), ("random", "_inst"))


def _singletons() -> dict:
    """{id: (module, attribute, object)} of the process-wide objects of the modules already loaded."""
    out = {}
    for mod, attr in _SINGLETONS:
        m = sys.modules.get(mod)
        o = getattr(m, attr, None) if m is not None else None
        if o is not None:
            out[id(o)] = (mod, attr, o)
    return out


class _Handle(Exception):
    """Raised inside the pickler when it meets a live handle; turned into LiveHandle with its path."""

    def __init__(self, obj, kind):
        self.obj, self.kind = obj, kind


def encode_with(obj, codec: str, summary: dict | None = None, params: dict | None = None,
                refs: dict | None = None, ref_objs: dict | None = None) -> Encoded:
    """`refs` ({id: variable name, or (variable name, attribute path)}): objects written as references
    to those variables, or to parts of them (a model's parameter), by codecs.groups. `ref_objs`
    ({name: object} of those variables): a tensor viewing one of them is stored as that view."""
    from . import tensors as tensor_codec

    found: list = []
    reach: dict = {}
    buffers, n_oob, tensor_objs = dumps(obj, found, reach, refs, ref_objs)
    notes = []
    for m, note in found:
        path = handles.path_to(obj, m)
        notes.append((path or "", note))
    table = []
    for i, t in enumerate(tensor_objs):
        meta, buf = tensor_codec.describe(t)
        meta["uid"] = id(t)
        view = tensor_codec.view_in(i, tensor_objs, ref_objs)
        if view is not None:  # no bytes of its own: rebuilt on the tensor whose storage it shares
            meta.update(view)
            buf = memoryview(b"")
        table.append(meta)
        buffers.append(buf)
    meta = {"oob": n_oob, "tensors": table}
    return Encoded(codec, meta, buffers, type_name(obj), summary or {}, params or {}, notes=notes, reach=reach)


def encode(obj) -> Encoded:
    enc = encode_with(obj, "pickle")

    def summarize() -> dict:  # repr can be costly (objects holding tensors): only for changed content
        r = repr_short(obj)
        return {"repr": r} if r else {}

    enc.summarize = summarize
    return enc


def decode(codec, meta, buffers, ctx):
    from . import tensors as tensor_codec

    n_oob = meta.get("oob", 0)
    stream, oob = buffers[0], buffers[1: 1 + n_oob]
    tbufs = buffers[1 + n_oob:]
    table = meta.get("tensors", [])

    def tensor(i: int):
        m = table[i]
        uid = m.get("uid")
        if uid is not None and uid in ctx.tensors:
            return ctx.tensors[uid]
        if "view_of" in m or "view_of_var" in m:  # a view sharing storage with another tensor (view_in)
            from .groups import _tensor_view

            j = m.get("view_of")
            if j is not None and not (isinstance(j, int) and 0 <= j < len(table) and "view_of" not in table[j]
                                      and "view_of_var" not in table[j]):
                raise DecodeError("malformed tensor view")
            base = tensor(j) if j is not None else _variable(m["view_of_var"], ctx)
            t = _tensor_view(base, m,
                             str(m.get("view_of_var", "a tensor")))
        else:
            t = tensor_codec.rebuild(m, tbufs[i])
        if uid is not None:
            ctx.tensors[uid] = t
        return t

    trial = getattr(ctx, "trial", False)
    sets: dict = {}

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == "t":
                return tensor(pid[1])
            if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == "v":
                return _variable(pid[1], ctx)
            s = notebook.load_set(pid, sets)
            if s is not None:
                return s
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")

        def find_class(self, module, name):
            if trial and module.startswith("cloudpickle") and name in _TRACKED:
                # a trial load must not touch the live notebook classes: cloudpickle would find the
                # live class by its tracker id and re-set its attributes (methods included) from
                # the stream, so a fresh, untracked copy of the class is built instead
                return _untracked(super().find_class(module, name))
            try:
                return super().find_class(module, name)
            except Exception as e:
                raise DecodeError(missing_class(module, name, e)) from None

    try:
        # notebook functions get the namespace restored into as their globals (codecs.notebook)
        with notebook.restoring_into(getattr(ctx, "namespace", None), getattr(ctx, "classes", None)) as defined:
            obj = Unpickler(io.BytesIO(stream), buffers=oob).load()
        if hasattr(ctx, "defined"):
            ctx.defined.extend(n for n in defined if n not in ctx.defined)
        return obj
    except (DecodeError, MemoryError):  # no room now says nothing about the data (see codecs.decode)
        raise
    except RecursionError:
        raise DecodeError("its stored state is too deeply nested to load") from None
    except Exception as e:  # a __setstate__/__reduce__ of the stored class that no longer fits its data
        msg = str(e).splitlines()[0] if str(e) else ""
        raise DecodeError(f"its stored state does not load: {type(e).__name__}: {msg}".rstrip(": ")) from None


_TRACKED = {"_make_skeleton_class": 4, "_make_skeleton_enum": 5}  # name -> position of class_tracker_id


def _untracked(make):
    pos = _TRACKED[make.__name__]

    def build(*args):
        args = list(args)
        if len(args) > pos:
            args[pos] = None
        return make(*args)

    return build


_MISSING = object()


def _variable(name, ctx):
    """The object restored for variable `name`, which a group's pickle refers to (codecs.groups)."""
    if isinstance(name, tuple) and len(name) == 2:  # (variable, "attr.path"): a part of a model (codecs.groups)
        from .groups import _part

        owner = _variable(name[0], ctx)
        return _part(owner, name[1], name[0])
    obj = ctx.objects.get(name, _MISSING) if isinstance(name, str) else _MISSING
    if obj is _MISSING and isinstance(name, str) and getattr(ctx, "resolve", None) is not None:
        obj = ctx.objects[name] = ctx.resolve(name)
    if obj is _MISSING:
        raise DecodeError(f"it refers to variable {name!r}, which is not restored with it")
    return obj


def missing_class(module: str, name: str, e: Exception) -> str:
    """Why `module.name` cannot be found, with the install hint only when a module is in fact missing
    (importlib.util.find_spec says so), not when it exists but lacks the name or fails to import."""
    if isinstance(e, ModuleNotFoundError) and e.name:
        if not _exists(e.name):
            if e.name == module or module.startswith(e.name + "."):
                return (f"it needs module {module!r}, which is not installed here or was renamed "
                        "(is the package that defines it installed?)")
            return (f"module {module!r} needs module {e.name!r}, which is not installed here "
                    "(is the package that defines it installed?)")
    if isinstance(e, AttributeError) and _exists(module):
        return (f"{name!r} is no longer defined in module {module!r} (renamed or removed since this "
                "version was taken?)")
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"importing {module}.{name} failed: {type(e).__name__}: {msg}".rstrip(": ")


def import_failure(e: Exception) -> str:
    """One line for an ImportError/AttributeError met while loading (by a loader that does not say
    which class it was after, such as skops), with the install hint only when the module it names is
    in fact missing."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    name = e.name if isinstance(e, ModuleNotFoundError) else None
    if name and not _exists(name):
        return f"{msg} (is the package that defines it installed?)"
    return f"{type(e).__name__}: {msg}"


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or __spec__ is unset
        return module in sys.modules


def repr_short(obj, limit: int = 80) -> str:
    try:
        if isinstance(obj, (dict, list, tuple, set, frozenset)) and len(obj) > 20:
            # the full repr of a dict of 3,000 arrays takes 14 s, to keep 80 characters of it
            r = _SHORT.repr(obj)
        else:
            r = repr(obj)
    except Exception:
        return ""
    # default reprs carry the object's address (`<X object at 0x7f…>`): it differs per kernel and per
    # restore, so it would show as a change in every diff
    r = _ADDRESS.sub(" at 0x…", " ".join(r.split()))
    return r if len(r) <= limit else r[: limit - 1] + "…"


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]{6,}")
_SHORT = reprlib.Repr()  # (keyword arguments need Python 3.12)
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple = 3, 4, 6, 6
_SHORT.maxset = _SHORT.maxfrozenset = 6
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 60, 60, 40
