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
import subprocess
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


# -- many buffers (issue 13): a dict of 3,000 small arrays, a random forest, a torch model --------------
def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    fd = os.open(path.parent, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def cloudpickle_fsync(obj, path: Path) -> None:
    import cloudpickle

    with open(path, "wb") as f:
        cloudpickle.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path.parent, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def torch_save_fsync(model, path: Path) -> None:
    import torch

    with open(path, "wb") as f:
        torch.save(model.state_dict(), f)
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path.parent, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def store_growth_bytes(store: Store) -> int:
    """What the store holds: live database pages (WAL folded in) plus blob and pack files."""
    c = store.db.conn
    c.execute("pragma wal_checkpoint(TRUNCATE)")
    pages, free, size = (c.execute(f"pragma {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size"))
    return (pages - free) * size + store.total_bytes()


_FRESH_LOAD = """
import sys, time
import numpy as np, cloudpickle
from jupyter_mv import api
from jupyter_mv.store import Store
kind, path = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if kind == "cloudpickle":
    with open(path, "rb") as f:
        d = cloudpickle.load(f)
else:
    st = Store(path)
    d = api.load("latest", "d", notebook="bench.ipynb", store=st)
dt = time.perf_counter() - t
assert len(d) == 3000 and d["a7"].shape == (400,)
print(dt)
"""


def fresh_load(kind: str, path: Path) -> float:
    """Seconds to load the dict in a new Python process (imports done before the clock starts)."""
    out = subprocess.run([sys.executable, "-c", _FRESH_LOAD, kind, str(path)], capture_output=True, text=True,
                         check=True, env={**os.environ, "JUPYTER_MV_NOTEBOOK": "bench.ipynb"})
    return float(out.stdout.strip().splitlines()[-1])


def many_rep(workdir: Path, rep: int) -> dict:
    import torch
    from sklearn.ensemble import RandomForestClassifier

    r: dict = {}
    rng = np.random.default_rng(rep)
    ns: dict = {}
    sess = api.Session(namespace=ns)
    api.set_session(sess)
    os.environ["JUPYTER_MV_NOTEBOOK"] = "bench.ipynb"
    store = sess.store(workdir / "mv")
    # a session's first snapshot of a kind of object imports what it needs (the credential scanner,
    # torch's and sklearn's pickling support): done once per kernel, so warmed up here, not measured
    ns["warm"] = {"a": np.arange(10.0), "name": "warm-up", "m": torch.nn.Linear(2, 2),
                  "f": RandomForestClassifier(n_estimators=2, max_depth=2).fit(np.eye(4), [0, 1, 0, 1])}
    api.take_snapshot(["warm"], store=store)
    cloudpickle_fsync(ns["warm"], workdir / "warm.pkl")
    torch_save_fsync(ns["warm"]["m"], workdir / "warm.pt")

    d = {f"a{i}": rng.random(400) for i in range(3000)}
    ns["d"] = d
    pk = workdir / "d.pkl"
    os.sync()  # no earlier writeback (the last rep's 512 MiB) queued ahead of either side's fsync
    r["dict_cloudpickle"], _, _ = measured(lambda: cloudpickle_fsync(d, pk))
    r["dict_snapshot"], _, _ = measured(lambda: api.take_snapshot(["d"], store=store))
    base = store_growth_bytes(store)
    times = [measured(lambda: api.take_snapshot(["d"], store=store))[0] for _ in range(10)]
    r["dict_resnapshot"] = statistics.median(times)
    r["dict_growth"] = (store_growth_bytes(store) - base) / 10
    r["dict_load_cloudpickle"] = fresh_load("cloudpickle", pk)
    r["dict_load_mv"] = fresh_load("mv", workdir / "mv")

    X = rng.random((2000, 20))
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    forest = RandomForestClassifier(n_estimators=200, max_depth=8, random_state=rep, n_jobs=1).fit(X, y)
    ns["forest"] = forest
    os.sync()
    r["forest_cloudpickle"], _, _ = measured(lambda: cloudpickle_fsync(forest, workdir / "f.pkl"))
    r["forest_snapshot"], _, _ = measured(lambda: api.take_snapshot(["forest"], store=store))

    torch.manual_seed(rep)
    model = torch.nn.Sequential(*[torch.nn.Linear(256, 256) for _ in range(150)])
    ns["model"] = model
    tp = workdir / "m.pt"
    os.sync()
    r["torch_save"], _, _ = measured(lambda: torch_save_fsync(model, tp))
    r["torch_snapshot"], _, _ = measured(lambda: api.take_snapshot(["model"], store=store))
    # weight decay changes every weight (a plain SGD step on 150 layers leaves the first layers' tiny
    # gradients below float32 resolution, so those tensors would not change)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=0.1)
    model(torch.randn(8, 256)).pow(2).mean().backward()
    opt.step()
    os.sync()
    r["torch_save_step"], _, _ = measured(lambda: torch_save_fsync(model, tp))
    r["torch_snapshot_step"], _, res = measured(lambda: api.take_snapshot(["model"], store=store))
    n_params = sum(p.numel() * 4 for p in model.parameters())
    assert res.version.new_bytes >= 0.99 * n_params, (res.version.new_bytes, n_params)  # every tensor rewritten

    big = rng.random((512 << 20) // 8)
    ns.clear()
    ns["big"] = big
    api.take_snapshot(["big"], store=store)
    base = store_growth_bytes(store)
    for _ in range(10):
        api.take_snapshot(["big"], store=store)
    r["big_growth"] = (store_growth_bytes(store) - base) / 10
    store.close()
    api.set_session(None)
    return r


def many_report(runs: list[dict]) -> list[str]:
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    def row(name, value, target, ok):
        return f"| {name} | {value} | {target} | {'met' if ok else 'NOT met'} |"

    def ratio(a, b):
        return statistics.median(r[a] / r[b] for r in runs)

    lines = [
        "",
        f"many buffers: {len(runs)} interleaved reps, medians (ratios are medians of per-rep ratios)",
        "",
        "| scenario | jupyter_mv | baseline | ratio | target | |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def cmp(name, a, b, base_name, limit):
        x = ratio(a, b)
        lines.append(f"| {name} | {med[a]:.3f} s | {base_name} {med[b]:.3f} s | {x:.2f}× | ≤ {limit}× | "
                     f"{'met' if x <= limit else 'NOT met'} |")

    cmp("3,000 × 400 float64 dict: first snapshot", "dict_snapshot", "dict_cloudpickle", "cloudpickle.dump+fsync", 2)
    cmp("same, restore in a fresh process", "dict_load_mv", "dict_load_cloudpickle", "cloudpickle.load", 2)
    cmp("200-tree forest (max_depth 8): first snapshot", "forest_snapshot", "forest_cloudpickle",
        "cloudpickle.dump+fsync", 2)
    cmp("Sequential of 150 Linear(256,256): first snapshot", "torch_snapshot", "torch_save", "torch.save+fsync", 1.3)
    cmp("same after one optimizer step", "torch_snapshot_step", "torch_save_step", "torch.save+fsync", 1.3)
    lines += [
        "",
        "| target | measured | goal | |",
        "| --- | --- | --- | --- |",
        row("dict unchanged re-snapshot: time", f"{med['dict_resnapshot']:.3f} s", "≤ 0.1 s",
            med["dict_resnapshot"] <= 0.1),
        row("dict unchanged re-snapshot: store growth", f"{med['dict_growth']:.0f} B", "≤ 2 kB",
            med["dict_growth"] <= 2048),
        row("512 MiB unchanged re-snapshot: store growth", f"{med['big_growth']:.0f} B", "≤ 1 kB",
            med["big_growth"] <= 1024),
    ]
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0, help="array size in GiB (default 1)")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions (default 3)")
    p.add_argument("--json", help="also write the raw numbers here")
    p.add_argument("--dir", help="where to write (default: a temp dir on the same disk as the repo)")
    p.add_argument("--many-reps", type=int, default=3, help="repetitions of the many-buffer scenarios (0: skip)")
    p.add_argument("--no-array", action="store_true", help="skip the large-array scenarios")
    args = p.parse_args(argv)
    n_bytes = int(args.gib * (1 << 30)) // 8 * 8
    runs = []
    parent = Path(args.dir) if args.dir else Path(__file__).resolve().parents[1] / "benchmarks" / ".work"
    parent.mkdir(parents=True, exist_ok=True)
    many = []
    for rep in range(args.many_reps):
        with tempfile.TemporaryDirectory(dir=parent) as d:
            many.append(many_rep(Path(d), rep))
        print(f"many-buffer rep {rep + 1}/{args.many_reps} done", file=sys.stderr)
    if args.no_array:
        print("\n".join(many_report(many)))
        if args.json:
            Path(args.json).write_text(json.dumps({"many": many}, indent=1))
        return 0
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
    if many:
        lines += many_report(many)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "median": med, "many": many}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
