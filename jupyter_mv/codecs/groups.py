"""Variables that share objects are stored, and restored, together.

Each variable is encoded alone first (its own codec: arrays, frames, models...). While pickling,
the pickle codec records the objects it reached (the pickler's memo); the other codecs report the
top object (arrays and frames are leaves: a 1 GiB array is never pickled to look inside it). Names
whose objects meet form a group — the notebook-state literature's co-variables (Kishu,
ElasticNotebook) — and:

- a group is pickled once, as a dict of its names, so every object reached from several names is
  one object again after a restore (`sched.optimizer is opt`, an optimizer stepping the model's own
  parameters). Its buffers stay out of band and tensors stay in the tensor table, so an unchanged
  group writes no new chunk. Every member keeps its own row (type, summary, params), pointing at the
  same buffers;
- a numpy array that is another array variable (`b = a`) or a view into one (`w = a[2:6]`,
  `gT = g.T`) is stored as a reference to it with its offset and strides, not as a copy: safe, no
  bytes of its own, and a view again after a restore;
- restoring any member restores its whole group (`meta["group"]` lists it), so no restored object
  silently points at a private copy of another variable.
"""

from __future__ import annotations

import enum
import itertools
import logging
import sys
import types
import warnings

from ..errors import DecodeError, NotStorable

_NOT_STATE = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType,
              types.CodeType, enum.Enum, logging.Logger)


def shareable(o) -> bool:
    """Can `o` be state shared between variables? Containers and objects with attributes are; atoms
    (str, int, tuple...), code, classes, modules, enum members and other singletons are not (two
    models both referring to `float` or to a logger share nothing a restore must keep)."""
    t = type(o)
    if t is list or t is dict or t is set or t is bytearray or t is types.CellType:
        return True  # (a closure cell: `nonlocal` state that two closures of one call share)
    if isinstance(o, _NOT_STATE):
        return False
    np = sys.modules.get("numpy")
    if np is not None and isinstance(o, np.ndarray):
        return True
    return hasattr(o, "__dict__")


_LIBRARY: dict = {"n": -1, "objects": {}}


def library_objects() -> dict:
    """{id: object} of the state imported modules hold at module level (their globals, and the values
    of module-level dicts such as matplotlib's rcParams): every artist refers to
    `rcParams['path.effects']`, which makes no two figures one group. Recomputed when modules are
    imported; the objects are kept, so their ids cannot be reused by notebook objects meanwhile."""
    n = len(sys.modules)
    if _LIBRARY["n"] != n:
        found: dict = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated module attributes warn when touched
            main = getattr(sys.modules.get("__main__"), "__dict__", None)
            for name, mod in list(sys.modules.items()):
                d = getattr(mod, "__dict__", None)
                # the notebook's own namespace is not library state, under whatever name it is
                # registered (multiprocessing and torch add `__mp_main__`)
                if not isinstance(d, dict) or d is main or name in ("__main__", "__mp_main__"):
                    continue
                for v in list(d.values()):
                    try:
                        if not shareable(v):
                            continue
                        found[id(v)] = v
                        if isinstance(v, dict):
                            # the stored values (dict.values), never a subclass's own values(): transformers'
                            # lazy mappings (CONFIG_MAPPING, MODEL_MAPPING) import every model module for it (30 s)
                            for x in list(itertools.islice(dict.values(v), 10000)):
                                if shareable(x):
                                    found[id(x)] = x
                    except Exception:  # a lazy or proxy object that fails when inspected: not state
                        continue
        _LIBRARY.update(n=n, objects=found)
    return _LIBRARY["objects"]


# -- snapshot ----------------------------------------------------------------------------------
class _Union:
    def __init__(self):
        self.parent: dict = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def array_key(a) -> dict:
    """{-id(root): root} for a numpy array, root the array at the end of its base chain (the memory's
    owner, or the outermost array over it): arrays over one memory meet under that key (negative,
    like storage_key's: a meeting that never puts the array variable's own codec in question)."""
    np = sys.modules.get("numpy")
    if np is None or not isinstance(a, np.ndarray):
        return {}
    while isinstance(a.base, np.ndarray):
        a = a.base
    return {-id(a): a}


def view_into(base, a):
    """(descr, shape, offset, strides, readonly) of array `a` as a view into the contiguous array
    `base` when `base`'s memory holds all of `a` (see decode_link), else None."""
    np = sys.modules.get("numpy")
    if base is a or not isinstance(base, np.ndarray) or a.size == 0 or base.dtype.hasobject:
        return None
    if not (base.flags.c_contiguous or base.flags.f_contiguous):
        return None
    lo, hi = np.lib.array_utils.byte_bounds(a)
    b0 = base.__array_interface__["data"][0]
    if not (b0 <= lo and hi <= b0 + base.nbytes):
        return None
    return (np.lib.format.dtype_to_descr(a.dtype), list(a.shape), int(a.__array_interface__["data"][0] - b0),
            [int(s) for s in a.strides], not a.flags.writeable)


def storage_key(t) -> dict:
    """{-data pointer: t} for a CPU tensor: tensors over one storage (`w` and a pickled `w[0]`) meet
    under that key, as objects meet under their id (ids are positive, so the keys never collide)."""
    try:
        ptr = t.untyped_storage().data_ptr() if t.device.type == "cpu" and str(t.layout) == "torch.strided" else 0
    except Exception:  # sparse, meta or exotic tensors have no plain storage
        ptr = 0
    return {-ptr: t} if ptr else {}


def _reach(name: str, e, obj) -> dict:
    if e.reach is not None:
        return {k: o for k, o in e.reach.items() if shareable(o)} | ({id(obj): obj} if shareable(obj) else {})
    if e.codec == "torch.tensor":
        return {id(obj): obj, **storage_key(obj)}
    if e.codec == "numpy":
        return {id(obj): obj, **array_key(obj)}
    if e.codec in ("pandas", "plain"):
        return {id(obj): obj} if shareable(obj) else {}
    # a codec that did not report what it reached (skops models): one pickling pass finds out
    from . import pickled

    found: dict = {}
    try:
        pickled.dumps(obj, reach=found)
    except NotStorable:
        return {id(obj): obj}
    found[id(obj)] = obj
    return found


def _links(items: list, objs: dict) -> dict:
    """{name: meta} for variables that are another variable (`b = a`: any codec) and numpy arrays
    that are a view into an array variable."""
    first: dict = {}
    links: dict = {}
    for name, e in items:
        k = id(objs[name])
        if k in first:
            links[name] = {"alias": first[k]}
        elif not isinstance(objs[name], (str, bytes, int, float, bool, type(None), tuple, frozenset)):
            first[k] = name  # immutable values are equal copies anyway (`x = y = 0`)
    _part_links(items, objs, links)
    _tensor_links(items, objs, links)
    np = sys.modules.get("numpy")
    if np is None:
        return links
    codec = dict((n, e.codec) for n, e in items)

    def root(a):  # the array at the end of its base chain: the memory's owner, or its outermost view
        while isinstance(a.base, np.ndarray):
            a = a.base
        return a

    def holds(base_name, a) -> bool:  # can `a` be rebuilt as a view into this variable's restored array?
        base = objs[base_name]
        if codec[base_name] != "numpy" or base_name in links:
            return False
        if not (base.flags.c_contiguous or base.flags.f_contiguous) or base.dtype.hasobject:
            return False
        lo, hi = np.lib.array_utils.byte_bounds(a)
        b0 = base.__array_interface__["data"][0]
        return b0 <= lo and hi <= b0 + base.nbytes

    roots = {n: root(objs[n]) for n, e in items if e.codec == "numpy" and n not in links}
    bases: set = set()  # names other arrays are views of: they stay whole arrays
    for name, e in items:
        if e.codec != "numpy" or name in links or name in bases:
            continue
        a = objs[name]
        base_name, b = None, a.base
        while b is not None:  # the deepest array variable under this one owns the memory we share
            if id(b) in first and isinstance(b, np.ndarray):
                base_name = first[id(b)]
            b = getattr(b, "base", None)
        if a.size == 0:
            continue
        if (base_name is None or not holds(base_name, a)) and a.base is not None:
            # numpy points every view at the memory's owner, not at the view it was taken from: of
            # `a = x.reshape(2, 3); t = a.T` (x not a variable) neither is in the other's base chain,
            # yet they share memory. Another array variable over the same memory that covers it
            # (the largest) is its base.
            near = [n for n in roots if n != name and roots[n] is roots[name] and holds(n, a)]
            base_name = max(near, key=lambda n: objs[n].nbytes) if near else None
        if base_name is None or not holds(base_name, a):
            continue
        base = objs[base_name]
        bases.add(base_name)
        b0 = base.__array_interface__["data"][0]
        start = a.__array_interface__["data"][0] - b0
        links[name] = {"view": {"of": base_name, "offset": int(start), "strides": [int(s) for s in a.strides],
                                "readonly": not a.flags.writeable}}
    return links


def _tensor_links(items: list, objs: dict, links: dict) -> None:
    """Add {name: {"tview": {"of": base, "offset": elements, "stride": [...]}}} for torch tensor
    variables over the storage of another tensor variable that holds all their elements (`v = a[2:5]`,
    `t = w.T`): each was stored as its own copy, so an in-place update of `a` no longer reached `v`
    after a restore. Rebuilt with `torch.as_strided` on the restored base."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    tensors = {}
    for name, e in items:
        t = objs[name]
        if e.codec != "torch.tensor" or name in links or not isinstance(t, torch.Tensor):
            continue
        if t.device.type != "cpu" or t.layout != torch.strided or t.numel() == 0:
            continue
        tensors[name] = (t.untyped_storage().data_ptr(), t)
    bases: set = set()
    for name, (ptr, v) in tensors.items():
        if name in bases or type(v) is not torch.Tensor:  # a Parameter is its own leaf
            continue
        best = None
        for other, (optr, b) in tensors.items():
            if other == name or other in links or optr != ptr or b.dtype != v.dtype:
                continue
            if not b.is_contiguous() or (v.requires_grad and not b.requires_grad):
                continue
            start = v.storage_offset() - b.storage_offset()
            extent = sum((n - 1) * st for n, st in zip(v.shape, v.stride()))
            if start < 0 or start + extent >= b.numel() or min(v.stride(), default=0) < 0:
                continue
            if best is None or b.numel() > tensors[best][1].numel():
                best = other
        if best is None:
            continue
        b = tensors[best][1]
        bases.add(best)
        links[name] = {"tview": {"of": best, "offset": int(v.storage_offset() - b.storage_offset()),
                                 "stride": [int(x) for x in v.stride()]}}


def _unkept_views(items: list, objs: dict, links: dict) -> None:
    """Name the array variables that share memory no link keeps shared (`v1 = x[:3]; v2 = x[2:]`
    with `x` no variable, or a view past the end of the variable it views): each is stored as its
    own data, and writing into one after a restore no longer shows in the other."""
    np = sys.modules.get("numpy")
    torch = sys.modules.get("torch")
    by_root: dict = {}
    for name, e in items:
        a = objs[name]
        if name in links:
            continue
        if np is not None and e.codec == "numpy" and a.size:
            r = a
            while isinstance(r.base, np.ndarray):
                r = r.base
            by_root.setdefault(("numpy", id(r)), []).append(name)
        elif torch is not None and e.codec == "torch.tensor" and isinstance(a, torch.Tensor) and a.numel() \
                and a.layout == torch.strided:
            by_root.setdefault(("torch", a.device.type, a.untyped_storage().data_ptr()), []).append(name)
    for key, names in by_root.items():
        for n in names:
            others = [m for m in names if m != n and (_overlap(np, objs[n], objs[m]) if key[0] == "numpy"
                                                      else _tensor_overlap(objs[n], objs[m]))]
            if others:
                enc = dict(items)[n]
                enc.notes.append(("", f"shares memory with {', '.join(others)} through an array no variable "
                                      "holds: stored as its own data, restored they no longer share memory"))


def _tensor_overlap(a, b) -> bool:
    """Do two tensors over one storage span overlapping bytes?"""
    def span(t):
        lo = t.storage_offset() * t.element_size()
        return lo, lo + (1 + sum((n - 1) * abs(s) for n, s in zip(t.shape, t.stride()))) * t.element_size()

    (a0, a1), (b0, b1) = span(a), span(b)
    return a0 < b1 and b0 < a1


def _overlap(np, a, b) -> bool:
    try:  # exact, but bounded: interleaved strides (`x[::2]`, `x[1::2]`) share no element
        return bool(np.shares_memory(a, b, max_work=100_000))
    except np.exceptions.TooHardError:
        return bool(np.may_share_memory(a, b))


def _part_links(items: list, objs: dict, links: dict) -> None:
    """Add {name: {"part": {"of": owner, "path": "a.b"}}} to `links` for variables that are a part of
    another variable's object which its codec rebuilds itself and lists in `Encoded.parts` ({id: dotted
    attribute path}): `cfg` that a transformers model holds as `model.config`, the base model a PEFT
    model wraps, one of its layers or parameters (codecs.transformers). Restored as that attribute of
    the restored owner, so they stay one object, and the owner keeps its safe codec."""
    owners = [(n, e.parts) for n, e in items if n not in links and getattr(e, "parts", None)]
    if not owners:
        return
    for name, _ in items:
        if name in links:
            continue
        k = id(objs[name])
        for owner, parts in owners:
            if owner != name and k in parts:
                links[name] = {"part": {"of": owner, "path": parts[k]}}
                break


_LEAF_CODECS = ("numpy", "pandas", "torch.tensor", "plain")


def _referable(members: list, enc: dict, objs: dict, reached_by: dict) -> list:
    """The members of a group stored in a safe codec that the others reach only as a whole (an array,
    a frame, a tensor, a plain list held by an object): they keep their codec, and the group's pickle
    refers to them by name. [] when no pickle would remain, or when a member reaches inside one."""
    leaves = [n for n in members if enc[n].codec in _LEAF_CODECS]
    rest = [n for n in members if n not in leaves]
    if not leaves or not rest:
        return []
    others: set = set()
    for n in rest:
        others.update(reached_by.get(n, ()))
    seen: set = set()
    others = {k for k in others if k > 0}  # storage keys (storage_key): a view is rebuilt on the leaf by name
    for n in leaves:
        mine = {k for k in reached_by.get(n, ()) if k > 0} | {id(objs[n])}
        if (mine - {id(objs[n])}) & others or mine & seen:
            return []  # shares something inside the leaf, or with another leaf: only one pickle keeps that
        seen |= mine
    lib = library_objects()
    return [n for n in leaves if id(objs[n]) not in lib]


def _model_owners(members: list, enc: dict, objs: dict, reached_by: dict) -> list:
    """The members of a group stored in a codec that rebuilds its object's parts itself (a
    transformers model: `Encoded.parts`) and that reach no other member's object nor each other's."""
    tops = {id(objs[n]) for n in members}
    seen: set = set()
    out = []
    for n in members:
        if not getattr(enc[n], "parts", None):
            continue
        mine = set(reached_by.get(n, ()))
        if (mine - {id(objs[n])}) & tops or mine & seen:
            return []
        seen |= mine
        out.append(n)
    return out


def _internals(models: list) -> set:
    """Ids of the torch modules' own dictionaries: a pickle that reached one of them copied a piece of a
    model that a part reference does not restore."""
    out: set = set()
    for m in models:
        for mod in m.modules():
            d = mod.__dict__
            out.add(id(d))
            out.update(id(d[k]) for k in ("_parameters", "_buffers", "_modules") if k in d)
    return out


def link(items: list, objs: dict) -> list:
    """`items` ([(name, Encoded)], each encoded alone) with shared objects kept shared: groups of
    names whose objects meet re-encoded as one pickle, array aliases and views as references.
    `objs` maps each name to its object. Names that share nothing keep their own encoding."""
    from . import Encoded, pickled

    if len(items) < 2:
        return items
    enc = dict(items)
    links = _links(items, objs)
    _unkept_views(items, objs, links)
    uf = _Union()
    owner: dict = {}
    keep = []  # the reached objects stay alive until grouping is done: their ids cannot be reused
    library = None
    reached_by: dict = {}
    for name, e in items:
        uf.find(name)
        if name in links:
            continue
        reached = _reach(name, e, objs[name])
        keep.append(reached)
        reached_by[name] = reached
        for k in reached:
            first = owner.setdefault(k, name)
            if first != name:
                if k < 0 and enc[first].codec in _LEAF_CODECS and e.codec in _LEAF_CODECS:
                    continue  # two arrays (tensors) over one memory: a view link keeps them, or a note names them
                if library is None:
                    library = library_objects()
                if k not in library:
                    uf.union(first, name)
    pickled_sets: dict = {}
    for name, _ in items:
        if name not in links:
            pickled_sets.setdefault(uf.find(name), []).append(name)
    for name, m in links.items():  # an alias, view or part belongs to the group of what it refers to
        uf.union(base_of(m), name)
    units: dict = {}
    for name, _ in items:
        units.setdefault(uf.find(name), []).append(name)

    out = dict(items)
    for root, members in pickled_sets.items():
        if len(members) < 2:
            continue
        unit = units[uf.find(members[0])]
        leaves = _referable(members, enc, objs, reached_by)
        if leaves:  # they keep their own safe codec; the pickle of the others refers to them by name
            for n in leaves:
                e = enc[n]
                out[n] = Encoded(e.codec, {**e.meta, "group": unit}, e.buffers, e.type_name,
                                 {**e.summary, "shares_with": [m for m in unit if m != n]}, e.params, e.summarize,
                                 notes=e.notes, size=e.size, reach=e.reach)
            members = [n for n in members if n not in leaves]
        refs = {id(objs[n]): n for n in leaves}
        g = None
        owners = _model_owners(members, enc, objs, reached_by)
        if owners and len(owners) < len(members):
            # models that rebuild themselves (codecs.transformers): the others' pickle (an optimizer)
            # refers to them, and to their parameters, layers and config, by name and attribute path
            rest = [n for n in members if n not in owners]
            orefs = dict(refs)
            for n in owners:
                orefs.update((k, (n, path)) for k, path in enc[n].parts.items())
                orefs[id(objs[n])] = n
            try:
                g = pickled.encode_with({n: objs[n] for n in rest}, "pickle", refs=orefs,
                                        ref_objs={n: objs[n] for n in leaves})
            except NotStorable:
                g = None
            if g is not None and not (set(g.reach) & _internals([objs[n] for n in owners])):
                for n in owners:
                    e = enc[n]
                    out[n] = Encoded(e.codec, {**e.meta, "group": unit}, e.buffers, e.type_name,
                                     {**e.summary, "shares_with": [m for m in unit if m != n]}, e.params,
                                     e.summarize, notes=e.notes, size=e.size, reach=e.reach)
                leaves = leaves + owners
                members = rest
            else:  # the pickle reached inside a model past its parts: all of it is pickled together
                g = None
        try:
            if g is None:
                g = pickled.encode_with({n: objs[n] for n in members}, "pickle", refs=refs or None,
                                        ref_objs={n: objs[n] for n in leaves})
        except NotStorable as err:
            for n in members:  # stored alone as before; the user is told sharing is not kept
                enc[n].notes.append(("", f"shares objects with {', '.join(m for m in members if m != n)} "
                                     f"but they cannot be stored together ({err}); restored, they will not share"))
            continue
        for n in members:
            e = enc[n]
            if getattr(e, "parts", None):  # a model that had its own safe format: say why it is pickled now
                e.notes.append(("", f"stored pickled together with {', '.join(m for m in members if m != n)}, "
                                    "which share objects with it beyond its parameters, layers and config; "
                                    "from a bundle it restores only with --trust"))
            codec = e.codec if e.codec in pickled.NAMES else "pickle"
            meta = {**g.meta, "members": members, "key": n, "group": unit}
            if leaves:
                meta["refs"] = leaves
            if "weights" in e.meta:  # a torch module's weights, located in the group's tensor table
                from . import tensors

                meta["weights"] = tensors.weight_table(objs[n], g.meta["tensors"])
            others = [m for m in unit if m != n]
            out[n] = Encoded(codec, meta, g.buffers, e.type_name, {**e.summary, "shares_with": others}, e.params,
                             e.summarize, notes=e.notes,
                             size=e.nbytes, reach=e.reach)
            out[n].referenced = {m: objs[m] for m in leaves}  # what a trial load resolves the names to
    for name, m in links.items():
        e = enc[name]
        unit = units[uf.find(name)]
        # the codec's own meta stays (a bundle checks it as for any row of that codec). An alias
        # points at its original's buffers (the same objects: hashed and written once) so the row
        # stands alone for audits; a restore does not read them. A view has no bytes of its own.
        others = [x for x in unit if x != name]
        if "alias" in m or "part" in m:  # a part of a model: the owner's row (its codec says how it is rebuilt)
            b = out[m["alias"] if "alias" in m else m["part"]["of"]]
            # a part is not the owner: never read as the owner's member of a pickled group
            own = b.meta if "alias" in m else {k: v for k, v in b.meta.items() if k not in ("members", "key", "refs")}
            out[name] = Encoded(b.codec, {**own, **m, "group": unit}, b.buffers, e.type_name,
                                {**e.summary, "shares_with": others}, e.params, e.summarize, notes=e.notes,
                                size=e.nbytes)
            continue
        meta = {**e.meta, **m, "group": unit}
        out[name] = Encoded(e.codec, meta, [], e.type_name, {**e.summary, "shares_with": others}, e.params,
                            e.summarize, notes=e.notes, size=e.nbytes)
    for name, unit in ((n, units[uf.find(n)]) for n, _ in items):
        if len(unit) > 1 and name not in links and "group" not in out[name].meta:
            e = out[name]  # an array others are views of: its own encoding, restored with them
            out[name] = Encoded(e.codec, {**e.meta, "group": unit}, e.buffers, e.type_name,
                                {**e.summary, "shares_with": [x for x in unit if x != name]}, e.params,
                                e.summarize, notes=e.notes, size=e.size)
    return [(n, out[n]) for n, _ in items]


def _shallow(obj) -> set:
    """Ids an object refers to directly, plus a torch module's parameters and buffers and an
    optimizer's parameters: enough to tell that a variable not asked for shares state with one that
    is, without pickling it."""
    out = {id(obj)}
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(obj, torch.nn.Module):
            out.update(id(t) for t in obj.parameters())
            out.update(id(t) for t in obj.buffers())
            out.update(id(m) for m in obj.modules())
        elif isinstance(obj, torch.optim.Optimizer):
            out.update(id(t) for g in obj.param_groups for t in g["params"])
    if type(obj) in (list, tuple) and len(obj) < 10000:
        out.update(id(x) for x in obj if shareable(x))
    elif type(obj) is dict and len(obj) < 10000:
        out.update(id(x) for x in obj.values() if shareable(x))
    elif shareable(obj) and isinstance(getattr(obj, "__dict__", None), dict):
        out.update(id(x) for x in list(obj.__dict__.values())[:10000] if shareable(x))
    return out


def companions(items: list, objs: dict, candidates: list) -> list:
    """[(name, object, the asked-for name it shares with)] for variables of `candidates` not among
    `items` that share objects with them: a snapshot of named variables stores these too, so that
    `%mv_snapshot opt` does not store an optimizer whose parameters no stored model holds."""
    reached: dict = {}
    for name, e in items:
        for k in (e.reach if e.reach is not None else _reach(name, e, objs[name])):
            reached.setdefault(k, name)
        reached.setdefault(id(objs[name]), name)
        base = getattr(objs[name], "base", None)  # a numpy view (`w = a[2:6]`): the array it views
        while type(base).__module__ == "numpy" and hasattr(base, "strides"):
            reached.setdefault(id(base), name)
            base = getattr(base, "base", None)
    # to a fixed point: a variable sharing with a companion shares with the group too
    # (`%mv_snapshot params` finds `opt` through the parameters, then `sched` through `opt`)
    pending = {n: (o, _shallow(o)) for n, o in candidates if n not in objs}
    out = []
    while True:
        found = [(n, o, hit) for n, (o, ids) in pending.items()
                 for hit in [next((reached[k] for k in ids if k in reached), None)] if hit is not None]
        if not found:
            return out
        for n, o, hit in found:
            out.append((n, o, hit))
            for k in pending.pop(n)[1]:
                reached.setdefault(k, n)


def base_of(meta: dict) -> str | None:
    """The variable an array alias or view refers to (its content hash includes that one's)."""
    if "alias" in meta:
        return meta["alias"]
    part = meta.get("part")
    if isinstance(part, dict):
        return part.get("of")
    view = meta.get("view", meta.get("tview"))
    return view.get("of") if isinstance(view, dict) else None


# -- restore -----------------------------------------------------------------------------------
def unit(meta: dict) -> list:
    """The names restored together with this variable (itself included)."""
    g = meta.get("group")
    return [n for n in g if isinstance(n, str)] if isinstance(g, list) else []


def is_member(codec: str, meta: dict) -> bool:
    """Is this row one name of a group stored together? Pickle-based codecs, and "group.skops" (a
    group shipped in a bundle as one skops file, estimators.group_to_skops) can be (a safe codec's
    row never makes restore unpickle, whatever its meta says)."""
    from . import pickled

    return "members" in meta and (codec in pickled.NAMES or codec == "group.skops")


def decode_payload(codec: str, meta: dict, buffers: list, ctx) -> dict:
    """{name: object} of a whole group (pickled, or one skops file: loaded through skops, which
    allows only what restore.check_trust's audit accepted unless `ctx.trusted`)."""
    from . import estimators, pickled

    if codec == "group.skops":
        payload = estimators.decode(codec, meta, buffers, ctx)
    else:
        payload = pickled.decode(codec, meta, buffers, ctx)
    if not isinstance(payload, dict) or meta.get("key") not in payload:
        raise DecodeError("its group's stored data does not hold it")
    return payload


_MISSING = object()


def decode_link(meta: dict, ctx, base=_MISSING):
    """A variable that is another variable (the object restored for that one), or an array view on
    the array restored for the variable it refers to (or on `base`: a view inside a pickle)."""

    from .arrays import _tuplify

    base_name = base_of(meta)
    if base is _MISSING:
        base = ctx.objects.get(base_name, _MISSING)
    if base is _MISSING and ctx is not None and getattr(ctx, "resolve", None) is not None:
        base = ctx.objects[base_name] = ctx.resolve(base_name)
    if base is _MISSING:
        raise DecodeError(f"it is {base_name!r} under another name, which is not restored with it")
    if "alias" in meta:
        return base
    if "part" in meta:
        return _part(base, meta["part"].get("path"), base_name)
    if "tview" in meta:
        return _tensor_view(base, meta, base_name)
    import numpy as np

    if not isinstance(base, np.ndarray):
        raise DecodeError(f"it is a view of {base_name!r}, which is not restored with it")
    view = meta["view"]
    dtype = np.lib.format.descr_to_dtype(_tuplify(meta["descr"]))
    flat = base if base.flags.c_contiguous else base.T
    mem = flat.reshape(-1).view(np.uint8)
    try:
        out = np.ndarray(tuple(meta["shape"]), dtype=dtype, buffer=mem, offset=int(view["offset"]),
                         strides=tuple(int(s) for s in view["strides"]))
    except (TypeError, ValueError) as e:
        raise DecodeError(f"its view of {base_name!r} does not fit that array ({e})") from None
    if view.get("readonly"):
        out.flags.writeable = False
    return out


def _tensor_view(base, meta: dict, base_name: str):
    """The tensor a "tview" link stands for: a view on the storage of the restored `base`."""
    import torch

    if not isinstance(base, torch.Tensor):
        raise DecodeError(f"it is a view of {base_name!r}, which is not restored with it")
    view = meta["tview"]
    shape, stride = tuple(int(n) for n in meta["shape"]), tuple(int(x) for x in view["stride"])
    offset = int(view["offset"])
    extent = sum((n - 1) * st for n, st in zip(shape, stride)) if all(shape) else -1
    if offset < 0 or min(stride, default=0) < 0 or offset + extent >= base.numel() or not base.is_contiguous():
        raise DecodeError(f"its view of {base_name!r} does not fit that tensor")
    grad = bool(meta.get("requires_grad"))
    if base.requires_grad and not grad:  # `v = w.detach()[0]`: the same memory, outside autograd
        base = base.detach()
    out = torch.as_strided(base, shape, stride, base.storage_offset() + offset)
    if grad and not out.requires_grad:
        out.requires_grad_(True)
    return out


def _part(owner, path, owner_name: str):
    """`owner.a.b` for path "a.b" (a part link): public attribute names only, so stored data can reach
    nothing but what the restored object exposes as its parts."""
    if not isinstance(path, str) or not path or len(path) > 1000:
        raise DecodeError("malformed part reference")
    obj = owner
    for step in path.split("."):
        if not (step.isdigit() or step.isidentifier()) or step.startswith("_"):  # "h.0.attn": ModuleList items
            raise DecodeError(f"malformed part reference {path[:60]!r}")
        try:
            obj = obj[step] if type(obj) is dict else getattr(obj, step)  # a dict: a PEFT model's peft_config
        except Exception:
            raise DecodeError(f"{owner_name} restored has no part {path[:60]!r}") from None
    return obj
