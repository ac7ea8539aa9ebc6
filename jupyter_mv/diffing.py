"""Computing the difference between two versions: params, metrics, variables (with a model-aware
analysis of changed arrays, frames and models), cells and their outputs. `Diff.to_dict()` is a
contract (schemas/diff.schema.json); how a diff shows itself (text, HTML) is diffview.py, which only
reads it."""

from __future__ import annotations

import difflib
import json
import math

from . import evals, prompts
from .compare import named_arrays
from .model import Cell, Diff, Version, VariableRef


def _dict_diff(a: dict, b: dict) -> dict:
    return {
        "added": {k: b[k] for k in b if k not in a},
        "removed": {k: a[k] for k in a if k not in b},
        "changed": {k: [a[k], b[k]] for k in a if k in b and not _same(a[k], b[k])},
        "same": {k: a[k] for k in a if k in b and _same(a[k], b[k])},
    }


def _same(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y and type(x) is type(y)


def _metrics_diff(a: dict, b: dict) -> dict:
    d = _dict_diff(a, b)
    d["changed"] = {k: {"old": o, "new": n, "delta": n - o} for k, (o, n) in d["changed"].items()}
    return d


def _var(v: VariableRef) -> dict:
    return {"name": v.name, "type": v.type_name, "codec": v.codec, "bytes": v.nbytes,
            "hash": v.content_hash, "summary": v.summary}


def _variables_diff(a: list[VariableRef], b: list[VariableRef]) -> dict:
    va, vb = {v.name: v for v in a}, {v.name: v for v in b}
    changed = []
    for n in va:
        if n in vb and va[n].content_hash != vb[n].content_hash:
            old, new = _var(va[n]), _var(vb[n])
            changed.append({"name": n, "old": old, "new": new, "changes": _summary_changes(old, new)})
    return {
        "added": [_var(vb[n]) for n in vb if n not in va],
        "removed": [_var(va[n]) for n in va if n not in vb],
        "changed": changed,
        "same": [n for n in va if n in vb and va[n].content_hash == vb[n].content_hash],
    }


def _summary_changes(old: dict, new: dict) -> dict:
    """Fields of the two summaries (shape, dtype, stats, params…) that differ, as [old, new]."""
    out = {}
    if old["type"] != new["type"]:
        out["type"] = [old["type"], new["type"]]
    so, sn = old["summary"], new["summary"]
    for k in sorted(set(so) | set(sn)):
        if so.get(k) != sn.get(k):
            if isinstance(so.get(k), dict) and isinstance(sn.get(k), dict):
                sub = _dict_diff(so[k], sn[k])
                out[k] = {"added": sub["added"], "removed": sub["removed"], "changed": sub["changed"]}
            else:
                out[k] = [so.get(k), sn.get(k)]
    if old["bytes"] != new["bytes"]:
        out["bytes"] = [old["bytes"], new["bytes"]]
    return out


def _output_text(outputs) -> str:
    parts = []
    for o in outputs:
        t = o.get("output_type")
        if t == "stream":
            parts.append(o.get("text", ""))
        elif t in ("execute_result", "display_data"):
            data = o.get("data", {})
            if "text/plain" in data:
                parts.append(_join(data["text/plain"]) + "\n")
            for mime in sorted(data):
                if mime.startswith("image/"):
                    parts.append(f"[{mime} {len(str(data[mime]))} chars]\n")
        elif t == "error":
            parts.append(f"{o.get('ename')}: {o.get('evalue')}\n")
    return "".join(parts)


def _images(outputs) -> list[dict]:
    """The images among the outputs: [{"mime", "data"}] (base64 for PNG/JPEG, text for SVG)."""
    out = []
    for o in outputs:
        for mime, data in (o.get("data") or {}).items():
            if mime.startswith("image/"):
                out.append({"mime": mime, "data": _join(data)})
    return out


def _join(x) -> str:
    return "".join(x) if isinstance(x, list) else str(x)


def _cells_diff(a: list[Cell], b: list[Cell]) -> list[dict]:
    """Match by cell id when both sides have one, else by position among unmatched cells."""
    out = []
    b_by_id = {c.cell_id: i for i, c in enumerate(b) if c.cell_id}
    matched_b = set()
    pairs = []
    unmatched_a = []
    for i, c in enumerate(a):
        j = b_by_id.get(c.cell_id) if c.cell_id else None
        if j is not None and j not in matched_b:
            pairs.append((i, j))
            matched_b.add(j)
        else:
            unmatched_a.append(i)
    rest_b = [j for j in range(len(b)) if j not in matched_b and not (b[j].cell_id and b[j].cell_id in
                                                                      {c.cell_id for c in a})]
    for i, j in zip(unmatched_a, rest_b):
        if a[i].cell_id and b[j].cell_id and a[i].cell_id != b[j].cell_id:
            continue
        pairs.append((i, j))
        matched_b.add(j)
    paired_a = {i for i, _ in pairs}
    for i, j in sorted(pairs, key=lambda p: (p[1], p[0])):
        ca, cb = a[i], b[j]
        src = list(difflib.unified_diff(ca.source.splitlines(), cb.source.splitlines(), "a", "b", lineterm=""))
        ta, tb = _output_text(ca.outputs), _output_text(cb.outputs)
        outputs_changed = _outputs_key(ca.outputs) != _outputs_key(cb.outputs)
        out_diff = list(difflib.unified_diff(ta.splitlines(), tb.splitlines(), "a", "b", lineterm="")) \
            if outputs_changed else []
        status = "same" if not src and not outputs_changed else "changed"
        entry = {"status": status, "cell_id": cb.cell_id or ca.cell_id, "a_index": i, "b_index": j,
                 "a_source": ca.source, "b_source": cb.source, "source_diff": src,
                 "outputs_changed": outputs_changed, "outputs_diff": out_diff}
        if outputs_changed:
            ia, ib = _images(ca.outputs), _images(cb.outputs)
            if (ia or ib) and ia != ib:
                entry["images"] = {"a": ia, "b": ib}  # shown side by side by the diff view
        out.append(entry)
    for i, c in enumerate(a):
        if i not in paired_a:
            out.append({"status": "removed", "cell_id": c.cell_id, "a_index": i, "b_index": None,
                        "a_source": c.source, "b_source": None, "source_diff": [],
                        "outputs_changed": bool(c.outputs), "outputs_diff": []})
    for j, c in enumerate(b):
        if j not in matched_b:
            out.append({"status": "added", "cell_id": c.cell_id, "a_index": None, "b_index": j,
                        "a_source": None, "b_source": c.source, "source_diff": [],
                        "outputs_changed": bool(c.outputs), "outputs_diff": []})
    return out


def _outputs_key(outputs) -> str:
    """Outputs compared without volatile fields (execution counts, transient display ids)."""
    clean = []
    for o in outputs:
        o = {k: v for k, v in o.items() if k not in ("execution_count", "transient", "metadata")}
        clean.append(o)
    return json.dumps(clean, sort_keys=True, default=repr)


# -- model-aware analysis of changed variables ---------------------------------------------------
# What a summary cannot tell (how many elements changed, which rows, how far each layer moved) needs
# the data. It is loaded only below LOAD_LIMIT bytes a side; above, arrays are compared by their
# stored chunk ids, which costs no blob read at all. Imported pickles are never loaded here.
LOAD_LIMIT = 64 * 1024 * 1024
SAMPLE_ROWS = 5
_ARRAY_CODECS = ("numpy", "torch.tensor")
_PICKLED = ("pickle", "sklearn", "torch.module", "torch.optimizer")
_MODEL_CODECS = ("sklearn", "sklearn.skops", "torch.module", "transformers.model", "peft.model")
_HF_CODECS = ("transformers.model", "peft.model")  # raw tensors by name (codecs.transformers): never unpickled
MAX_LAYERS = 200  # weight rows listed per model


def _load(store, version: Version, name: str):
    from . import codecs

    sv = store.stored_variable(version, name)
    buffers = [store.blobs.read_buffer(m) for m in sv.manifest["buffers"]]
    ctx = codecs.DecodeContext()
    ctx.resolve = lambda base: _load(store, version, base)  # an array view needs the array it views
    return codecs.decode(sv.codec, sv.manifest["meta"], buffers, ctx)


def _chunk_fraction(store, va: Version, vb: Version, name: str) -> float | None:
    """Share of equal-sized chunks whose ids differ: an estimate of the elements changed."""
    ma = store.stored_variable(va, name).manifest["buffers"]
    mb = store.stored_variable(vb, name).manifest["buffers"]
    if not ma or not mb or ma[0]["n"] != mb[0]["n"]:
        return None
    ca, cb = ma[0].get("c") or [], mb[0].get("c") or []
    if not ca or len(ca) != len(cb):
        return None
    return sum(x != y for x, y in zip(ca, cb)) / len(ca)


def _array_analysis(store, va, vb, old: dict, new: dict) -> dict:
    so, sn = old["summary"], new["summary"]
    out: dict = {"kind": "array", "shape": [so.get("shape"), sn.get("shape")],
                 "dtype": [so.get("dtype"), sn.get("dtype")],
                 "stats": {k: [so.get(k), sn.get(k)] for k in ("min", "max", "mean", "std") if k in so or k in sn}}
    if so.get("shape") != sn.get("shape") or so.get("dtype") != sn.get("dtype"):
        out["fraction_changed"] = None  # not element-wise comparable
        return out
    if store is None:
        return out
    if max(old["bytes"], new["bytes"]) <= LOAD_LIMIT:
        import numpy as np

        a, b = _load(store, va, old["name"]), _load(store, vb, new["name"])
        if old["codec"] == "torch.tensor":
            a, b = a.detach().numpy(), b.detach().numpy()
        a, b = np.asarray(a), np.asarray(b)
        if a.size == 0:
            out["fraction_changed"] = 0.0
        else:
            differ = a != b
            if np.issubdtype(a.dtype, np.inexact):
                differ &= ~(np.isnan(a) & np.isnan(b))
            out["fraction_changed"] = float(np.count_nonzero(differ)) / a.size
            out["elements_changed"] = int(np.count_nonzero(differ))
        out["estimated"] = False
    else:
        out["fraction_changed"] = _chunk_fraction(store, va, vb, old["name"])
        out["estimated"] = True  # from chunk ids: an upper bound at chunk granularity
    return out


def _jsonable(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return float(v) if math.isfinite(v) else repr(float(v))
    try:
        import numpy as np

        if isinstance(v, np.generic):
            return _jsonable(v.item())
    except ImportError:  # pragma: no cover
        pass
    return str(v)


def _frame_analysis(store, va, vb, old: dict, new: dict) -> dict:
    so, sn = old["summary"], new["summary"]
    co, cn = so.get("columns") or {}, sn.get("columns") or {}
    out: dict = {"kind": "frame",
                 "rows": [(so.get("shape") or [None])[0], (sn.get("shape") or [None])[0]],
                 "columns_added": {c: t for c, t in cn.items() if c not in co},
                 "columns_removed": {c: t for c, t in co.items() if c not in cn},
                 "columns_retyped": {c: [co[c], cn[c]] for c in co if c in cn and co[c] != cn[c]}}
    if store is None or max(old["bytes"], new["bytes"]) > LOAD_LIMIT:
        return out
    a, b = _load(store, va, old["name"]), _load(store, vb, new["name"])
    if getattr(a, "ndim", 2) == 1:
        a, b = a.to_frame(), b.to_frame()
    if not (a.index.is_unique and b.index.is_unique):
        return out
    common_idx = a.index.intersection(b.index, sort=False)
    cols = [c for c in a.columns if c in b.columns]
    out["rows_added"] = int(len(b.index) - len(common_idx))
    out["rows_removed"] = int(len(a.index) - len(common_idx))
    if not cols or not len(common_idx):
        out["rows_changed"] = 0
        out["sample"] = []
        return out
    left, right = a.loc[common_idx, cols], b.loc[common_idx, cols]
    changed = []
    differ = None
    for c in cols:
        x, y = left[c], right[c]
        try:
            d = ~((x == y) | (x.isna() & y.isna()))
            d = d.fillna(True).astype(bool)
        except (TypeError, ValueError):
            d = x.astype(str) != y.astype(str)
        differ = d if differ is None else (differ | d)
    idx = list(common_idx[differ.to_numpy()])
    out["rows_changed"] = len(idx)
    for i in idx[:SAMPLE_ROWS]:
        ra, rb = left.loc[i], right.loc[i]
        cols_changed = [c for c in cols if str(ra[c]) != str(rb[c])]
        changed.append({"index": _jsonable(i), "old": {c: _jsonable(ra[c]) for c in cols_changed},
                        "new": {c: _jsonable(rb[c]) for c in cols_changed}})
    out["sample"] = changed
    return out


# fitted attributes that describe the data or the fit, not what the model learned: labels, counts,
# feature names (scikit-learn's conventions, https://scikit-learn.org/stable/glossary.html#attributes)
NOT_LEARNED = frozenset(("classes_", "n_iter_", "n_features_in_", "feature_names_in_", "n_samples_seen_",
                         "n_classes_", "n_outputs_", "n_support_", "n_features_", "n_layers_", "t_",
                         "best_index_", "num_batches_tracked"))


def learned_weights(arrays: dict) -> dict:
    """The learned parameters among a model's named arrays (compare.named_arrays): real or complex
    arrays (coefficients, intercepts, layer weights, tree thresholds and values), without the fitted
    attributes in NOT_LEARNED (by their last path part: `steps.clf.classes_` -> `classes_`) and
    without integer/bool arrays (class labels, iteration counts, node indices, masks)."""
    import re

    out = {}
    for k, v in arrays.items():
        last = re.split(r"[.\[]", k)[-1]
        if last in NOT_LEARNED or getattr(getattr(v, "dtype", None), "kind", "f") not in "fc":
            continue
        out[k] = v
    return out


def _model_weights(store, version: Version, ref: dict) -> dict:
    """Learned weights of a stored model (learned_weights over compare.named_arrays). An imported version is never
    unpickled here: its skops models are loaded once skops' audit accepts them, its torch modules
    through their weight table (raw tensors only); anything else raises Untrusted."""
    from . import codecs
    from .errors import Untrusted

    if not store.is_imported(version):
        return learned_weights(named_arrays(_load(store, version, ref["name"])))
    sv = store.stored_variable(version, ref["name"])
    buffers = [store.blobs.read_buffer(m) for m in sv.manifest["buffers"]]
    meta = sv.manifest["meta"]
    if sv.codec == "torch.module" and isinstance(meta.get("weights"), dict):
        return learned_weights({k: t.detach().numpy() for k, t in codecs.tensors.stored_weights(meta, buffers).items()})
    if sv.codec in codecs.estimators.NAMES and not codecs.untrusted_types(sv.codec, meta, buffers, sv.type_name):
        return learned_weights(named_arrays(codecs.decode(sv.codec, meta, buffers, codecs.DecodeContext(trusted=False))))
    raise Untrusted("an imported version is only unpickled when trusted")


def _hf_layers(store, va, vb, old: dict, new: dict) -> tuple[list, str | None]:
    """Per weight of two stored transformers / PEFT models (codecs.transformers): {"name", "shape",
    "delta_norm", "relative"} (L2 norm of new - old, and that over the norm of old; None when old
    is all zeros or the shapes differ). A weight whose stored chunks are the same in both is unchanged
    without reading it; changed ones are read (raw tensors, never unpickled, so imported versions
    too) up to LOAD_LIMIT bytes a side, past which their norms are None and the note says so."""
    from .codecs import tensors

    sa, sb = store.stored_variable(va, old["name"]), store.stored_variable(vb, new["name"])

    def by_name(man):
        first: dict = {}
        for k, i in man["meta"]["keys"].items():
            first.setdefault(i, k)
        return {k: i for i, k in first.items()}

    na, nb = by_name(sa.manifest), by_name(sb.manifest)
    ta, tb = sa.manifest["meta"]["tensors"], sb.manifest["meta"]["tensors"]
    ba, bb = sa.manifest["buffers"], sb.manifest["buffers"]
    layers, budget, note = [], LOAD_LIMIT, None
    for k, i in na.items():
        j = nb.get(k)
        if j is None:
            continue
        x, y = ta[i], tb[j]
        if x["shape"] != y["shape"] or x["dtype"] != y["dtype"]:
            layers.append({"name": k, "shape": [x["shape"], y["shape"]], "delta_norm": None, "relative": None})
            continue
        if ba[i] == bb[j]:  # the same chunks: the same bytes
            layers.append({"name": k, "shape": x["shape"], "delta_norm": 0.0, "relative": 0.0})
            continue
        if ba[i]["n"] > budget:
            note = f"weights past {LOAD_LIMIT >> 20} MiB of changed tensors were not compared"
            layers.append({"name": k, "shape": x["shape"], "delta_norm": None, "relative": None})
            continue
        budget -= ba[i]["n"]
        u = tensors.rebuild({**x, "param": False, "requires_grad": False}, store.blobs.read_buffer(ba[i])).double()
        w = tensors.rebuild({**y, "param": False, "requires_grad": False}, store.blobs.read_buffer(bb[j])).double()
        dn, base = float((w - u).norm()), float(u.norm())
        layers.append({"name": k, "shape": x["shape"], "delta_norm": dn, "relative": dn / base if base else None})
    return layers, note


def _adapter_changes(new_meta: dict, layers: list) -> dict | None:
    """For a PEFT model: which adapter weights changed and by how much, and how many base weights
    changed (none, when only the adapter trained)."""
    desc = new_meta.get("model") or {}
    names = list((desc.get("adapters") or {}).keys())
    if not names:
        return None

    def is_adapter(k: str) -> bool:
        parts = k.split(".")
        return any(n in parts[:-1] for n in names)

    ad = [x for x in layers if is_adapter(x["name"])]
    return {"changed": [x for x in ad if x["delta_norm"] != 0.0], "unchanged": sum(x["delta_norm"] == 0.0 for x in ad),
            "base_changed": sum(1 for x in layers if not is_adapter(x["name"]) and x["delta_norm"] != 0.0)}


def _model_analysis(store, va, vb, old: dict, new: dict) -> dict:
    so, sn = old["summary"], new["summary"]
    hp = _dict_diff(so.get("params") or {}, sn.get("params") or {})
    out: dict = {"kind": "model", "class": [so.get("class"), sn.get("class")],
                 "hyperparameters": {"added": hp["added"], "removed": hp["removed"], "changed": hp["changed"]}}
    if old["codec"] in ("torch.module", *_HF_CODECS) and "parameters" in so:
        out["parameters"] = [so.get("parameters"), sn.get("parameters")]
    if store is not None and old["codec"] in _HF_CODECS:  # by stored chunks: any size, nothing unpickled
        layers, note = _hf_layers(store, va, vb, old, new)
        adapters = _adapter_changes(store.stored_variable(vb, new["name"]).manifest["meta"], layers)
        if adapters is not None:
            out["adapters"] = adapters
        if note:
            out["weights_note"] = note
        if len(layers) > MAX_LAYERS:
            moved = [x for x in layers if x["delta_norm"] != 0.0]
            layers = (moved + [x for x in layers if x["delta_norm"] == 0.0])[:MAX_LAYERS]
            out.setdefault("weights_note", f"{len(moved)} weights changed; the first {len(layers)} are listed, "
                                           "changed ones first")
        out["weights"] = layers
        return out
    if store is None or max(old["bytes"], new["bytes"]) > LOAD_LIMIT:
        return out
    import numpy as np

    from .errors import Untrusted

    try:
        wa, wb = _model_weights(store, va, old), _model_weights(store, vb, new)
    except Untrusted:
        out["weights_note"] = "not loaded: an imported version is only unpickled when trusted"
        return out
    except Exception as e:  # a model that no longer loads here still gets its summary diff
        out["weights_note"] = f"weights not compared: {type(e).__name__}: {e}"
        return out
    layers = []
    for k in wa:
        if k not in wb:
            continue
        x, y = np.asarray(wa[k], dtype=np.float64), np.asarray(wb[k], dtype=np.float64)
        if x.shape != y.shape:
            layers.append({"name": k, "shape": [list(x.shape), list(y.shape)], "delta_norm": None,
                           "relative": None})
            continue
        dn = float(np.linalg.norm(y - x))
        base = float(np.linalg.norm(x))
        layers.append({"name": k, "shape": list(x.shape), "delta_norm": dn,
                       "relative": dn / base if base else None})
    if len(layers) > MAX_LAYERS:  # a forest has a dozen arrays a tree: show the ones that moved
        moved = [x for x in layers if x["delta_norm"] != 0.0]
        kept = (moved + [x for x in layers if x["delta_norm"] == 0.0])[:MAX_LAYERS]
        out["weights_note"] = (f"{len(moved)} of {len(layers)} arrays changed; the first {len(kept)} "
                               "are listed, changed ones first")
        layers = kept
    out["weights"] = layers
    out["weights_added"] = [k for k in wb if k not in wa][:MAX_LAYERS]
    out["weights_removed"] = [k for k in wa if k not in wb][:MAX_LAYERS]
    return out


def _eval_analysis(store, va, vb, old: dict, new: dict) -> dict:
    """Two versions of an eval table, by example id (evals.diff); without the store or above
    LOAD_LIMIT only the mean deltas and the dataset comparison (from the summaries)."""
    ea, eb = old["summary"]["eval"], new["summary"]["eval"]
    if store is not None and max(old["bytes"], new["bytes"]) <= LOAD_LIMIT:
        return evals.diff(_load(store, va, old["name"]), _load(store, vb, new["name"]), ea, eb)
    out = evals.diff(None, None, ea, eb)
    if store is None:  # a diff from the records alone (against the live state, say)
        out["examples_note"] = "examples not compared in this diff: only the mean scores"
    return out


def analyse(store, va: Version, vb: Version, old: dict, new: dict) -> dict | None:
    """The model-aware part of one changed variable's diff (`old`/`new`: the diff's variable dicts
    of `va` and `vb`): {"kind": "array" | "frame" | "model", ...} as in schemas/diff.schema.json,
    None for plain values, {"kind": "error", "error": text} when the analysis itself failed (it is a
    bonus: never raised). An imported version's pickles are never loaded here."""
    codec = old["codec"] if old["codec"] == new["codec"] else None
    try:
        so, sn = old["summary"], new["summary"]
        if "prompt" in so and "prompt" in sn:  # from the summaries alone: nothing is loaded
            return prompts.diff(so["prompt"], sn["prompt"])
        if "eval" in so and "eval" in sn and codec == "pandas":
            return _eval_analysis(store, va, vb, old, new)
        if codec in _ARRAY_CODECS:
            return _array_analysis(store, va, vb, old, new)
        if codec == "pandas":
            return _frame_analysis(store, va, vb, old, new)
        if old["codec"] in _MODEL_CODECS and new["codec"] in _MODEL_CODECS and (
                old["codec"] == new["codec"] or {old["codec"], new["codec"]} <= {"sklearn", "sklearn.skops"}):
            return _model_analysis(store, va, vb, old, new)  # local (pickled) vs imported (skops)
    except Exception as e:  # analysis is a bonus: the summary diff stands without it
        return {"kind": "error", "error": f"{type(e).__name__}: {e}"}
    return None


def compute(va: Version, vb: Version, vars_a, vars_b, cells_a, cells_b, store=None) -> Diff:
    """The diff of two versions: `va`/`vb` their records, `vars_a`/`vars_b` their VariableRefs,
    `cells_a`/`cells_b` their executed Cells in order. Returns a model.Diff (data only; `to_dict()`
    follows schemas/diff.schema.json): params and metrics as added/removed/changed/same maps (a
    metric's delta is new - old), variables compared by content hash, cells matched by cell id, else
    by position, with source and output-text diffs in difflib's unified-diff format (lines without
    terminators). With `store`, changed arrays, frames and models are analysed (fraction of elements
    changed, changed rows, per-array L2 norm of the weight change) when each side is at most
    LOAD_LIMIT bytes (64 MiB); larger arrays are estimated from their chunk ids without reading data.
    An analysis that fails is recorded as {"kind": "error", "error": text}, never raised."""
    variables = _variables_diff(vars_a, vars_b)
    for ch in variables["changed"]:
        extra = analyse(store, va, vb, ch["old"], ch["new"])
        if extra is not None:
            ch["analysis"] = extra
    return Diff(
        a=va.label, b=vb.label, notebook=vb.notebook,
        params=_dict_diff(va.params, vb.params),
        metrics=_metrics_diff(va.metrics, vb.metrics),
        variables=variables,
        cells=_cells_diff(cells_a, cells_b),
    )
