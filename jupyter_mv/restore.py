"""Loading a version's variables back: only the chunks of the variables asked for, straight into
their destination buffers, with shared objects kept shared and untrusted pickles refused."""

from __future__ import annotations

from . import codecs
from .errors import CorruptBlob, NotStorable, StoreError, Untrusted
from .model import Version
from .store import Store


def check_trust(store: Store, version: Version, names: list[str], trust: bool) -> None:
    if trust or not store.is_imported(version):
        return
    risky = [(v.name, v.type_name) for v in store.variables(version) if v.name in names and not v.safe]
    if risky:
        listed = ", ".join(f"{n} ({t})" for n, t in risky)
        raise Untrusted(f"{version.label} was imported from a bundle and restoring {listed} would unpickle "
                        "code from it; pass --trust (trust=True) if you trust its author")


def load(store: Store, version: Version, names: list[str] | None = None, trust: bool = False,
         progress=None) -> dict:
    """{name: object} for the named variables of `version` (all when None)."""
    names = list(version.variables) if names is None else list(dict.fromkeys(names))
    stored = [store.stored_variable(version, n) for n in names]
    check_trust(store, version, names, trust)
    ctx = codecs.DecodeContext()
    out = {}
    for sv in stored:
        try:
            buffers = [store.blobs.read_buffer(m) for m in sv.manifest["buffers"]]
            if progress:
                progress(sv.nbytes)
            out[sv.name] = codecs.decode(sv.codec, sv.manifest["meta"], buffers, ctx)
        except CorruptBlob as e:
            raise StoreError(f"{version.label} variable {sv.name!r} is damaged ({e}); other versions are "
                             "unaffected; run `jupyter-mv verify` for the full picture") from None
        except NotStorable as e:
            raise StoreError(f"{version.label} variable {sv.name!r} cannot be restored: {e}") from None
    return out
