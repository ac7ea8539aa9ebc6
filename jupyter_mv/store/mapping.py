"""Restored buffers backed by their chunk files: private file mappings instead of copies (Linux).

A large chunk's blob file keeps its bytes page-aligned, at offset ALIGN (blobs.ALIGNED). A restore
reserves one region of private memory per buffer and maps each such chunk file over its part of the
region with mmap(2) `MAP_PRIVATE | MAP_FIXED`: the pages are the page cache's own until the program
writes to one, which then gets a private copy (copy-on-write: the file never changes, and other
mappings never see the write). Nothing is copied and no fresh memory is faulted in up front, which is
what `from_pretrained` gains from mapping model.safetensors (issue 15; benchmarks/llm.py measures it).

Why it is exact: blob files are immutable (written to a temp name, fsynced, renamed; gc unlinks them,
which leaves a mapped inode alive until its last mapping goes), and every mapped chunk is re-hashed
through the mapping before the buffer is handed out, as a read would be. The region is unmapped when
its last view (a numpy array, a torch tensor made with frombuffer) is freed.

Limits: Linux with 4 KiB pages and a 64-bit Python (elsewhere `region` returns None and restores read
as before); a blob file truncated or rewritten in place by another program after a restore would show
through (SIGBUS on a page past its new end), as it would for any memory-mapped model file; the setting
`JupyterMV.map_restores` (env JUPYTER_MV_MAP_RESTORES=0) turns mapping off.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
import weakref

ALIGN = 4096  # file offset of a mapped chunk's bytes, and the alignment of its place in a buffer

AVAILABLE = (sys.platform.startswith("linux") and mmap.PAGESIZE == ALIGN
             and ctypes.sizeof(ctypes.c_void_p) == 8)

if AVAILABLE:
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.mmap.restype = ctypes.c_void_p
    _libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                           ctypes.c_long]
    _libc.munmap.restype = ctypes.c_int
    _libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_FAILED = ctypes.c_void_p(-1).value
_MAP_FIXED = 0x10  # <sys/mman.h>, the same value on every Linux architecture
_RW = mmap.PROT_READ | mmap.PROT_WRITE


class Region:
    """`n` bytes of private, writable, zero-filled memory at a known address (`base`), whole pages.
    `view` is a 1-D unsigned-byte memoryview of exactly n bytes; the pages are unmapped when the last
    object holding a view of it (or the region) is freed."""

    __slots__ = ("base", "size", "n", "view", "__weakref__")

    def __init__(self, base: int, size: int, n: int):
        self.base, self.size, self.n = base, size, n
        arr = (ctypes.c_ubyte * n).from_address(base)
        fin = weakref.finalize(arr, _libc.munmap, base, size)
        # not at interpreter exit: something torn down later may still read the memory; exit unmaps it
        fin.atexit = False
        self.view = memoryview(arr).cast("B")

    def map_file(self, offset: int, fd: int, length: int) -> bool:
        """Map `length` bytes of the file `fd`, from file offset ALIGN, over [offset, offset + length)
        of the region (offset a multiple of ALIGN). False when the kernel refuses (too many mappings, a
        file system without mmap): that part of the region is then ordinary zeroed memory again, to be
        read into."""
        if offset % ALIGN or offset + length > self.n:
            return False
        addr = self.base + offset
        got = _libc.mmap(addr, length, _RW, mmap.MAP_PRIVATE | _MAP_FIXED, fd, ALIGN)
        if got == addr:
            return True
        # a failed MAP_FIXED may have unmapped the range first: put anonymous memory back
        span = (length + ALIGN - 1) // ALIGN * ALIGN
        again = _libc.mmap(addr, span, _RW, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_FIXED, -1, 0)
        if again != addr:
            raise OSError(ctypes.get_errno(), f"cannot restore memory at {addr:#x} after a failed mapping")
        return False


def region(n: int) -> Region | None:
    """A Region of n (> 0) bytes, or None where mapping is unavailable or the kernel refuses."""
    if not AVAILABLE or n <= 0:
        return None
    size = (n + ALIGN - 1) // ALIGN * ALIGN
    base = _libc.mmap(None, size, _RW, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    if base in (None, _FAILED):
        return None
    return Region(base, size, n)


def file_ok(fd: int, header: bytes, length: int) -> bool:
    """Whether the open blob file `fd` is an aligned one of a `length`-byte chunk: its size is exactly
    ALIGN + length (a shorter file would fault past its end once mapped) and its first page is `header`
    followed by zeros (damage there is damage too: read_into reports it)."""
    try:
        if os.fstat(fd).st_size != ALIGN + length:
            return False
        head = os.pread(fd, ALIGN, 0)
    except OSError:
        return False
    return head[:2] == header and head.count(0, 2) == ALIGN - 2
