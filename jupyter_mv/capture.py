"""What a snapshot captures: the variables worth storing, their encodings, params, the executed
cells with their outputs, the environment, and the notebook the kernel belongs to."""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import xxhash

from . import codecs, config, credentials, evals, prompts
from .codecs import handles
from .errors import LiveHandle, NotStorable
from .model import Cell, Skipped

UNNAMED = "unnamed notebook"
_IPYTHON_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}
MAX_PARAM_STR = 200


# -- content hashes (a variable's identity across snapshots) ----------------------------------
def content_hash(codec: str, meta: dict, manifests: list[dict]) -> str:
    """xxh3-128 hex digest of a variable's codec, meta and chunk manifests: equal exactly when the
    stored bytes and their reading are equal (object ids in torch meta are not content)."""
    meta = dict(meta)
    if "tensors" in meta:  # object ids are not content
        meta["tensors"] = [{k: v for k, v in t.items() if k != "uid"} for t in meta["tensors"]]
    h = xxhash.xxh3_128()
    h.update(json.dumps([codec, meta, manifests], sort_keys=True, default=repr).encode())
    return h.hexdigest()


def unique_buffers(items: list) -> tuple[list, dict]:
    """(buffers to hash and write, {name: their positions}): the members of a group (codecs.groups)
    share one set of buffers, hashed and written once."""
    buffers, pos, slots = [], {}, {}
    for vname, e in items:
        slots[vname] = []
        for b in e.buffers:
            k = pos.get(id(b))
            if k is None:
                k = pos[id(b)] = len(buffers)
                buffers.append(b)
            slots[vname].append(k)
    return buffers, slots


def content_hashes(items: list, manifests: list, slots: dict) -> dict:
    """{name: content hash}. An array alias or view has no bytes of its own: its hash includes the
    hash of the array it refers to, so it changes when that array's content does."""
    out = {n: content_hash(e.codec, e.meta, [manifests[j] for j in slots[n]]) for n, e in items}
    for n, e in items:
        base = codecs.groups.base_of(e.meta)
        if base in out:
            out[n] = xxhash.xxh3_128_hexdigest((out[n] + out[base]).encode())
    return out


# -- variables ---------------------------------------------------------------------------------
def is_candidate(name: str, obj) -> bool:
    """Would an argument-less snapshot consider this name? (Not: internals, modules, imported code.)"""
    if name.startswith("_") or name in _IPYTHON_NAMES:
        return False
    if isinstance(obj, types.ModuleType):
        return False
    if isinstance(obj, functools.partial):
        # a partial is data: the arguments bound to it here (`p3 = partial(add, 3)`); its __module__
        # is functools', which would make it look like imported code and drop it silently
        return True
    if isinstance(obj, (types.FunctionType, type, types.BuiltinFunctionType, types.MethodType)) \
            or callable(obj) and isinstance(obj, type):
        # imported functions and classes are code, not state; notebook-defined ones are kept, and so
        # are classes of no module (sympy's `f = Function('f')`): made at run time, no import finds them
        mod = getattr(obj, "__module__", None)
        if mod is None and isinstance(obj, type):
            return True
        return mod == "__main__" and not isinstance(obj, types.BuiltinFunctionType)
    mod = type(obj).__module__ or ""
    if mod.startswith(("IPython.", "ipykernel.", "jupyter_mv")):
        return False
    return True


def select(namespace: dict, names: list[str] | None, hidden: set | None = None) -> list[tuple[str, object]]:
    """The (name, object) pairs to store. Named ones must exist (raises UnknownVariable)."""
    from .errors import UnknownVariable

    if names:
        missing = [n for n in names if n not in namespace]
        if missing:
            raise UnknownVariable(f"no variable named {', '.join(repr(m) for m in missing)} in the namespace; "
                                  "check the spelling or run the cell that defines it")
        return [(n, namespace[n]) for n in dict.fromkeys(names)]
    hidden = hidden or set()
    return [(n, o) for n, o in list(namespace.items()) if n not in hidden and is_candidate(n, o)]


# the shell's own objects under their IPython names: its live history (restoring a copy would
# detach `Out` from the shell: later results no longer reach it) and its callables
_SHELL_OWN = {"In": "IPython's input history", "_ih": "IPython's input history",
              "Out": "IPython's output history", "_oh": "IPython's output history",
              "_dh": "IPython's directory history", "exit": "IPython's exit", "quit": "IPython's exit",
              "get_ipython": "IPython's get_ipython", "open": "IPython's open"}


def shell_own(pairs: list, hidden: set | None) -> tuple[list, list]:
    """(pairs without the shell's own objects, [Skipped] naming them): `%mv_snapshot In Out` stores
    neither. Only names the shell defined itself (`hidden`, IPython's user_ns_hidden) count."""
    hidden = hidden or set()
    keep, skipped = [], []
    for n, o in pairs:
        if n in _SHELL_OWN and n in hidden and not isinstance(o, (str, int, float)):
            what = _SHELL_OWN[n]
            if "history" in what:
                why = (f"{what}: the shell keeps it and a restored copy would replace it (later results would "
                       f"not reach it); to keep its contents, store a copy (`saved = {n}.copy()`)")
            else:
                why = f"{what}: part of the shell, not notebook state; every kernel has its own"
            skipped.append(Skipped(n, why))
        else:
            keep.append((n, o))
    return keep, skipped


@dataclass
class Encoding:
    """The variables a snapshot could encode, and those it had to skip."""

    items: list = field(default_factory=list)  # (name, codecs.Encoded)
    skipped: list = field(default_factory=list)  # Skipped
    notes: list = field(default_factory=list)  # Skipped-shaped (name, text): stored, but changed in a known way


def encode_all(pairs: list[tuple[str, object]], evals_named: Iterable[str] = ()) -> Encoding:
    """Encode each variable. One that holds a live handle at any depth (an open file, a socket, a
    lock... see codecs.handles) is skipped with the path to it (`loader.fh: an open file ...`).
    Prompts and eval tables get their record in the summary (see describe_llm); `evals_named`: names
    the user declared eval tables (UsageError when one cannot be)."""
    out = Encoding()
    for name, obj in pairs:
        live = handles.kind(obj)  # top level: no need to start pickling
        try:
            if live is not None:
                raise LiveHandle(f"{live[0]}: {live[1]}")
            e = codecs.encode(obj)
        except LiveHandle as h:
            out.skipped.append(Skipped(name, f"{name}{h.path}: {h.what}"))
            continue
        except NotStorable as e:
            out.skipped.append(Skipped(name, f"{codecs.type_name(obj)}: {e}"))
            continue
        out.items.append((name, e))
        out.notes.extend(Skipped(name, f"{name}{path}: {text}") for path, text in e.notes)
    # names whose objects meet are stored (and restored) together, so sharing survives (codecs.groups)
    seen = {n: len(e.notes) for n, e in out.items}
    out.items = codecs.groups.link(out.items, dict(pairs))
    for n, e in out.items:
        out.notes.extend(Skipped(n, f"{n}{path}: {text}") for path, text in e.notes[seen[n]:])
    objects, named = dict(pairs), set(evals_named)
    for n, e in out.items:
        e.summary.update(describe_llm(n, objects[n], n in named))
        if "eval" not in e.summary and evals.name_hinted(n) and evals.is_frame(objects[n]):
            why = evals.why_not(n, objects[n])  # named like one (eval_*): say why it is not, once per session
            if why:
                out.notes.append(Skipped(n, f"{n}: named like an eval table but not one ({why}): no eval "
                                            "metrics, and %mv_diff compares it as a plain table"))
    return out


LLM_KEYS = ("prompt", "eval")  # summary keys of prompts.py / evals.py records


def describe_llm(name: str, obj, eval_named: bool = False) -> dict:
    """{"prompt": record} for a prompt template, {"eval": record} for an eval table, else {}."""
    out = {}
    p = prompts.describe(name, obj)
    if p is not None:
        out["prompt"] = p
    if eval_named:
        ev = evals.describe(name, obj, forced=True)  # UsageError: the user said it is one
    elif evals.is_frame(obj):
        try:
            ev = evals.describe(name, obj)
        except Exception:  # recognising is a bonus: an odd frame (unhashable cells...) is just data
            ev = None
    else:
        ev = None
    if ev is not None:
        out["eval"] = ev
    return out


def reuse_summary(previous: dict, enc: "codecs.Encoded", findings=()) -> dict:
    """The summary of a variable whose content did not change since the session's last snapshot: the
    previous one (no costly statistics again), with this snapshot's prompt/eval records (`--eval` may
    name it now, or no longer), masked again when it holds a credential."""
    now = {k: enc.summary[k] for k in LLM_KEYS if k in enc.summary}
    if {k: previous[k] for k in LLM_KEYS if k in previous} == now:
        return previous
    summary = {**{k: v for k, v in previous.items() if k not in LLM_KEYS}, **now}
    return mask_summary(summary, findings) if findings else summary


def eval_metrics(encoding: Encoding) -> dict:
    """{"<var>.<score>": mean} of the eval tables among the encoded variables (evals.metrics)."""
    out: dict = {}
    for n, e in encoding.items:
        if "eval" in e.summary:
            out.update(evals.metrics(n, e.summary["eval"]))
    return out


def companions(namespace: dict, pairs: list, encoding: Encoding, hidden: set | None = None) -> list:
    """For a snapshot of named variables: [(name, object, note)] of the other variables that share
    objects with them (a model whose parameters a named optimizer steps). They are stored too, so no
    restore brings back an optimizer stepping parameters no stored model holds (codecs.groups)."""
    hidden = hidden or set()
    candidates = [(n, o) for n, o in list(namespace.items()) if n not in hidden and is_candidate(n, o)]
    found = codecs.groups.companions(encoding.items, dict(pairs), candidates)
    return [(n, o, Skipped(n, f"{n}: stored too: {via} shares objects with it")) for n, o, via in found]


def stale_references(namespace: dict, replaced: dict, hidden: set | None = None) -> list[tuple[str, str]]:
    """[(name, replaced name)] of the variables a restore did not set that still refer to an object it
    replaced (`opt` made after the version, stepping the parameters of the `model` the restore just
    replaced; `m2 = model`): they now point at the old objects, not the restored ones. `replaced` is
    {name: the object it held before the restore}. A shallow look (codecs.groups._shallow)."""
    hidden = hidden or set()
    old: dict = {}
    for n, o in replaced.items():
        if not codecs.groups.shareable(o):
            continue
        for k in codecs.groups._shallow(o):
            old.setdefault(k, n)
    if not old:
        return []
    out = []
    for n, o in list(namespace.items()):
        if n in replaced or n in hidden or not is_candidate(n, o) or not codecs.groups.shareable(o):
            continue
        try:
            via = next((old[k] for k in codecs.groups._shallow(o) if k in old), None)
        except Exception:  # an object whose attributes fail when inspected: nothing to say about it
            via = None
        if via is not None:
            out.append((n, via))
    return out


def trial_load(enc: "codecs.Encoded") -> str | None:
    """None when a fresh encoding loads back, else why not (see codecs.trial)."""
    from .codecs import trial

    return trial.check(enc) if trial.needs_trial(enc) else None


# Module-level constants named in upper case (`LR = 0.01`, `N_EPOCHS = 5`) are the notebook's
# configuration by Python convention (PEP 8): they become params; loop counters, messages and
# results in lower-case names do not.
_CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")


def is_param_constant(name: str, obj) -> bool:
    """Is this namespace entry a param by the upper-case constant convention (scalar, short,
    finite, not a credential)?"""
    if not _CONSTANT.fullmatch(name) or type(obj) not in (bool, int, float, str):
        return False
    if type(obj) is str and len(obj) > MAX_PARAM_STR:
        return False
    if type(obj) is float and obj != obj:
        return False
    return not credentials.is_credential(name, obj)


def auto_params(namespace: dict, encoding: Encoding, hidden: set | None = None, metrics: dict | None = None) -> dict:
    """The params a snapshot records by itself: hyperparameters of stored models and optimizers
    (scikit-learn `get_params`, torch optimizer param-group settings) and upper-case module-level
    constants of scalar type. Never a credential, never a key that is also a metric.

    A lone model's params are bare keys (`C`); with several, they are `clf.C`, `opt.lr`. Generation
    settings (a transformers GenerationConfig, a dict holding temperature, top_p, ...; see
    prompts.generation_settings) likewise: `temperature`, or `gen_cfg.temperature` with several; an eval
    table's dataset hash is `<var>.dataset` (evals.py)."""
    hidden = hidden or set()
    params: dict = {}
    generation = []
    for n, o in list(namespace.items()):
        if n in hidden or not is_candidate(n, o):
            continue
        if is_param_constant(n, o):
            params[n] = o
        settings = prompts.generation_settings(o)
        if settings:
            generation.append((n, settings))
    for n, settings in generation:
        for k, v in settings.items():
            params[k if len(generation) == 1 else f"{n}.{k}"] = v
    for n, e in encoding.items:
        if "eval" in e.summary:
            params[f"{n}.dataset"] = e.summary["eval"]["dataset_hash"][:16]
    models = [(n, e) for n, e in encoding.items if e.params]
    for n, e in models:
        for k, v in e.params.items():
            if isinstance(v, str) and credentials.is_credential(k, v):
                continue
            params[k if len(models) == 1 else f"{n}.{k}"] = v
    for k in metrics or {}:
        params.pop(k, None)  # a value recorded as a metric is shown once, as a metric
    return params


def credential_params(params: dict) -> list[str]:
    """Keys of params whose value is or holds a credential."""
    return [k for k, v in params.items() if credentials.param_holds_credential(str(k), v)]


def find_credentials(pairs: list[tuple[str, object]]) -> dict[str, list]:
    """{name: [credentials.Finding]} for the variables that hold a credential."""
    out = {}
    for name, obj in pairs:
        found = credentials.scan_object(name, obj)
        if found:
            out[name] = found
    return out


def withhold_credentials(pairs: list[tuple[str, object]], named: bool) -> tuple[list, dict, list]:
    """Split the variables a snapshot considers: (pairs to encode, {name: findings} of those kept
    although they hold a credential, [Skipped] credential variables left out).

    Named variables are stored (the store is the user's own disk) and marked; an argument-less or
    automatic snapshot leaves credential variables out and names them, so a key is never stored
    without the user asking for it."""
    found = find_credentials(pairs)
    if named or not found:
        return pairs, found, []
    skipped = [Skipped(n, f"holds a credential ({', '.join(f.describe() for f in fs[:3])}); argument-less "
                          f"snapshots leave credentials out: name it (%mv_snapshot {n}) to store it, marked")
               for n, fs in found.items()]
    return [(n, o) for n, o in pairs if n not in found], {}, skipped


def mask_summary(summary: dict, findings) -> dict:
    """A summary (reprs, params) with the credential values found in the variable masked."""
    values = [f.value for f in findings]
    if not values:
        return summary

    def walk(x):
        if isinstance(x, str):
            return credentials.mask_text(x, values)
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    out = walk(summary)
    # a repr cut at 80 characters can hold a key's first part only: never show it
    if "repr" in out and any(v[:12] in summary.get("repr", "") for v in values if len(v) >= 12):
        out["repr"] = "(holds a credential)"
    out["credential"] = [f.where for f in findings]
    return out


# -- cells -------------------------------------------------------------------------------------
_CR_LINE = re.compile(r"[^\n]*\r(?=[^\r\n])")  # a line's text up to a `\r` that more text overwrites


def _carriage_returns(old: str, new: str) -> str:
    """Stream text `old + new` as a notebook shows it: `\r` returns to the line's start, so what
    follows overwrites it (tqdm's and `print(..., end='\r')` progress lines show their last state)
    and `\r\n` is a line break. A trailing `\r` is kept: the next chunk overwrites that line.
    Only the last line of `old` can change, so a long stream is not re-scanned per chunk.
    The rule is nbconvert's coalesce_streams preprocessor's (BSD-3-Clause)."""
    if "\r" not in new and not old.endswith("\r"):
        return old + new
    head, sep, line = old.rpartition("\n")
    text = re.sub(r"\r+\n", "\n", line + new)
    return head + sep + _CR_LINE.sub("", text)


_WIDGET = "\0widget:"  # CellLog._displays key of a Jupyter widget's outputs (no display_id has a NUL)
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _widget_model(output: dict) -> str | None:
    """The model id of the Jupyter widget an output shows, else None."""
    if output.get("output_type") not in ("display_data", "execute_result"):
        return None
    view = (output.get("data") or {}).get(_WIDGET_VIEW)
    model = view.get("model_id") if isinstance(view, dict) else None
    return model if isinstance(model, str) else None


def _widget_text(widget) -> str | None:
    """The text/plain ipywidgets' `_repr_mimebundle_` gives the widget now (its repr, cut at 110
    characters). A tqdm bar's repr measures the time elapsed up to *now*, so it would differ at every
    snapshot of a finished bar: its elapsed time is the one of its last refresh, as the bar shows."""
    pbar = getattr(widget, "pbar", None)
    if pbar is not None and hasattr(pbar, "format_meter") and hasattr(pbar, "last_print_t"):
        d = dict(pbar.format_dict)
        d["elapsed"] = pbar.last_print_t - pbar.start_t
        text = pbar.format_meter(**d)
    else:
        bundle = widget._repr_mimebundle_()
        text = bundle.get("text/plain") if isinstance(bundle, dict) else None
    if isinstance(text, str) and len(text) > 110:
        text = text[:110] + "…"
    return text


class CellLog:
    """Executed cells and the outputs they produced, recorded kernel-side (any frontend)."""

    MAX_OUTPUT_BYTES = 4 * 1024 * 1024  # per cell, larger outputs are truncated with a note

    def __init__(self):
        self._order: list = []  # keys, in execution order
        self._cells: dict = {}  # key -> dict(source, execution_count, cell_id, outputs, size)
        self._by_msg: dict = {}  # parent message id -> key
        # display_id -> [(cell key, output index)]: where each display lives, in any cell, so an update
        # (handle.update(), update_display_data) from any later cell rewrites it as the frontend does
        self._displays: dict = {}

    def start(self, source: str, execution_count: int | None, cell_id: str | None = None,
              msg_id: str | None = None) -> str:
        key = cell_id or f"exec-{execution_count}-{len(self._order)}"
        if key in self._cells:
            self._order.remove(key)
        self._order.append(key)
        self._cells[key] = {"source": source, "execution_count": execution_count, "cell_id": cell_id,
                            "outputs": [], "size": 0}
        self._forget_displays(key)
        if msg_id:
            self._by_msg[msg_id] = key
        self.current = key
        return key

    def add(self, output: dict, msg_id: str | None = None, display_id: str | None = None) -> None:
        """Append one output (nbformat dict) to the cell that `msg_id` belongs to (else the running one).
        With `display_id` (a display_data whose `transient` names one) every earlier output of that
        display, in any cell, takes its data too, as in Jupyter frontends and nbclient."""
        key = self._by_msg.get(msg_id) if msg_id else getattr(self, "current", None)
        cell = self._cells.get(key) if key else None
        if display_id and output.get("output_type") in ("display_data", "execute_result"):
            self.update_display(display_id, output.get("data") or {}, output.get("metadata") or {})
        if cell is None:
            return
        if cell.pop("clear_pending", False):  # clear_output(wait=True): cleared when the next output comes
            self._clear_cell(key, cell)
        size = sum(len(str(v)) for v in output.values())
        if cell["size"] + size > self.MAX_OUTPUT_BYTES:
            if not cell.get("truncated"):
                cell["outputs"].append({"output_type": "stream", "name": "stderr",
                                        "text": "[jupyter_mv: further output of this cell not recorded]\n"})
                cell["truncated"] = True
            return
        cell["size"] += size
        outs = cell["outputs"]
        if (output.get("output_type") == "stream" and outs and outs[-1].get("output_type") == "stream"
                and outs[-1].get("name") == output.get("name")):
            outs[-1] = {**outs[-1], "text": _carriage_returns(outs[-1]["text"], output["text"])}
        elif output.get("output_type") == "stream" and "\r" in str(output.get("text", "")):
            outs.append({**output, "text": _carriage_returns("", output["text"])})
        else:
            if display_id and output.get("output_type") in ("display_data", "execute_result"):
                self._displays.setdefault(display_id, []).append((key, len(outs)))
            model = _widget_model(output)
            if model is not None:  # its text follows the live widget (see _refresh_widgets)
                self._displays.setdefault(_WIDGET + model, []).append((key, len(outs)))
            outs.append(output)

    def update_display(self, display_id: str, data: dict, metadata: dict | None = None) -> None:
        """update_display_data: every output showing `display_id` (in any cell) now shows `data`;
        nothing is appended. An unknown display_id changes nothing (as in the frontends)."""
        for key, i in self._displays.get(display_id, []):
            cell = self._cells.get(key)
            if cell is None or i >= len(cell["outputs"]):
                continue
            old = cell["outputs"][i]
            new = {**old, "data": data, "metadata": metadata or {}}
            cell["size"] += sum(len(str(v)) for v in new.values()) - sum(len(str(v)) for v in old.values())
            cell["outputs"][i] = new  # a new dict: versions already taken keep the old one
            cell.pop("cell", None)

    def _forget_displays(self, key) -> None:
        for did in list(self._displays):
            kept = [(k, i) for k, i in self._displays[did] if k != key]
            if kept:
                self._displays[did] = kept
            else:
                del self._displays[did]

    def _clear_cell(self, key, cell: dict) -> None:
        cell["outputs"] = []
        cell["size"] = 0
        cell.pop("truncated", None)
        self._forget_displays(key)

    def finish(self, execution_count: int | None) -> None:
        """The cell that just ran got this execution count (IPython versions differ on when it is set)."""
        cell = self._cells.get(getattr(self, "current", None))
        if cell is not None and execution_count is not None:
            cell["execution_count"] = execution_count

    def clear(self, msg_id: str | None = None, wait: bool = False) -> None:
        """clear_output: the cell's outputs so far are gone — at once, or with `wait` when its next
        output arrives (display updates do not count), as Jupyter frontends and nbclient do it."""
        key = self._by_msg.get(msg_id) if msg_id else getattr(self, "current", None)
        cell = self._cells.get(key) if key else None
        if cell is None:
            return
        if wait:
            cell["clear_pending"] = True
        else:
            cell.pop("clear_pending", None)
            self._clear_cell(key, cell)

    def _refresh_widgets(self) -> None:
        """A widget's output shows the widget's current state (a tqdm bar at 100%, a slider moved
        since), but its text/plain was taken when it was displayed (`0%|          | 0/3`); later
        changes travel as widget messages, not display updates. Its text is taken again from the
        live widget, as ipywidgets' own `_repr_mimebundle_` writes it; a closed widget keeps its own."""
        mod = sys.modules.get("ipywidgets.widgets.widget")  # never imported here: only if the user did
        live = getattr(mod, "_instances", None) if mod is not None else None
        if not live:
            return
        for did, places in list(self._displays.items()):
            if not did.startswith(_WIDGET) or not places:
                continue
            widget = live.get(did[len(_WIDGET):])
            try:
                text = _widget_text(widget) if widget is not None else None
            except Exception:  # a widget's repr is user code: a failing one keeps the recorded text
                text = None
            if not isinstance(text, str):
                continue
            for key, i in places:
                cell = self._cells.get(key)
                if cell is None or i >= len(cell["outputs"]):
                    continue
                old = cell["outputs"][i]
                if (old.get("data") or {}).get("text/plain") != text:
                    cell["outputs"][i] = {**old, "data": {**old["data"], "text/plain": text}}
                    cell.pop("cell", None)

    def cells(self) -> list[Cell]:
        self._refresh_widgets()
        out = []
        for key in self._order:
            c = self._cells[key]
            cell = c.get("cell")
            if cell is None or cell.execution_count != c["execution_count"] or len(cell.outputs) != len(
                    c["outputs"]) or (cell.outputs and cell.outputs[-1] is not c["outputs"][-1]):
                cell = c["cell"] = Cell(source=c["source"], execution_count=c["execution_count"],
                                        cell_id=c["cell_id"], outputs=tuple(c["outputs"]))
            out.append(cell)
        return out


# -- environment -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _packages() -> dict:
    from importlib import metadata

    pk = {}
    for dist in metadata.distributions():
        name, version = _name_version(dist)
        if name:
            pk[name.lower()] = version
    return dict(sorted(pk.items()))


def _name_version(dist) -> tuple[str | None, str | None]:
    """Name and Version from the metadata's header block. `dist.metadata` runs the email parser
    over the whole file (long READMEs included): ~2.5 s for 600 packages, on the first snapshot."""
    try:
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    except Exception:
        text = None
    if text:
        name = version = None
        for line in text.partition("\n\n")[0].splitlines():
            if line.startswith("Name:"):
                name = line[5:].strip()
            elif line.startswith("Version:"):
                version = line[8:].strip()
        if name and version:
            return name, version
    md = dist.metadata  # unusual layouts: the parser's answer
    return (md.get("Name") if md else None), dist.version


_GIT_CACHE: dict = {}
_GIT_TTL = 10.0  # seconds: auto mode snapshots after every cell, git need not run that often


def _git(cwd: Path) -> dict | None:
    hit = _GIT_CACHE.get(cwd)
    if hit is not None and time.monotonic() - hit[0] < _GIT_TTL:
        return hit[1]
    _GIT_CACHE[cwd] = (time.monotonic(), _git_now(cwd))
    return _GIT_CACHE[cwd][1]


def _git_now(cwd: Path) -> dict | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                timeout=3)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=3)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def environment(cwd: Path | None = None) -> dict:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": _packages(),
        "git": _git(cwd or Path.cwd()),
    }


# -- which notebook ----------------------------------------------------------------------------
def notebook_path(namespace: dict | None = None, told: str | None = None, base: Path | None = None) -> str:
    """The notebook this kernel runs, as a path relative to `base` (the store's parent directory)
    when it lies below it. Sources, first that answers: the frontend (`told`), `__vsc_ipynb_file__`,
    config.JupyterMV.notebook (env JUPYTER_MV_NOTEBOOK), JPY_SESSION_NAME; else "unnamed notebook"."""
    base = (base or Path.cwd()).resolve()
    candidates = [told, (namespace or {}).get("__vsc_ipynb_file__"), config.current().notebook,
                  os.environ.get("JPY_SESSION_NAME")]
    for raw in candidates:
        if not raw or not isinstance(raw, str):
            continue
        return normalise_notebook(raw, base)
    return UNNAMED


def normalise_notebook(raw: str, base: Path) -> str:
    p = Path(raw).expanduser()
    if not p.is_absolute():
        # JPY_SESSION_NAME is relative to the server root while the kernel runs in the notebook's folder
        for cand in (Path.cwd() / p, Path.cwd() / p.name):
            if cand.exists():
                p = cand
                break
        else:
            return p.as_posix()
    try:
        return p.resolve().relative_to(base).as_posix()
    except ValueError:
        return p.resolve().as_posix()
