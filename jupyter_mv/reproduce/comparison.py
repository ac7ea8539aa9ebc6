"""Comparing a re-run with its record: each cell's outputs (streams, rich outputs, images, errors)
after masking, and the environment's packages. Values and models are compared by compare.py, the
one comparison reproduce and the diff share (see probe.py)."""

from __future__ import annotations

import base64
import hashlib
import json

from .masking import _first_difference, texts_match


def _join(x) -> str:
    return "".join(x) if isinstance(x, list) else ("" if x is None else str(x))


def _streams(outputs: list) -> dict:
    out: dict = {}
    for o in outputs:
        if o.get("output_type") == "stream":
            out[o.get("name", "stdout")] = out.get(o.get("name", "stdout"), "") + _join(o.get("text"))
    return out


def _prefix_like(recorded: str, now: str) -> str:
    """As many lines of `now` as `recorded` has (a cell cut short by the snapshot it ran)."""
    if not recorded:
        return ""
    n = recorded.count("\n") + (0 if recorded.endswith("\n") else 1)
    return "".join(now.splitlines(keepends=True)[:n])


def _rich(outputs: list) -> list:
    return [o for o in outputs if o.get("output_type") in ("display_data", "execute_result", "error")]


def _image_hash(data) -> str:
    raw = _join(data)
    try:
        raw_bytes = base64.b64decode(raw)
    except ValueError:
        raw_bytes = raw.encode()
    return hashlib.sha256(raw_bytes).hexdigest()[:12]


def _compare_data(rec: dict, now: dict, rtol: float) -> str | None:
    keys_r = {k for k in rec if not k.startswith("application/vnd.jupyter.widget")}
    keys_n = {k for k in now if not k.startswith("application/vnd.jupyter.widget")}
    if keys_r != keys_n:
        return f"output types differ: recorded {sorted(keys_r)}, now {sorted(keys_n)}"
    for k in sorted(keys_r):
        a, b = rec[k], now[k]
        if k.startswith("image/") and k != "image/svg+xml":
            if _image_hash(a) != _image_hash(b):
                return f"{k} image differs (sha256 {_image_hash(a)} recorded, {_image_hash(b)} now)"
        elif isinstance(a, (dict, list)) and not (isinstance(a, list) and all(isinstance(x, str) for x in a)):
            if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
                return f"{k} differs"
        elif not texts_match(_join(a), _join(b), rtol):
            x, y = _first_difference(_join(a), _join(b))
            return f"{k} differs:\n    recorded: {x[:200]}\n    now:      {y[:200]}"
    return None


def compare_outputs(recorded: list, now: list, rtol: float, partial: bool = False) -> tuple[list[str], list[str]]:
    """(differences, warnings) between two cells' outputs (lists of nbformat 4 output dicts), each a
    list of readable lines; `rtol`: relative tolerance for numbers. stderr alone only warns: it carries
    warnings, logs and progress, which vary between runs without changing results. `partial`:
    the recorded outputs are what the cell had produced when the snapshot was taken, so only that
    much of the new outputs is compared."""
    diffs, warns = [], []
    sr, sn = _streams(recorded), _streams(now)
    if partial:
        now = [o for o in now if o.get("output_type") != "stream"][: len(_rich(recorded))] + [
            o for o in now if o.get("output_type") == "stream"]
        sn = {k: _prefix_like(sr.get(k, ""), v) for k, v in sn.items()}
    if not texts_match(sr.get("stdout", ""), sn.get("stdout", ""), rtol):
        x, y = _first_difference(sr.get("stdout", ""), sn.get("stdout", ""))
        diffs.append(f"printed output differs:\n    recorded: {x[:200]}\n    now:      {y[:200]}")
    if not texts_match(sr.get("stderr", ""), sn.get("stderr", ""), rtol):
        x, y = _first_difference(sr.get("stderr", ""), sn.get("stderr", ""))
        warns.append(f"stderr differs: recorded {x[:120]!r}, now {y[:120]!r}")
    rr, rn = _rich(recorded), _rich(now)
    if len(rr) != len(rn):
        kinds = lambda outs: ", ".join(o["output_type"] for o in outs) or "none"  # noqa: E731
        diffs.append(f"{len(rr)} rich output(s) recorded ({kinds(rr)}), {len(rn)} now ({kinds(rn)})")
        for o in rn:
            if o.get("output_type") == "error":
                diffs.append(f"it raised {o.get('ename')}: {str(o.get('evalue'))[:200]}")
        return diffs, warns
    for i, (a, b) in enumerate(zip(rr, rn)):
        if a["output_type"] == "error" or b["output_type"] == "error":
            if (a["output_type"], a.get("ename")) != (b["output_type"], b.get("ename")) or not texts_match(
                    str(a.get("evalue", "")), str(b.get("evalue", "")), rtol):
                was = f"{a.get('ename')}: {a.get('evalue')}" if a["output_type"] == "error" else "no error"
                got = f"{b.get('ename')}: {b.get('evalue')}" if b["output_type"] == "error" else "no error"
                diffs.append(f"error differs: recorded {was[:150]}, now {got[:150]}")
            continue
        why = _compare_data(a.get("data") or {}, b.get("data") or {}, rtol)
        if why:
            diffs.append(f"output {i + 1}: {why}")
    return diffs, warns


def _package_warnings(recorded: dict, here: dict, python_rec: str, python_here: str) -> list[str]:
    out = []
    if python_rec and python_here and python_rec.split(".")[:2] != python_here.split(".")[:2]:
        out.append(f"Python {python_here} here, {python_rec} in the bundle")
    diffs = []
    for name, ver in sorted(recorded.items()):
        now = here.get(name)
        if now is None:
            diffs.append(f"{name} {ver} in the bundle is not installed here")
        elif now != ver:
            diffs.append(f"{name} {now} here, {ver} in the bundle")
    out += diffs[:15]
    if len(diffs) > 15:
        out.append(f"... and {len(diffs) - 15} more package differences (see the bundle's requirements.txt)")
    return out
