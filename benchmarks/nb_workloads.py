"""The three notebooks the notebook benchmark executes, and the kernel-side helper code it injects.

Each workload is ten code cells built from a size profile ("full" or "quick"). The first cell
imports and makes the data, so every tool's first checkpoint of the full state is part of the
timed cells, as it would be in a real session."""

from __future__ import annotations

SIZES = {
    # ~120 MB float64 features (60 000 x 250)
    "sklearn": {"full": {"n": 60_000, "f": 250, "forest_rows": 10_000},
                "quick": {"n": 3_000, "f": 40, "forest_rows": 1_500}},
    # four arrays of 256 MiB (4096 x 8192 float64) = 1 GiB
    "arrays": {"full": {"rows": 4096, "cols": 8192},
               "quick": {"rows": 512, "cols": 1024}},
    # 20 000 x 64 inputs, MLP 64-256-256-2, three epochs a cell
    "torch": {"full": {"n": 20_000, "hidden": 256, "epochs": 3},
              "quick": {"n": 1_000, "hidden": 32, "epochs": 1}},
    # many small buffers (issue 13): a dict of 3,000 arrays of 400 float64 and 200-tree random forests
    "many": {"full": {"arrays": 3000, "trees": 200},
             "quick": {"arrays": 300, "trees": 20}},
}

DESCRIPTION = {
    "sklearn": "scikit-learn, {mb:.0f} MB features, refits",
    "arrays": "{mb:.0f} MB numpy arrays, small edits",
    "torch": "torch MLP + Adam, epochs per cell",
    "many": "many buffers: dict of small arrays, random forests",
}


def sklearn_cells(n: int, f: int, forest_rows: int) -> list[str]:
    fit = "X[:n_tr], y[:n_tr]"
    test = "X[n_tr:], y[n_tr:]"
    return [
        "import numpy as np, warnings\n"
        "from sklearn.exceptions import ConvergenceWarning\n"
        "warnings.filterwarnings('ignore', category=ConvergenceWarning)\n"
        "from sklearn.datasets import make_classification\n"
        "from sklearn.linear_model import LogisticRegression, SGDClassifier\n"
        "from sklearn.ensemble import RandomForestClassifier, HistGradientBoostingClassifier\n"
        f"X, y = make_classification(n_samples={n}, n_features={f}, n_informative={max(4, f // 6)}, "
        f"n_redundant={max(2, f // 25)}, random_state=0)\n"
        "n_tr = int(0.8 * len(X))",
        f"lr = LogisticRegression(C=1.0, max_iter=25).fit({fit})\nacc_lr = lr.score({test})",
        f"lr = LogisticRegression(C=0.05, max_iter=25).fit({fit})\nacc_lr = lr.score({test})",
        f"forest = RandomForestClassifier(n_estimators=10, max_depth=8, n_jobs=2, random_state=0)"
        f".fit(X[:{forest_rows}], y[:{forest_rows}])\nacc_forest = forest.score({test})",
        f"forest = RandomForestClassifier(n_estimators=10, max_depth=12, n_jobs=2, random_state=0)"
        f".fit(X[:{forest_rows}], y[:{forest_rows}])\nacc_forest = forest.score({test})",
        f"sgd = SGDClassifier(alpha=1e-4, max_iter=4, tol=None, random_state=0).fit({fit})\n"
        f"acc_sgd = sgd.score({test})",
        f"sgd = SGDClassifier(alpha=1e-3, max_iter=4, tol=None, random_state=0).fit({fit})\n"
        f"acc_sgd = sgd.score({test})",
        f"hgb = HistGradientBoostingClassifier(max_iter=12, random_state=0).fit({fit})\n"
        f"acc_hgb = hgb.score({test})",
        f"hgb = HistGradientBoostingClassifier(max_iter=12, learning_rate=0.3, random_state=0).fit({fit})\n"
        f"acc_hgb = hgb.score({test})",
        "scores = {'lr': acc_lr, 'forest': acc_forest, 'sgd': acc_sgd, 'hgb': acc_hgb}\n"
        "best = max(scores, key=scores.get)",
    ]


def arrays_cells(rows: int, cols: int) -> list[str]:
    r = rows
    return [
        "import numpy as np\n"
        "rng = np.random.default_rng(0)\n"
        f"a = rng.random(({r}, {cols}))\nb = rng.random(({r}, {cols}))\n"
        f"c = rng.random(({r}, {cols}))\nd = rng.random(({r}, {cols}))",
        f"a[{r // 40}:{r // 40 + 8}] += 1.0",
        f"b[{r // 2}, :] = 0.0",
        f"c[{r // 3}:{r // 3 + 4}] *= 2.0",
        f"d[-{max(1, r // 80)}:] = rng.random(({max(1, r // 80)}, {cols}))",
        "stats = {name: float(arr[:64].mean()) for name, arr in (('a', a), ('b', b), ('c', c), ('d', d))}",
        f"a[{3 * r // 4}:{3 * r // 4 + 4}] -= 0.5",
        "e = a[:64].copy()",
        "b[10:20] = b[20:30]",
        "total = float(a[0].sum() + b[0].sum() + c[0].sum() + d[0].sum())",
    ]


def torch_cells(n: int, hidden: int, epochs: int) -> list[str]:
    train = f"losses += train_epochs({epochs})"
    return [
        "import torch\nfrom torch import nn\n"
        "torch.manual_seed(0)\n"
        f"Xt = torch.randn({n}, 64)\nyt = (Xt[:, :8].sum(1) > 0).long()\n"
        "class MLP(nn.Module):\n"
        "    def __init__(self, d_in, d_h, d_out):\n"
        "        super().__init__()\n"
        "        self.net = nn.Sequential(nn.Linear(d_in, d_h), nn.ReLU(), nn.Linear(d_h, d_h), nn.ReLU(),"
        " nn.Linear(d_h, d_out))\n"
        "    def forward(self, x):\n"
        "        return self.net(x)\n"
        f"model = MLP(64, {hidden}, 2)\n"
        "opt = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
        "loss_fn = nn.CrossEntropyLoss()\n"
        "def train_epochs(k, batch=128):\n"
        "    out = []\n"
        "    for _ in range(k):\n"
        "        perm = torch.randperm(len(Xt))\n"
        "        for i in range(0, len(Xt), batch):\n"
        "            idx = perm[i:i + batch]\n"
        "            opt.zero_grad()\n"
        "            loss = loss_fn(model(Xt[idx]), yt[idx])\n"
        "            loss.backward()\n"
        "            opt.step()\n"
        "        out.append(loss.item())\n"
        "    return out\n"
        "losses = []",
        train, train, train, train,
        "for g in opt.param_groups:\n    g['lr'] = 3e-4\n" + train,
        train, train, train,
        "with torch.no_grad():\n    acc = float((model(Xt).argmax(1) == yt).float().mean())",
    ]


def many_cells(arrays: int, trees: int) -> list[str]:
    forest = f"RandomForestClassifier(n_estimators={trees}, max_depth=8, n_jobs=1, random_state="
    return [
        "import numpy as np\nfrom sklearn.ensemble import RandomForestClassifier\n"
        "rng = np.random.default_rng(0)\n"
        f"d = {{f'a{{i}}': rng.random(400) for i in range({arrays})}}",
        "X = rng.random((2000, 20))\ny = (X[:, 0] + X[:, 1] > 1).astype(int)",
        f"forest = {forest}0).fit(X, y)",
        "d['a7'] = d['a7'] * 2",
        "score = float(forest.score(X, y))",
        "for k in list(d)[:30]:\n    d[k] += 1.0",
        "d['extra'] = rng.random(400)",
        f"forest2 = {forest}1).fit(X, y)",
        "scores = {'forest': score, 'forest2': float(forest2.score(X, y))}",
        "best = max(scores, key=scores.get)",
    ]


def cells(workload: str, profile: str) -> list[str]:
    size = SIZES[workload][profile]
    return {"sklearn": sklearn_cells, "arrays": arrays_cells, "torch": torch_cells,
            "many": many_cells}[workload](**size)


def data_mb(workload: str, profile: str) -> float:
    s = SIZES[workload][profile]
    if workload == "sklearn":
        return s["n"] * s["f"] * 8 / 1e6
    if workload == "arrays":
        return 4 * s["rows"] * s["cols"] * 8 / 1e6
    if workload == "many":
        return s["arrays"] * 400 * 8 / 1e6
    return s["n"] * 64 * 4 / 1e6


# Modules every kernel imports silently before the tool is set up and before a restore: import time
# is the same for every tool and not what is measured (cell 1 still binds the names).
IMPORTS = {  # __import__ binds no name, so the namespace stays the notebook's
    "sklearn": "for _m in ('numpy', 'sklearn.datasets', 'sklearn.linear_model', 'sklearn.ensemble'):"
               " __import__(_m)\ndel _m",
    "arrays": "__import__('numpy')",
    "many": "for _m in ('numpy', 'sklearn.ensemble'): __import__(_m)\ndel _m",
    # the first optimizer a process makes imports torch's compiler stack (~7 s here): warm it up once
    "torch": "__import__('numpy'); __import__('torch'); __import__('torch.nn')\n"
             "__import__('torch').optim.Adam([__import__('torch').zeros(1, requires_grad=True)])",
}

# Defined silently in every kernel. Names start with "_mvb" so no tool treats them as user state
# worth comparing; `_mvb_fp` fingerprints the user's variables: arrays and tensors by a hash of
# their bytes, models by their parameters and their predictions on a fixed probe input.
HELPERS = r'''
def _mvb_user_names():
    import types
    ns = get_ipython().user_ns
    skip = {"In", "Out", "exit", "quit", "get_ipython", "open", "kishu", "init_kishu"}
    def imported(v):  # imported functions and classes are code, not state: every tool's user re-imports them
        return (isinstance(v, (type, types.FunctionType, types.BuiltinFunctionType))
                and getattr(v, "__module__", None) != "__main__")
    return sorted(k for k, v in list(ns.items())
                  if not k.startswith("_") and k not in skip and not isinstance(v, types.ModuleType)
                  and not imported(v))


def _mvb_fp_obj(o, depth=0):
    import hashlib, pickle, sys, types
    h = hashlib.blake2b(digest_size=16)
    np = sys.modules.get("numpy")
    torch = sys.modules.get("torch")
    if depth > 6:
        return "deep"
    if np is not None and isinstance(o, np.ndarray):
        h.update(repr((o.dtype.str, o.shape)).encode())
        h.update(np.ascontiguousarray(o).view(np.uint8).reshape(-1).data if o.size else b"")
        return "nd:" + h.hexdigest()
    if torch is not None and isinstance(o, torch.Tensor):
        a = o.detach().cpu().contiguous()
        return "t:" + repr((str(a.dtype), tuple(a.shape), o.requires_grad)) + _mvb_fp_obj(a.numpy(), depth + 1)
    if torch is not None and isinstance(o, torch.nn.Module):
        g = torch.Generator().manual_seed(1234)
        first = next((m for m in o.modules() if isinstance(m, torch.nn.Linear)), None)
        probe = ""
        if first is not None:
            with torch.no_grad():
                probe = _mvb_fp_obj(o(torch.randn(16, first.in_features, generator=g)), depth + 1)
        return "mod:" + _mvb_fp_obj(dict(o.state_dict()), depth + 1) + "|" + probe
    if torch is not None and isinstance(o, torch.optim.Optimizer):
        sd = o.state_dict()
        return "opt:" + _mvb_fp_obj(sd["state"], depth + 1) + _mvb_fp_obj(sd["param_groups"], depth + 1)
    if hasattr(o, "get_params") and hasattr(o, "predict") and hasattr(o, "n_features_in_"):
        probe = np.random.default_rng(1234).standard_normal((32, o.n_features_in_))
        jobs = getattr(o, "n_jobs", None)
        if jobs not in (None, 1):  # threads sum tree votes in any order: predict serially to compare bits
            o.n_jobs = 1
        try:
            pred = o.predict_proba(probe) if hasattr(o, "predict_proba") else o.predict(probe)
        finally:
            if jobs not in (None, 1):
                o.n_jobs = jobs
        return "est:" + _mvb_fp_obj(o.get_params(), depth + 1) + _mvb_fp_obj(np.asarray(pred), depth + 1)
    if isinstance(o, dict):
        return "{" + ",".join(f"{k!r}:{_mvb_fp_obj(v, depth + 1)}" for k, v in o.items()) + "}"
    if isinstance(o, (list, tuple)):
        return type(o).__name__ + "[" + ",".join(_mvb_fp_obj(v, depth + 1) for v in o) + "]"
    if o is None or isinstance(o, (bool, int, float, complex, str, bytes)):
        return repr(o)
    if isinstance(o, types.FunctionType):
        return "fn:" + o.__qualname__ + hashlib.blake2b(o.__code__.co_code, digest_size=8).hexdigest()
    if isinstance(o, type):
        return "cls:" + o.__qualname__
    if np is not None and isinstance(o, np.random.Generator):
        return "rng:" + _mvb_fp_obj(o.bit_generator.state, depth + 1)
    try:
        h.update(pickle.dumps(o, protocol=5))
        return "pk:" + h.hexdigest()
    except Exception as e:
        return "unpicklable:" + type(o).__name__


def _mvb_fp():
    import json
    ns = get_ipython().user_ns
    return json.dumps({k: _mvb_fp_obj(ns[k]) for k in _mvb_user_names()})


def _mvb_mv_versions():
    import json
    import jupyter_mv as mv
    h = mv.history()
    return json.dumps([[r.version, r.message] for r in h.itertuples()])


def _mvb_distinct_hook(result, _seen=set(), _total=[0]):
    """Reference for 'distinct data': bytes of distinct content across the states after each cell
    (per variable: its pickle stream whole, its out-of-band buffers in 64 KiB blocks)."""
    import pickle, xxhash
    try:
        import cloudpickle as pk
    except ImportError:
        pk = pickle
    ns = get_ipython().user_ns
    for k in _mvb_user_names():
        bufs = []
        try:
            stream = pk.dumps(ns[k], protocol=5, buffer_callback=bufs.append)
        except Exception:
            continue
        pieces = [memoryview(stream)]
        for b in bufs:
            m = b.raw()
            pieces.extend(m[o:o + 65536] for o in range(0, len(m), 65536))
        for p in pieces:
            d = (xxhash.xxh3_128_hexdigest(p), len(p))
            if d not in _seen:
                _seen.add(d)
                _total[0] += len(p)
    global _mvb_distinct_bytes
    _mvb_distinct_bytes = _total[0]
'''


def _fsync_code(var: str) -> str:
    return (f"    _fd = __import__('os').open({var}, __import__('os').O_RDONLY)\n"
            "    __import__('os').fsync(_fd); __import__('os').close(_fd)\n")


def dill_setup(directory: str, fsync: bool) -> str:
    return (
        "import dill as _mvb_dill, os as _mvb_os\n"
        "_mvb_fail = {}\n"
        "def _mvb_dill_hook(result):\n"
        f"    path = _mvb_os.path.join({directory!r}, 'cell%03d.pkl' % result.execution_count)\n"
        "    try:\n"
        "        dump = getattr(_mvb_dill, 'dump_module', None) or _mvb_dill.dump_session\n"
        "        dump(path)\n"
        "    except Exception as e:\n"
        "        _mvb_fail[result.execution_count] = type(e).__name__ + ': ' + str(e)[:120]\n"
        "        if _mvb_os.path.exists(path):\n"
        "            _mvb_os.remove(path)\n"
        "        return\n"
        + (_fsync_code("path") + _fsync_code(repr(directory)) if fsync else "")
        + "get_ipython().events.register('post_run_cell', _mvb_dill_hook)\n"
    )


def cloudpickle_setup(directory: str, fsync: bool) -> str:
    return (
        "import cloudpickle as _mvb_cp, os as _mvb_os\n"
        "_mvb_fail = {}\n"
        "def _mvb_cp_hook(result):\n"
        f"    path = _mvb_os.path.join({directory!r}, 'cell%03d.pkl' % result.execution_count)\n"
        "    ns = get_ipython().user_ns\n"
        "    state = {k: ns[k] for k in _mvb_user_names()}\n"
        "    try:\n"
        "        with open(path, 'wb') as f:\n"
        "            _mvb_cp.dump(state, f, protocol=5)\n"
        "    except Exception as e:\n"
        "        _mvb_fail[result.execution_count] = type(e).__name__ + ': ' + str(e)[:120]\n"
        "        if _mvb_os.path.exists(path):\n"
        "            _mvb_os.remove(path)\n"
        "        return\n"
        + (_fsync_code("path") + _fsync_code(repr(directory)) if fsync else "")
        + "get_ipython().events.register('post_run_cell', _mvb_cp_hook)\n"
    )
