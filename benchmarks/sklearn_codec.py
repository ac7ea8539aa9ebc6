"""scikit-learn estimators: local snapshot and restore against cloudpickle, and what export pays.

    python benchmarks/sklearn_codec.py [--reps 5]

The local store pickles estimators (codec "sklearn": cloudpickle protocol 5, fitted arrays out of
band, chunked and deduplicated); a bundle carries them as skops (codec "sklearn.skops",
redaction.to_safe_format). For each model, interleaved repetitions in fresh stores, it prints the
medians of:

  floor      cloudpickle.dumps + write + fsync of that one file (what a durable pickle costs)
  snapshot   first snapshot of the model into a fresh store
  again      re-snapshot of the unchanged model (and the bytes it wrote, which should be 0)
  loads      cloudpickle.loads of the dumped bytes
  restore    restore of the model from the store (in this process)
  skops      the skops encoding export adds for the model (codecs.estimators.to_skops)
  export     a whole bundle of the version (re-encoding included)

Printed, not asserted: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cloudpickle  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from jupyter_mv import api, codecs  # noqa: E402
from jupyter_mv.store import Store  # noqa: E402

restore = importlib.import_module("jupyter_mv.restore")


def models() -> dict:
    X, y = make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=0)
    return {
        "forest-100": RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0, n_jobs=2).fit(X, y),
        "forest-200": RandomForestClassifier(n_estimators=200, max_depth=8, random_state=0, n_jobs=2).fit(X, y),
        "pipeline": Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components=10, random_state=0)),
                              ("lr", LogisticRegression(max_iter=500))]).fit(X, y),
        "hist-gb": HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X, y),
    }


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def one_rep(name: str, model, tmp: Path) -> dict:
    out = {}
    path = tmp / f"{name}.pkl"

    def floor():
        data = cloudpickle.dumps(model, protocol=5)
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return data

    out["floor"], data = timed(floor)
    out["loads"], _ = timed(lambda: cloudpickle.loads(data))
    st = Store(tmp / f"store-{name}")
    try:
        api.set_session(api.Session(namespace={"model": model}))
        out["snapshot"], r1 = timed(lambda: api.take_snapshot(["model"], message="first", store=st))
        assert st.stored_variable(r1.version, "model").codec == "sklearn"
        out["again"], r2 = timed(lambda: api.take_snapshot(["model"], message="again", store=st))
        out["again_bytes"] = r2.version.new_bytes
        out["restore"], _ = timed(lambda: restore.load(st, r1.version, ["model"]))
        out["skops"], enc = timed(lambda: codecs.estimators.to_skops(model))
        assert enc.codec == "sklearn.skops"
        out["export"], _ = timed(lambda: api.export(r1.version, tmp / f"{name}.mvz", store=st))
    finally:
        st.close()
        api.set_session(None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions per model (medians are printed)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    ms = models()
    codecs.estimators.to_skops(ms["pipeline"])  # skops' first import (not a snapshot cost: export only)
    runs: dict = {n: [] for n in ms}
    for _ in range(args.reps):
        for n, m in ms.items():  # interleaved: a slow moment of the machine hits every model alike
            with tempfile.TemporaryDirectory() as d:
                runs[n].append(one_rep(n, m, Path(d)))
    cols = ("floor", "snapshot", "again", "loads", "restore", "skops", "export")
    print(f"medians of {args.reps} (seconds); snapshot/floor and restore/loads are the ratios of the targets")
    print(f"{'model':<12}" + "".join(f"{c:>10}" for c in cols) + f"{'snap/floor':>12}{'rest/loads':>12}{'again B':>9}")
    for n, rs in runs.items():
        med = {c: statistics.median(r[c] for r in rs) for c in cols}
        again_b = max(r["again_bytes"] for r in rs)
        print(f"{n:<12}" + "".join(f"{med[c]:>10.4f}" for c in cols)
              + f"{med['snapshot'] / med['floor']:>12.2f}{med['restore'] / med['loads']:>12.2f}{again_b:>9}")


if __name__ == "__main__":
    main()
