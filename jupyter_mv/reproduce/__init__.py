"""Reproduce a bundle: re-run its notebook from scratch in a fresh kernel in a temporary directory,
then compare what came out with what was recorded — each cell's outputs, the metrics, the
variables — and warn where the installed packages differ from the bundle's.

How variables are compared: the bundle is imported into a private temporary store, and after the
last cell a probe runs *inside the re-executed kernel*: it loads each recorded variable from that
store and compares it with the live value of the same name. The live objects never leave the
kernel, and this process never unpickles anything from the bundle; the kernel already ran the
bundle's code, so loading its pickled models there adds no trust that running it did not need.
Metrics come from the last version the re-run notebook snapshotted (its own store, in the
temporary directory), read from this side without unpickling anything.

One concern a module:

    rerun.py       reproduce(): run the bundle's notebook again in a fresh kernel, gather the findings
    masking.py     volatile text (timings, addresses, dates, paths) masked; numbers within tolerance
    comparison.py  recorded vs re-run outputs of each cell; package differences
    probe.py       the variable comparison that runs inside the re-executed kernel
    report.py      Result: the findings, as text, dict and an HTML page
"""

from __future__ import annotations

from ..compare import compare_values
from .comparison import compare_outputs
from .masking import mask, texts_match
from .probe import kernel_probe
from .report import CellResult, Result
from .rerun import SETUP, reproduce

__all__ = ["reproduce", "Result", "CellResult", "compare_outputs", "compare_values", "mask", "texts_match",
           "kernel_probe", "SETUP"]
