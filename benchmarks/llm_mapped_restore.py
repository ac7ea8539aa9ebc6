"""Experiment, not product code: how fast would a model restore be if it mapped its chunk files?

    python benchmarks/llm_mapped_restore.py [--reps 7]

Why (issue 15, restore <= 1.3x from_pretrained): `from_pretrained` maps model.safetensors and copies
nothing up front, while jupyter_mv's restore reads every chunk into fresh memory and re-hashes it. On
this VM most of a restore is faulting in that fresh memory (benchmarks/llm.py prints it as `fresh`):
freed memory goes back to the host (virtio-balloon free page reporting), so each page is faulted in by
the guest and again by the host. Page-cache pages are already resident.

A blob file today is a 2-byte header + the chunk's bytes, so its data starts at file offset 2: a file
mapping of it is misaligned for any dtype wider than 2 bytes, and a buffer of several chunks cannot be
one contiguous mapping. This script simulates the format that would allow it, outside the store: each
large raw chunk copied to a file whose data starts at offset 4096 (the store is untouched). A restore
then reserves one region per buffer, maps each chunk file into it (MAP_PRIVATE | MAP_FIXED: writes
stay private, the page cache is never changed), re-hashes every chunk through the mapping (the same
integrity check as today) and decodes the model as loading.load does. Logits are checked equal.
It prints medians, and medians of per-repetition ratios, against from_pretrained and today's restore.
Linux only (libc mmap through ctypes; the mappings are unmapped when their tensors are freed).
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
import weakref
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import transformers  # noqa: E402

import llm  # noqa: E402
from jupyter_mv import api, codecs, loading  # noqa: E402
from jupyter_mv.store import Store, blobs  # noqa: E402

transformers.logging.set_verbosity_error()
warnings.simplefilter("ignore")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_MAP_FIXED = 0x10
_ALIGN = 4096  # where the data would start in an aligned chunk file


def map_buffer(manifest: dict, files: Path) -> memoryview | None:
    """The buffer of `manifest` as one private mapping of its aligned chunk files, each chunk re-hashed;
    None when a chunk has no aligned file (kept in a pack) or a chunk size is not a page multiple."""
    n, chunks = manifest["n"], manifest.get("c") or []
    sizes = [blobs.blob_size(c) for c in chunks]
    if not chunks or any(not (files / c).exists() for c in chunks) or any(s % mmap.PAGESIZE for s in sizes[:-1]):
        return None
    base = _libc.mmap(None, n, 0, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)  # reserved, PROT_NONE
    off = 0
    for c, size in zip(chunks, sizes):
        fd = os.open(files / c, os.O_RDONLY)
        try:
            if os.fstat(fd).st_size != _ALIGN + size:  # a truncated file would SIGBUS when touched
                raise OSError(f"{c}: wrong size")
            got = _libc.mmap(base + off, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | _MAP_FIXED,
                             fd, _ALIGN)
            if got != base + off:
                raise OSError(ctypes.get_errno(), "mmap failed")
        finally:
            os.close(fd)
        off += size
    arr = (ctypes.c_ubyte * n).from_address(base)
    weakref.finalize(arr, _libc.munmap, base, n)
    mv = memoryview(arr).cast("B")
    off = 0
    for c, size in zip(chunks, sizes):
        if blobs.blob_id(mv[off: off + size]) != c:
            raise ValueError(f"chunk {c} does not match its hash")
        off += size
    return mv


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7, help="interleaved repetitions (medians are printed)")
    args = ap.parse_args(argv)
    model = llm.build(False)
    ids = torch.randint(0, model.config.vocab_size, (1, 16), generator=torch.Generator().manual_seed(1))
    want = llm.logits(model, ids)
    work = Path(tempfile.mkdtemp(prefix="mv-llm-map-"))
    try:
        return _run(args, model, ids, want, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args, model, ids, want, work: Path) -> int:
    st = Store(work / ".jupyter_mv")
    api.set_session(api.Session(namespace={"model": model}))
    r = api.take_snapshot(["model"], message="base", store=st)
    api.set_session(None)
    d = work / "hf"
    model.save_pretrained(d)
    v = st.resolve(r.version.notebook, r.version.label)
    sv = st.stored_variable(v, "model")
    man = sv.manifest["buffers"]
    files = work / "aligned"
    files.mkdir()
    for m in man:  # the simulated format: raw chunk files with their data at offset 4096
        for c in m.get("c", []):
            p = st.blobs.path(c)
            if p.exists():
                raw = p.read_bytes()
                assert raw[:2] == blobs.RAW
                (files / c).write_bytes(b"\0" * _ALIGN + raw[2:])

    def mapped_restore():
        bufs = [map_buffer(m, files) for m in man]
        rest = [i for i, b in enumerate(bufs) if b is None]
        for i, b in zip(rest, st.blobs.read_buffers([man[i] for i in rest])):
            bufs[i] = b
        return codecs.decode(sv.codec, sv.manifest["meta"], bufs, codecs.DecodeContext())

    t = {"from_pretrained": [], "mapped": [], "today": []}
    for rep in range(-1, args.reps):
        for k, fn in (("from_pretrained", lambda: transformers.AutoModelForCausalLM.from_pretrained(d)),
                      ("mapped", mapped_restore), ("today", lambda: loading.load(st, v)["model"])):
            a = time.perf_counter()
            got = fn()
            t[k].append(time.perf_counter() - a)
            assert torch.equal(llm.logits(got.eval(), ids), want), k
            del got
        if rep < 0:
            for x in t.values():
                x.clear()
    st.close()

    def ratio(a, b):
        return statistics.median(x / y for x, y in zip(t[a], t[b]))

    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, {args.reps} reps (medians): "
          + ", ".join(f"{k} {statistics.median(x):.3f} s" for k, x in t.items()))
    print(f"mapped restore / from_pretrained {ratio('mapped', 'from_pretrained'):.2f}x; "
          f"today's restore / from_pretrained {ratio('today', 'from_pretrained'):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
