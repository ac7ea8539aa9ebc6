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
    d = d.contiguous()
    meta = {
        "dtype": str(d.dtype).removeprefix("torch."),
        "shape": list(d.shape),
        "param": isinstance(t, torch.nn.Parameter),
        "requires_grad": bool(t.requires_grad),
        "device": t.device.type,
    }
    if d.numel() == 0:
        return meta, memoryview(b"")
    return meta, memoryview(d.reshape(-1).view(torch.uint8).numpy())


def rebuild(meta: dict, buf):
    import torch

    dtype = getattr(torch, meta["dtype"])
    shape = tuple(meta["shape"])
    if len(buf) == 0:
        t = torch.empty(shape, dtype=dtype)
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
        return Encoded("torch.tensor", meta, [buf], type_name(obj), summary)
    if isinstance(obj, torch.nn.Module):
        enc = pickled.encode_with(obj, "torch.module")
        enc.summarize = lambda: module_summary(obj)  # only when the module's content changed
        return enc
    if isinstance(obj, torch.optim.Optimizer):
        hp = optimizer_params(obj)
        return pickled.encode_with(obj, "torch.optimizer", {"class": type(obj).__name__, **hp}, hp)
    return pickled.encode_with(obj, "pickle")


def decode(codec, meta, buffers, ctx):
    return rebuild(meta, buffers[0])


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
