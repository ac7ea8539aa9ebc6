"""Micro benchmarks of jupyter_mv against the machine's own limits, measured in the same run.

    python benchmarks/micro.py [--gib 1.0] [--reps 3] [--json out.json]

For each repetition (interleaved, fresh store each time) it times:
  write+fsync of the array's bytes (the floor for a durable snapshot), a fresh snapshot,
  a re-snapshot of the unchanged array, a re-snapshot after changing 1% of it (a contiguous slice),
  one xxh3 pass over the bytes, a restore, and a plain read of the same bytes from the page cache;
and the peak extra resident memory of each operation. It prints medians and the ratios the
performance targets are written in.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_mv import api  # noqa: E402
from jupyter_mv.store import Store  # noqa: E402

CHUNK = 4 << 20


def rss_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def rss_peak_and_now() -> tuple[int, int]:
    peak = now = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
        elif line.startswith("VmRSS:"):
            now = int(line.split()[1]) * 1024
    return peak, now


def measured(fn):
    """(seconds, peak extra bytes) of fn()."""
    rss_reset()
    _, before = rss_peak_and_now()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    peak, _ = rss_peak_and_now()
    return dt, max(0, peak - before), out


def write_fsync(path: Path, mv: memoryview) -> None:
    with open(path, "wb") as f:
        for off in range(0, len(mv), CHUNK):
            f.write(mv[off: off + CHUNK])
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path.parent, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def read_into(path: Path, out: memoryview) -> None:
    with open(path, "rb") as f:
        got = 0
        while got < len(out):
            n = f.readinto(out[got:])
            if not n:
                break
            got += n


def xxh3_pass(mv: memoryview) -> str:
    h = xxhash.xxh3_128()
    for off in range(0, len(mv), CHUNK):
        h.update(mv[off: off + CHUNK])
    return h.hexdigest()


def one_rep(n_bytes: int, workdir: Path) -> dict:
    rng = np.random.default_rng(len(os.listdir(workdir)))
    arr = rng.random(n_bytes // 8)
    mv = memoryview(arr).cast("B")
    r: dict = {}
    base = workdir / "raw.bin"
    r["write_fsync"], r["write_fsync_mem"], _ = measured(lambda: write_fsync(base, mv))
    r["xxh3"], _, _ = measured(lambda: xxh3_pass(mv))
    # the floor for a restore: read the same bytes from the page cache into newly allocated memory
    # (an anonymous mapping, as the restore uses: numpy's huge-page requests stall in compaction here)
    r["read"], _, _ = measured(lambda: read_into(base, memoryview(mmap.mmap(-1, len(mv)))))
    base.unlink()

    root = workdir / ".jupyter_mv"
    ns = {"arr": arr}
    sess = api.Session(namespace=ns)
    api.set_session(sess)
    store = sess.store(root)
    r["snapshot"], r["snapshot_mem"], _ = measured(lambda: api.take_snapshot(["arr"], store=store))
    size0 = store.total_bytes()
    r["resnapshot"], r["resnapshot_mem"], res = measured(lambda: api.take_snapshot(["arr"], store=store))
    r["resnapshot_new_bytes"] = res.version.new_bytes
    k = arr.size // 100
    start = arr.size // 3
    arr[start: start + k] += 1.0  # change 1% of the array, a contiguous slice
    r["change1pct"], r["change1pct_mem"], res = measured(lambda: api.take_snapshot(["arr"], store=store))
    r["change1pct_growth"] = store.total_bytes() - size0
    r["change1pct_written"] = res.version.new_bytes
    expected = arr.copy()
    del ns["arr"]
    r["restore"], r["restore_mem"], _ = measured(lambda: api.restore("latest", ["arr"], store=store))
    assert np.array_equal(ns["arr"], expected), "restore is not exact"
    r["array_bytes"] = n_bytes
    api.set_session(None)
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0, help="array size in GiB (default 1)")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions (default 3)")
    p.add_argument("--json", help="also write the raw numbers here")
    p.add_argument("--dir", help="where to write (default: a temp dir on the same disk as the repo)")
    args = p.parse_args(argv)
    n_bytes = int(args.gib * (1 << 30)) // 8 * 8
    runs = []
    parent = Path(args.dir) if args.dir else Path(__file__).resolve().parents[1] / "benchmarks" / ".work"
    parent.mkdir(parents=True, exist_ok=True)
    for rep in range(args.reps):
        with tempfile.TemporaryDirectory(dir=parent) as d:
            runs.append(one_rep(n_bytes, Path(d)))
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    gib = n_bytes / (1 << 30)
    mb = n_bytes / 1e6

    def row(name, value, target, ok):
        return f"| {name} | {value} | {target} | {'met' if ok else 'NOT met'} |"

    lines = [
        f"jupyter_mv micro benchmark: {gib:.2f} GiB float64 array, {args.reps} interleaved reps, medians",
        "",
        "| operation | median | throughput |",
        "| --- | --- | --- |",
        f"| write+fsync same bytes (floor) | {med['write_fsync']:.3f} s | {mb / med['write_fsync']:.0f} MB/s |",
        f"| snapshot, fresh array | {med['snapshot']:.3f} s | {mb / med['snapshot']:.0f} MB/s |",
        f"| one xxh3 pass | {med['xxh3']:.3f} s | {mb / med['xxh3']:.0f} MB/s |",
        f"| re-snapshot, unchanged | {med['resnapshot']:.3f} s | new bytes {int(med['resnapshot_new_bytes'])} |",
        f"| re-snapshot after 1% change | {med['change1pct']:.3f} s | store growth {med['change1pct_growth'] / 1e6:.1f} MB |",
        f"| read same bytes (page cache) | {med['read']:.3f} s | {mb / med['read']:.0f} MB/s |",
        f"| restore | {med['restore']:.3f} s | {mb / med['restore']:.0f} MB/s |",
        "",
        "| target | measured | goal | |",
        "| --- | --- | --- | --- |",
    ]
    fresh = med["write_fsync"] / med["snapshot"]
    lines.append(row("fresh snapshot vs write+fsync throughput", f"{fresh:.0%}", "≥ 70%", fresh >= 0.70))
    un = med["resnapshot"] / med["xxh3"]
    lines.append(row("unchanged re-snapshot vs one xxh3 pass", f"{un:.2f}× ({med['resnapshot']:.3f} s)",
                     "≤ 1.5× (≤ 0.15 s)", un <= 1.5))
    lines.append(row("unchanged re-snapshot new bytes", f"{int(med['resnapshot_new_bytes'])}", "0",
                     med["resnapshot_new_bytes"] == 0))
    growth = med["change1pct_growth"] / n_bytes
    lines.append(row("1% change: store growth", f"{growth:.1%} of the array", "≤ 3%", growth <= 0.03))
    write_changed = med["write_fsync"] * med["change1pct_written"] / n_bytes
    budget = 2 * med["resnapshot"] + write_changed
    lines.append(row("1% change: time", f"{med['change1pct']:.3f} s", f"≤ 2× unchanged + write of changed chunks "
                     f"= {budget:.3f} s", med["change1pct"] <= budget))
    rest = med["read"] / med["restore"]
    lines.append(row("restore vs page-cache read throughput", f"{rest:.0%}", "≥ 60%", rest >= 0.60))
    for key, label in (("snapshot_mem", "snapshot"), ("resnapshot_mem", "re-snapshot"),
                       ("change1pct_mem", "1% change snapshot")):
        frac = med[key] / n_bytes
        lines.append(row(f"peak extra memory, {label}", f"{med[key] / 1e6:.0f} MB ({frac:.1%})", "≤ 10%",
                         frac <= 0.10))
    extra = (med["restore_mem"] - n_bytes) / n_bytes
    lines.append(row("peak extra memory, restore (beyond the result)", f"{max(0, med['restore_mem'] - n_bytes) / 1e6:.0f} MB "
                     f"({max(0.0, extra):.1%})", "little (≤ 10%)", extra <= 0.10))
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "median": med}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
