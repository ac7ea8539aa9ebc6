"""Loading a version's variables back: only the chunks of the variables asked for, straight into
their destination buffers, with shared objects kept shared and untrusted pickles refused."""

from __future__ import annotations

import json

from . import codecs, config
from .errors import CorruptBlob, DecodeError, NotStorable, StoreError, Untrusted
from .model import Version
from .store import Store


def _read(store: Store, version: Version, sv) -> list:
    try:
        return store.blobs.read_buffers(sv.manifest["buffers"])
    except CorruptBlob as e:
        raise StoreError(f"{version.label} variable {sv.name!r} is damaged ({e}); other versions are "
                         "unaffected; run `jupyter-mv verify` for the full picture") from None


def check_trust(store: Store, version: Version, names: list[str], trust: bool) -> dict:
    """Raise Untrusted (one line naming each variable and the types that need trust) when
    restoring `names` from an imported version would load anything no safe format vouches for:
    pickle-based variables always, skops models when skops' audit finds types neither it nor
    codecs.estimators.VETTED trusts. Returns {name: buffers} of what it had to read to audit.
    The trust policy config.JupyterMV.trust_imported (default False) set True trusts every version."""
    if trust or config.current().trust_imported or not store.is_imported(version):
        return {}
    read: dict = {}
    risky = []
    audits: dict = {}  # a group shipped as one skops file is audited once for all its names
    for v in store.variables(version):
        if v.name not in names or v.codec in codecs.SAFE:
            continue
        if v.codec in codecs.estimators.NAMES:
            sv = store.stored_variable(version, v.name)
            key = json.dumps([sv.codec, sv.manifest["buffers"]])
            read[v.name] = _read(store, version, sv)
            try:
                if key not in audits:
                    audits[key] = codecs.untrusted_types(sv.codec, sv.manifest["meta"], read[v.name], v.type_name)
                types = audits[key]
            except NotStorable as e:
                raise StoreError(f"{version.label} variable {v.name!r} cannot be restored: {e}") from None
        else:
            types = [v.type_name]
            held = v.summary.get("pickled_for") if isinstance(v.summary, dict) else None
            if isinstance(held, list) and all(isinstance(t, str) for t in held):  # the notebook-defined parts
                held = [t[:100] for t in held[:5] if t != v.type_name]
                if held:  # a group member: what the group's pickle holds, maybe through another name
                    whose = "its group holds" if v.summary.get("shares_with") else "it holds"
                    types = [f"{v.type_name} ({whose} {', '.join(held)}, defined in the notebook)"]
        if types:
            risky.append((v.name, v.codec, types))
    if risky:
        parts = [f"{n} would load {', '.join(t)}, which skops does not trust" if c in codecs.estimators.NAMES
                 else f"{n} would unpickle {', '.join(t)}" for n, c, t in risky]
        hint = ""
        if any(c == "torch.module" for _, c, _ in risky):
            hint = "; to load only a module's weights into a live model, use --weights-only (into=model)"
        # "imported" is a bundle's origin; a pulled version's origin is its remote's URL (no credentials)
        came = "imported from a bundle" if version.origin in ("imported", "local") else f"pulled from {version.origin}"
        raise Untrusted(f"{version.label} was {came}: restoring {'; '.join(parts)}; "
                        f"pass --trust (trust=True) if you trust its author{hint}", needs=parts)
    return read


def load(store: Store, version: Version, names: list[str] | None = None, trust: bool = False,
         progress=None, ctx: codecs.DecodeContext | None = None) -> dict:
    """{name: object} for the named variables of `version` (all when None; a name brings the
    variables it shares objects with, see with_groups). `trust`: unpickle an imported version's
    pickle-based variables; `progress(n)` is called with each variable's stored bytes as it is read;
    `ctx`: a codecs.DecodeContext shared with other calls. Raises UnknownVariable for a name the
    version lacks and Untrusted (one line naming each variable) before anything is loaded; then the
    error of the first variable that fails: StoreError when its data is damaged, DecodeError when it
    cannot be decoded here (see `load_each` to get the others anyway)."""
    out, failed = load_each(store, version, names, trust, progress, ctx)
    if failed:
        raise next(iter(failed.values()))
    return out


def with_groups(store: Store, version: Version, names: list[str]) -> list[str]:
    """`names` and every variable stored in a group with one of them (codecs.groups): restoring a
    name restores the variables it shares objects with, so nothing points at a private copy.
    Returns the names in order, without duplicates, group members after the names asked for."""
    out = list(dict.fromkeys(names))
    for n in list(out):
        if n in version.variables:
            for m in codecs.groups.unit(store.stored_variable(version, n).manifest["meta"]):
                if m not in out and m in version.variables:
                    out.append(m)
    return out


def load_each(store: Store, version: Version, names: list[str] | None = None, trust: bool = False,
              progress=None, ctx: codecs.DecodeContext | None = None) -> tuple[dict, dict]:
    """Per variable, so one that cannot be read or decoded never stops the others:
    ({name: object} of those that loaded, {name: StoreError | DecodeError} of those that did not),
    both in the version's order. Unknown names (UnknownVariable) and refused trust (Untrusted) are
    raised before anything is loaded."""
    names = list(version.variables) if names is None else with_groups(store, version, names)
    stored = [store.stored_variable(version, n) for n in names]
    trust = trust or config.current().trust_imported  # the user's standing say-so, if they gave one
    audited = check_trust(store, version, names, trust)
    ctx = ctx or codecs.DecodeContext()
    ctx.trusted = trust or not store.is_imported(version)
    ctx.objects = objects = {}
    failed: dict = {}
    groups = codecs.groups
    # array aliases and views after the arrays they refer to
    # (and a group's pickle after the variables in their own codec that it refers to)
    order = sorted(stored, key=lambda sv: (groups.base_of(sv.manifest["meta"]) is not None,
                                           groups.is_member(sv.codec, sv.manifest["meta"])))
    for sv in order:
        meta = sv.manifest["meta"]
        try:
            if "alias" in meta and meta["alias"] in objects:  # the same object under another name
                objects[sv.name] = objects[meta["alias"]]
                continue
            key = json.dumps(sv.manifest["buffers"]) if groups.is_member(sv.codec, meta) else None
            if key is not None and key in ctx.groups:  # a group is read and decoded once
                objects[sv.name] = ctx.groups[key][meta["key"]]
                continue
            buffers = audited.pop(sv.name, None) or _read(store, version, sv)
            if progress:
                progress(sv.nbytes)
            if key is not None:
                ctx.groups[key] = groups.decode_payload(sv.codec, meta, buffers, ctx)
                objects[sv.name] = ctx.groups[key][meta["key"]]
            else:
                objects[sv.name] = codecs.decode(sv.codec, meta, buffers, ctx)
        except StoreError as e:  # damaged blob (named by _read)
            failed[sv.name] = e
        except (DecodeError, NotStorable) as e:
            failed[sv.name] = DecodeError(f"{version.label} variable {sv.name!r} cannot be restored: {e}")
        except MemoryError:
            failed[sv.name] = DecodeError(f"{version.label} variable {sv.name!r} cannot be restored: not enough "
                                          f"memory to load it here ({sv.nbytes} bytes stored); free some and retry")
    out = {n: objects[n] for n in names if n in objects}
    failed = {n: failed[n] for n in names if n in failed}
    return out, failed


def load_weights(store: Store, version: Version, name: str, into):
    """Copy the weights of the torch module stored as `name` in `version` into the live module
    `into` (same architecture: state_dict keys, shapes and dtypes), in place. Only raw tensors are
    read (never the pickled skeleton), so no trust is needed, even for an imported version.
    Raises UsageError (one line) when the variable is not a module or the architecture differs."""
    from .codecs import tensors
    from .errors import UsageError

    sv = store.stored_variable(version, name)
    if sv.codec in ("transformers.model", "peft.model"):  # safe format: its tensors by name (codecs.transformers)
        buffers = _read(store, version, sv)
        try:
            state = codecs.hf.state_for(sv.manifest["meta"], buffers, into)
            return tensors.load_weights(sv.manifest["meta"], buffers, into, origin=version.label, state=state)
        except (NotStorable, DecodeError) as e:
            raise UsageError(f"cannot load the weights of {version.label} {name!r} into this "
                             f"{type(into).__name__}: {e}") from None
    if sv.codec != "torch.module":
        raise UsageError(f"{version.label} variable {name!r} is a {sv.type_name}, not a torch module: "
                         "only a module's weights can be loaded into a live model")
    buffers = _read(store, version, sv)
    try:
        return tensors.load_weights(sv.manifest["meta"], buffers, into, origin=version.label)
    except NotStorable as e:
        raise UsageError(f"cannot load the weights of {version.label} {name!r} into this "
                         f"{type(into).__name__}: {e}") from None
