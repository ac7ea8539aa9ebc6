"""torch: tensors as raw bytes + dtype/shape (safe, never pickled); modules and optimizers as a
small pickled skeleton whose tensors are stored the same safe way, so model and optimizer restored
together still share their parameters."""

from __future__ import annotations

from ..errors import NotStorable
from . import Encoded, loaded, type_name

NAMES = ("torch.tensor",)


def match(obj) -> bool:
    if not loaded("torch"):
        return False
    import torch

    return isinstance(obj, (torch.Tensor, torch.nn.Module, torch.optim.Optimizer))


def describe(t) -> tuple[dict, memoryview]:
    """Meta and raw bytes of one tensor (moved to CPU, made contiguous)."""
    import torch

    if t.is_sparse or getattr(t, "is_quantized", False):
        raise NotStorable("sparse and quantized tensors are not supported yet")
    d = t.detach()
    if d.device.type != "cpu":
        d = d.cpu()
    order = _dim_order(d)
    # a dense tensor in another memory layout (channels_last, `w.t()`): its bytes as laid out, and the
    # order of its dimensions, so the restored tensor has the same strides (is_contiguous() unchanged)
    d = d.permute(order) if order is not None else d.contiguous()
    meta = {
        "dtype": str(d.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "param": isinstance(t, torch.nn.Parameter),
        "requires_grad": bool(t.requires_grad),
        "device": t.device.type,
    }
    if order is not None:
        meta["dim_order"] = order
    if d.numel() == 0:
        return meta, memoryview(b"")
    return meta, memoryview(d.reshape(-1).view(torch.uint8).numpy())


def _covers(b, v) -> int | None:
    """Offset in elements of view `v` inside the contiguous tensor `b` when `b`'s storage holds all
    of `v`'s elements (same storage, dtype and device), else None."""
    import torch

    if (type(v) is not torch.Tensor or not isinstance(b, torch.Tensor) or b is v or b.device != v.device
            or v.device.type != "cpu" or b.layout != torch.strided or v.layout != torch.strided
            or b.dtype != v.dtype or not b.is_contiguous() or v.numel() == 0 or min(v.stride(), default=0) < 0
            or b.untyped_storage().data_ptr() != v.untyped_storage().data_ptr()):
        return None
    start = v.storage_offset() - b.storage_offset()
    extent = sum((n - 1) * st for n, st in zip(v.shape, v.stride()))
    return start if 0 <= start and start + extent < b.numel() else None


def view_in(i: int, tensors: list, refs: dict | None) -> dict | None:
    """How a pickle's tensor `tensors[i]` is a view on another one, so a restore keeps them sharing
    storage (`d = {'w': w, 'row': w[0]}`, or `row` of a tensor variable stored on its own): {"view_of":
    index of the largest tensor of the pickle whose storage holds all its elements (the earliest of
    equal ones: it is never a view itself)} or {"view_of_var": name} (a tensor variable of `refs`,
    {name: object}, stored in its own codec, holds its elements: codecs.groups), with {"tview":
    {"offset", "stride"}}; None when it is not one."""
    t = tensors[i]
    best, best_off = None, None
    for name, b in (refs or {}).items():
        off = _covers(b, t)
        if off is not None and (best is None or b.numel() > refs[best].numel()):
            best, best_off = name, off
    if best is not None:
        return {"view_of_var": best, "tview": {"offset": best_off, "stride": list(t.stride())}}
    for j, b in enumerate(tensors):
        if j == i or (b.numel() == t.numel() and j > i):
            continue
        off = _covers(b, t)
        if off is not None and (best is None or b.numel() > tensors[best].numel()):
            best, best_off = j, off
    if best is None:
        return None
    return {"view_of": best, "tview": {"offset": best_off, "stride": list(t.stride())}}


def _dim_order(t) -> list | None:
    """The order of `t`'s dimensions in memory, outermost first, when `t` is dense but not in the
    default (row-major) layout; None for a contiguous tensor and for one that is not dense."""
    if t.dim() < 2 or t.is_contiguous() or t.numel() == 0:
        return None
    try:
        order = list(t.dim_order())
    except Exception:  # not expressible as a dimension order (overlapping, expanded)
        return None
    if order == list(range(t.dim())) or not t.permute(order).is_contiguous():
        return None
    return order


def rebuild(meta: dict, buf):
    import torch

    dtype = getattr(torch, meta["dtype"])
    shape = tuple(meta["shape"])
    order = meta.get("dim_order")
    if order is not None and sorted(order) != list(range(len(shape))):
        raise ValueError(f"malformed dim_order {str(order)[:40]}")
    if len(buf) == 0:
        t = torch.empty(shape, dtype=dtype)
    elif order is not None:  # bytes in memory order: undo the permutation, keeping those strides
        flat = torch.frombuffer(buf, dtype=torch.uint8).view(dtype)
        t = flat.reshape([shape[i] for i in order]).permute([order.index(i) for i in range(len(shape))])
    else:
        t = torch.frombuffer(buf, dtype=torch.uint8).view(dtype).reshape(shape)
    if meta.get("param"):
        return torch.nn.Parameter(t, requires_grad=meta.get("requires_grad", True))
    if meta.get("requires_grad"):
        t.requires_grad_(True)
    return t


def encode(obj) -> Encoded:
    import torch

    from . import pickled

    if isinstance(obj, torch.Tensor) and type(obj) in (torch.Tensor, torch.nn.Parameter):
        meta, buf = describe(obj)
        summary = {"shape": meta["shape"], "dtype": meta["dtype"]}
        notes = [(".grad", GRAD_NOTE)] if obj.is_leaf and obj.grad is not None else []
        return Encoded("torch.tensor", meta, [buf], type_name(obj), summary, notes=notes)
    if isinstance(obj, torch.nn.Module):
        enc = pickled.encode_with(obj, "torch.module")
        with_grad = sum(1 for p in obj.parameters() if p.grad is not None)
        if with_grad:
            enc.notes.append(("", f"the gradients of {with_grad} parameter{'s' * (with_grad > 1)} are not "
                                  "stored: restored, their .grad is None (call backward() again)"))
        enc.meta["weights"] = weight_table(obj, enc.meta["tensors"])
        enc.summarize = lambda: module_summary(obj)  # only when the module's content changed
        return enc
    if isinstance(obj, torch.optim.Optimizer):
        hp = optimizer_params(obj)
        return pickled.encode_with(obj, "torch.optimizer", {"class": type(obj).__name__, **hp}, hp)
    return pickled.encode_with(obj, "pickle")


GRAD_NOTE = "gradients are not stored: restored, .grad is None (call backward() again)"


def decode(codec, meta, buffers, ctx):
    return rebuild(meta, buffers[0])


def weight_table(module, table: list) -> dict:
    """{state_dict key: index into the tensor table}: where each of the module's weights sits
    among the raw tensors stored beside its pickled skeleton, so the weights alone can be loaded
    into a live module without unpickling anything (load_weights). Keys whose tensors are not in
    the table (made up by a custom state_dict hook) are left out and reported missing on load."""
    index = {t.get("uid"): i for i, t in enumerate(table)}
    out = {}
    try:
        state = module.state_dict(keep_vars=True)  # the live Parameters and buffers, not detached copies
    except Exception:  # a custom state_dict that fails: the weights cannot be loaded apart
        return out
    for key, t in state.items():
        i = index.get(id(t))
        if i is not None:
            out[str(key)] = i
    return out


def stored_weights(meta: dict, buffers: list) -> dict:
    """{state_dict key: tensor} of a stored module, from its raw tensors alone (nothing is
    unpickled). NotStorable when the module was stored without a weight table or the table
    does not match the bytes."""
    weights = meta.get("weights")
    if not isinstance(weights, dict):
        raise NotStorable("it was stored before weights could be loaded apart; restore it whole instead")
    table = meta.get("tensors") or []
    tbufs = buffers[1 + meta.get("oob", 0):]
    try:
        return {k: rebuild({**table[i], "param": False, "requires_grad": False}, tbufs[i])
                for k, i in weights.items()}
    except (IndexError, KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise NotStorable(f"its stored weights are malformed ({type(e).__name__})") from None


def load_weights(meta: dict, buffers: list, into, origin: str = "the version", state: dict | None = None):
    """Copy the stored weights of a module (codec "torch.module", raw tensors located by
    meta["weights"]; or `state`, {state_dict key: tensor} another codec read) into the live module
    `into`, in place, without unpickling its skeleton.
    Keys, shapes and dtypes must match `into.state_dict()` exactly; else NotStorable with one
    line naming the missing and unexpected keys and the first mismatches. Returns `into`."""
    import torch

    if not isinstance(into, torch.nn.Module):
        raise NotStorable(f"into= must be a torch.nn.Module, got {type_name(into)}")
    if state is None:
        state = stored_weights(meta, buffers)
    live = into.state_dict()
    missing = [k for k in live if k not in state]
    unexpected = [k for k in state if k not in live]
    wrong = []

    def dims(t) -> str:
        return "x".join(map(str, t.shape)) or "scalar"

    for k, t in state.items():
        here = live.get(k)
        if here is None:
            continue
        if tuple(here.shape) != tuple(t.shape):
            wrong.append(f"{k} is {dims(t)} in {origin}, {dims(here)} here")
        elif here.dtype != t.dtype:  # load_state_dict would cast silently
            wrong.append(f"{k} is {str(t.dtype).removeprefix('torch.')} in {origin}, "
                         f"{str(here.dtype).removeprefix('torch.')} here")
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {', '.join(unexpected[:5])}{' …' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append("; ".join(wrong[:3]) + (" …" if len(wrong) > 3 else ""))
        raise NotStorable(f"the architecture differs: {'; '.join(parts)}")
    with torch.no_grad():
        into.load_state_dict(state, strict=True)  # copies into the live tensors: optimizers keep pointing at them
    return into


def module_summary(m) -> dict:
    layers = {}
    total = 0
    for name, p in m.state_dict().items():
        layers[name] = list(p.shape)
        total += p.numel()
    return {"class": type(m).__name__, "parameters": total, "layers": dict(list(layers.items())[:50])}


def optimizer_params(opt) -> dict:
    out = {}
    if opt.param_groups:
        for k, v in opt.param_groups[0].items():
            if k == "params":
                continue
            if isinstance(v, (bool, int, float, str)) or v is None:
                out[k] = v
            elif isinstance(v, tuple) and all(isinstance(x, (int, float)) for x in v):
                out[k] = list(v)
    return out
