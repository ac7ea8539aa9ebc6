"""Masking volatile text before recorded and re-run outputs are compared: timings, memory
addresses, dates, temporary paths, progress bars, jupyter_mv's own summary lines and credentials
are replaced by placeholders, and numbers are compared within a relative tolerance."""

from __future__ import annotations

import re

from .. import credentials
from ..compare import close

_MASKS = [
    # progress bars (tqdm and friends): keep only that there was one
    (re.compile(r"^.*(\d+%\|[^\n]*\||\d+(\.\d+)?(it|s)/(s|it)\]).*$", re.M), "<progress>"),
    # jupyter_mv's own summary lines: version numbers and byte counts depend on the store's history
    (re.compile(r"^v\d+  .*$", re.M), "<jupyter_mv snapshot>"),
    (re.compile(r"\b(exported|restored .* from|imported) v\d+\b"), r"\1 v<n>"),
    (re.compile(r"\d[\d,]*(\.\d+)? ?(B|kB|MB|GB|TB|bytes)\b"), "<bytes>"),
    # timings
    (re.compile(r"^(CPU times|Wall time|Elapsed|Time taken|took)\b.*$", re.M | re.I), "<timing>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ns|µs|us|ms|s|sec|secs|seconds|min|minutes)\b(?! \w+ per)"), "<duration>"),
    # dates and clock times
    (re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"), "<date>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(\.\d+)?\b"), "<time>"),
    # memory addresses and object ids
    (re.compile(r"0x[0-9a-fA-F]{4,}"), "0x<addr>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    # absolute paths (temporary directories, site-packages in warnings)
    (re.compile(r"(?<![\w.])(/[\w.@+-]+){2,}/?"), "<path>"),
    (re.compile(r"[A-Za-z]:\\[^\s'\"]+"), "<path>"),
    # scikit-learn's HTML repr numbers its containers per session
    (re.compile(r"sk-(container-id|estimator-id)-\d+"), r"sk-\1-<n>"),
]
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|\bnan\b|\binf\b", re.I)


def mask(text: str) -> str:
    """`text` with volatile things (timings, addresses, dates, paths, progress bars, byte counts,
    jupyter_mv summary lines, credentials) replaced by placeholders such as `<duration>`; a line
    redrawn with `\\r` keeps its last state. Pure: str in, str out."""
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))  # \r-redrawn lines: last state
    # a bundle's recorded outputs have their credentials masked (redaction.py): mask the re-run's alike
    text = credentials.mask_json(text)
    for rx, sub in _MASKS:
        text = rx.sub(sub, text)
    return text


def _close(a: str, b: str, rtol: float, atol: float) -> bool:
    """Two number texts within tolerance (other texts: equal)."""
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a == b
    return close(x, y, rtol, atol)


def texts_match(a: str, b: str, rtol: float, atol: float = 1e-12) -> bool:
    """Equal after masking, with every number within tolerance (compare.close: |a - b| <= atol +
    rtol * |b|; NaN equals NaN) and the text around the numbers identical."""
    a, b = mask(a), mask(b)
    if a == b:
        return True
    na, nb = _NUMBER.findall(a), _NUMBER.findall(b)
    if len(na) != len(nb) or _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    return all(_close(x, y, rtol, atol) for x, y in zip(na, nb))


def _first_difference(a: str, b: str) -> tuple[str, str]:
    la, lb = mask(a).splitlines() or [""], mask(b).splitlines() or [""]
    for x, y in zip(la, lb):
        if x != y:
            return x, y
    if len(la) != len(lb):
        return (la[len(lb)] if len(la) > len(lb) else "(nothing more)",
                lb[len(la)] if len(lb) > len(la) else "(nothing more)")
    return la[0], lb[0]
