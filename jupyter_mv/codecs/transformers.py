"""Hugging Face objects in their own safe formats: transformers models (and PEFT adapters on them)
as config JSON + weights in the safetensors layout, `GenerationConfig` as its JSON, tokenizers as
their own serialized files (tokenizer.json + tokenizer_config.json). Nothing here is pickled, so a
version from a bundle or a remote restores without trust when the classes ship with transformers /
peft / tokenizers.

Models ("transformers.model", "peft.model"). Stored as
- meta["model"]: the architecture (the public name of the class in `transformers`), its config
  (`config.to_dict()`, the same JSON as `config.json`), the attention implementation, the
  GenerationConfig, `name_or_path`, and for a PeftModel the PEFT class and each adapter's config (the
  JSON of `adapter_config.json`), the active adapter and whether the adapters are disabled
  (`disable_adapter_layers()`, or a snapshot inside `with model.disable_adapter():`);
- meta["tensors"]: one entry per distinct tensor (dtype, shape, requires_grad, Parameter or buffer),
  in the order of `model.named_modules()`, and buffer i its raw bytes: row-major, little-endian,
  exactly the bytes safetensors writes for it (https://huggingface.co/docs/safetensors, "Format").
  Each tensor is its own buffer, chunked and deduplicated by the blob store like every array: a base
  model that did not change between two LoRA versions is hashed again but never written again;
- meta["keys"]: {"module.path.name": tensor index} for every parameter and buffer, duplicates
  included (remove_duplicate=False), so tied weights (GPT-2's lm_head and wte) come back as one
  Parameter, and weights a user untied come back untied;
- meta["train"]: the root module's `training` flag and the modules whose flag differs.

Restore builds the skeleton the way `from_pretrained` does (the architecture class from its config,
weight initialisation skipped; for PEFT `PeftModel(base, config)` and `add_adapter`), then puts every
stored tensor in its place (the stored bytes themselves, no copy, no cast) and checks that every
parameter and buffer of the skeleton was filled. Class names are looked up only among the public
names of transformers / peft, never imported from a module named by the data, and `trust_remote_code`
is never passed.

Also kept: what from_pretrained leaves on a model (each weight's `_is_hf_initialized`, `_use_kernels`
False, no weight conversions), torch.nn.Buffer's persistence flags, activation checkpointing (the
checkpointed layers, torch checkpoint's arguments, input-embedding hooks), each module's name_or_path.

Exactness: a model holds more than config + weights when a user sets attributes, registers hooks or
monkey-patches a module. Encoding compares the model's structure (module types, parameter and buffer
names, scalar attributes and short scalar lists/dicts by value, hooks) with that of a skeleton built
from the stored description (built once per description on the meta device, cached); a model that
differs (a merged adapter, a tensor outside parameters and buffers, an attribute you set) is not this
codec's: the torch module codec (pickle) stores it whole instead, with a note naming why (FALLBACK),
so a restore never silently drops state.

Other variables that are parts of a model (its config, the base a PEFT model wraps, a layer, a weight,
a LoraConfig it holds) are listed in `Encoded.parts`; codecs.groups stores them as references to those
attributes of the restored model, and lets an optimizer's pickle refer to the model's parameters.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import sys
import tempfile
import threading

from ..errors import DecodeError, NotStorable
from . import Encoded, loaded, type_name

NAMES = ("transformers.model", "peft.model", "transformers.config", "transformers.generation_config",
         "transformers.tokenizer", "tokenizers.tokenizer")

# the note (codecs.encode) when an object of these libraries is stored by another codec instead (pickled)
FALLBACK = "stored pickled, not in its own safe format ({reason}); from a bundle it restores only with --trust"

# the files of a tokenizer directory we keep (save_pretrained writes these; all JSON or plain text)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                    "chat_template.jinja", "chat_template.json",
                    "vocab.json", "merges.txt", "vocab.txt")  # the legacy text vocabularies transformers 4 adds


# (module, class): an object of these classes exists only once its module is loaded, so a snapshot never
# imports them itself. transformers' top-level names are lazy: touching `transformers.PreTrainedModel` in
# a notebook that only imported a tokenizer would import torch and every modeling module (seconds)
_CLASSES = (("transformers.modeling_utils", "PreTrainedModel"),
            ("transformers.configuration_utils", "PretrainedConfig"),
            ("transformers.generation.configuration_utils", "GenerationConfig"),
            ("transformers.tokenization_utils_base", "PreTrainedTokenizerBase"), ("peft.peft_model", "PeftModel"))


def match(obj) -> bool:
    for module, name in _CLASSES:
        cls = _loaded_class(module, name)
        if cls is not None and isinstance(obj, cls):
            return True
    if loaded("tokenizers"):
        import tokenizers

        if type(obj) is tokenizers.Tokenizer:
            return True
    return False


def _loaded_class(module: str, name: str):
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) else None


def encode(obj) -> Encoded:
    def isa(i: int) -> bool:
        cls = _loaded_class(*_CLASSES[i])
        return cls is not None and isinstance(obj, cls)

    if isa(4):
        return _encode_model(obj, peft_model=True)
    if isa(0):
        return _encode_model(obj, peft_model=False)
    if isa(2):  # before PretrainedConfig: not a subclass of it, but checked first all the same
        return _encode_generation_config(obj)
    if isa(1):
        return _encode_config(obj)
    if isa(3):
        return _encode_tokenizer(obj)
    return _encode_raw_tokenizer(obj)


def decode(codec, meta, buffers, ctx):
    if codec in ("transformers.model", "peft.model"):
        return _decode_model(codec, meta, buffers)
    if codec == "transformers.config":
        return _config(_dict(meta.get("config"), "model config"))
    if codec == "transformers.generation_config":
        import transformers

        return transformers.GenerationConfig.from_dict(_dict(meta.get("config"), "generation config"))
    if codec == "transformers.tokenizer":
        return _decode_tokenizer(meta, buffers)
    if codec == "tokenizers.tokenizer":
        import tokenizers

        return tokenizers.Tokenizer.from_str(bytes(buffers[0]).decode("utf-8"))
    raise DecodeError(f"unknown codec {codec!r}")


# -- classes ------------------------------------------------------------------------------------
def _public(module_name: str, obj_type: type) -> str | None:
    """The public name of `obj_type` in package `module_name` (transformers, peft) when the package
    exports that very class, else None (a subclass defined in the notebook, remote code)."""
    pkg = sys.modules.get(module_name)
    if pkg is None:
        return None
    try:
        found = getattr(pkg, obj_type.__name__, None)
    except Exception:  # transformers' lazy module raises for names whose backend is missing
        return None
    return obj_type.__name__ if found is obj_type else None


def _class(package: str, name, base: type, what: str) -> type:
    """The class exported as `package.name`, a subclass of `base`; DecodeError otherwise. Only public
    names of the package: a stored name cannot make us import anything else."""
    import importlib

    if not isinstance(name, str) or not name.isidentifier():
        raise DecodeError(f"malformed {what} class name {str(name)[:40]!r}")
    pkg = importlib.import_module(package)
    try:
        cls = getattr(pkg, name)
    except (AttributeError, ImportError, RuntimeError):
        raise DecodeError(f"{package} here has no {what} class {name!r} (is a newer {package} needed?)") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise DecodeError(f"{package}.{name} is not a {what} class")
    return cls


def _dict(d, what: str) -> dict:
    if not isinstance(d, dict):
        raise DecodeError(f"malformed {what}")
    return d


def _json_value(v):
    """`v` as plain JSON (peft configs hold sets and enums)."""
    if isinstance(v, enum.Enum):
        return _json_value(v.value)
    if isinstance(v, (set, frozenset)):
        return sorted((_json_value(x) for x in v), key=repr)
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if hasattr(v, "to_dict"):
        return _json_value(v.to_dict())
    raise NotStorable(f"holds a {type_name(v)} in its config, which has no JSON form")


# -- models ---------------------------------------------------------------------------------------
def _encode_model(obj, peft_model: bool) -> Encoded:
    import torch

    from . import tensors as tensor_codec

    desc = _describe(obj, peft_model)
    table, buffers, keys, reach, reach_tensors = [], [], {}, {}, []
    index: dict = {}
    storages: dict = {}
    for path, mod in obj.named_modules(remove_duplicate=False):
        reach[id(mod)] = mod
        loose = next((k for k, v in mod.__dict__.items() if isinstance(v, torch.Tensor)), None)
        if loose is not None:  # a tensor outside parameters and buffers: a rebuild would make a fresh one
            raise NotStorable(f"{path or 'the model'} holds tensor {loose!r} outside its parameters and buffers")
        for kind in ("_parameters", "_buffers"):
            for name, t in getattr(mod, kind).items():
                if t is None:
                    continue
                key = f"{path}.{name}" if path else name
                i = index.get(id(t))
                if i is None:
                    if type(t) not in (torch.Tensor, torch.nn.Parameter, getattr(torch.nn, "Buffer", torch.Tensor)):
                        raise NotStorable(f"{key} is a {type_name(t)} (quantized or distributed weights)")
                    if t.device.type == "meta":
                        raise NotStorable(f"{key} is on the meta device: it holds no data")
                    ptr = (t.device.type, t.untyped_storage().data_ptr())
                    if t.numel() and ptr in storages:  # two tensors viewing one storage: kept only by pickle
                        raise NotStorable(f"{key} shares memory with {storages[ptr]}")
                    storages[ptr] = key
                    meta, buf = tensor_codec.describe(t)
                    meta["buffer"] = kind == "_buffers"
                    extra = vars(t) if hasattr(t, "__dict__") else {}
                    if extra:  # from_pretrained marks each loaded weight, torch.nn.Buffer its persistence
                        if not all(_tensor_attr(k, v) for k, v in extra.items()):
                            raise NotStorable(f"{key} carries attributes ({', '.join(sorted(extra))[:60]})")
                        meta["attrs"] = dict(extra)
                    i = index[id(t)] = len(table)
                    table.append(meta)
                    reach_tensors.append(t)
                    buffers.append(buf)
                    reach[id(t)] = t
                keys[key] = i
    _check_structure(obj, desc)
    differ = [p for p, m in obj.named_modules() if m.training != obj.training]
    # transformers marks the modules whose weights it initialised (init_weights skips them afterwards)
    initialised = [p for p, m in obj.named_modules() if m.__dict__.get("_is_hf_initialized") is True]
    # where the weights came from, as each transformers module recorded it (a hub id, a local path)
    names = {p: m.__dict__["name_or_path"] for p, m in obj.named_modules()
             if isinstance(m.__dict__.get("name_or_path"), str)}
    meta = {"model": desc, "tensors": table, "keys": keys, "train": {"training": bool(obj.training), "differ": differ},
            "initialised": initialised, "name_or_path": names}
    marks = _load_marks(obj)
    if marks:
        meta["loaded"] = marks
    codec = "peft.model" if peft_model else "transformers.model"
    base = desc.get("base", desc)
    # what other variables may be (a config, the wrapped base model, a layer, a weight): restored as these
    # attributes of the restored model, so they stay one object with it (codecs.groups part links)
    parts: dict = {}
    pretrained = _pretrained()
    for path, mod in obj.named_modules():  # shortest paths first: the root's config is "config"
        if path:
            parts.setdefault(id(mod), path)
        if isinstance(mod, pretrained):
            for attr in ("config", "generation_config"):
                sub = mod.__dict__.get(attr)
                if sub is not None:
                    parts.setdefault(id(sub), f"{path}.{attr}" if path else attr)
    for key, i in keys.items():
        if not any(s.startswith("_") for s in key.split(".")):
            parts.setdefault(id(reach_tensors[i]), key)
    held = {}  # objects the model holds that other variables may hold too: they group with it (codecs.groups)
    for path, mod in obj.named_modules():
        if isinstance(mod, pretrained):
            for attr in ("config", "generation_config"):
                sub = mod.__dict__.get(attr)
                if sub is not None:
                    held[id(sub)] = sub
    if peft_model:  # `lcfg = LoraConfig(...); model = get_peft_model(base, lcfg)`: the model holds lcfg itself
        for name, c in obj.peft_config.items():
            held[id(c)] = c
            if isinstance(name, str) and name.isidentifier() and not name.startswith("_"):
                parts.setdefault(id(c), f"peft_config.{name}")
    reach.update(held)
    nparams = sum(t.numel() for t in obj.parameters())
    summary = {"class": desc["class"], "architecture": base["class"], "model_type": base["config"].get("model_type"),
               "parameters": int(nparams), "dtype": str(_first_dtype(obj)).removeprefix("torch.")}
    params = {}
    if _hub_id(base.get("name_or_path")):  # a local directory is where it was read, not which model it is
        params["base_model"] = base["name_or_path"]
    if base.get("revision"):
        params["base_revision"] = base["revision"]
    if peft_model:
        trainable = sum(t.numel() for t in obj.parameters() if t.requires_grad)
        summary["adapters"] = {n: {"peft_type": c.get("peft_type"), "r": c.get("r"),
                                   "target_modules": c.get("target_modules")} for n, c in desc["adapters"].items()}
        summary["trainable_parameters"] = int(trainable)
        if desc.get("disabled") or desc.get("adapters_disabled"):  # shown in a diff: "adapters_disabled: None -> True"
            summary["adapters_disabled"] = True
        params["adapter"] = desc["active"] if isinstance(desc["active"], str) else ",".join(desc["active"])
    enc = Encoded(codec, meta, buffers, type_name(obj), summary, params, reach=reach)
    enc.parts = parts
    return enc


def _tensor_attr(k, v) -> bool:
    """A tensor's own attribute we keep: a plain scalar under a name torch.Tensor does not define (so
    stored data can never overwrite `data`, `grad` or a method)."""
    import torch

    return isinstance(k, str) and k.isidentifier() and not k.startswith("__") and not hasattr(torch.Tensor, k) \
        and (v is None or type(v) in (bool, int, str))


def _hub_id(name) -> bool:
    """Does `name` (a name_or_path) look like a hub repository id rather than a local path?"""
    return isinstance(name, str) and bool(name) and not os.path.isabs(name) and not name.startswith(".") \
        and not os.path.exists(name) and name.count("/") <= 1


def _pretrained():
    import transformers

    return transformers.PreTrainedModel


def _first_dtype(model):
    for p in model.parameters():
        return p.dtype
    return None


def _describe(obj, peft_model: bool) -> dict:
    """The JSON that rebuilds `obj`'s skeleton (see the module docstring). NotStorable when a class
    does not ship with transformers / peft (the torch module codec stores it pickled instead)."""
    if peft_model:
        base_model = obj.base_model
        inner = base_model.model
        name = _public("peft", type(obj))
        if name is None:
            raise NotStorable(f"{type_name(obj)} is not a PEFT model class peft exports")
        tuner = type(base_model).__name__
        adapters = {n: _json_value(c.to_dict()) for n, c in obj.peft_config.items()}
        base = _describe(inner, False)
        for c in adapters.values():  # a base loaded from the hub: its id and revision come from the adapter too
            base.setdefault("name_or_path", c.get("base_model_name_or_path") or None)
            if not base.get("revision") and c.get("revision"):
                base["revision"] = c["revision"]
        active = obj.active_adapter
        out = {"class": name, "tuner": tuner, "base": base, "adapters": adapters,
               "active": active if isinstance(active, str) else list(active)}
        # disable_adapter_layers() (or a snapshot inside `with model.disable_adapter():`) flags every adapter
        # layer: kept, so the rebuilt model runs as the base did. Layers flagged differently fail the
        # structure check and the model is stored whole instead.
        flags = {m.__dict__["_disable_adapters"] for m in obj.modules() if "_disable_adapters" in m.__dict__}
        if flags == {True}:
            out["disabled"] = True
        if obj.__dict__.get("_adapters_disabled") is True:  # inside `with model.disable_adapter():`
            out["adapters_disabled"] = True
        return out
    name = _public("transformers", type(obj))
    if name is None:
        raise NotStorable(f"{type_name(obj)} is not an architecture class transformers exports "
                          "(defined in the notebook or loaded with trust_remote_code)")
    cfg = obj.config
    cfg_name = _public("transformers", type(cfg))
    if cfg_name is None:
        raise NotStorable(f"its config {type_name(cfg)} is not a class transformers exports")
    out = {"class": name, "config_class": cfg_name, "config": _json_value(cfg.to_dict()),
           "attn_implementation": _attn(cfg)}
    gen = getattr(obj, "generation_config", None)
    if gen is not None:
        out["generation_config"] = _json_value(gen.to_dict())
    ck = _checkpointing(obj)
    if ck is not None:
        out["checkpointing"] = ck
    nop = getattr(obj, "name_or_path", None) or getattr(cfg, "_name_or_path", None)
    if isinstance(nop, str) and nop:
        out["name_or_path"] = nop
    rev = getattr(cfg, "_commit_hash", None)
    if isinstance(rev, str) and rev:
        out["revision"] = rev
    return out


def _checkpointing(model) -> dict | None:
    """Activation (gradient) checkpointing as set by `gradient_checkpointing_enable`: the layers that
    checkpoint, the keyword arguments of torch's `checkpoint` it calls, and the modules that made their
    input embeddings require grads (`enable_input_require_grads`, a forward hook). None when never set.
    NotStorable for a checkpoint function other than torch's."""
    import functools

    from torch.utils import checkpoint as tuc

    layers, fn, hooked = [], None, []
    for path, m in model.named_modules():
        d = m.__dict__
        if d.get("gradient_checkpointing") is True:
            layers.append(path)
        if d.get("_gradient_checkpointing_func") is not None:
            fn = d["_gradient_checkpointing_func"]
        if "_require_grads_hook" in d:
            hooked.append(path)
    if fn is None and not hooked:  # never enabled (some models set the flag False in __init__: not ours)
        return None
    kwargs: dict = {}
    if fn is not None and fn is not tuc.checkpoint:
        if not (isinstance(fn, functools.partial) and fn.func is tuc.checkpoint and not fn.args):
            raise NotStorable("its activation checkpointing function is not torch.utils.checkpoint.checkpoint")
        kwargs = _json_value(dict(fn.keywords))
    return {"layers": layers, "function": fn is not None, "kwargs": kwargs, "input_require_grads": hooked}


def _restore_checkpointing(model, ck: dict) -> None:
    import functools

    from torch.utils import checkpoint as tuc

    kwargs = _dict(ck.get("kwargs") or {}, "checkpointing arguments")
    fn = functools.partial(tuc.checkpoint, **kwargs) if kwargs else tuc.checkpoint
    layers = set(ck.get("layers") or [])
    if ck.get("function"):  # gradient_checkpointing_enable/disable ran: it set both on these modules
        for path, m in model.named_modules():
            if hasattr(m, "gradient_checkpointing"):  # what _set_gradient_checkpointing sets, on the same modules
                if ck.get("function"):
                    m._gradient_checkpointing_func = fn
                m.gradient_checkpointing = path in layers
    modules = dict(model.named_modules())
    for path in ck.get("input_require_grads") or []:
        m = modules.get(path) if isinstance(path, str) else None
        if m is None or not hasattr(m, "enable_input_require_grads"):
            raise DecodeError(f"the model built from its config has no module {str(path)[:60]!r} to hook")
        m.enable_input_require_grads()


@contextlib.contextmanager
def _no_init():
    """Skip weight initialisation while building a skeleton whose weights are replaced right after
    (transformers' own context for from_pretrained; moved between releases)."""
    ctx = None
    try:
        from transformers.initialization import no_init_weights as ctx  # transformers 5
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights as ctx  # transformers 4
        except ImportError:
            ctx = None
    if ctx is None:
        yield
    else:
        with ctx():
            yield


def _build(desc: dict, on_meta: bool = False):
    """The skeleton described by `desc` (a _describe result): weights uninitialised (or on the meta
    device, for the structure check)."""
    import warnings

    import torch
    import transformers

    if "tuner" in desc:
        import peft

        base = _build(_dict(desc.get("base"), "base model"), on_meta)
        cls = _class("peft", desc.get("class"), peft.PeftModel, "PEFT model")
        adapters = _dict(desc.get("adapters"), "adapter table")
        if not adapters:
            raise DecodeError("a PEFT model with no adapter")
        model = None
        for name, c in adapters.items():
            cfg = peft.PeftConfig.from_peft_type(**_dict(c, "adapter config"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # peft repeats its notes about the config (fan_in_fan_out)
                if model is None:
                    model = cls(base, cfg, adapter_name=name, low_cpu_mem_usage=on_meta)
                else:
                    model.add_adapter(name, cfg, low_cpu_mem_usage=on_meta)
        active = desc.get("active")
        if isinstance(active, str) and active in adapters and active != model.active_adapter:
            model.set_adapter(active)
        if desc.get("disabled") is True:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # peft's note that a LoRA bias stays on
                model.base_model.disable_adapter_layers()
        if desc.get("adapters_disabled") is True:
            model._adapters_disabled = True
        return model
    cls = _class("transformers", desc.get("class"), transformers.PreTrainedModel, "model")
    cfg_cls = _class("transformers", desc.get("config_class"), transformers.PretrainedConfig, "config")
    config = cfg_cls.from_dict(_plain_config(_dict(desc.get("config"), "model config")))
    kwargs = {}
    attn = desc.get("attn_implementation")
    if isinstance(attn, str) and attn in _ATTN:
        kwargs["attn_implementation"] = attn
    with contextlib.ExitStack() as stack:
        stack.enter_context(_no_init())
        if on_meta:
            stack.enter_context(torch.device("meta"))
        build = getattr(cls, "_from_config", None)
        model = build(config, **kwargs) if build is not None else cls(config)
    ck = desc.get("checkpointing")
    if isinstance(ck, dict):
        _restore_checkpointing(model, ck)
    gen = desc.get("generation_config")
    if isinstance(gen, dict):
        model.generation_config = transformers.GenerationConfig.from_dict(dict(gen))
    nop = desc.get("name_or_path")
    if isinstance(nop, str) and hasattr(model, "name_or_path"):
        try:
            model.name_or_path = nop
        except AttributeError:
            pass
    rev = desc.get("revision")
    if isinstance(rev, str):
        model.config._commit_hash = rev
    return model


def _decode_model(codec: str, meta: dict, buffers: list):
    import torch

    from . import tensors as tensor_codec

    desc = _dict(meta.get("model"), "model description")
    table = meta.get("tensors")
    keys = _dict(meta.get("keys"), "weight table")
    if not isinstance(table, list) or len(buffers) != len(table):
        raise DecodeError("its tensor table does not match its data")
    if (codec == "peft.model") != ("tuner" in desc):
        raise DecodeError("its codec and its description disagree")
    model = _build(desc)
    made = []
    for t, buf in zip(table, buffers):
        t = _dict(t, "tensor entry")
        expected = _nbytes(t)
        if expected != len(memoryview(buf).cast("B")):
            raise DecodeError("a stored tensor's size does not match its shape and dtype")
        x = tensor_codec.rebuild(t, buf)
        dev = t.get("device")
        if isinstance(dev, str) and dev != "cpu" and _available(dev):
            moved = x.detach().to(dev)
            x = torch.nn.Parameter(moved, requires_grad=x.requires_grad) if isinstance(x, torch.nn.Parameter) else moved
        for k, v in _dict(t.get("attrs") or {}, "tensor attributes").items():
            if not _tensor_attr(k, v):
                raise DecodeError(f"malformed tensor attribute {str(k)[:40]!r}")
            setattr(x, k, v)
        made.append(x)
    filled = set()
    modules = dict(model.named_modules(remove_duplicate=False))
    for key, i in keys.items():
        path, _, name = key.rpartition(".")
        mod = modules.get(path)
        if mod is None or type(i) is not int or not 0 <= i < len(made):
            raise DecodeError(f"the model built from its config has no module for {key!r}")
        if name in mod._parameters:
            x = made[i]
            if not isinstance(x, torch.nn.Parameter):
                raise DecodeError(f"{key} is a parameter, stored as a buffer")
            mod._parameters[name] = x
        elif name in mod._buffers:
            mod._buffers[name] = made[i]
        else:
            raise DecodeError(f"the model built from its config has no weight {key!r}")
        filled.add(key)
    for path, mod in modules.items():  # every weight of the skeleton must hold stored bytes, none left uninitialised
        for kind in ("_parameters", "_buffers"):
            for name, t in getattr(mod, kind).items():
                key = f"{path}.{name}" if path else name
                if t is not None and key not in filled:
                    raise DecodeError(f"its stored weights lack {key!r}, which the model built from its config has")
    _set_load_marks(modules, meta.get("loaded"))
    for p, n in _dict(meta.get("name_or_path") or {}, "name table").items():
        if isinstance(n, str) and p in modules:
            modules[p].name_or_path = n
    for p in meta.get("initialised") or []:
        if isinstance(p, str) and p in modules:
            modules[p]._is_hf_initialized = True
    train = meta.get("train") or {}
    model.train(bool(train.get("training", False)))
    for p in train.get("differ") or []:
        if isinstance(p, str) and p in modules:
            modules[p].training = not model.training
    return model


def state_for(meta: dict, buffers: list, into) -> dict:
    """{state_dict key: tensor} of a stored model (codecs "transformers.model" / "peft.model") for
    loading into the live module `into` (tensors.load_weights): every parameter and buffer key,
    but buffers `into` does not save in its state_dict (non-persistent ones: rotary frequencies) left
    out. Read-only views on `buffers`; nothing is built or unpickled. DecodeError when malformed."""
    from . import tensors as tensor_codec

    table, keys = meta.get("tensors"), _dict(meta.get("keys"), "weight table")
    if not isinstance(table, list) or len(table) != len(buffers):
        raise DecodeError("its tensor table does not match its data")
    live = set(into.state_dict().keys()) if hasattr(into, "state_dict") else set()
    out = {}
    for key, i in keys.items():
        if type(i) is not int or not 0 <= i < len(table):
            raise DecodeError("malformed weight table")
        t = _dict(table[i], "tensor entry")
        if t.get("buffer") and key not in live:
            continue
        if _nbytes(t) != len(memoryview(buffers[i]).cast("B")):
            raise DecodeError("a stored tensor's size does not match its shape and dtype")
        out[key] = tensor_codec.rebuild({**t, "param": False, "requires_grad": False}, buffers[i])
    return out


_ITEMSIZE = {"bool": 1, "uint8": 1, "int8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8,
             "uint64": 8, "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "complex32": 4, "complex64": 8,
             "complex128": 16}


def _nbytes(t: dict) -> int:
    import math

    shape = t.get("shape")
    dtype = t.get("dtype")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise DecodeError("malformed tensor shape")
    size = _ITEMSIZE.get(dtype, 1 if isinstance(dtype, str) and dtype.startswith("float8") else None)
    if size is None:
        raise DecodeError(f"unknown tensor dtype {str(dtype)[:30]!r}")
    return math.prod(shape) * size


def _available(dev: str) -> bool:
    import torch

    mod = getattr(torch, dev, None)
    try:
        return bool(mod is not None and mod.is_available())
    except Exception:
        return False


# -- what from_pretrained leaves on a model ---------------------------------------------------------
# set by from_pretrained, absent from a model built from its config; kept when they hold the values
# that mean "nothing special" (no hub kernels, no weight conversions for save_pretrained to undo)
_LOAD_MARKS = ("_use_kernels", "_weight_conversions")


def _load_marks(model) -> dict:
    """{module path: {attribute: value}} of _LOAD_MARKS; NotStorable for a value a rebuild cannot give
    back (kernels from the hub in use, weights converted at load)."""
    out = {}
    for path, m in model.named_modules():
        d = m.__dict__
        marks = {k: d[k] for k in _LOAD_MARKS if k in d}
        if not marks:
            continue
        if marks.get("_use_kernels") not in (None, False):
            raise NotStorable(f"{path or 'the model'} runs hub kernels (use_kernels=True)")
        conv = marks.get("_weight_conversions")
        if conv is not None and not (isinstance(conv, list) and not conv):
            raise NotStorable(f"{path or 'the model'}'s weights were converted when loaded "
                              "(save_pretrained undoes that)")
        out[path] = {k: (False if k == "_use_kernels" else []) for k in marks}
    return out


def _set_load_marks(modules: dict, marks) -> None:
    for path, m in _dict(marks or {}, "load marks").items():
        mod = modules.get(path) if isinstance(path, str) else None
        if mod is None or not isinstance(m, dict):
            raise DecodeError(f"the model built from its config has no module {str(path)[:60]!r}")
        if m.get("_use_kernels") is False:
            mod._use_kernels = False
        if m.get("_weight_conversions") == []:
            mod._weight_conversions = []


# -- structure check ---------------------------------------------------------------------------
_SCALARS = (bool, int, float, str, type(None))
_REFERENCE: dict = {}
_LOCK = threading.Lock()


def _small_plain(v) -> bool:
    """A short list/tuple/set/dict of scalars (a dict's keys too): compared by value, not only by type."""
    if type(v) not in (list, tuple, set, frozenset, dict) or len(v) > 64:
        return False
    items = list(v.items()) if type(v) is dict else [(None, x) for x in v]
    return all(type(a) in _SCALARS and type(b) in _SCALARS for a, b in items)


def _structure(model) -> list:
    """What of `model` a rebuild from its config must reproduce besides weights: per module its type,
    parameter and buffer names, non-persistent buffers, hooks, and attributes (names; values when
    scalars). `training` is stored separately; tensors are compared by the weight table."""
    out = []
    for path, mod in model.named_modules(remove_duplicate=False):
        d = mod.__dict__
        attrs = []
        for k, v in d.items():
            if k in ("training", "_parameters", "_buffers", "_modules", "_is_hf_initialized", "name_or_path",
                     *_LOAD_MARKS) \
                    or k.startswith("_forward") \
                    or k.startswith("_backward") or k.startswith("_state_dict") or k.startswith("_load_state"):
                continue
            if type(v) in _SCALARS or _small_plain(v):  # values too: peft's merged_adapters, scaling, r
                attrs.append((k, repr(sorted(v, key=repr) if type(v) in (set, frozenset) else v)))
            elif type(v) is enum.Enum or isinstance(v, enum.Enum):
                attrs.append((k, repr(v)))
            else:
                attrs.append((k, type(v).__qualname__))
        hooks = sum(len(d.get(h) or ()) for h in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                                                   "_backward_pre_hooks", "_state_dict_hooks",
                                                   "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks"))
        out.append((path, type(mod).__module__ + "." + type(mod).__qualname__, sorted(attrs),
                    sorted(mod._parameters), sorted(mod._buffers),
                    sorted(getattr(mod, "_non_persistent_buffers_set", ())), hooks))
    return out


def _check_structure(obj, desc: dict) -> None:
    """NotStorable naming the first difference when `obj` is not what its description rebuilds."""
    key = json.dumps(desc, sort_keys=True)
    with _LOCK:
        ref = _REFERENCE.get(key)
    if ref is None:
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with _quiet():
                    ref = _structure(_build(desc, on_meta=True))
        except NotStorable:
            raise
        except Exception as e:
            raise NotStorable(f"it cannot be rebuilt from its config ({type(e).__name__}: {str(e)[:100]})") from None
        with _LOCK:
            if len(_REFERENCE) > 16:
                _REFERENCE.clear()
            _REFERENCE[key] = ref
    mine = _structure(obj)
    if mine == ref:
        return
    for a, b in zip(mine, ref + [None] * len(mine)):
        if a != b:
            where = a[0] or "the model"
            if b is None or a[0] != b[0] or a[1] != b[1]:
                raise NotStorable(f"its module {where} is not what its config builds")
            extra = sorted(set(a[2]) - set(b[2]))
            if extra:
                raise NotStorable(f"{where} holds state beyond its config and weights ({extra[0][0]})")
            if a[6] != b[6]:
                raise NotStorable(f"{where} has hooks registered")
            raise NotStorable(f"{where} differs from what its config builds")
    raise NotStorable("its modules differ from what its config builds")


@contextlib.contextmanager
def _quiet():
    """transformers logs config warnings (a bos_token_id outside a tiny vocabulary) on every build."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


# -- model config --------------------------------------------------------------------------------
def _encode_config(obj) -> Encoded:
    name = _public("transformers", type(obj))
    if name is None:
        raise NotStorable(f"{type_name(obj)} is not a config class transformers exports")
    d = {"class": name, "config": _json_value(obj.to_dict()), "attn_implementation": _attn(obj)}
    if isinstance(getattr(obj, "_commit_hash", None), str):
        d["revision"] = obj._commit_hash
    summary = {"model_type": d["config"].get("model_type")}
    return Encoded("transformers.config", {"config": d}, [], type_name(obj), summary)


def _config(d: dict):
    import transformers

    cls = _class("transformers", d.get("class"), transformers.PretrainedConfig, "config")
    cfg = cls.from_dict(_plain_config(_dict(d.get("config"), "model config")))
    attn = d.get("attn_implementation")
    if isinstance(attn, str) and attn in _ATTN:
        cfg._attn_implementation = attn
    if isinstance(d.get("revision"), str):
        cfg._commit_hash = d["revision"]
    return cfg


_ATTN = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")
# config keys naming code to run: an attention or experts implementation may be a hub repository of
# kernels that transformers downloads and runs. Stored data never chooses one; the stored attention
# implementation is applied only when it is one of _ATTN
_CODE_KEYS = ("attn_implementation", "_attn_implementation", "experts_implementation", "_experts_implementation")


def _attn(cfg) -> str | None:
    """The config's attention implementation; NotStorable for one restore would not apply (a kernel
    from the hub: stored data never makes a restore download and run code)."""
    attn = getattr(cfg, "_attn_implementation", None)
    if attn is not None and attn not in _ATTN:
        raise NotStorable(f"its attention implementation {str(attn)[:60]!r} is not one transformers ships")
    return attn


def _plain_config(d: dict) -> dict:
    """A stored config dict without the keys that choose code to run, at every nesting level (the
    sub-configs of composite models are nested dicts)."""
    return {k: (_plain_config(v) if isinstance(v, dict) else v) for k, v in d.items() if k not in _CODE_KEYS}


# -- generation config ---------------------------------------------------------------------------
def _encode_generation_config(obj) -> Encoded:
    if _public("transformers", type(obj)) is None:
        raise NotStorable(f"{type_name(obj)} is not the GenerationConfig transformers exports")
    d = _json_value(obj.to_dict())
    summary = {k: d[k] for k in ("do_sample", "temperature", "top_p", "top_k", "max_new_tokens",
                                 "repetition_penalty", "num_beams") if k in d and d[k] is not None}
    return Encoded("transformers.generation_config", {"config": d}, [], type_name(obj), summary)


# -- tokenizers ----------------------------------------------------------------------------------
def _encode_tokenizer(obj) -> Encoded:
    name = _public("transformers", type(obj))
    if name is None:
        raise NotStorable(f"{type_name(obj)} is not a tokenizer class transformers exports")
    if not getattr(obj, "is_fast", False):
        raise NotStorable("a slow (Python) tokenizer has no tokenizer.json")
    with tempfile.TemporaryDirectory(prefix="jupyter_mv-tok-") as d:
        obj.save_pretrained(d)
        files = sorted(os.listdir(d))
        unknown = [f for f in files if f not in _TOKENIZER_FILES]
        if unknown:  # a vocabulary file of its own format: not ours to vouch for
            raise NotStorable(f"its saved form holds {unknown[0]}, which this codec does not know")
        buffers = []
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                buffers.append(memoryview(fh.read()))
    summary = {"class": name, "vocab_size": len(obj)}
    nop = getattr(obj, "name_or_path", None)
    params = {"tokenizer": nop} if _hub_id(nop) else {}
    # settings changed after loading (`tok.padding_side = "left"`, a chat template) that save_pretrained
    # writes only when they were given to the constructor: kept as they are now
    attrs = {k: v for k, v in vars(obj).items() if k not in _TOKENIZER_SKIP and _plain_setting(v)}
    return Encoded("transformers.tokenizer", {"class": name, "files": files, "attrs": attrs}, buffers,
                   type_name(obj), summary, params)


_TOKENIZER_SKIP = ("init_kwargs", "init_inputs", "_tokenizer", "deprecation_warnings", "files_loaded", "name_or_path")


def _plain_setting(v) -> bool:
    return v is None or type(v) in (bool, int, str) or type(v) is float and v == v and abs(v) != float("inf") \
        or type(v) is list and all(type(x) is str for x in v)


def _decode_tokenizer(meta: dict, buffers: list):
    import transformers

    files = meta.get("files")
    if not isinstance(files, list) or len(files) != len(buffers) or not all(f in _TOKENIZER_FILES for f in files):
        raise DecodeError("malformed tokenizer file table")
    cls = _class("transformers", meta.get("class"), transformers.PreTrainedTokenizerBase, "tokenizer")
    with tempfile.TemporaryDirectory(prefix="jupyter_mv-tok-") as d:
        for f, b in zip(files, buffers):
            with open(os.path.join(d, f), "wb") as fh:
                fh.write(memoryview(b))
        with _quiet():
            tok = cls.from_pretrained(d, local_files_only=True, trust_remote_code=False)
    tok.name_or_path = _stored_name(buffers, files) or tok.name_or_path
    have = vars(tok)
    for k, v in _dict(meta.get("attrs") or {}, "tokenizer settings").items():
        # only settings the loaded tokenizer has, with a value of the same kind: data sets no new attribute
        if k in have and k not in _TOKENIZER_SKIP and _plain_setting(v) and (
                have[k] is None or v is None or type(have[k]) is type(v)):
            setattr(tok, k, v)
    return tok


def _stored_name(buffers, files) -> str | None:
    try:
        cfg = json.loads(bytes(buffers[files.index("tokenizer_config.json")]))
    except (ValueError, KeyError):
        return None
    n = cfg.get("name_or_path") if isinstance(cfg, dict) else None
    return n if isinstance(n, str) else None


def _encode_raw_tokenizer(obj) -> Encoded:
    import tokenizers

    if type(obj) is not tokenizers.Tokenizer:
        raise NotStorable(f"no Hugging Face codec for {type_name(obj)}")
    text = obj.to_str()
    return Encoded("tokenizers.tokenizer", {}, [memoryview(text.encode("utf-8"))], type_name(obj),
                   {"vocab_size": obj.get_vocab_size()})


def meta_problem(codec: str, meta: dict) -> str | None:
    """Why `meta` of a row of one of these codecs is malformed (bundle import validation), or None."""
    if codec in ("transformers.model", "peft.model"):
        if not isinstance(meta.get("model"), dict) or not isinstance(meta.get("keys"), dict) \
                or not isinstance(meta.get("tensors"), list):
            return "malformed model description"
        n = len(meta["tensors"])
        if not all(isinstance(k, str) and type(i) is int and 0 <= i < n for k, i in meta["keys"].items()):
            return "malformed weight table"
    if codec == "transformers.tokenizer":
        files = meta.get("files")
        if not isinstance(files, list) or not all(f in _TOKENIZER_FILES for f in files):
            return "malformed tokenizer file table"
    if codec in ("transformers.config", "transformers.generation_config") and not isinstance(meta.get("config"), dict):
        return "malformed generation config"
    return None
